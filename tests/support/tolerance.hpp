// The one table of tolerances: how far a kernel's output may be from the float64 reference
// computed on the same (already rounded) inputs. float32 outputs are held to float32 arithmetic
// error; float16/bfloat16 outputs to about two units of their last place.
#pragma once

#include <cmath>

#include "cunorm/cunorm.h"

namespace cunorm_test {

struct Tolerance {
  double absolute;
  double relative;
  bool accepts(double actual, double expected) const {
    if (std::isnan(expected)) return std::isnan(actual);
    return std::abs(actual - expected) <= absolute + relative * std::abs(expected);
  }
};

// For values stored in `dtype` (activations and parameter gradients).
inline Tolerance output_tolerance(cunormDataType_t dtype) {
  switch (dtype) {
    case CUNORM_FLOAT16: return Tolerance{1e-3, 1e-3};   // half: 2^-11 relative rounding
    case CUNORM_BFLOAT16: return Tolerance{8e-3, 8e-3};  // bfloat16: 2^-8 relative rounding
    default: return Tolerance{1e-5, 1e-5};
  }
}

// For float32 statistics (mean, rstd), whatever the activation type.
inline Tolerance statistics_tolerance() { return Tolerance{1e-6, 1e-5}; }

}  // namespace cunorm_test
