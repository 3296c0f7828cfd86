#!/usr/bin/env bash
# The compiler launcher of every CUDA compile in cunorm's build (CMAKE_CUDA_COMPILER_LAUNCHER):
# runs the nvcc command it is given, unchanged. The build makes a register spill or any use of
# local memory a ptxas error (cmake/CunormWarnings.cmake), but ptxas names neither the
# architecture nor a way out, and one nvcc command compiles for every architecture at once (and
# stops at the first that fails). So when the command fails with that error, this compiles the
# file again for one architecture at a time, and says which kernels fail on which architectures
# and which CUNORM_CUDA_ARCHITECTURES builds the others.
set -u

log=$(mktemp)
trap 'rm -f "$log" "$log.one" "$log.o"' EXIT
"$@" 2>"$log"
status=$?
cat "$log" >&2
spill='ptxas (error|fatal) *: (Local memory used|Registers are spilled)'
if [ "$status" -eq 0 ] || ! grep -qE "$spill" "$log"; then
  exit "$status"
fi

# The command without its architectures, its output and its dependency file.
base=()
architectures=()
skip_next=0
for arg in "$@"; do
  if ((skip_next)); then
    skip_next=0
    continue
  fi
  case "$arg" in
    --generate-code=*) architectures+=("$arg") ;;
    -o | -MT | -MF) skip_next=1 ;;
    -MD) ;;
    *) base+=("$arg") ;;
  esac
done

# --generate-code=arch=compute_100,code=[sm_100] is CMake's "100-real"; code=[compute_120,sm_120]
# (SASS and PTX) is "120".
cmake_name() {
  local code=${1##*code=[}
  code=${code%]}
  local number=${code##*sm_}
  if [[ $code == compute_* ]]; then echo "$number"; else echo "$number-real"; fi
}

failing=()
building=()
kernels=""
for architecture in "${architectures[@]}"; do
  if "${base[@]}" "$architecture" -o "$log.o" 2>"$log.one" || ! grep -qE "$spill" "$log.one"; then
    building+=("$(cmake_name "$architecture")")
    continue
  fi
  name=$(cmake_name "$architecture")
  failing+=("sm_${name%-real}")
  kernels+=$(grep -E "$spill" "$log.one" | sed -n "s/.*function '\([^']*\)'.*/\1/p")$'\n'
done

{
  echo
  echo "cunorm: ptxas used local memory (a register spill or a stack frame) on ${failing[*]:-an architecture} in:"
  sort -u <<<"$kernels" | grep -v '^$' | c++filt | sed 's/^/    /'
  echo "  This build treats that as an error, since local memory costs DRAM bandwidth in a kernel"
  echo "  that is meant to be memory-bound. It is a bug in cunorm: please report the kernel and the"
  echo "  architecture. To build now without those architectures:"
  if ((${#building[@]})); then
    list=$(IFS=';' && echo "${building[*]}")
    echo "    CUNORM_CUDA_ARCHITECTURES=\"$list\" scripts/test.sh      (scripts/bench.sh likewise)"
    echo "    cmake -DCUNORM_CUDA_ARCHITECTURES=\"$list\" ...           (a build of your own)"
  else
    echo "    none of this command's architectures builds; name others in CUNORM_CUDA_ARCHITECTURES"
  fi
} >&2
exit "$status"
