// Load and store functors: how a kernel reads its input and parameters and writes its output, as
// float32 values, so that the kernels (ops/row_norm, ops/batch_norm) are written once over them and a fused
// residual add, a (1 + gamma) scale, an activation or another storage type is a functor, not a
// new kernel (the idea of OneFlow's DirectLoad/DirectStore). Every functor is plain data, built by
// the host's launch code and passed by value in a kernel's argument struct.
//
// Functors take the element's index in the tensor, which the kernel computes once for all of its
// functors: a functor computing its own index from a row stride of its own would cost registers,
// since ptxas cannot know that the strides are equal. An input functor (DirectLoad) reads N
// consecutive elements from `index` in two steps, so that a kernel can keep what it read in
// shared memory at its storage width:
//   using Cached = ...;                                          the element type one access yields
//   template <int N> Pack<Cached, N> fetch(index) const;         the access (16 bytes when N fills them)
//   template <int N> static void unpack(const Pack<Cached, N>&, float (&)[N]);   to float32
// load_values (below) does both. An output functor (DirectStore) writes N values from `index`:
//   template <int N> void store(index, const float (&)[N]) const;
//   bool is_null() const;   where the output is optional: whether the caller passed none
// A parameter functor (AffineParameters) gives the per-column scale and shift of an affine map,
// with their defaults (1 and 0) where the caller passed none:
//   template <int N> void scale(col, float (&)[N]) const;   template <int N> void shift(col, float (&)[N]) const;
// The direct functors' fetch and store also take the SIMT engine's CUNORM_CALLER_LOCATION, so that
// a misaligned access they make is reported at the line that called them; other functors need not.
#pragma once

#include <cstdint>

#include "global_memory.cuh"
#include "numeric.cuh"
#include "platform.cuh"

namespace cunorm::kernels {

// Elements of T read as stored.
template <class T>
struct DirectLoad {
  using Cached = T;
  Global<const T> source;

  template <int N>
  CUNORM_DEVICE Pack<T, N> fetch(int64_t index CUNORM_CALLER_LOCATION) const {
    return load<N>(source, index CUNORM_PASS_LOCATION);
  }
  template <int N>
  static CUNORM_DEVICE void unpack(const Pack<T, N>& pack, float (&values)[N]) {
    CUNORM_UNROLL
    for (int e = 0; e < N; ++e) values[e] = to_float(pack.elements[e]);
  }
};

// N input values from `index` as float32.
template <int N, class Load>
CUNORM_DEVICE void load_values(const Load& input, int64_t index, float (&values)[N]) {
  Load::template unpack<N>(input.template fetch<N>(index), values);
}

// Values rounded to T (to nearest even).
template <class T>
struct DirectStore {
  Global<T> target;

  CUNORM_DEVICE bool is_null() const { return target.is_null(); }

  template <int N>
  CUNORM_DEVICE void store(int64_t index, const float (&values)[N] CUNORM_CALLER_LOCATION) const {
    Pack<T, N> pack;
    CUNORM_UNROLL
    for (int e = 0; e < N; ++e) pack.elements[e] = from_float<T>(values[e]);
    kernels::store<N>(target, index, pack CUNORM_PASS_LOCATION);
  }
};

// gamma and beta of P, either of which may be absent (then 1 and 0).
template <class P>
struct AffineParameters {
  Global<const P> gamma;
  Global<const P> beta;

  template <int N>
  CUNORM_DEVICE void scale(int64_t col, float (&values)[N]) const {
    load_or(gamma, col, 1.0f, values);
  }
  template <int N>
  CUNORM_DEVICE void shift(int64_t col, float (&values)[N]) const {
    load_or(beta, col, 0.0f, values);
  }

 private:
  template <int N>
  static CUNORM_DEVICE void load_or(Global<const P> p, int64_t col, float absent, float (&values)[N]) {
    if (p.is_null()) {
      CUNORM_UNROLL
      for (int e = 0; e < N; ++e) values[e] = absent;
      return;
    }
    const Pack<P, N> pack = load<N>(p, col);
    CUNORM_UNROLL
    for (int e = 0; e < N; ++e) values[e] = to_float(pack.elements[e]);
  }
};

}  // namespace cunorm::kernels
