#!/usr/bin/env bash
# coverage.sh <build-dir>: line coverage of kernels/, ops/ and host/ from a test run of a build
# configured with -DCUNORM_COVERAGE=ON (the SIMT backend; host/cuda/ is CUDA-only and aside).
# Prints gcovr's per-file table with the lines never run, fails below 95% of lines, and fails
# when the lines never run differ from those docs/coverage.md lists with their reasons
# (tools/coverage_check.py). gcov's lines with negative counts (lost increments of concurrent
# host threads, cmake/CunormWarnings.cmake) are skipped with a warning on stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
json="$build/coverage.json"
gcovr --root "$root" --object-directory "$build" \
  --filter "$root/kernels/" --filter "$root/ops/" --filter "$root/host/" --exclude "$root/host/cuda/" \
  --gcov-ignore-parse-errors --txt --json "$json" --fail-under-line 95
python3 "$root/tools/coverage_check.py" "$json" "$root/docs/coverage.md"
