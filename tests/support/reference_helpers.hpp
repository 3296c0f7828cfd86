// What the tests of the float64 reference share: seeded vectors, a relative comparison, and
// per-channel statistics computed directly from the data, with an index of their own (written
// independently of the reference's, so that a slip in either shows).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"

namespace reference_test {

using Vec = std::vector<double>;

inline const double* const kNoParam = nullptr;  // the reference's typed "absent gamma/beta"

inline Vec random_vec(std::mt19937_64& rng, int64_t size, double mean, double stddev) {
  std::normal_distribution<double> dist(mean, stddev);
  Vec v(static_cast<size_t>(size));
  for (double& e : v) {
    e = dist(rng);
  }
  return v;
}

// Every element within rtol of the expected one, relative to max(1, |expected|).
inline void expect_relative_close(const Vec& actual, const Vec& expected, double rtol) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], rtol * std::max(1.0, std::abs(expected[i]))) << "at index " << i;
  }
}

// Written independently of the reference's stride helper, so an indexing slip there shows.
inline int64_t bn_index(cunormLayout_t layout, int64_t c, int64_t s, int64_t ni, int64_t ci, int64_t si) {
  return layout == CUNORM_LAYOUT_NHWC ? (ni * s + si) * c + ci : (ni * c + ci) * s + si;
}

inline Vec channel_values(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, const Vec& x, int64_t ci) {
  Vec v;
  for (int64_t ni = 0; ni < n; ++ni) {
    for (int64_t si = 0; si < s; ++si) {
      v.push_back(x[static_cast<size_t>(bn_index(layout, c, s, ni, ci, si))]);
    }
  }
  return v;
}

inline double mean_of(const Vec& v) {
  double sum = 0.0;
  for (double e : v) {
    sum += e;
  }
  return sum / static_cast<double>(v.size());
}

inline double sum_sq_dev(const Vec& v) {
  const double mu = mean_of(v);
  double sum = 0.0;
  for (double e : v) {
    sum += (e - mu) * (e - mu);
  }
  return sum;
}

inline Vec nchw_to_nhwc(int64_t n, int64_t c, int64_t s, const Vec& x) {
  Vec out(x.size());
  for (int64_t ni = 0; ni < n; ++ni) {
    for (int64_t ci = 0; ci < c; ++ci) {
      for (int64_t si = 0; si < s; ++si) {
        out[static_cast<size_t>(bn_index(CUNORM_LAYOUT_NHWC, c, s, ni, ci, si))] =
            x[static_cast<size_t>(bn_index(CUNORM_LAYOUT_NCHW, c, s, ni, ci, si))];
      }
    }
  }
  return out;
}

inline std::string layout_name(cunormLayout_t layout) { return layout == CUNORM_LAYOUT_NHWC ? "NHWC" : "NCHW"; }

}  // namespace reference_test
