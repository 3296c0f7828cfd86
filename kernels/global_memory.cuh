// Global memory as kernels see it: a pointer wrapper whose only accessors are load/store of a
// Pack of N consecutive elements. Packs of 16 bytes or more move as 128-bit accesses (LDG.128 /
// STG.128), which need 16-byte alignment; smaller packs move as one access of their size. On
// the SIMT engine every access is reported to the engine, which faults on a misaligned address
// as a GPU would and counts the bytes each launch moves.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "platform.cuh"

namespace cunorm::kernels {

template <class T>
class Global {
 public:
  Global() = default;
  explicit Global(T* pointer) : pointer_(pointer) {}
  CUNORM_DEVICE bool is_null() const { return pointer_ == nullptr; }
  CUNORM_DEVICE T* raw() const { return pointer_; }

 private:
  T* pointer_ = nullptr;
};

template <int kBytes>
struct Word;
template <>
struct Word<16> {
  using type = uint4;
};
template <>
struct Word<8> {
  using type = uint2;
};
template <>
struct Word<4> {
  using type = unsigned int;
};
template <>
struct Word<2> {
  using type = unsigned short;
};

// The access width, in bytes, of a pack of N elements of T.
template <class T, int N>
constexpr int kAccessBytes = static_cast<int>(sizeof(T)) * N < 16 ? static_cast<int>(sizeof(T)) * N : 16;

template <class T, int N>
struct alignas(kAccessBytes<T, N>) Pack {
  static_assert(N >= 1 && (N & (N - 1)) == 0, "packs hold a power-of-two number of elements");
  T elements[N];
};

// Elements [index, index + N) of `base`; base + index must be aligned to kAccessBytes<T, N>.
template <int N, class T>
CUNORM_DEVICE Pack<std::remove_const_t<T>, N> load(Global<T> base, int64_t index CUNORM_CALLER_LOCATION) {
  using Element = std::remove_const_t<T>;
  constexpr int kBytes = static_cast<int>(sizeof(Element)) * N;
  constexpr int kAccess = kAccessBytes<Element, N>;
  const Element* source = base.raw() + index;
  Pack<Element, N> pack;
#if defined(__CUDACC__)
  using W = typename Word<kAccess>::type;
  const W* words = reinterpret_cast<const W*>(source);
  W* destination = reinterpret_cast<W*>(&pack);
  CUNORM_UNROLL
  for (int w = 0; w < kBytes / kAccess; ++w) destination[w] = words[w];
#else
  ::simt::detail::global_access(source, kBytes, kAccess, false, caller);
  std::memcpy(static_cast<void*>(&pack), source, kBytes);
#endif
  return pack;
}

template <int N, class T>
CUNORM_DEVICE void store(Global<T> base, int64_t index, const Pack<T, N>& pack CUNORM_CALLER_LOCATION) {
  static_assert(!std::is_const<T>::value, "store through a pointer to const");
  constexpr int kBytes = static_cast<int>(sizeof(T)) * N;
  constexpr int kAccess = kAccessBytes<T, N>;
  T* destination = base.raw() + index;
#if defined(__CUDACC__)
  using W = typename Word<kAccess>::type;
  const W* words = reinterpret_cast<const W*>(&pack);
  W* target = reinterpret_cast<W*>(destination);
  CUNORM_UNROLL
  for (int w = 0; w < kBytes / kAccess; ++w) target[w] = words[w];
#else
  ::simt::detail::global_access(destination, kBytes, kAccess, true, caller);
  std::memcpy(static_cast<void*>(destination), &pack, kBytes);
#endif
}

// One element, for per-row statistics and scalar paths.
template <class T>
CUNORM_DEVICE std::remove_const_t<T> load_one(Global<T> base, int64_t index CUNORM_CALLER_LOCATION) {
  return load<1>(base, index CUNORM_PASS_LOCATION).elements[0];
}
template <class T>
CUNORM_DEVICE void store_one(Global<T> base, int64_t index, T value CUNORM_CALLER_LOCATION) {
  Pack<T, 1> pack;
  pack.elements[0] = value;
  store<1>(base, index, pack CUNORM_PASS_LOCATION);
}

// A reduction state (a struct of floats) as consecutive floats in global memory: the partial
// statistics that blocks leave in the workspace.
template <class State>
CUNORM_DEVICE void store_state(Global<float> base, int64_t index, const State& s) {
  static_assert(sizeof(State) % sizeof(float) == 0, "states are made of floats");
  constexpr int kFloats = sizeof(State) / sizeof(float);
  float f[kFloats];
  memcpy(f, &s, sizeof(State));
  CUNORM_UNROLL
  for (int i = 0; i < kFloats; ++i) store_one(base, index * kFloats + i, f[i]);
}
template <class State, class F>
CUNORM_DEVICE State load_state(Global<F> base, int64_t index) {
  static_assert(std::is_same<std::remove_const_t<F>, float>::value, "states are made of floats");
  constexpr int kFloats = sizeof(State) / sizeof(float);
  float f[kFloats];
  CUNORM_UNROLL
  for (int i = 0; i < kFloats; ++i) f[i] = load_one(base, index * kFloats + i);
  State s;
  memcpy(&s, f, sizeof(State));
  return s;
}

}  // namespace cunorm::kernels
