#!/usr/bin/env bash
# Installs the Debian packages cunorm builds and tests with (run as root, apt reachable). The
# CUDA toolkit itself is expected at /usr/local/cuda, as on the machines this project targets.
set -euo pipefail
"$(dirname "$0")/install_packages.sh" cmake g++ make libboost-context-dev libgtest-dev
# cuobjdump, which the static kernel report (tools/static_report.py) reads the CUDA objects with,
# is not part of the toolkit on these machines: PyPI ships it (with nvdisasm, which it runs).
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "nvidia-cuda-cuobjdump>=13,<14" "nvidia-cuda-nvdisasm>=13,<14"
if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "nvcc not found: cunorm needs the CUDA toolkit (13.x) at /usr/local/cuda" >&2
  exit 1
fi
