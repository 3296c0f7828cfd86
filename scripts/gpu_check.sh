#!/usr/bin/env bash
# The project's check on a GPU, in two steps, for a GPU machine that may have no network, no
# package manager and no copy of this repository (a CUDA driver, maybe compute-sanitizer, maybe a
# Python with torch and its cuDNN wheel):
#
#   scripts/gpu_check.sh build DIR [BUILD]   here: a self-contained folder DIR (under 60 MiB) with
#       every test program that has CUDA cases, the benchmark, cuda_backend_status, libcunorm and
#       libcunorm_simt (relative rpaths: bin/ finds lib/), the performance model's prediction of
#       every benchmark row (records.json) and its comparison (gpu_check_model.py), this script and
#       the torch step (tools/gpu_check_torch.py with python -m cunorm.bench's module).
#       Without BUILD it configures and builds build-gpu-check for sm_90 alone; with BUILD it takes
#       the programs of that build, which must have the CUDA backend and compile sm_90 (.ci/run
#       passes the README build's). cuDNN is never carried: the benchmark loads it at run time.
#   DIR/gpu_check.sh run DIR OUT [--quick]   on the GPU machine, within 5 minutes (--quick: 2):
#       every CUDA test case, compute-sanitizer memcheck and racecheck on a few cases where the tool
#       is found, the benchmark (cuDNN beside it where libcudnn.so.9 is found), and, where a Python
#       with torch and a GPU is found, torch's layer_norm / rms_norm / batch_norm against cunorm's
#       on the same tensors. Writes at most 8 flat files into OUT: summary.md, tests.log,
#       sanitizer.log, bench.log, bench.jsonl, torch.log, torch.jsonl. Without a usable GPU it says
#       why and exits 1; any failed step makes it exit 1 after the rest have run.
set -euo pipefail

usage() {
  echo "usage: $0 build DIR [BUILD] | $0 run DIR OUT [--quick]" >&2
  exit 2
}

# The folder's size limit, and the CUDA cases by name: value-parameterized twins named CUDA_...,
# suites instantiated per backend (a case ending in /CUDA), and the tests written for the CUDA
# backend (Cuda in the test name).
max_bytes=$((60 * 1024 * 1024))
cuda_cases='*/CUDA_*:*/CUDA:*Cuda*'
# The Pythons a GPU machine may have, searched in this order for torch and its cuDNN wheel.
pythons=(python3 python3.12 python3.11 python3.10 /usr/bin/python3)

build_folder() {
  local dir=$1 build=${2:-}
  local source
  source=$(cd "$(dirname "$0")/.." && pwd)
  if [ -z "$build" ]; then
    build=$source/build-gpu-check
    CUNORM_CUDA_ARCHITECTURES=90-real "$source/scripts/configure.sh" "$build" -DCUNORM_BUILD_TESTS=ON \
      -DCUNORM_BUILD_BENCH=ON -DCUNORM_BUILD_ORACLE_TESTS=OFF
    cmake --build "$build" -j"$(nproc)"
  fi
  grep -q '^CUNORM_CUDA_BACKEND:[A-Z]*=ON' "$build/CMakeCache.txt" ||
    { echo "gpu_check: $build has no CUDA backend" >&2; exit 1; }
  grep -q '^CUNORM_CUDA_ARCHITECTURES:[A-Z]*=.*90' "$build/CMakeCache.txt" ||
    { echo "gpu_check: $build does not compile sm_90" >&2; exit 1; }
  command -v patchelf >/dev/null || "$source/scripts/install_packages.sh" patchelf
  rm -rf "$dir"
  mkdir -p "$dir/bin" "$dir/lib"
  # Every test program with a CUDA case, except those that need libraries a GPU machine lacks
  # (the oracle suites link libtorch and ONNX).
  local program
  for program in "$build"/tests/*_test; do
    [ -x "$program" ] || continue
    if readelf -d "$program" | grep -Eq 'NEEDED.*(libtorch|libc10|libonnx|libprotobuf)'; then continue; fi
    if grep -q '^  ' <<<"$("$program" --gtest_list_tests --gtest_filter="$cuda_cases")"; then
      cp "$program" "$dir/bin/"
    fi
  done
  cp "$build/tests/cuda_backend_status" "$build/bench/cunorm_bench" "$dir/bin/"
  # The libraries they load that a GPU machine may lack, under the names they are loaded by:
  # cunorm's two, the CUDA runtime, Boost.Context (the SIMT engine's fibers). Not cuDNN, not libc.
  local name path
  while read -r name path; do
    cp -L "$path" "$dir/lib/$name"
  done < <(ldd "$dir"/bin/* | awk '$1 ~ /^lib(cunorm|cunorm_simt|cudart|boost_context)\.so/ && $3 ~ /^\// {print $1, $3}' |
           sort -u)
  for program in "$dir"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$program"; done
  for path in "$dir"/lib/*; do patchelf --set-rpath '$ORIGIN' "$path"; done
  cp "$source/scripts/gpu_check.sh" "$source/tools/gpu_check_torch.py" "$dir/"
  cp "$source/python/cunorm/bench.py" "$dir/cunorm_bench.py"
  # The performance model's prediction for every benchmark row, for the run step's comparison:
  # the build's performance gate writes it; made again here when missing or older than the
  # benchmark or the static report. A gate that fails still writes the records.
  local records=$build/static_report/records.json
  if [ ! -f "$records" ] || [ "$build/bench/cunorm_bench" -nt "$records" ] ||
     [ "$build/static_report/report.json" -nt "$records" ]; then
    rm -f "$records"
    cmake --build "$build" --target performance_records || [ -f "$records" ] ||
      { echo "gpu_check: $build made no performance records (target performance_records)" >&2; exit 1; }
  fi
  cp "$records" "$source/tools/gpu_check_model.py" "$dir/"
  local bytes
  bytes=$(du -sb "$dir" | cut -f1)
  if [ "$bytes" -gt "$max_bytes" ]; then
    echo "gpu_check: $dir holds $bytes bytes, over the $max_bytes limit" >&2
    exit 1
  fi
  echo "gpu_check: $dir: $(ls "$dir/bin" | wc -l) programs, $((bytes / 1024 / 1024)) MiB; on the GPU machine: $dir/gpu_check.sh run $dir OUT"
}

# The count on gtest's "[  PASSED  ] 12 tests." (or SKIPPED, FAILED) line of an output, 0 without one.
gtest_count() {
  local count
  count=$(grep -o "\[  $1  \] [0-9]*" <<<"$2" | grep -o '[0-9]*$' || true)
  echo "${count:-0}"
}

# The directory of libcudnn.so.9 on this machine, or nothing: torch's cuDNN wheel, then the loader's
# cache, then the CUDA toolkit.
find_cudnn() {
  local python found
  for python in "${pythons[@]}"; do
    command -v "$python" >/dev/null || continue
    found=$("$python" -c 'import os, nvidia.cudnn as c; print(os.path.join(os.path.dirname(c.__file__), "lib"))' 2>/dev/null) &&
      [ -e "$found/libcudnn.so.9" ] && { echo "$found"; return; }
  done
  found=$(ldconfig -p 2>/dev/null | awk '/libcudnn\.so\.9 /{print $NF; exit}' || true)
  [ -n "$found" ] && { dirname "$found"; return; }
  for found in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu; do
    [ -e "$found/libcudnn.so.9" ] && { echo "$found"; return; }
  done
  return 0
}

# A Python that imports torch and sees a CUDA GPU, or nothing.
find_torch_python() {
  local python
  for python in "${pythons[@]}"; do
    command -v "$python" >/dev/null || continue
    if "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
      echo "$python"
      return
    fi
  done
  return 0
}

run_checks() {
  local dir out quick=0
  dir=$(cd "$1" && pwd)
  out=$2
  [ "${3:-}" = "--quick" ] && quick=1
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  local status
  status=$("$dir/bin/cuda_backend_status")
  echo "$status"
  if ! grep -q '^CUDA backend usable' <<<"$status"; then
    echo "gpu_check: no GPU this check can use: nothing run" >&2
    exit 1
  fi
  local started failed=0 tests_budget bench_budget torch_budget
  started=$(date +%s)
  # Seconds per step (the whole check within 5 minutes, --quick within 2).
  local sanitizer_runs
  if [ "$quick" = 1 ]; then
    tests_budget=40 sanitizer_runs=1 bench_budget=30 torch_budget=25
  else
    tests_budget=110 sanitizer_runs=6 bench_budget=60 torch_budget=30
  fi
  local summary=$out/summary.md
  {
    echo "# GPU check"
    echo
    echo "$status"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /' || true
    echo
  } >"$summary"

  # Every CUDA test case, the programs one after another within the tests' budget.
  local program filter=$cuda_cases output left
  [ "$quick" = 1 ] && filter='*/CUDA_*f32_f32*:*/CUDA:*Cuda*'
  : >"$out/tests.log"
  echo "## Tests (CUDA cases)" >>"$summary"
  echo >>"$summary"
  for program in "$dir"/bin/*_test; do
    left=$(( started + tests_budget - $(date +%s) ))
    if [ "$left" -le 0 ]; then
      failed=1
      echo "- $(basename "$program"): not run (the tests' $tests_budget s were spent)" >>"$summary"
      continue
    fi
    echo "== $(basename "$program")" >>"$out/tests.log"
    if output=$(timeout "$left" "$program" --gtest_filter="$filter" --gtest_brief=1 2>&1); then
      echo "- $(basename "$program"): $(gtest_count PASSED "$output") passed, $(gtest_count SKIPPED "$output") skipped" >>"$summary"
    else
      failed=1
      echo "- $(basename "$program"): $(gtest_count FAILED "$output") FAILED, or stopped after $left s (tests.log)" >>"$summary"
    fi
    echo "$output" >>"$out/tests.log"
  done

  # compute-sanitizer memcheck and racecheck on a few small cases of each op family.
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  : >"$out/sanitizer.log"
  echo >>"$summary"
  echo "## compute-sanitizer" >>"$summary"
  echo >>"$summary"
  if [ -z "$sanitizer" ]; then
    echo "compute-sanitizer not found: not run" | tee -a "$out/sanitizer.log" >>"$summary"
  else
    # (tool, program, cases): memcheck first, so that --quick's one run is a memcheck.
    local runs=() run tool case_program case_filter
    for tool in memcheck racecheck; do
      runs+=("$tool row_norm_forward_test */CUDA_*_f32_f32_R229xC7_*" "$tool row_norm_backward_test */CUDA_*_f32_f32_R229xC7_*"
             "$tool batch_norm_test */CUDA_*_f32_f32_N8C16S49_*")
    done
    for run in "${runs[@]:0:$sanitizer_runs}"; do
      read -r tool case_program case_filter <<<"$run"
      echo "== $tool $case_program $case_filter" >>"$out/sanitizer.log"
      if timeout 15 "$sanitizer" --tool "$tool" --error-exitcode 3 "$dir/bin/$case_program" \
           --gtest_filter="$case_filter" --gtest_brief=1 >>"$out/sanitizer.log" 2>&1; then
        echo "- $tool $case_program ($case_filter): clean" >>"$summary"
      else
        failed=1
        echo "- $tool $case_program ($case_filter): REPORTED, failed or over 15 s (sanitizer.log)" >>"$summary"
      fi
    done
  fi

  # The benchmark, with cuDNN where it can be loaded; rows written as they finish.
  local cudnn
  cudnn=$(find_cudnn)
  echo >>"$summary"
  echo "## Benchmark" >>"$summary"
  echo >>"$summary"
  if LD_LIBRARY_PATH="${cudnn:+$cudnn:}${LD_LIBRARY_PATH:-}" timeout "$bench_budget" "$dir/bin/cunorm_bench" \
       --json "$out/bench.jsonl" >"$out/bench.log" 2>&1; then
    echo "- complete: $(wc -l <"$out/bench.jsonl") rows (bench.jsonl)" >>"$summary"
  else
    echo "- stopped (over $bench_budget s or failed) after $(wc -l <"$out/bench.jsonl" 2>/dev/null || echo 0) rows (bench.log)" >>"$summary"
  fi
  echo "- cuDNN: ${cudnn:-libcudnn.so.9 not found, no side-by-side}" >>"$summary"

  # torch against cunorm on the same tensors.
  local python
  python=$(find_torch_python)
  echo >>"$summary"
  echo "## torch" >>"$summary"
  echo >>"$summary"
  if [ -z "$python" ]; then
    echo "no Python with torch and a CUDA GPU found: not run" | tee "$out/torch.log" >>"$summary"
  else
    local quick_flag=()
    [ "$quick" = 1 ] && quick_flag=(--quick)
    if LD_LIBRARY_PATH="$dir/lib:${LD_LIBRARY_PATH:-}" timeout "$torch_budget" "$python" "$dir/gpu_check_torch.py" \
         --library "$dir/lib/libcunorm.so.0" --json "$out/torch.jsonl" "${quick_flag[@]}" >"$out/torch.log" 2>&1; then
      echo "- complete: $(wc -l <"$out/torch.jsonl") records (torch.jsonl)" >>"$summary"
    else
      echo "- stopped (over $torch_budget s or failed) after $(wc -l <"$out/torch.jsonl" 2>/dev/null || echo 0) records (torch.log)" >>"$summary"
      grep -q 'differ by' "$out/torch.log" && failed=1
    fi
  fi

  # Measured against predicted, every benchmark row (any Python: the comparison needs no package).
  echo >>"$summary"
  echo "## Model" >>"$summary"
  echo >>"$summary"
  local any_python=""
  for python in "${pythons[@]}"; do
    command -v "$python" >/dev/null && { any_python=$python; break; }
  done
  if [ -z "$any_python" ]; then
    echo "no Python found: measured times not compared with records.json" >>"$summary"
  elif [ -s "$out/bench.jsonl" ]; then
    "$any_python" "$dir/gpu_check_model.py" "$out/bench.jsonl" "$dir/records.json" "$out/bench.log" >>"$summary" 2>&1 ||
      echo "the comparison failed (above)" >>"$summary"
  else
    echo "no benchmark rows to compare" >>"$summary"
  fi
  echo >>"$summary"
  echo "Took $(( $(date +%s) - started )) s." >>"$summary"
  cat "$summary"
  return "$failed"
}

case "${1:-}" in
  build) [ $# -ge 2 ] && [ $# -le 3 ] || usage; build_folder "$2" "${3:-}" ;;
  run) [ $# -ge 3 ] && [ $# -le 4 ] || usage; run_checks "$2" "$3" "${4:-}" ;;
  *) usage ;;
esac
