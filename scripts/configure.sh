#!/usr/bin/env bash
# configure.sh <build-dir> [cmake options...]: configures a Release build of cunorm with nvcc from
# PATH or /usr/local/cuda. CUNORM_CUDA_ARCHITECTURES in the environment overrides the default
# architectures (every one nvcc 13 builds from sm_75 to sm_120).
set -euo pipefail
build_dir=$1
shift
nvcc_path=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
args=(-S "$(dirname "$0")/.." -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc_path")
if [ -n "${CUNORM_CUDA_ARCHITECTURES:-}" ]; then
  args+=(-DCUNORM_CUDA_ARCHITECTURES="$CUNORM_CUDA_ARCHITECTURES")
fi
cmake "${args[@]}" "$@" >/dev/null
