#!/usr/bin/env bash
# fuzz.sh [seconds] [build-dir]: builds the libFuzzer harness of the C API (tests/fuzz/: clang 14,
# AddressSanitizer + UBSan over the library, the SIMT engine and the harness, the SIMT backend
# alone; docs/robustness.md) and fuzzes for `seconds` (default 120), starting from the checked-in
# seed corpus. Inputs that reach new code are kept in <build-dir>/fuzz-corpus (default build-fuzz),
# so a later run continues from them; a finding is written to <build-dir>/fuzz-findings/ and fails
# the script. CUNORM_FUZZ_JOBS=N fuzzes with N processes (libFuzzer's -fork) for longer runs on
# more cores. Installs the Debian packages it needs (run as root, apt reachable).
set -euo pipefail
seconds=${1:-120}
build_dir=${2:-build-fuzz}
cd "$(dirname "$0")/.."
# clang 14 is Debian 12's; its libFuzzer and sanitizer runtimes are in libclang-rt-14-dev.
scripts/install_packages.sh clang-14 libclang-rt-14-dev cmake make libboost-context-dev

# Only the library, the engine and the harness: no tests, no benchmark, no CUDA backend. -O1 with
# line tables: the kernel instantiations under ASan and UBSan compile much faster than at -O2 -g,
# and reports still name file and line.
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCUNORM_CUDA_BACKEND=OFF \
  -DCUNORM_BUILD_FUZZER=ON -DCUNORM_BUILD_TESTS=OFF -DCUNORM_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target cunorm_api_fuzzer

mkdir -p "$build_dir/fuzz-corpus" "$build_dir/fuzz-findings"
fork=()
if [ -n "${CUNORM_FUZZ_JOBS:-}" ]; then fork=(-fork="$CUNORM_FUZZ_JOBS"); fi
# New inputs go to the first corpus directory, so the checked-in seeds stay as they are. An input
# takes milliseconds (its buffers are at most 16 KiB each): 60 s is a hang. A 15-minute run peaked at
# 0.9 GB of resident memory; 4 GB (libFuzzer's default is 2) leaves room for long runs.
UBSAN_OPTIONS=print_stacktrace=1 "$build_dir/tests/fuzz/cunorm_api_fuzzer" "${fork[@]}" \
  -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$build_dir/fuzz-findings/" \
  "$build_dir/fuzz-corpus" tests/fuzz/corpus
if [ -n "$(ls -A "$build_dir/fuzz-findings")" ]; then
  echo "fuzz.sh: findings in $build_dir/fuzz-findings/" >&2
  exit 1
fi
