#!/usr/bin/env bash
# Builds cunorm with its tests (the CUDA kernels for every default architecture, or for
# CUNORM_CUDA_ARCHITECTURES) and runs every test with ctest. CUDA-backend cases are skipped, with
# the reason, when no GPU is usable; the line before ctest's output says whether they will be.
# CUNORM_CMAKE_OPTIONS in the environment adds cmake options (space-separated), e.g.
# -DCUNORM_BUILD_ORACLE_TESTS=ON for the ATen and ONNX oracle suites (their packages installed).
# Then the Python package: scripts/python_test.sh installs it into build/python-venv (pip install .)
# and runs its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_dependencies.sh
read -r -a extra_options <<< "${CUNORM_CMAKE_OPTIONS:-}"
scripts/configure.sh build -DCUNORM_BUILD_TESTS=ON "${extra_options[@]}"
cmake --build build -j"$(nproc)"
build/tests/cuda_backend_status
ctest --test-dir build --output-on-failure -j"$(nproc)"
scripts/python_test.sh build/python-venv
