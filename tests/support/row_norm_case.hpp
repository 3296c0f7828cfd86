// One LayerNorm or RMSNorm problem for the tests: seeded inputs of a dtype pair, forward and
// backward runs through the C API at chosen pointer offsets, and the comparisons every row-norm
// test makes (the float64 reference, bitwise repeatability).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "dtype_pair.hpp"
#include "host_array.hpp"

namespace cunorm_test {

enum class Norm { kLayerNorm, kRmsNorm };
const char* norm_label(Norm norm);

// Element offsets of each buffer from a 256-byte boundary (dy and dx share the x and y offsets).
struct BufferOffsets {
  std::size_t x = 0;
  std::size_t gamma = 0;
  std::size_t beta = 0;
  std::size_t y = 0;
};

struct ForwardResult {
  HostArray y;
  std::vector<float> mean;  // LayerNorm only
  std::vector<float> rstd;  // rstd or rrms
};

struct BackwardResult {
  HostArray dx;
  HostArray dgamma;  // empty when not requested
  HostArray dbeta;   // empty when not requested or RMSNorm
};

class RowNormCase {
 public:
  // x uniform in [-2, 2) plus a per-row shift in [-1, 1); dy uniform in [-1, 1); gamma in
  // [0.5, 1.5), beta in [-0.5, 0.5) when affine.
  RowNormCase(Norm norm, DtypePair dtypes, int64_t rows, int64_t cols, bool affine, float eps, uint64_t seed);

  // Run through the C API; fail the test if the call does not succeed. On SIMT, the launches'
  // records carry the traffic of each buffer under its argument name ("x", "dy", "gamma", ...).
  ForwardResult forward(cunormHandle_t handle, const BufferOffsets& offsets = {}) const;
  BackwardResult backward(cunormHandle_t handle, const ForwardResult& saved, bool want_dgamma, bool want_dbeta,
                          const BufferOffsets& offsets = {}) const;

  void expect_forward_matches_reference(const ForwardResult& result) const;
  // Against the reference backward fed the statistics the forward saved.
  void expect_backward_matches_reference(const ForwardResult& saved, const BackwardResult& result) const;
  void expect_bitwise_equal(const ForwardResult& expected, const ForwardResult& actual, const char* what) const;
  void expect_bitwise_equal(const BackwardResult& expected, const BackwardResult& actual, const char* what) const;

  Norm norm;
  DtypePair dtypes;
  int64_t rows;
  int64_t cols;
  bool affine;
  float eps;
  HostArray x;
  HostArray dy;
  HostArray gamma;
  HostArray beta;  // LayerNorm only
};

}  // namespace cunorm_test
