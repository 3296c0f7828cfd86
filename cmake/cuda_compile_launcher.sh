#!/usr/bin/env bash
# The compiler launcher of every CUDA compile in cunorm's build (CMAKE_CUDA_COMPILER_LAUNCHER):
# runs the nvcc command it is given, unchanged. The build makes a register spill or any use of
# local memory a ptxas error (cmake/CunormWarnings.cmake), but ptxas names neither the
# architecture nor a way out, and one nvcc command compiles for every architecture at once. So
# when the command fails with that error, this compiles the file again for one architecture at a
# time to find which fail, and says which kernels, which architectures, and how to build fewer.
set -u

log=$(mktemp)
trap 'rm -f "$log" "$log.o"' EXIT
"$@" 2>"$log"
status=$?
cat "$log" >&2
spill='ptxas (error|fatal) *: (Local memory used|Registers are spilled)'
if [ "$status" -eq 0 ] || ! grep -qE "$spill" "$log"; then
  exit "$status"
fi

kernels=$(grep -E "$spill" "$log" | sed -n "s/.*function '\([^']*\)'.*/\1/p" | sort -u | c++filt)

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

failing=()
for architecture in "${architectures[@]}"; do
  if ! "${base[@]}" "$architecture" -o "$log.o" 2>&1 | grep -qE "$spill"; then
    continue
  fi
  name=${architecture##*code=}
  name=${name//[\[\]]/}
  failing+=("${name##*,}")
done

{
  echo
  echo "cunorm: ptxas put registers in local memory (a spill or a stack frame) for ${failing[*]:-some architecture} in:"
  while IFS= read -r kernel; do echo "    $kernel"; done <<<"$kernels"
  echo "  This build treats that as an error, since local memory costs DRAM bandwidth in a kernel"
  echo "  that is meant to be memory-bound. It is a bug in cunorm: please report the kernel and the"
  echo "  architecture. To build now, leave those architectures out, e.g."
  echo "    CUNORM_CUDA_ARCHITECTURES=\"75-real;90\" scripts/test.sh      (scripts/bench.sh likewise)"
  echo "    cmake -DCUNORM_CUDA_ARCHITECTURES=\"75-real;90\" ...           (a build of your own)"
} >&2
exit "$status"
