#!/usr/bin/env bash
# Regenerates docs/performance.md and docs/performance.png: builds cunorm with the CUDA backend
# (for the static kernel report) and its benchmark, runs the performance model on every benchmark
# record (the performance_records target: the benchmark on the SIMT engine with --json, then
# tools/performance_records.py, gated on tools/performance_floors.json), and turns the benchmark's
# rows, the static report and the records into the page (tools/performance_doc.py, matplotlib from
# Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_dependencies.sh
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null
scripts/configure.sh build -DCUNORM_BUILD_TESTS=OFF
cmake --build build -j"$(nproc)" --target performance_records
/usr/bin/python3 tools/performance_doc.py build/static_report/bench_simt.jsonl build/static_report/report.json \
  build/static_report/records.json docs/performance.md docs/performance.png
