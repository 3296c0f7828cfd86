// The one place where kernel sources differ between nvcc and the SIMT engine: qualifiers,
// shared-memory declarations, dynamic shared memory, the grid barrier of cooperative launches,
// and the source location that SIMT-only checks report. Everything else in kernels/ is written once and compiled both
// ways.
#pragma once

#if defined(__CUDACC__)

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define CUNORM_DEVICE __device__ __forceinline__
#define CUNORM_KERNEL __global__
#define CUNORM_LAUNCH_BOUNDS(max_threads, min_blocks) __launch_bounds__(max_threads, min_blocks)
#define CUNORM_UNROLL _Pragma("unroll")
// A loop ptxas must not unroll (see the uncached backward kernel: unrolling buys loads in flight
// that a 1024-thread block already has, and costs registers its 64-register bound does not have).
#define CUNORM_NO_UNROLL _Pragma("unroll 1")
// `__shared__ Type name;` where Type may be an array type such as float[32].
#define CUNORM_SHARED(Type, name)  \
  using name##_shared_type = Type; \
  __shared__ name##_shared_type name
// Appended to the parameters of the global-memory helpers: where the SIMT engine reports a
// misaligned access. Nothing on a GPU, which faults without naming a line.
#define CUNORM_CALLER_LOCATION
#define CUNORM_PASS_LOCATION

namespace cunorm::kernels {
template <class T>
__device__ __forceinline__ T* dynamic_shared_memory() {
  extern __shared__ __align__(16) unsigned char cunorm_dynamic_shared[];
  return reinterpret_cast<T*>(cunorm_dynamic_shared);
}
// A barrier over every thread of the grid; the kernel must be launched cooperatively.
__device__ __forceinline__ void grid_sync() { cooperative_groups::this_grid().sync(); }
}  // namespace cunorm::kernels

#else  // the SIMT engine

#include "simt/device.hpp"

#define CUNORM_DEVICE inline
#define CUNORM_KERNEL
#define CUNORM_LAUNCH_BOUNDS(max_threads, min_blocks)
#define CUNORM_UNROLL _Pragma("GCC unroll 64")
#define CUNORM_NO_UNROLL _Pragma("GCC unroll 1")
#define CUNORM_SHARED(Type, name) SIMT_SHARED(Type, name)
#define CUNORM_CALLER_LOCATION , ::simt::SourceLocation caller = ::simt::SourceLocation::here()
#define CUNORM_PASS_LOCATION , caller

namespace cunorm::kernels {
template <class T>
inline T* dynamic_shared_memory() {
  return simt_dynamic_shared<T>();
}
inline void grid_sync(::simt::SourceLocation loc = ::simt::SourceLocation::here()) { ::simt::grid_sync(loc); }
}  // namespace cunorm::kernels

#endif
