#!/usr/bin/env bash
# The main job: builds cunorm and its benchmark, then validates every op against the float64
# reference and measures it on this machine's GPU, or runs it on the SIMT engine when there is
# no GPU (and says so).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_dependencies.sh
scripts/configure.sh build -DCUNORM_BUILD_TESTS=OFF
cmake --build build -j"$(nproc)" --target cunorm_bench
build/bench/cunorm_bench
