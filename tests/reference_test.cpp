// Tests of the float64 CPU reference (include/cunorm/reference.hpp). The reference judges every
// kernel, so it is checked against independent evidence: here hand-worked examples and central
// finite differences of its own forwards; in reference_properties_test.cpp statistics computed
// directly from the data and the exact conversion of half-precision inputs.
#include "cunorm/reference.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "support/reference_helpers.hpp"

namespace {

namespace ref = cunorm::reference;
using reference_test::expect_relative_close;
using reference_test::kNoParam;
using reference_test::layout_name;
using reference_test::random_vec;
using reference_test::Vec;

// Finite differences in float64 resolve gradients to about 1e-9 with this step; 1e-6 leaves
// room for curvature while still catching any wrong term of a backward formula.
constexpr double kStep = 1e-6;
constexpr double kGradRtol = 1e-6;
// An eps large enough to matter in every formula, so a backward that drops it is caught.
constexpr double kGradEps = 1e-2;

double dot(const Vec& a, const Vec& b) {
  double sum = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    sum += a[i] * b[i];
  }
  return sum;
}

// Central differences of loss around `at`, dividing by the step actually taken after rounding.
Vec numeric_gradient(const std::function<double(const Vec&)>& loss, Vec at) {
  Vec grad(at.size());
  for (size_t k = 0; k < at.size(); ++k) {
    const double orig = at[k];
    const double up = orig + kStep;
    const double down = orig - kStep;
    at[k] = up;
    const double loss_up = loss(at);
    at[k] = down;
    const double loss_down = loss(at);
    at[k] = orig;
    grad[k] = (loss_up - loss_down) / (up - down);
  }
  return grad;
}

// dx (with the parameters the call had, g and b, which may be absent) and dgamma and dbeta
// against central differences of loss(x, gamma, beta).
template <class Loss>
void expect_affine_gradients(const Loss& loss, const Vec& x, const double* g, const double* b, const Vec& gamma,
                             const Vec& beta, const Vec& dx, const Vec& dgamma, const Vec& dbeta) {
  expect_relative_close(dx, numeric_gradient([&](const Vec& xv) { return loss(xv, g, b); }, x), kGradRtol);
  expect_relative_close(dgamma, numeric_gradient([&](const Vec& gv) { return loss(x, gv.data(), beta.data()); }, gamma),
                        kGradRtol);
  expect_relative_close(dbeta, numeric_gradient([&](const Vec& bv) { return loss(x, gamma.data(), bv.data()); }, beta),
                        kGradRtol);
}

// ---------------------------------------------------------------------------------------------
// Golden worked examples (eps = 0, values exact in binary).

TEST(LayerNormGolden, TwoByTwo) {
  const Vec x = {1, 2, 3, 4};
  Vec y(4), mean(2), rstd(2);
  ref::layer_norm_forward(2, 2, x.data(), kNoParam, kNoParam, 0.0, y.data(), mean.data(), rstd.data());
  EXPECT_EQ(y, (Vec{-1, 1, -1, 1}));
  EXPECT_EQ(mean, (Vec{1.5, 3.5}));
  // var = 0.25 in both rows.
  EXPECT_EQ(rstd, (Vec{2, 2}));
}

TEST(RmsNormGolden, OneRowWithGamma) {
  const Vec x = {1, 7};  // mean of squares 25
  const Vec gamma = {2, 0.5};
  Vec y(2), rrms(1);
  ref::rms_norm_forward(1, 2, x.data(), gamma.data(), 0.0, y.data(), rrms.data());
  EXPECT_DOUBLE_EQ(rrms[0], 0.2);
  EXPECT_DOUBLE_EQ(y[0], 0.4);
  EXPECT_DOUBLE_EQ(y[1], 0.7);
}

TEST(BatchNormGolden, TwoByTwoBothLayouts) {
  // With s = 1 both layouts store (N=2, C=2) as rows of channels.
  const Vec x = {1, 2, 3, 4};
  for (cunormLayout_t layout : {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC}) {
    SCOPED_TRACE(layout_name(layout));
    Vec y(4), mean(2), invstd(2);
    ref::batch_norm_forward_training(layout, 2, 2, 1, x.data(), kNoParam, kNoParam, 0.0, 0.1,
                                     CUNORM_RUNNING_VAR_UNBIASED, nullptr, nullptr, y.data(), mean.data(),
                                     invstd.data());
    EXPECT_EQ(y, (Vec{-1, -1, 1, 1}));
    EXPECT_EQ(mean, (Vec{2, 3}));
    EXPECT_EQ(invstd, (Vec{1, 1}));  // var = 1
  }
}

TEST(BatchNormGolden, NhwcThreeD) {
  const int64_t n = 2, s = 2, c = 2;
  const Vec ch0 = {1, 3, 2, 1};  // (n, s) = (0,0), (0,1), (1,0), (1,1)
  const Vec ch1 = {0, 4, 4, 0};  // mean 2, var 4
  Vec x(8);
  for (int64_t ni = 0; ni < n; ++ni) {
    for (int64_t si = 0; si < s; ++si) {
      x[static_cast<size_t>((ni * s + si) * c + 0)] = ch0[static_cast<size_t>(ni * s + si)];
      x[static_cast<size_t>((ni * s + si) * c + 1)] = ch1[static_cast<size_t>(ni * s + si)];
    }
  }
  Vec y(8), mean(2), invstd(2);
  ref::batch_norm_forward_training(CUNORM_LAYOUT_NHWC, n, c, s, x.data(), kNoParam, kNoParam, 0.0, 0.1,
                                   CUNORM_RUNNING_VAR_UNBIASED, nullptr, nullptr, y.data(), mean.data(), invstd.data());
  EXPECT_DOUBLE_EQ(mean[0], 1.75);
  EXPECT_DOUBLE_EQ(invstd[0], 1.0 / std::sqrt(0.6875));
  EXPECT_DOUBLE_EQ(mean[1], 2.0);
  EXPECT_DOUBLE_EQ(invstd[1], 0.5);
  for (int64_t k = 0; k < 4; ++k) {
    EXPECT_DOUBLE_EQ(y[static_cast<size_t>(k * c)], (ch0[static_cast<size_t>(k)] - 1.75) / std::sqrt(0.6875));
    EXPECT_DOUBLE_EQ(y[static_cast<size_t>(k * c + 1)], (ch1[static_cast<size_t>(k)] - 2.0) * 0.5);
  }
}

TEST(BatchNormGolden, Inference) {
  // (x - 1) / sqrt(3 + 1) * 3 + 0.25 for x = 5 and x = -3; M = 1 per channel is allowed here.
  const Vec x = {5, -3};
  const Vec gamma = {3, 3}, beta = {0.25, 0.25}, rm = {1, 1}, rv = {3, 3};
  Vec y(2);
  ref::batch_norm_forward_inference(CUNORM_LAYOUT_NCHW, 1, 2, 1, x.data(), gamma.data(), beta.data(), rm.data(),
                                    rv.data(), 1.0, y.data());
  EXPECT_EQ(y, (Vec{6.25, -5.75}));
}

// ---------------------------------------------------------------------------------------------
// Backward functions must use the statistics they are given, not recompute them from x.
// Parameter gradients start as garbage: they are overwritten, not accumulated.

TEST(LayerNormBackward, UsesGivenStatistics) {
  // True mean 1.5 and rstd 2; given 0 and 1, so xhat = x = {1, 2}.
  const Vec x = {1, 2}, dy = {1, 1}, mean = {0}, rstd = {1};
  Vec dx(2), dgamma(2, 42.0), dbeta(2, 42.0);
  ref::layer_norm_backward(1, 2, dy.data(), x.data(), mean.data(), rstd.data(), kNoParam, dx.data(), dgamma.data(),
                           dbeta.data());
  EXPECT_EQ(dx, (Vec{-1.5, -3}));
  EXPECT_EQ(dgamma, (Vec{1, 2}));
  EXPECT_EQ(dbeta, (Vec{1, 1}));
}

TEST(RmsNormBackward, UsesGivenStatistics) {
  // True rrms is 1/sqrt(2.5); given 1.
  const Vec x = {1, 2}, dy = {1, 1}, rrms = {1};
  Vec dx(2), dgamma(2, 42.0);
  ref::rms_norm_backward(1, 2, dy.data(), x.data(), rrms.data(), kNoParam, dx.data(), dgamma.data());
  EXPECT_EQ(dx, (Vec{-0.5, -2}));
  EXPECT_EQ(dgamma, (Vec{1, 2}));
}

TEST(BatchNormBackward, UsesGivenStatistics) {
  // True mean 1.5 and invstd 2; given 0 and 1.
  const Vec x = {1, 2}, dy = {1, 1}, mean = {0}, invstd = {1};
  Vec dx(2), dgamma(1, 42.0), dbeta(1, 42.0);
  ref::batch_norm_backward(CUNORM_LAYOUT_NCHW, 2, 1, 1, dy.data(), x.data(), kNoParam, mean.data(), invstd.data(),
                           dx.data(), dgamma.data(), dbeta.data());
  EXPECT_EQ(dx, (Vec{-1.5, -3}));
  EXPECT_EQ(dgamma, (Vec{3}));
  EXPECT_EQ(dbeta, (Vec{2}));
}

// ---------------------------------------------------------------------------------------------
// Every backward against central finite differences of sum(dy * forward(...)).

struct RowCase {
  int64_t rows, cols;
  bool affine;
};

std::string row_case_name(const ::testing::TestParamInfo<RowCase>& info) {
  return "R" + std::to_string(info.param.rows) + "xC" + std::to_string(info.param.cols) +
         (info.param.affine ? "_Affine" : "_Plain");
}

std::vector<RowCase> row_cases() {
  std::vector<RowCase> cases;
  for (bool affine : {false, true}) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {2, 5}, {3, 8}, {4, 13}, {2, 29}}) {
      cases.push_back({rows, cols, affine});
    }
  }
  return cases;
}

class LayerNormGradient : public ::testing::TestWithParam<RowCase> {};

TEST_P(LayerNormGradient, MatchesFiniteDifferences) {
  const int64_t rows = GetParam().rows, cols = GetParam().cols;
  const bool affine = GetParam().affine;
  std::mt19937_64 rng(static_cast<uint64_t>(rows * 1000 + cols * 10 + affine));
  const Vec x = random_vec(rng, rows * cols, 0.5, 1.5);
  const Vec dy = random_vec(rng, rows * cols, 0.0, 1.0);
  // Without affine, the parameter gradients are still those at gamma = 1, beta = 0.
  const Vec gamma = affine ? random_vec(rng, cols, 1.0, 0.5) : Vec(static_cast<size_t>(cols), 1.0);
  const Vec beta = affine ? random_vec(rng, cols, 0.0, 0.5) : Vec(static_cast<size_t>(cols), 0.0);
  const double* g = affine ? gamma.data() : kNoParam;
  const double* b = affine ? beta.data() : kNoParam;

  const auto loss = [&](const Vec& xv, const double* gv, const double* bv) {
    Vec y(xv.size());
    ref::layer_norm_forward(rows, cols, xv.data(), gv, bv, kGradEps, y.data(), nullptr, nullptr);
    return dot(dy, y);
  };
  Vec y(x.size()), mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
  ref::layer_norm_forward(rows, cols, x.data(), g, b, kGradEps, y.data(), mean.data(), rstd.data());
  Vec dx(x.size()), dgamma(static_cast<size_t>(cols)), dbeta(static_cast<size_t>(cols));
  ref::layer_norm_backward(rows, cols, dy.data(), x.data(), mean.data(), rstd.data(), g, dx.data(), dgamma.data(),
                           dbeta.data());

  expect_affine_gradients(loss, x, g, b, gamma, beta, dx, dgamma, dbeta);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNormGradient, ::testing::ValuesIn(row_cases()), row_case_name);

class RmsNormGradient : public ::testing::TestWithParam<RowCase> {};

TEST_P(RmsNormGradient, MatchesFiniteDifferences) {
  const int64_t rows = GetParam().rows, cols = GetParam().cols;
  const bool affine = GetParam().affine;
  std::mt19937_64 rng(static_cast<uint64_t>(rows * 1000 + cols * 10 + affine + 7));
  const Vec x = random_vec(rng, rows * cols, 0.5, 1.5);
  const Vec dy = random_vec(rng, rows * cols, 0.0, 1.0);
  const Vec gamma = affine ? random_vec(rng, cols, 1.0, 0.5) : Vec(static_cast<size_t>(cols), 1.0);
  const double* g = affine ? gamma.data() : kNoParam;

  const auto loss = [&](const Vec& xv, const double* gv) {
    Vec y(xv.size());
    ref::rms_norm_forward(rows, cols, xv.data(), gv, kGradEps, y.data(), nullptr);
    return dot(dy, y);
  };
  Vec y(x.size()), rrms(static_cast<size_t>(rows));
  ref::rms_norm_forward(rows, cols, x.data(), g, kGradEps, y.data(), rrms.data());
  Vec dx(x.size()), dgamma(static_cast<size_t>(cols));
  ref::rms_norm_backward(rows, cols, dy.data(), x.data(), rrms.data(), g, dx.data(), dgamma.data());

  expect_relative_close(dx, numeric_gradient([&](const Vec& xv) { return loss(xv, g); }, x), kGradRtol);
  expect_relative_close(dgamma, numeric_gradient([&](const Vec& gv) { return loss(x, gv.data()); }, gamma), kGradRtol);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNormGradient, ::testing::ValuesIn(row_cases()), row_case_name);

struct BnCase {
  cunormLayout_t layout;
  int64_t n, c, s;
  bool affine;
};

std::string bn_case_name(const ::testing::TestParamInfo<BnCase>& info) {
  const BnCase& p = info.param;
  return layout_name(p.layout) + "_N" + std::to_string(p.n) + "C" + std::to_string(p.c) + "S" + std::to_string(p.s) +
         (p.affine ? "_Affine" : "_Plain");
}

std::vector<BnCase> bn_cases() {
  struct Shape {
    int64_t n, c, s;
  };
  std::vector<BnCase> cases;
  for (cunormLayout_t layout : {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC}) {
    for (bool affine : {false, true}) {
      for (Shape sh : {Shape{2, 1, 1}, Shape{2, 3, 1}, Shape{1, 2, 5}, Shape{3, 2, 4}, Shape{4, 3, 3}}) {
        cases.push_back({layout, sh.n, sh.c, sh.s, affine});
      }
    }
  }
  return cases;
}

class BatchNormGradient : public ::testing::TestWithParam<BnCase> {
 protected:
  void SetUp() override {
    const BnCase& p = GetParam();
    std::mt19937_64 rng(static_cast<uint64_t>(p.layout * 100000 + p.n * 1000 + p.c * 100 + p.s * 10 + p.affine));
    x = random_vec(rng, p.n * p.c * p.s, 0.5, 1.5);
    dy = random_vec(rng, p.n * p.c * p.s, 0.0, 1.0);
    gamma = p.affine ? random_vec(rng, p.c, 1.0, 0.5) : Vec(static_cast<size_t>(p.c), 1.0);
    beta = p.affine ? random_vec(rng, p.c, 0.0, 0.5) : Vec(static_cast<size_t>(p.c), 0.0);
    g = p.affine ? gamma.data() : kNoParam;
    b = p.affine ? beta.data() : kNoParam;
  }

  Vec x, dy, gamma, beta;
  const double* g = nullptr;
  const double* b = nullptr;
};

TEST_P(BatchNormGradient, TrainingMatchesFiniteDifferences) {
  const BnCase& p = GetParam();
  const cunormLayout_t layout = p.layout;
  const int64_t n = p.n, c = p.c, s = p.s;
  const auto loss = [&](const Vec& xv, const double* gv, const double* bv) {
    Vec y(xv.size());
    ref::batch_norm_forward_training(layout, n, c, s, xv.data(), gv, bv, kGradEps, 0.1, CUNORM_RUNNING_VAR_UNBIASED,
                                     nullptr, nullptr, y.data(), nullptr, nullptr);
    return dot(dy, y);
  };
  Vec y(x.size()), mean(static_cast<size_t>(c)), invstd(static_cast<size_t>(c));
  ref::batch_norm_forward_training(layout, n, c, s, x.data(), g, b, kGradEps, 0.1, CUNORM_RUNNING_VAR_UNBIASED, nullptr,
                                   nullptr, y.data(), mean.data(), invstd.data());
  Vec dx(x.size()), dgamma(static_cast<size_t>(c)), dbeta(static_cast<size_t>(c));
  ref::batch_norm_backward(layout, n, c, s, dy.data(), x.data(), g, mean.data(), invstd.data(), dx.data(),
                           dgamma.data(), dbeta.data());

  expect_affine_gradients(loss, x, g, b, gamma, beta, dx, dgamma, dbeta);
}

TEST_P(BatchNormGradient, InferenceMatchesFiniteDifferences) {
  const BnCase& p = GetParam();
  const cunormLayout_t layout = p.layout;
  const int64_t n = p.n, c = p.c, s = p.s;
  std::mt19937_64 rng(static_cast<uint64_t>(n * 100 + c * 10 + s));
  const Vec rm = random_vec(rng, c, 0.3, 1.0);
  Vec rv = random_vec(rng, c, 0.0, 1.0);
  for (double& v : rv) {
    v = 0.5 + v * v;
  }
  const auto loss = [&](const Vec& xv, const double* gv, const double* bv) {
    Vec y(xv.size());
    ref::batch_norm_forward_inference(layout, n, c, s, xv.data(), gv, bv, rm.data(), rv.data(), kGradEps, y.data());
    return dot(dy, y);
  };
  Vec dx(x.size()), dgamma(static_cast<size_t>(c)), dbeta(static_cast<size_t>(c));
  ref::batch_norm_backward_inference(layout, n, c, s, dy.data(), x.data(), g, rm.data(), rv.data(), kGradEps, dx.data(),
                                     dgamma.data(), dbeta.data());

  expect_affine_gradients(loss, x, g, b, gamma, beta, dx, dgamma, dbeta);
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormGradient, ::testing::ValuesIn(bn_cases()), bn_case_name);

}  // namespace
