#!/usr/bin/env bash
# Builds cunorm with its tests (the CUDA kernels for every default architecture) and runs every
# test with ctest. CUDA-backend cases are skipped, with the reason, when no GPU is usable.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_dependencies.sh
scripts/configure.sh build -DCUNORM_BUILD_TESTS=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
