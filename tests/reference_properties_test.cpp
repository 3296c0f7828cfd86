// Properties of the float64 CPU reference (include/cunorm/reference.hpp) beyond its worked
// examples and gradients (reference_test.cpp): both BatchNorm layouts agree, running statistics
// follow momentum, calibration equals the statistics of the concatenated batches computed
// directly from the data, empty batches and omitted outputs change nothing else, large means and
// constant inputs stay exact, and half-precision inputs convert exactly.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cunorm/reference.hpp"
#include "support/reference_helpers.hpp"

namespace {

namespace ref = cunorm::reference;
using reference_test::channel_values;
using reference_test::expect_relative_close;
using reference_test::kNoParam;
using reference_test::layout_name;
using reference_test::mean_of;
using reference_test::nchw_to_nhwc;
using reference_test::random_vec;
using reference_test::sum_sq_dev;
using reference_test::Vec;

// ---------------------------------------------------------------------------------------------
// Both layouts hold the same logical tensor, so every result must agree after transposition.

TEST(BatchNormLayouts, NchwAndNhwcAgree) {
  const int64_t n = 3, c = 4, s = 5;
  std::mt19937_64 rng(11);
  const Vec x = random_vec(rng, n * c * s, 1.0, 2.0);
  const Vec dy = random_vec(rng, n * c * s, 0.0, 1.0);
  const Vec gamma = random_vec(rng, c, 1.0, 0.5), beta = random_vec(rng, c, 0.0, 0.5);
  const Vec x_t = nchw_to_nhwc(n, c, s, x), dy_t = nchw_to_nhwc(n, c, s, dy);

  Vec y(x.size()), y_t(x.size()), mean(4), invstd(4), mean_t(4), invstd_t(4);
  ref::batch_norm_forward_training(CUNORM_LAYOUT_NCHW, n, c, s, x.data(), gamma.data(), beta.data(), 1e-5, 0.1,
                                   CUNORM_RUNNING_VAR_UNBIASED, nullptr, nullptr, y.data(), mean.data(), invstd.data());
  ref::batch_norm_forward_training(CUNORM_LAYOUT_NHWC, n, c, s, x_t.data(), gamma.data(), beta.data(), 1e-5, 0.1,
                                   CUNORM_RUNNING_VAR_UNBIASED, nullptr, nullptr, y_t.data(), mean_t.data(),
                                   invstd_t.data());
  expect_relative_close(y_t, nchw_to_nhwc(n, c, s, y), 1e-14);
  expect_relative_close(mean_t, mean, 1e-14);
  expect_relative_close(invstd_t, invstd, 1e-14);

  Vec dx(x.size()), dx_t(x.size()), dgamma(4), dbeta(4), dgamma_t(4), dbeta_t(4);
  ref::batch_norm_backward(CUNORM_LAYOUT_NCHW, n, c, s, dy.data(), x.data(), gamma.data(), mean.data(), invstd.data(),
                           dx.data(), dgamma.data(), dbeta.data());
  ref::batch_norm_backward(CUNORM_LAYOUT_NHWC, n, c, s, dy_t.data(), x_t.data(), gamma.data(), mean.data(),
                           invstd.data(), dx_t.data(), dgamma_t.data(), dbeta_t.data());
  expect_relative_close(dx_t, nchw_to_nhwc(n, c, s, dx), 1e-14);
  expect_relative_close(dgamma_t, dgamma, 1e-14);
  expect_relative_close(dbeta_t, dbeta, 1e-14);

  const Vec rm = {0.5, -0.25, 1.0, 2.0}, rv = {1.0, 0.5, 2.0, 4.0};
  ref::batch_norm_forward_inference(CUNORM_LAYOUT_NCHW, n, c, s, x.data(), gamma.data(), beta.data(), rm.data(),
                                    rv.data(), 1e-5, y.data());
  ref::batch_norm_forward_inference(CUNORM_LAYOUT_NHWC, n, c, s, x_t.data(), gamma.data(), beta.data(), rm.data(),
                                    rv.data(), 1e-5, y_t.data());
  expect_relative_close(y_t, nchw_to_nhwc(n, c, s, y), 1e-14);

  ref::batch_norm_backward_inference(CUNORM_LAYOUT_NCHW, n, c, s, dy.data(), x.data(), gamma.data(), rm.data(),
                                     rv.data(), 1e-5, dx.data(), dgamma.data(), dbeta.data());
  ref::batch_norm_backward_inference(CUNORM_LAYOUT_NHWC, n, c, s, dy_t.data(), x_t.data(), gamma.data(), rm.data(),
                                     rv.data(), 1e-5, dx_t.data(), dgamma_t.data(), dbeta_t.data());
  expect_relative_close(dx_t, nchw_to_nhwc(n, c, s, dx), 1e-14);
  expect_relative_close(dgamma_t, dgamma, 1e-14);
  expect_relative_close(dbeta_t, dbeta, 1e-14);
}

// ---------------------------------------------------------------------------------------------
// Running statistics and calibration against statistics computed directly from the data.

TEST(BatchNormRunningStats, FollowMomentumOverSeveralSteps) {
  const int64_t c = 3, s = 4;
  const double momentum = 0.1;
  for (cunormLayout_t layout : {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC}) {
    for (cunormRunningVarMode_t mode : {CUNORM_RUNNING_VAR_UNBIASED, CUNORM_RUNNING_VAR_BIASED}) {
      SCOPED_TRACE(layout_name(layout) + (mode == CUNORM_RUNNING_VAR_UNBIASED ? " unbiased" : " biased"));
      std::mt19937_64 rng(static_cast<uint64_t>(static_cast<int>(layout) * 2 + static_cast<int>(mode)));
      Vec running_mean(3, 0.0), running_var(3, 1.0);  // PyTorch's initial state
      Vec expected_mean = running_mean, expected_var = running_var;
      for (int64_t step = 0; step < 6; ++step) {
        const int64_t n = 1 + step % 3;
        const Vec x = random_vec(rng, n * c * s, 3.0 * static_cast<double>(step), 1.0 + static_cast<double>(step));
        Vec y(x.size()), saved_mean(3), saved_invstd(3);
        ref::batch_norm_forward_training(layout, n, c, s, x.data(), kNoParam, kNoParam, 1e-5, momentum, mode,
                                         running_mean.data(), running_var.data(), y.data(), saved_mean.data(),
                                         saved_invstd.data());
        for (int64_t ci = 0; ci < c; ++ci) {
          const Vec v = channel_values(layout, n, c, s, x, ci);
          const double m = static_cast<double>(v.size());
          const double mu = mean_of(v);
          const double var = sum_sq_dev(v) / m;
          const double batch_var = mode == CUNORM_RUNNING_VAR_UNBIASED ? sum_sq_dev(v) / (m - 1.0) : var;
          const size_t k = static_cast<size_t>(ci);
          expected_mean[k] = (1.0 - momentum) * expected_mean[k] + momentum * mu;
          expected_var[k] = (1.0 - momentum) * expected_var[k] + momentum * batch_var;
          EXPECT_NEAR(saved_mean[k], mu, 1e-12 * std::max(1.0, std::abs(mu)));
          EXPECT_NEAR(saved_invstd[k], 1.0 / std::sqrt(var + 1e-5), 1e-12);
        }
        expect_relative_close(running_mean, expected_mean, 1e-12);
        expect_relative_close(running_var, expected_var, 1e-12);
      }
    }
  }
}

class BatchNormCalibrationTest : public ::testing::TestWithParam<cunormLayout_t> {};

TEST_P(BatchNormCalibrationTest, EqualsStatisticsOfTheConcatenation) {
  const cunormLayout_t layout = GetParam();
  const int64_t c = 3;
  std::mt19937_64 rng(static_cast<uint64_t>(layout) + 21);
  ref::BatchNormCalibration calib(c);
  std::vector<Vec> all(static_cast<size_t>(c));

  const auto add_batch = [&](int64_t batch) {
    const int64_t n = 1 + batch % 4;
    const int64_t s = 1 + (batch * 5) % 7;
    // Batches far apart in mean, so a merge that ignores the between-batch term is caught.
    const Vec x = random_vec(rng, n * c * s, 100.0 + 10.0 * static_cast<double>(batch), 2.0);
    calib.accumulate(layout, n, s, x.data());
    for (int64_t ci = 0; ci < c; ++ci) {
      const Vec v = channel_values(layout, n, c, s, x, ci);
      all[static_cast<size_t>(ci)].insert(all[static_cast<size_t>(ci)].end(), v.begin(), v.end());
    }
  };
  const auto check = [&] {
    ASSERT_EQ(calib.count(), static_cast<int64_t>(all[0].size()));
    Vec mean(3), var(3), expected_mean(3), expected_var(3);
    calib.finalize(mean.data(), var.data());
    for (size_t k = 0; k < 3; ++k) {
      expected_mean[k] = mean_of(all[k]);
      expected_var[k] = sum_sq_dev(all[k]) / static_cast<double>(all[k].size() - 1);
    }
    expect_relative_close(mean, expected_mean, 1e-12);
    expect_relative_close(var, expected_var, 1e-12);
  };

  for (int64_t batch = 0; batch < 10; ++batch) {
    add_batch(batch);
  }
  check();
  // Finalize does not reset: more batches continue the same population.
  for (int64_t batch = 10; batch < 14; ++batch) {
    add_batch(batch);
  }
  check();
}

INSTANTIATE_TEST_SUITE_P(Layouts, BatchNormCalibrationTest, ::testing::Values(CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC),
                         [](const ::testing::TestParamInfo<cunormLayout_t>& info) { return layout_name(info.param); });

// ---------------------------------------------------------------------------------------------
// Empty batches and omitted outputs.

TEST(EmptyBatch, WritesNothing) {
  constexpr double kSentinel = 42.0;
  const Vec one = {1.0};
  Vec out(4, kSentinel), out2(4, kSentinel), out3(4, kSentinel);
  const Vec untouched(4, kSentinel);

  ref::layer_norm_forward(0, 4, one.data(), kNoParam, kNoParam, 1e-5, out.data(), out2.data(), out3.data());
  ref::layer_norm_backward(0, 4, one.data(), one.data(), one.data(), one.data(), kNoParam, out.data(), out2.data(),
                           out3.data());
  ref::rms_norm_forward(0, 4, one.data(), kNoParam, 1e-5, out.data(), out2.data());
  ref::rms_norm_backward(0, 4, one.data(), one.data(), one.data(), kNoParam, out.data(), out2.data());
  for (auto [n, s] : {std::pair<int64_t, int64_t>{0, 3}, {3, 0}}) {
    Vec running_mean(4, kSentinel), running_var(4, kSentinel);
    ref::batch_norm_forward_training(CUNORM_LAYOUT_NHWC, n, 4, s, one.data(), kNoParam, kNoParam, 1e-5, 0.1,
                                     CUNORM_RUNNING_VAR_UNBIASED, running_mean.data(), running_var.data(), out.data(),
                                     out2.data(), out3.data());
    EXPECT_EQ(running_mean, untouched);
    EXPECT_EQ(running_var, untouched);
    ref::batch_norm_forward_inference(CUNORM_LAYOUT_NCHW, n, 4, s, one.data(), kNoParam, kNoParam, one.data(),
                                      one.data(), 1e-5, out.data());
    ref::batch_norm_backward(CUNORM_LAYOUT_NCHW, n, 4, s, one.data(), one.data(), kNoParam, one.data(), one.data(),
                             out.data(), out2.data(), out3.data());
    ref::batch_norm_backward_inference(CUNORM_LAYOUT_NHWC, n, 4, s, one.data(), one.data(), kNoParam, one.data(),
                                       one.data(), 1e-5, out.data(), out2.data(), out3.data());
    ref::BatchNormCalibration calib(4);
    calib.accumulate(CUNORM_LAYOUT_NCHW, n, s, one.data());
    EXPECT_EQ(calib.count(), 0);
  }
  EXPECT_EQ(out, untouched);
  EXPECT_EQ(out2, untouched);
  EXPECT_EQ(out3, untouched);
}

TEST(NullableOutputs, OmittingThemChangesNothingElse) {
  const int64_t rows = 3, cols = 6, n = 2, c = 3, s = 3;
  std::mt19937_64 rng(5);
  const Vec x = random_vec(rng, rows * cols, 1.0, 1.0), dy = random_vec(rng, rows * cols, 0.0, 1.0);
  const Vec gamma = random_vec(rng, cols, 1.0, 0.5), beta = random_vec(rng, cols, 0.0, 0.5);
  Vec full(x.size()), partial(x.size()), mean(3), rstd(3), dgamma(6), dbeta(6);

  ref::layer_norm_forward(rows, cols, x.data(), gamma.data(), beta.data(), 1e-5, full.data(), mean.data(), rstd.data());
  ref::layer_norm_forward(rows, cols, x.data(), gamma.data(), beta.data(), 1e-5, partial.data(), nullptr, nullptr);
  EXPECT_EQ(partial, full);
  ref::layer_norm_backward(rows, cols, dy.data(), x.data(), mean.data(), rstd.data(), gamma.data(), full.data(),
                           dgamma.data(), dbeta.data());
  ref::layer_norm_backward(rows, cols, dy.data(), x.data(), mean.data(), rstd.data(), gamma.data(), partial.data(),
                           nullptr, nullptr);
  EXPECT_EQ(partial, full);

  ref::rms_norm_forward(rows, cols, x.data(), gamma.data(), 1e-5, full.data(), rstd.data());
  ref::rms_norm_forward(rows, cols, x.data(), gamma.data(), 1e-5, partial.data(), nullptr);
  EXPECT_EQ(partial, full);
  ref::rms_norm_backward(rows, cols, dy.data(), x.data(), rstd.data(), gamma.data(), full.data(), dgamma.data());
  ref::rms_norm_backward(rows, cols, dy.data(), x.data(), rstd.data(), gamma.data(), partial.data(), nullptr);
  EXPECT_EQ(partial, full);

  ref::batch_norm_forward_training(CUNORM_LAYOUT_NCHW, n, c, s, x.data(), gamma.data(), beta.data(), 1e-5, 0.1,
                                   CUNORM_RUNNING_VAR_UNBIASED, nullptr, nullptr, full.data(), mean.data(),
                                   rstd.data());
  ref::batch_norm_forward_training(CUNORM_LAYOUT_NCHW, n, c, s, x.data(), gamma.data(), beta.data(), 1e-5, 0.1,
                                   CUNORM_RUNNING_VAR_UNBIASED, nullptr, nullptr, partial.data(), nullptr, nullptr);
  EXPECT_EQ(partial, full);
  ref::batch_norm_backward(CUNORM_LAYOUT_NCHW, n, c, s, dy.data(), x.data(), gamma.data(), mean.data(), rstd.data(),
                           full.data(), dgamma.data(), dbeta.data());
  ref::batch_norm_backward(CUNORM_LAYOUT_NCHW, n, c, s, dy.data(), x.data(), gamma.data(), mean.data(), rstd.data(),
                           partial.data(), nullptr, nullptr);
  EXPECT_EQ(partial, full);
  ref::batch_norm_backward_inference(CUNORM_LAYOUT_NHWC, n, c, s, dy.data(), x.data(), gamma.data(), mean.data(),
                                     rstd.data(), 1e-5, full.data(), dgamma.data(), dbeta.data());
  ref::batch_norm_backward_inference(CUNORM_LAYOUT_NHWC, n, c, s, dy.data(), x.data(), gamma.data(), mean.data(),
                                     rstd.data(), 1e-5, partial.data(), nullptr, nullptr);
  EXPECT_EQ(partial, full);
}

// ---------------------------------------------------------------------------------------------
// Numerics: the two-pass variance survives a mean far larger than the spread.

TEST(Numerics, LargeMeanRelativeToStd) {
  // Values base +- d with d = base / ratio: std = d, so mean / std = ratio, and with eps = 0 the
  // exact results are y = +-1 and rstd = 1 / d. d is not a power of two, so E[x^2] - E[x]^2
  // loses about ratio^2 * 1e-16 of the variance: y off by 2e-9 at 1e4 and 9e-5 at 1e6.
  for (double ratio : {1e4, 1e6}) {
    SCOPED_TRACE(ratio);
    const double base = 1234.5678;
    const double d = base / ratio;
    Vec x(16);
    for (size_t j = 0; j < x.size(); ++j) {
      x[j] = j % 2 == 0 ? base + d : base - d;
    }
    const double half_gap = (x[0] - x[1]) / 2.0;  // d after rounding of the inputs
    Vec y(16), mean(1), rstd(1);
    ref::layer_norm_forward(1, 16, x.data(), kNoParam, kNoParam, 0.0, y.data(), mean.data(), rstd.data());
    for (size_t j = 0; j < y.size(); ++j) {
      EXPECT_NEAR(y[j], j % 2 == 0 ? 1.0 : -1.0, 1e-9) << "at index " << j;
    }
    EXPECT_NEAR(rstd[0] * half_gap, 1.0, 1e-9);

    // The same values as one BatchNorm channel (N = 16, C = 1).
    Vec invstd(1);
    ref::batch_norm_forward_training(CUNORM_LAYOUT_NCHW, 16, 1, 1, x.data(), kNoParam, kNoParam, 0.0, 0.1,
                                     CUNORM_RUNNING_VAR_UNBIASED, nullptr, nullptr, y.data(), mean.data(),
                                     invstd.data());
    for (size_t j = 0; j < y.size(); ++j) {
      EXPECT_NEAR(y[j], j % 2 == 0 ? 1.0 : -1.0, 1e-9) << "at index " << j;
    }
    EXPECT_NEAR(invstd[0] * half_gap, 1.0, 1e-9);
  }
}

TEST(Numerics, ConstantInputWithEpsGivesBeta) {
  const double eps = 1e-5;
  const Vec x(8, 0.1);
  const Vec gamma = {1, 2, 3, 4, 5, 6, 7, 8}, beta = {-4, -3, -2, -1, 0, 1, 2, 3};
  Vec y(8), mean(1), rstd(1);
  ref::layer_norm_forward(1, 8, x.data(), gamma.data(), beta.data(), eps, y.data(), mean.data(), rstd.data());
  for (size_t j = 0; j < y.size(); ++j) {
    ASSERT_TRUE(std::isfinite(y[j])) << "at index " << j;
    EXPECT_NEAR(y[j], beta[j], 1e-12) << "at index " << j;
  }
  EXPECT_NEAR(mean[0], 0.1, 1e-16);
  EXPECT_DOUBLE_EQ(rstd[0], 1.0 / std::sqrt(eps));

  // One BatchNorm channel per parameter, each constant.
  Vec invstd(8);
  Vec means(8);
  const Vec xb(32, 0.1);  // N = 4, C = 8, S = 1
  Vec yb(32);
  ref::batch_norm_forward_training(CUNORM_LAYOUT_NHWC, 4, 8, 1, xb.data(), gamma.data(), beta.data(), eps, 0.1,
                                   CUNORM_RUNNING_VAR_UNBIASED, nullptr, nullptr, yb.data(), means.data(),
                                   invstd.data());
  for (size_t i = 0; i < yb.size(); ++i) {
    ASSERT_TRUE(std::isfinite(yb[i])) << "at index " << i;
    EXPECT_NEAR(yb[i], beta[i % 8], 1e-12) << "at index " << i;
  }

  // RMSNorm of a zero row: rrms = 1 / sqrt(eps) and y = 0.
  const Vec zeros(8, 0.0);
  Vec rrms(1);
  ref::rms_norm_forward(1, 8, zeros.data(), gamma.data(), eps, y.data(), rrms.data());
  EXPECT_EQ(y, zeros);
  EXPECT_DOUBLE_EQ(rrms[0], 1.0 / std::sqrt(eps));
}

// ---------------------------------------------------------------------------------------------
// Element types: every input reaches the arithmetic as its exact value.

TEST(ElementTypes, ToDoubleIsExact) {
  EXPECT_EQ(ref::to_double(0.1), 0.1);  // a double does not pass through float
  EXPECT_EQ(ref::to_double(0.1f), static_cast<double>(0.1f));
  // The nearest half and bfloat16 to 0.1 are 1638/2^14 and 205/2^11.
  EXPECT_EQ(ref::to_double(__float2half(0.1f)), 0.0999755859375);
  EXPECT_EQ(ref::to_double(__float2bfloat16(0.1f)), 0.10009765625);
  for (float v : {0.1f, -2.5f, 3.14159f, 65504.0f, 1e-7f, -1e30f}) {
    const __half h = __float2half(v);
    const __nv_bfloat16 b = __float2bfloat16(v);
    EXPECT_EQ(ref::to_double(h), static_cast<double>(static_cast<float>(h))) << v;
    EXPECT_EQ(ref::to_double(b), static_cast<double>(static_cast<float>(b))) << v;
  }
}

template <class T>
class ElementTypeTest : public ::testing::Test {};

// ctest names each case by its type (ElementTypeTest.InputsActAsTheirFloatValues<__half>).
using ElementTypes = ::testing::Types<float, __half, __nv_bfloat16>;
TYPED_TEST_SUITE(ElementTypeTest, ElementTypes);

// Every function fed T inputs (activations and parameters, as param_dtype == dtype) and float
// statistics gives exactly what it gives for the float values of those inputs.
TYPED_TEST(ElementTypeTest, InputsActAsTheirFloatValues) {
  using T = TypeParam;
  const int64_t rows = 4, cols = 6, n = 2, c = 6, s = 2;
  std::mt19937_64 rng(3);
  const auto make = [&](int64_t size, double mean, double stddev, std::vector<T>* typed, std::vector<float>* as_float) {
    for (double v : random_vec(rng, size, mean, stddev)) {
      typed->push_back(T(static_cast<float>(v)));
      as_float->push_back(static_cast<float>(typed->back()));
    }
  };
  std::vector<T> x, dy, gamma, beta;
  std::vector<float> xf, dyf, gammaf, betaf;
  make(rows * cols, 0.5, 1.5, &x, &xf);
  make(rows * cols, 0.0, 1.0, &dy, &dyf);
  make(cols, 1.0, 0.5, &gamma, &gammaf);
  make(cols, 0.0, 0.5, &beta, &betaf);
  const std::vector<float> stat_a = {0.25f, -0.5f, 1.0f, 0.125f, 2.0f, -1.0f};
  const std::vector<float> stat_b = {1.5f, 0.75f, 2.0f, 1.25f, 0.5f, 3.0f};

  Vec want(x.size()), got(x.size()), want_p(6), got_p(6), want_q(6), got_q(6);
  ref::layer_norm_forward(rows, cols, xf.data(), gammaf.data(), betaf.data(), 1e-5, want.data(), want_p.data(),
                          want_q.data());
  ref::layer_norm_forward(rows, cols, x.data(), gamma.data(), beta.data(), 1e-5, got.data(), got_p.data(),
                          got_q.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_p, want_p);
  EXPECT_EQ(got_q, want_q);

  ref::layer_norm_backward(rows, cols, dyf.data(), xf.data(), stat_a.data(), stat_b.data(), gammaf.data(), want.data(),
                           want_p.data(), want_q.data());
  ref::layer_norm_backward(rows, cols, dy.data(), x.data(), stat_a.data(), stat_b.data(), gamma.data(), got.data(),
                           got_p.data(), got_q.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_p, want_p);
  EXPECT_EQ(got_q, want_q);

  ref::rms_norm_forward(rows, cols, xf.data(), gammaf.data(), 1e-5, want.data(), want_p.data());
  ref::rms_norm_forward(rows, cols, x.data(), gamma.data(), 1e-5, got.data(), got_p.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_p, want_p);

  ref::rms_norm_backward(rows, cols, dyf.data(), xf.data(), stat_b.data(), gammaf.data(), want.data(), want_p.data());
  ref::rms_norm_backward(rows, cols, dy.data(), x.data(), stat_b.data(), gamma.data(), got.data(), got_p.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_p, want_p);

  Vec want_rm(6, 0.0), want_rv(6, 1.0), got_rm(6, 0.0), got_rv(6, 1.0);
  ref::batch_norm_forward_training(CUNORM_LAYOUT_NHWC, n, c, s, xf.data(), gammaf.data(), betaf.data(), 1e-5, 0.1,
                                   CUNORM_RUNNING_VAR_UNBIASED, want_rm.data(), want_rv.data(), want.data(),
                                   want_p.data(), want_q.data());
  ref::batch_norm_forward_training(CUNORM_LAYOUT_NHWC, n, c, s, x.data(), gamma.data(), beta.data(), 1e-5, 0.1,
                                   CUNORM_RUNNING_VAR_UNBIASED, got_rm.data(), got_rv.data(), got.data(), got_p.data(),
                                   got_q.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_p, want_p);
  EXPECT_EQ(got_q, want_q);
  EXPECT_EQ(got_rm, want_rm);
  EXPECT_EQ(got_rv, want_rv);

  ref::batch_norm_forward_inference(CUNORM_LAYOUT_NCHW, n, c, s, xf.data(), gammaf.data(), betaf.data(), stat_a.data(),
                                    stat_b.data(), 1e-5, want.data());
  ref::batch_norm_forward_inference(CUNORM_LAYOUT_NCHW, n, c, s, x.data(), gamma.data(), beta.data(), stat_a.data(),
                                    stat_b.data(), 1e-5, got.data());
  EXPECT_EQ(got, want);

  ref::batch_norm_backward(CUNORM_LAYOUT_NCHW, n, c, s, dyf.data(), xf.data(), gammaf.data(), stat_a.data(),
                           stat_b.data(), want.data(), want_p.data(), want_q.data());
  ref::batch_norm_backward(CUNORM_LAYOUT_NCHW, n, c, s, dy.data(), x.data(), gamma.data(), stat_a.data(), stat_b.data(),
                           got.data(), got_p.data(), got_q.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_p, want_p);
  EXPECT_EQ(got_q, want_q);

  ref::batch_norm_backward_inference(CUNORM_LAYOUT_NHWC, n, c, s, dyf.data(), xf.data(), gammaf.data(), stat_a.data(),
                                     stat_b.data(), 1e-5, want.data(), want_p.data(), want_q.data());
  ref::batch_norm_backward_inference(CUNORM_LAYOUT_NHWC, n, c, s, dy.data(), x.data(), gamma.data(), stat_a.data(),
                                     stat_b.data(), 1e-5, got.data(), got_p.data(), got_q.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_p, want_p);
  EXPECT_EQ(got_q, want_q);

  ref::BatchNormCalibration want_calib(c), got_calib(c);
  want_calib.accumulate(CUNORM_LAYOUT_NHWC, n, s, xf.data());
  got_calib.accumulate(CUNORM_LAYOUT_NHWC, n, s, x.data());
  want_calib.finalize(want_p.data(), want_q.data());
  got_calib.finalize(got_p.data(), got_q.data());
  EXPECT_EQ(got_p, want_p);
  EXPECT_EQ(got_q, want_q);
}

}  // namespace
