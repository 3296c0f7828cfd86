// Division by a count and reciprocal square root without the GPU's IEEE slow paths. nvcc's
// `a / b` and `sqrtf` call a subroutine for rare operands, and that call makes ptxas save live
// registers to local memory (the build forbids any), so kernels use these instead: bit-trick
// seeds refined by Newton steps written with explicit fused multiply-adds, which round the same
// way on a GPU (FFMA) and on the host (std::fma), so both backends compute identical bits.
// Accuracy: within 1 ulp of the correctly rounded result (tests/float_math_test.cpp checks it
// against double precision over the whole range used).
#pragma once

#include <cstdint>

#include "platform.cuh"

#if !defined(__CUDACC__)
#include <cmath>
#include <cstring>
#endif

namespace cunorm::kernels {

CUNORM_DEVICE uint32_t float_bits(float x) {
#if defined(__CUDACC__)
  return __float_as_uint(x);
#else
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

CUNORM_DEVICE float bits_float(uint32_t bits) {
#if defined(__CUDACC__)
  return __uint_as_float(bits);
#else
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

// a * b + c rounded once, and a * b rounded on its own (never contracted into a neighbour).
CUNORM_DEVICE float fused(float a, float b, float c) {
#if defined(__CUDACC__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
CUNORM_DEVICE float product(float a, float b) {
#if defined(__CUDACC__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

CUNORM_DEVICE bool is_finite(float x) { return (float_bits(x) & 0x7f800000u) != 0x7f800000u; }

// a / n for a count n: an integer-valued float in [1, 2^31].
CUNORM_DEVICE float divide_by_count(float a, float n) {
  float r = bits_float(0x7ef311c3u - float_bits(n));  // 1/n within 12%
  CUNORM_UNROLL
  for (int step = 0; step < 4; ++step) r = fused(r, fused(-n, r, 1.0f), r);  // error squares each step
  const float q = product(a, r);
  if (!is_finite(q)) return q;
  return fused(fused(-q, n, a), r, q);  // one correction with the exact residual
}

// 1 / sqrt(x) for x >= 0: +inf at 0, 0 at +inf, NaN for NaN.
CUNORM_DEVICE float reciprocal_sqrt(float x) {
  if (!(x > 0.0f)) return x == 0.0f ? bits_float(0x7f800000u) : bits_float(0x7fc00000u);
  if (!is_finite(x)) return 0.0f;
  // Subnormal and tiny inputs: scale into the normal range by an exact power of two.
  const bool tiny = x < 1.0e-30f;
  const float scaled = tiny ? product(x, 1.152921504606846976e18f) : x;  // 2^60
  float y = bits_float(0x5f375a86u - (float_bits(scaled) >> 1));         // within 0.2%
  CUNORM_UNROLL
  for (int step = 0; step < 3; ++step) {
    const float e = fused(-product(scaled, y), y, 1.0f);  // 1 - x y^2
    y = fused(product(0.5f, y), e, y);
  }
  return tiny ? product(y, 1.073741824e9f) : y;  // 2^30
}

}  // namespace cunorm::kernels
