// Conversions between the activation/parameter types and the float32 in which every kernel
// computes. __half and __nv_bfloat16 round to nearest even in both directions on the GPU and in
// CUDA's host implementation, so SIMT and CUDA round identically.
#pragma once

#include "platform.cuh"

namespace cunorm::kernels {

CUNORM_DEVICE float to_float(float v) { return v; }
CUNORM_DEVICE float to_float(__half v) { return __half2float(v); }
CUNORM_DEVICE float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
CUNORM_DEVICE T from_float(float v);
template <>
CUNORM_DEVICE float from_float<float>(float v) {
  return v;
}
template <>
CUNORM_DEVICE __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
CUNORM_DEVICE __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

}  // namespace cunorm::kernels
