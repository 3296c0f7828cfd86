// The ATen oracle's seeded cases (aten_oracle_test.cpp): the shape, dtype pair, affine setting,
// eps and seed of case `index` of each suite, drawn so that the cases span every dtype pair, both
// layouts and every kernel variant.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "cunorm/cunorm.h"
#include "support/batch_norm_case.hpp"
#include "support/dtype_pair.hpp"
#include "support/row_norm_case.hpp"

namespace cunorm_test {

// Every dtype pair and affine setting in turn; row lengths mostly on the warp-per-row variants (up
// to 1024 forward, 512 backward), the rest up to 9000 on the block and segment variants
// (docs/row_norms.md), with few enough rows that those split rows into segments.
struct RowShape {
  DtypePair dtypes;
  bool affine;
  int64_t rows, cols;
  float eps;
  uint64_t seed;
};

inline RowShape row_shape(Norm norm, int index) {
  const uint64_t seed = (norm == Norm::kLayerNorm ? 0x1a5e0000u : 0x2b7f0000u) + static_cast<uint64_t>(index);
  std::mt19937_64 rng(seed);
  const float eps_choices[] = {1e-5f, 1e-6f, 1e-3f, 0.1f};
  const double pick = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  int64_t cols = 0, max_rows = 0;
  if (pick < 0.6) {
    cols = std::uniform_int_distribution<int64_t>(1, 600)(rng);
    max_rows = 24;
  } else if (pick < 0.9) {
    cols = std::uniform_int_distribution<int64_t>(601, 2100)(rng);
    max_rows = 8;
  } else {
    cols = std::uniform_int_distribution<int64_t>(2101, 9000)(rng);
    max_rows = 3;
  }
  const int64_t rows = std::uniform_int_distribution<int64_t>(1, max_rows)(rng);
  const float eps = eps_choices[std::uniform_int_distribution<int>(0, 3)(rng)];
  return {kDtypePairs[index % 5], (index / 5) % 2 == 0, rows, cols, eps, seed};
}

// Every dtype pair, affine setting and layout in turn; BatchNorm1d (S = 1) and spatial shapes, and
// a few long channels (M in the thousands) whose reductions span several blocks.
struct BatchShape {
  cunormLayout_t layout;
  DtypePair dtypes;
  bool affine;
  int64_t n, c, s;
  float eps, momentum;
  uint64_t seed;
};

inline BatchShape batch_shape(int index) {
  const uint64_t seed = 0x3c9d0000u + static_cast<uint64_t>(index);
  std::mt19937_64 rng(seed);
  auto between = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const float eps_choices[] = {1e-5f, 1e-3f, 0.1f};
  BatchShape b{index / 10 % 2 == 0 ? CUNORM_LAYOUT_NCHW : CUNORM_LAYOUT_NHWC,
               kDtypePairs[index % 5],
               index / 5 % 2 == 0,
               0,
               0,
               0,
               eps_choices[between(0, 2)],
               std::uniform_real_distribution<float>(0.0f, 1.0f)(rng),
               seed};
  const double pick = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  if (pick < 0.35) {  // BatchNorm1d on (N, C)
    b.n = between(2, 64);
    b.c = between(1, 40);
    b.s = 1;
  } else if (pick < 0.85) {
    b.n = between(1, 8);
    b.c = between(1, 24);
    b.s = between(2, 120);
  } else {
    b.n = between(1, 3);
    b.c = between(1, 3);
    b.s = between(600, 4000);
  }
  return b;
}

// Every activation dtype (calibration takes no parameters) and layout in turn; 1 to 4 batches of 1
// to 6 samples each.
struct CalibrationShape {
  cunormLayout_t layout;
  cunormDataType_t dtype;
  int64_t c, s;
  std::vector<int64_t> batch_n;
  uint64_t seed;
};

inline CalibrationShape calibration_shape(int index) {
  const uint64_t seed = 0x4d1e0000u + static_cast<uint64_t>(index);
  std::mt19937_64 rng(seed);
  auto between = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const cunormDataType_t dtypes[] = {CUNORM_FLOAT32, CUNORM_FLOAT16, CUNORM_BFLOAT16};
  CalibrationShape k{index / 3 % 2 == 0 ? CUNORM_LAYOUT_NCHW : CUNORM_LAYOUT_NHWC,
                     dtypes[index % 3],
                     between(1, 16),
                     between(1, 60),
                     {},
                     seed};
  const int64_t batches = between(1, 4);
  for (int64_t b = 0; b < batches; ++b) k.batch_n.push_back(between(1, 6));
  // Finalize needs two values per channel.
  if (k.s == 1 && batches == 1 && k.batch_n[0] == 1) k.batch_n[0] = 2;
  return k;
}

}  // namespace cunorm_test
