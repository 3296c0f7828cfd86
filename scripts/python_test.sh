#!/usr/bin/env bash
# python_test.sh [VENV]: installs cunorm with `pip install .` into a virtual environment made from
# Debian's /usr/bin/python3 with --system-site-packages (so that Debian's python3-torch 1.13 is
# visible; that python is externally managed, and python3 on PATH may be another), then runs the
# Python tests (tests/python, pytest) and the examples (examples/python, which check their own
# results) against the installed package. The CUDA backend is built
# when nvcc is found, for CUNORM_CUDA_ARCHITECTURES if set (else 90-real).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-build/python-venv}
scripts/install_packages.sh python3-venv python3-torch python3-pytest
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
export CUNORM_CUDA_ARCHITECTURES=${CUNORM_CUDA_ARCHITECTURES:-90-real}
PATH="$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"):$PATH" \
  "$venv/bin/python" -m pip install -q --disable-pip-version-check .
# From outside the checkout, so that the installed package is imported, not python/cunorm.
(cd "$venv" && bin/python -m pytest -q "$OLDPWD/tests/python")
for example in examples/python/*.py; do
  echo "== $example"
  (cd "$venv" && bin/python "$OLDPWD/$example")
done
