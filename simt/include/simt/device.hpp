// Device side of the SIMT engine: what CUDA gives a kernel and the host compiler lacks. Included
// in place of the CUDA device environment when kernel sources are compiled by g++: the built-in
// index variables, block barriers, warp collectives with PTX shfl.sync semantics, atomics,
// fences, shared memory held per block, intrinsics, and the checked global-memory access hook.
//
// Every collective takes the caller's source location as a defaulted argument, so a fault is
// reported with the line of the kernel that caused it.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <vector_types.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace simt {

struct SourceLocation {
  const char* file;
  int line;
  static constexpr SourceLocation here(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return SourceLocation{file, line};
  }
};

namespace detail {

// What the built-in variables read; the engine points tls_thread at the running fiber's copy.
struct ThreadContext {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
extern thread_local ThreadContext* tls_thread;

enum class Collective : std::uint8_t { kShflIdx, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll, kSyncWarp };
enum class BlockBarrier : std::uint8_t { kSync, kCount, kAnd, kOr };

std::uint64_t warp_collective(Collective kind, unsigned mask, std::uint64_t value, int operand, int width,
                              SourceLocation loc);
int block_barrier(BlockBarrier kind, int predicate, SourceLocation loc);
void* static_shared(const void* key, std::size_t bytes, std::size_t align, SourceLocation loc);
void* dynamic_shared();
void global_access(const void* address, std::size_t bytes, std::size_t align, bool write, SourceLocation loc);
// __threadfence(): also publishes the calling block's global stores to other blocks (the engine
// reports a load of another block's unpublished store).
void memory_fence();
// __threadfence_block(): orders the thread's accesses, publishes nothing to other blocks.
void block_memory_fence();
[[noreturn]] void trap(const char* what, SourceLocation loc);

// Perturbed in the random order, within the GPU's documented error bound, deterministically per
// input (a GPU's approximation is deterministic too).
float approximate(float exact, int max_ulp_error, std::uint32_t input_bits);

template <class T>
constexpr bool kShuffleable =
    std::is_arithmetic<T>::value || std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value ||
    std::is_same<T, __half2>::value || std::is_same<T, __nv_bfloat162>::value;

template <class T>
T shuffle(Collective kind, unsigned mask, T value, int operand, int width, SourceLocation loc) {
  static_assert(kShuffleable<T> && sizeof(T) <= 8, "CUDA shuffles arithmetic and half types only");
  std::uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const void*>(&value), sizeof(T));
  bits = warp_collective(kind, mask, bits, operand, width, loc);
  T result;
  std::memcpy(static_cast<void*>(&result), &bits, sizeof(T));
  return result;
}

template <class T>
T atomic_rmw(T* address, T value, T (*op)(T, T)) {
  T expected;
  __atomic_load(address, &expected, __ATOMIC_RELAXED);
  T desired = op(expected, value);
  while (!__atomic_compare_exchange(address, &expected, &desired, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
    desired = op(expected, value);
  }
  return expected;
}

}  // namespace detail

// A barrier over every thread of a cooperative launch (cooperative_groups' grid.sync()).
void grid_sync(SourceLocation loc = SourceLocation::here());

}  // namespace simt

// ---- Built-in variables -----------------------------------------------------------------------
#define threadIdx (::simt::detail::tls_thread->thread_idx)
#define blockIdx (::simt::detail::tls_thread->block_idx)
#define blockDim (::simt::detail::tls_thread->block_dim)
#define gridDim (::simt::detail::tls_thread->grid_dim)
inline constexpr int warpSize = 32;

// A plain __shared__ declaration compiles on the host into a per-thread variable: forbid it, so
// that every shared variable goes through the engine's per-block storage.
#undef __shared__
#define __shared__ simt_use_SIMT_SHARED_instead_of___shared__

// `__shared__ Type name;` for the engine: one NaN-filled object per block, the same address for
// every thread of the block. Type may be an array type (float[32]); like CUDA's shared
// variables it must need no constructor.
#define SIMT_SHARED(Type, name)                                                                                       \
  static_assert(::std::is_trivially_default_constructible<Type>::value, "shared variables cannot have constructors"); \
  static const char simt_shared_key_##name = 0;                                                                       \
  ::std::add_lvalue_reference_t<Type> name = *static_cast<::std::add_pointer_t<Type>>(::simt::detail::static_shared(  \
      &simt_shared_key_##name, sizeof(Type), alignof(Type), ::simt::SourceLocation::here()))

// The block's dynamic shared memory (CUDA's `extern __shared__` array), NaN-filled at block start.
template <class T>
T* simt_dynamic_shared() {
  return static_cast<T*>(::simt::detail::dynamic_shared());
}

// ---- Barriers and warp collectives ------------------------------------------------------------
inline void __syncthreads(::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  ::simt::detail::block_barrier(::simt::detail::BlockBarrier::kSync, 0, loc);
}
inline int __syncthreads_count(int predicate, ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return ::simt::detail::block_barrier(::simt::detail::BlockBarrier::kCount, predicate, loc);
}
inline int __syncthreads_and(int predicate, ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return ::simt::detail::block_barrier(::simt::detail::BlockBarrier::kAnd, predicate, loc);
}
inline int __syncthreads_or(int predicate, ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return ::simt::detail::block_barrier(::simt::detail::BlockBarrier::kOr, predicate, loc);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  ::simt::detail::warp_collective(::simt::detail::Collective::kSyncWarp, mask, 0, 0, 32, loc);
}
template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32,
              ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return ::simt::detail::shuffle(::simt::detail::Collective::kShflIdx, mask, var, src_lane, width, loc);
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,
                 ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return ::simt::detail::shuffle(::simt::detail::Collective::kShflUp, mask, var, static_cast<int>(delta), width, loc);
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,
                   ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return ::simt::detail::shuffle(::simt::detail::Collective::kShflDown, mask, var, static_cast<int>(delta), width, loc);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                  ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return ::simt::detail::shuffle(::simt::detail::Collective::kShflXor, mask, var, lane_mask, width, loc);
}
inline unsigned __ballot_sync(unsigned mask, int predicate,
                              ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return static_cast<unsigned>(
      ::simt::detail::warp_collective(::simt::detail::Collective::kBallot, mask, predicate != 0, 0, 32, loc));
}
inline int __any_sync(unsigned mask, int predicate, ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return static_cast<int>(
      ::simt::detail::warp_collective(::simt::detail::Collective::kAny, mask, predicate != 0, 0, 32, loc));
}
inline int __all_sync(unsigned mask, int predicate, ::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  return static_cast<int>(
      ::simt::detail::warp_collective(::simt::detail::Collective::kAll, mask, predicate != 0, 0, 32, loc));
}

// ---- Fences and atomics (blocks run on several OS threads: these are real atomics) -------------
inline void __threadfence() { ::simt::detail::memory_fence(); }
inline void __threadfence_block() { ::simt::detail::block_memory_fence(); }
inline void __trap(::simt::SourceLocation loc = ::simt::SourceLocation::here()) {
  ::simt::detail::trap("__trap() called", loc);
}

inline int atomicAdd(int* address, int value) { return __atomic_fetch_add(address, value, __ATOMIC_SEQ_CST); }
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  return __atomic_fetch_add(address, value, __ATOMIC_SEQ_CST);
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {
  return __atomic_fetch_add(address, value, __ATOMIC_SEQ_CST);
}
inline float atomicAdd(float* address, float value) {
  return ::simt::detail::atomic_rmw<float>(address, value, [](float a, float b) { return a + b; });
}
inline int atomicMax(int* address, int value) {
  return ::simt::detail::atomic_rmw<int>(address, value, [](int a, int b) { return a > b ? a : b; });
}
inline int atomicMin(int* address, int value) {
  return ::simt::detail::atomic_rmw<int>(address, value, [](int a, int b) { return a < b ? a : b; });
}
inline unsigned atomicInc(unsigned* address, unsigned limit) {
  return ::simt::detail::atomic_rmw<unsigned>(address, limit,
                                              [](unsigned old, unsigned lim) { return old >= lim ? 0u : old + 1u; });
}
inline int atomicExch(int* address, int value) { return __atomic_exchange_n(address, value, __ATOMIC_SEQ_CST); }
inline unsigned atomicExch(unsigned* address, unsigned value) {
  return __atomic_exchange_n(address, value, __ATOMIC_SEQ_CST);
}
inline int atomicCAS(int* address, int compare, int value) {
  __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return compare;
}
inline unsigned atomicCAS(unsigned* address, unsigned compare, unsigned value) {
  __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return compare;
}

// ---- Intrinsics: exact on the CPU, so perturbed within the GPU's error bound in random order ----
// Bounds from the CUDA Math API documentation (maximum ulp error).
inline float rsqrtf(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return ::simt::detail::approximate(1.0f / std::sqrt(x), 2, bits);
}
inline float __fdividef(float x, float y) {
  std::uint32_t bits;
  const float q = x / y;
  std::memcpy(&bits, &q, sizeof bits);
  return ::simt::detail::approximate(q, 2, bits ^ 0x9e3779b9u);
}
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
