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

#if defined(__CUDACC__)
// One aligned global store of a whole word, written as PTX: NVVM otherwise splits some 128-bit
// stores of values computed per element into four 32-bit stores (seen in the channels-first
// BatchNorm passes), which costs store transactions; tools/static_report.py checks the SASS.
CUNORM_DEVICE void store_word(uint4* target, uint4 w) {
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(target), "r"(w.x), "r"(w.y), "r"(w.z), "r"(w.w)
               : "memory");
}
CUNORM_DEVICE void store_word(uint2* target, uint2 w) {
  asm volatile("st.global.v2.b32 [%0], {%1, %2};" ::"l"(target), "r"(w.x), "r"(w.y) : "memory");
}
CUNORM_DEVICE void store_word(unsigned int* target, unsigned int w) {
  asm volatile("st.global.b32 [%0], %1;" ::"l"(target), "r"(w) : "memory");
}
CUNORM_DEVICE void store_word(unsigned short* target, unsigned short w) {
  asm volatile("st.global.b16 [%0], %1;" ::"l"(target), "h"(w) : "memory");
}
#endif

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
  CUNORM_UNROLL
  for (int w = 0; w < kBytes / kAccess; ++w) {
    const W word = words[w];
    memcpy(reinterpret_cast<char*>(&pack) + w * kAccess, &word, kAccess);
  }
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
  W* target = reinterpret_cast<W*>(destination);
  CUNORM_UNROLL
  for (int w = 0; w < kBytes / kAccess; ++w) {
    W word;
    memcpy(&word, reinterpret_cast<const char*>(&pack) + w * kAccess, kAccess);
    store_word(target + w, word);
  }
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
