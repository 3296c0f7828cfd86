#!/usr/bin/env bash
# Regenerates docs/performance.md and docs/performance.png: builds cunorm with the CUDA backend
# (for the static kernel report) and its benchmark, runs the benchmark on the SIMT engine with
# --json, and turns both into the page (tools/performance_doc.py, matplotlib from Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_dependencies.sh
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null
scripts/configure.sh build -DCUNORM_BUILD_TESTS=OFF
cmake --build build -j"$(nproc)" --target cunorm_bench
CUNORM_BACKEND=simt build/bench/cunorm_bench --json build/bench_results.jsonl >/dev/null
/usr/bin/python3 tools/performance_doc.py build/bench_results.jsonl build/static_report/report.json \
  docs/performance.md docs/performance.png
