// One LayerNorm forward problem for the tests: seeded inputs of a dtype pair, a run through the
// C API at chosen pointer offsets, and the comparisons every LayerNorm test makes (float64
// reference, bitwise repeatability).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "host_array.hpp"

namespace cunorm_test {

struct DtypePair {
  cunormDataType_t dtype;  // activations
  cunormDataType_t param;  // gamma and beta
  std::string label() const;
};

inline const DtypePair kDtypePairs[] = {{CUNORM_FLOAT32, CUNORM_FLOAT32},
                                        {CUNORM_FLOAT16, CUNORM_FLOAT32},
                                        {CUNORM_FLOAT16, CUNORM_FLOAT16},
                                        {CUNORM_BFLOAT16, CUNORM_FLOAT32},
                                        {CUNORM_BFLOAT16, CUNORM_BFLOAT16}};

// Element offsets of each buffer from a 256-byte boundary.
struct BufferOffsets {
  std::size_t x = 0;
  std::size_t gamma = 0;
  std::size_t beta = 0;
  std::size_t y = 0;
};

struct LayerNormResult {
  HostArray y;
  std::vector<float> mean;
  std::vector<float> rstd;
};

class LayerNormCase {
 public:
  // x uniform in [-2, 2) plus a per-row shift; gamma in [0.5, 1.5), beta in [-0.5, 0.5).
  LayerNormCase(DtypePair dtypes, int64_t rows, int64_t cols, bool affine, float eps, uint64_t seed);

  // Runs the forward and returns its outputs; fails the test if the call does not succeed.
  LayerNormResult run(cunormHandle_t handle, const BufferOffsets& offsets = {}) const;
  void expect_matches_reference(const LayerNormResult& result) const;
  void expect_bitwise_equal(const LayerNormResult& expected, const LayerNormResult& actual, const char* what) const;

  DtypePair dtypes;
  int64_t rows;
  int64_t cols;
  bool affine;
  float eps;
  HostArray x;
  HostArray gamma;
  HostArray beta;
};

}  // namespace cunorm_test
