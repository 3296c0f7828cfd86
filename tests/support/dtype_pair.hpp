// The (activation, parameter) dtype pairs every op is tested with: float32 parameters for each
// activation type, and same-type parameters for the half types.
#pragma once

#include <string>

#include "cunorm/cunorm.h"

namespace cunorm_test {

inline const char* short_name(cunormDataType_t dtype) {
  switch (dtype) {
    case CUNORM_FLOAT32: return "f32";
    case CUNORM_FLOAT16: return "f16";
    case CUNORM_BFLOAT16: return "bf16";
    default: return "unknown";
  }
}

struct DtypePair {
  cunormDataType_t dtype;  // activations
  cunormDataType_t param;  // gamma and beta
  std::string label() const { return std::string(short_name(dtype)) + "_" + short_name(param); }
};

inline const DtypePair kDtypePairs[] = {{CUNORM_FLOAT32, CUNORM_FLOAT32},
                                        {CUNORM_FLOAT16, CUNORM_FLOAT32},
                                        {CUNORM_FLOAT16, CUNORM_FLOAT16},
                                        {CUNORM_BFLOAT16, CUNORM_FLOAT32},
                                        {CUNORM_BFLOAT16, CUNORM_BFLOAT16}};

}  // namespace cunorm_test
