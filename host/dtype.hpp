// Data types on the host side: sizes and names of cunormDataType_t, and the one dispatch from a
// (dtype, param_dtype) pair to the C++ types the kernels are instantiated for.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>

#include "cunorm/cunorm.h"
#include "status.hpp"

namespace cunorm {

template <class T>
struct TypeTag {
  using type = T;
};

inline bool is_valid_dtype(cunormDataType_t dtype) {
  return dtype == CUNORM_FLOAT32 || dtype == CUNORM_FLOAT16 || dtype == CUNORM_BFLOAT16;
}

inline std::size_t dtype_size(cunormDataType_t dtype) { return dtype == CUNORM_FLOAT32 ? 4 : 2; }

inline const char* dtype_name(cunormDataType_t dtype) {
  switch (dtype) {
    case CUNORM_FLOAT32: return "CUNORM_FLOAT32";
    case CUNORM_FLOAT16: return "CUNORM_FLOAT16";
    case CUNORM_BFLOAT16: return "CUNORM_BFLOAT16";
    default: return "an unknown cunormDataType_t";
  }
}

// Calls f(TypeTag<T>{}, TypeTag<P>{}) for the activation type T and parameter type P; the pair
// must have been validated (P is float or T).
template <class F>
Status dispatch_dtype_pair(cunormDataType_t dtype, cunormDataType_t param_dtype, F&& f) {
  const bool float_params = param_dtype == CUNORM_FLOAT32;
  switch (dtype) {
    case CUNORM_FLOAT32: return f(TypeTag<float>{}, TypeTag<float>{});
    case CUNORM_FLOAT16:
      return float_params ? f(TypeTag<__half>{}, TypeTag<float>{}) : f(TypeTag<__half>{}, TypeTag<__half>{});
    case CUNORM_BFLOAT16:
      return float_params ? f(TypeTag<__nv_bfloat16>{}, TypeTag<float>{})
                          : f(TypeTag<__nv_bfloat16>{}, TypeTag<__nv_bfloat16>{});
    default: return Status::internal("dispatch reached an unknown dtype");
  }
}

}  // namespace cunorm
