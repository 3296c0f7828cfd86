// The BatchNorm module and BatchNormCalibration of the C++ layer (cunorm.hpp), through the public
// headers only, on the SIMT backend: training forward and backward against the float64
// reference (fed the statistics the module saved), running statistics over several steps with
// momentum 0.1 and PyTorch's momentum=None, eval mode through the running statistics and, without
// track_running_stats, through the batch statistics, and calibration to the exact population
// statistics. cpp_batch_norm_module_api_test.cpp has the module's defaults, errors and moves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cunorm/cunorm.hpp"
#include "cunorm/reference.hpp"
#include "support/batch_norm_module_helpers.hpp"
#include "support/compare.hpp"
#include "support/module_helpers.hpp"

namespace {

using cunorm::reference::Tolerance;
using cunorm_test::channel_batch;
using cunorm_test::channel_of;
using cunorm_test::device_copy;
using cunorm_test::download;
using cunorm_test::expect_close;
using cunorm_test::expect_error;
using cunorm_test::kLayouts;
using cunorm_test::kNoParam;
using cunorm_test::layout_label;
using cunorm_test::random_floats;
using cunorm_test::upload;

std::vector<double> to_doubles(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// dgamma and dbeta sum M = n * s float32 terms per channel; the library's reduction chains at
// most 256 additions per thread and then fixed trees, so each sum is within
// (min(M, 512) + 8) * 2^-23 * sum|term| of the exact one. term(i) is the term of element i.
template <class Term>
std::vector<double> summation_slack(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, Term term) {
  std::vector<double> slack(static_cast<std::size_t>(c), 0.0);
  for (std::size_t i = 0; i < static_cast<std::size_t>(n * c * s); ++i)
    slack[channel_of(layout, i, c, s)] += std::abs(term(i));
  const double factor = (static_cast<double>(std::min<int64_t>(n * s, 512)) + 8.0) * std::ldexp(1.0, -23);
  for (double& v : slack) v *= factor;
  return slack;
}

// The float the module hands the C API: the reference is run on the same rounded value.
double as_float(double v) { return static_cast<double>(static_cast<float>(v)); }

// Checks dx, dgamma and dbeta of `bn`'s last backward (x and dy in `layout`) against the
// reference gradients, the parameter gradients with the summation slack of the channel sums
// of dy * (x - centre) * inverse and of dy.
void expect_gradients(cunorm::Handle& handle, cunorm::BatchNorm& bn, cunormLayout_t layout, int64_t n, int64_t s,
                      const std::vector<float>& x, const std::vector<float>& dy, const std::vector<float>& dx,
                      const std::vector<double>& dx_ref, const std::vector<double>& dgamma_ref,
                      const std::vector<double>& dbeta_ref, const std::vector<double>& centre,
                      const std::vector<double>& inverse) {
  const int64_t c = bn.num_features();
  const std::size_t channels = static_cast<std::size_t>(c);
  const Tolerance output = cunorm::reference::output_tolerance(CUNORM_FLOAT32);
  expect_close("dx", dx, dx_ref, output);
  if (!bn.affine()) {
    EXPECT_EQ(bn.weight_grad(), nullptr);
    EXPECT_EQ(bn.bias_grad(), nullptr);
    return;
  }
  const auto dgamma_slack = summation_slack(layout, n, c, s, [&](std::size_t i) {
    const std::size_t ci = channel_of(layout, i, c, s);
    return dy[i] * (x[i] - centre[ci]) * inverse[ci];
  });
  const auto dbeta_slack = summation_slack(layout, n, c, s, [&](std::size_t i) { return dy[i]; });
  expect_close("dgamma", download<float>(handle, bn.weight_grad(), channels), dgamma_ref, output, dgamma_slack);
  expect_close("dbeta", download<float>(handle, bn.bias_grad(), channels), dbeta_ref, output, dbeta_slack);
}

// ---- Training forward and backward against the reference ------------------------------------

struct Shape {
  int64_t n, c, s;
};
using TrainingParam = std::tuple<Shape, cunormLayout_t, bool>;  // shape, layout, affine

class BatchNormModuleTraining : public ::testing::TestWithParam<TrainingParam> {};

TEST_P(BatchNormModuleTraining, ForwardBackwardAndRunningStatisticsMatchReference) {
  const auto& [shape, layout, affine] = GetParam();
  const auto [n, c, s] = shape;
  const std::size_t channels = static_cast<std::size_t>(c), numel = static_cast<std::size_t>(n * c * s);
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, c, 1e-3, 0.1, affine);  // an eps that shows in invstd
  ASSERT_EQ(bn.weight() != nullptr, affine);
  ASSERT_EQ(bn.bias() != nullptr, affine);
  ASSERT_NE(bn.running_mean(), nullptr);

  std::vector<float> gamma, beta;
  if (affine) {
    gamma = random_floats(channels, 0.5, 1.5, 11);
    beta = random_floats(channels, -0.5, 0.5, 12);
    upload(handle, bn.weight(), gamma);
    upload(handle, bn.bias(), beta);
  }
  const std::vector<float> x = channel_batch(layout, n, c, s, 13), dy = random_floats(numel, -1.0, 1.0, 14);
  cunorm::DeviceBuffer d_x = device_copy(handle, x), d_dy = device_copy(handle, dy), d_y(handle, numel * sizeof(float)),
                       d_dx(handle, numel * sizeof(float));

  bn.forward(d_x.data(), d_y.data(), layout, n, s, CUNORM_FLOAT32);
  EXPECT_EQ(bn.num_batches_tracked(), 1);
  const std::vector<float> mean = download<float>(handle, bn.saved_mean(), channels);
  const std::vector<float> invstd = download<float>(handle, bn.saved_invstd(), channels);
  std::vector<double> y_ref(numel), mean_ref(channels), invstd_ref(channels);
  std::vector<double> running_mean_ref(channels, 0.0), running_var_ref(channels, 1.0);
  const float* g = affine ? gamma.data() : kNoParam;
  const float* b = affine ? beta.data() : kNoParam;
  cunorm::reference::batch_norm_forward_training(
      layout, n, c, s, x.data(), g, b, as_float(bn.eps()), as_float(0.1), CUNORM_RUNNING_VAR_UNBIASED,
      running_mean_ref.data(), running_var_ref.data(), y_ref.data(), mean_ref.data(), invstd_ref.data());
  const Tolerance stats = cunorm::reference::statistics_tolerance();
  expect_close("y", d_y.download<float>(numel), y_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  expect_close("saved_mean", mean, mean_ref, stats);
  expect_close("saved_invstd", invstd, invstd_ref, stats);
  expect_close("running_mean", download<float>(handle, bn.running_mean(), channels), running_mean_ref, stats);
  expect_close("running_var", download<float>(handle, bn.running_var(), channels), running_var_ref, stats);

  bn.backward(d_dy.data(), d_dx.data());
  std::vector<double> dx_ref(numel), dgamma_ref(channels), dbeta_ref(channels);
  cunorm::reference::batch_norm_backward(layout, n, c, s, dy.data(), x.data(), g, mean.data(), invstd.data(),
                                         dx_ref.data(), dgamma_ref.data(), dbeta_ref.data());
  expect_gradients(handle, bn, layout, n, s, x, dy, d_dx.download<float>(numel), dx_ref, dgamma_ref, dbeta_ref,
                   to_doubles(mean), to_doubles(invstd));
}

std::string training_name(const ::testing::TestParamInfo<TrainingParam>& info) {
  const auto& [shape, layout, affine] = info.param;
  return "N" + std::to_string(shape.n) + "C" + std::to_string(shape.c) + "S" + std::to_string(shape.s) + "_" +
         layout_label(layout) + (affine ? "_Affine" : "_NoAffine");
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormModuleTraining,
                         ::testing::Combine(::testing::Values(Shape{4, 3, 1}, Shape{2, 5, 7}, Shape{3, 16, 33}),
                                            ::testing::ValuesIn(kLayouts), ::testing::Bool()),
                         training_name);

// ---- Running statistics over several steps ---------------------------------------------------

using StepsParam = std::tuple<std::optional<double>, cunormLayout_t>;  // momentum, layout

class BatchNormModuleSteps : public ::testing::TestWithParam<StepsParam> {};

// Five training steps on batches of different sizes against an independent float64 loop of
// the reference: momentum 0.1, or momentum=None, the cumulative average 1/1, 1/2, 1/3, ...
TEST_P(BatchNormModuleSteps, RunningStatisticsFollowAReferenceLoop) {
  const auto& [momentum, layout] = GetParam();
  constexpr int64_t c = 6, s = 5;
  const std::size_t channels = static_cast<std::size_t>(c);
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, c, 1e-5, momentum);
  EXPECT_EQ(bn.momentum(), momentum);
  std::vector<double> running_mean(channels, 0.0), running_var(channels, 1.0);
  for (int64_t step = 1; step <= 5; ++step) {
    const int64_t n = 2 + step;
    const std::vector<float> x = channel_batch(layout, n, c, s, static_cast<uint64_t>(100 + step), 0.5 * step);
    cunorm::DeviceBuffer d_x = device_copy(handle, x), d_y(handle, x.size() * sizeof(float));
    bn.forward(d_x.data(), d_y.data(), layout, n, s, CUNORM_FLOAT32);
    EXPECT_EQ(bn.num_batches_tracked(), step);
    const double step_momentum = momentum ? *momentum : 1.0 / static_cast<double>(step);
    std::vector<double> y_ref(x.size());
    cunorm::reference::batch_norm_forward_training(layout, n, c, s, x.data(), kNoParam, kNoParam, as_float(bn.eps()),
                                                   as_float(step_momentum), CUNORM_RUNNING_VAR_UNBIASED,
                                                   running_mean.data(), running_var.data(), y_ref.data(),
                                                   static_cast<double*>(nullptr), static_cast<double*>(nullptr));
    const std::string label = " after step " + std::to_string(step);
    const Tolerance stats = cunorm::reference::statistics_tolerance();
    expect_close("running_mean" + label, download<float>(handle, bn.running_mean(), channels), running_mean, stats);
    expect_close("running_var" + label, download<float>(handle, bn.running_var(), channels), running_var, stats);
  }
}

std::string steps_name(const ::testing::TestParamInfo<StepsParam>& info) {
  const auto& [momentum, layout] = info.param;
  return std::string(momentum ? "Momentum0_1_" : "MomentumNone_") + layout_label(layout);
}

INSTANTIATE_TEST_SUITE_P(Momenta, BatchNormModuleSteps,
                         ::testing::Combine(::testing::Values(std::optional<double>(0.1), std::optional<double>()),
                                            ::testing::ValuesIn(kLayouts)),
                         steps_name);

// With momentum=None the first batch replaces the initial statistics outright (momentum 1).
TEST(BatchNormModuleSteps, CumulativeAverageStartsFromTheFirstBatch) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, 2, 1e-5, std::nullopt);
  const std::vector<float> x = {1, 10, 3, 20, 5, 30};  // (3, 2): channel 0 is 1, 3, 5; channel 1 is 10, 20, 30
  cunorm::DeviceBuffer d_x = device_copy(handle, x), d_y(handle, x.size() * sizeof(float));
  bn.forward(d_x.data(), d_y.data(), CUNORM_LAYOUT_NCHW, 3, 1, CUNORM_FLOAT32);
  EXPECT_EQ(download<float>(handle, bn.running_mean(), 2), (std::vector<float>{3, 20}));
  EXPECT_EQ(download<float>(handle, bn.running_var(), 2), (std::vector<float>{4, 100}));  // unbiased
}

// ---- Eval mode -------------------------------------------------------------------------------

class BatchNormModuleEval : public ::testing::TestWithParam<cunormLayout_t> {};

// After three training steps, eval normalizes with the running statistics (any batch size,
// one value per channel included), leaves them and num_batches_tracked alone, and its backward
// is the reference's backward through the frozen statistics.
TEST_P(BatchNormModuleEval, UsesTheRunningStatistics) {
  const cunormLayout_t layout = GetParam();
  constexpr int64_t c = 7, s = 9;
  const std::size_t channels = static_cast<std::size_t>(c);
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, c, 1e-2);
  const std::vector<float> gamma = random_floats(channels, 0.5, 1.5, 21), beta = random_floats(channels, -0.5, 0.5, 22);
  upload(handle, bn.weight(), gamma);
  upload(handle, bn.bias(), beta);
  for (int64_t step = 0; step < 3; ++step) {
    const std::vector<float> x = channel_batch(layout, 4, c, s, static_cast<uint64_t>(200 + step));
    cunorm::DeviceBuffer d_x = device_copy(handle, x), d_y(handle, x.size() * sizeof(float));
    bn.forward(d_x.data(), d_y.data(), layout, 4, s, CUNORM_FLOAT32);
  }
  bn.eval();
  EXPECT_FALSE(bn.training());
  const std::vector<float> running_mean = download<float>(handle, bn.running_mean(), channels);
  const std::vector<float> running_var = download<float>(handle, bn.running_var(), channels);

  for (const auto& [n, sp] : {std::pair<int64_t, int64_t>{3, s}, std::pair<int64_t, int64_t>{1, 1}}) {
    const std::string label = " n" + std::to_string(n) + " s" + std::to_string(sp);
    const std::size_t numel = static_cast<std::size_t>(n * c * sp);
    const std::vector<float> x = channel_batch(layout, n, c, sp, static_cast<uint64_t>(300 + n), 0.3);
    const std::vector<float> dy = random_floats(numel, -1.0, 1.0, static_cast<uint64_t>(400 + n));
    cunorm::DeviceBuffer d_x = device_copy(handle, x), d_dy = device_copy(handle, dy),
                         d_y(handle, numel * sizeof(float)), d_dx(handle, numel * sizeof(float));
    bn.forward(d_x.data(), d_y.data(), layout, n, sp, CUNORM_FLOAT32);
    EXPECT_EQ(bn.num_batches_tracked(), 3) << label;
    EXPECT_EQ(download<float>(handle, bn.running_mean(), channels), running_mean) << label;
    EXPECT_EQ(download<float>(handle, bn.running_var(), channels), running_var) << label;
    std::vector<double> y_ref(numel);
    cunorm::reference::batch_norm_forward_inference(layout, n, c, sp, x.data(), gamma.data(), beta.data(),
                                                    running_mean.data(), running_var.data(), as_float(bn.eps()),
                                                    y_ref.data());
    expect_close("y" + label, d_y.download<float>(numel), y_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));

    bn.backward(d_dy.data(), d_dx.data());
    std::vector<double> dx_ref(numel), dgamma_ref(channels), dbeta_ref(channels), inverse(channels);
    cunorm::reference::batch_norm_backward_inference(layout, n, c, sp, dy.data(), x.data(), gamma.data(),
                                                     running_mean.data(), running_var.data(), as_float(bn.eps()),
                                                     dx_ref.data(), dgamma_ref.data(), dbeta_ref.data());
    for (std::size_t k = 0; k < channels; ++k) inverse[k] = 1.0 / std::sqrt(running_var[k] + as_float(bn.eps()));
    expect_gradients(handle, bn, layout, n, sp, x, dy, d_dx.download<float>(numel), dx_ref, dgamma_ref, dbeta_ref,
                     to_doubles(running_mean), inverse);
  }
  bn.train();
  EXPECT_TRUE(bn.training());
}

// Without track_running_stats there is nothing to use in eval, so PyTorch normalizes with the
// batch statistics there too, and the backward is the training one.
TEST_P(BatchNormModuleEval, WithoutTrackedStatisticsUsesTheBatchStatistics) {
  const cunormLayout_t layout = GetParam();
  constexpr int64_t n = 5, c = 4, s = 6;
  const std::size_t channels = static_cast<std::size_t>(c), numel = static_cast<std::size_t>(n * c * s);
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, c, 1e-5, 0.1, true, false);
  EXPECT_FALSE(bn.track_running_stats());
  EXPECT_EQ(bn.running_mean(), nullptr);
  EXPECT_EQ(bn.running_var(), nullptr);
  const std::vector<float> gamma = random_floats(channels, 0.5, 1.5, 31), beta = random_floats(channels, -0.5, 0.5, 32);
  upload(handle, bn.weight(), gamma);
  upload(handle, bn.bias(), beta);
  const std::vector<float> x = channel_batch(layout, n, c, s, 33), dy = random_floats(numel, -1.0, 1.0, 34);
  cunorm::DeviceBuffer d_x = device_copy(handle, x), d_dy = device_copy(handle, dy), d_y(handle, numel * sizeof(float)),
                       d_dx(handle, numel * sizeof(float));
  for (bool training : {true, false}) {
    bn.train(training);
    const std::string label = training ? " (train)" : " (eval)";
    bn.forward(d_x.data(), d_y.data(), layout, n, s, CUNORM_FLOAT32);
    EXPECT_EQ(bn.num_batches_tracked(), 0) << label;
    const std::vector<float> mean = download<float>(handle, bn.saved_mean(), channels);
    const std::vector<float> invstd = download<float>(handle, bn.saved_invstd(), channels);
    std::vector<double> y_ref(numel), mean_ref(channels), invstd_ref(channels);
    cunorm::reference::batch_norm_forward_training(
        layout, n, c, s, x.data(), gamma.data(), beta.data(), as_float(bn.eps()), 0.0, CUNORM_RUNNING_VAR_UNBIASED,
        static_cast<double*>(nullptr), static_cast<double*>(nullptr), y_ref.data(), mean_ref.data(), invstd_ref.data());
    expect_close("y" + label, d_y.download<float>(numel), y_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
    expect_close("saved_mean" + label, mean, mean_ref, cunorm::reference::statistics_tolerance());
    expect_close("saved_invstd" + label, invstd, invstd_ref, cunorm::reference::statistics_tolerance());

    bn.backward(d_dy.data(), d_dx.data());
    std::vector<double> dx_ref(numel), dgamma_ref(channels), dbeta_ref(channels);
    cunorm::reference::batch_norm_backward(layout, n, c, s, dy.data(), x.data(), gamma.data(), mean.data(),
                                           invstd.data(), dx_ref.data(), dgamma_ref.data(), dbeta_ref.data());
    expect_gradients(handle, bn, layout, n, s, x, dy, d_dx.download<float>(numel), dx_ref, dgamma_ref, dbeta_ref,
                     to_doubles(mean), to_doubles(invstd));
  }
  // Batch statistics in eval need two values per channel, as in PyTorch.
  cunorm::DeviceBuffer one(handle, channels * sizeof(float)), out(handle, channels * sizeof(float));
  one.upload(std::vector<float>(channels, 1.0f));
  expect_error([&] { bn.forward(one.data(), out.data(), layout, 1, 1, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "Expected more than 1 value per channel when training");
}

INSTANTIATE_TEST_SUITE_P(Layouts, BatchNormModuleEval, ::testing::ValuesIn(kLayouts),
                         [](const ::testing::TestParamInfo<cunormLayout_t>& info) { return layout_label(info.param); });

// ---- Calibration -----------------------------------------------------------------------------

class BatchNormModuleCalibrate : public ::testing::TestWithParam<cunormLayout_t> {};

// Twelve batches of different n (and means that drift from batch to batch, as a moving average
// would show): calibrate sets the running statistics to the mean and unbiased variance of their
// concatenation, leaves num_batches_tracked and the mode alone, and equals the streaming
// BatchNormCalibration fed the same batches, which does not reset at finalize.
TEST_P(BatchNormModuleCalibrate, SetsThePopulationStatistics) {
  const cunormLayout_t layout = GetParam();
  constexpr int64_t c = 5, s = 6;
  const std::size_t channels = static_cast<std::size_t>(c);
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, c);
  {
    const std::vector<float> x = channel_batch(layout, 3, c, s, 41);
    cunorm::DeviceBuffer d_x = device_copy(handle, x), d_y(handle, x.size() * sizeof(float));
    bn.forward(d_x.data(), d_y.data(), layout, 3, s, CUNORM_FLOAT32);
  }

  std::vector<cunorm::DeviceBuffer> buffers;
  std::vector<const void*> batches;
  std::vector<int64_t> sizes;
  cunorm::reference::BatchNormCalibration reference(c);
  cunorm::BatchNormCalibration streaming(handle, c);
  EXPECT_EQ(streaming.num_features(), c);
  cunorm::DeviceBuffer d_mean(handle, channels * sizeof(float)), d_var(handle, channels * sizeof(float));
  for (int64_t i = 0; i < 12; ++i) {
    const int64_t n = 1 + i % 4;
    const std::vector<float> x = channel_batch(layout, n, c, s, static_cast<uint64_t>(500 + i), 5.0 + 0.5 * i);
    buffers.push_back(device_copy(handle, x));
    batches.push_back(buffers.back().data());
    sizes.push_back(n);
    reference.accumulate(layout, n, s, x.data());
    streaming.accumulate(buffers.back().data(), layout, n, s, CUNORM_FLOAT32);
    if (i == 5) streaming.finalize(static_cast<float*>(d_mean.data()), static_cast<float*>(d_var.data()));
  }
  bn.calibrate(batches, sizes, layout, s, CUNORM_FLOAT32);
  EXPECT_EQ(bn.num_batches_tracked(), 1);
  EXPECT_TRUE(bn.training());

  std::vector<double> mean_ref(channels), var_ref(channels);
  reference.finalize(mean_ref.data(), var_ref.data());
  const std::vector<float> mean = download<float>(handle, bn.running_mean(), channels);
  const std::vector<float> var = download<float>(handle, bn.running_var(), channels);
  expect_close("running_mean", mean, mean_ref, cunorm::reference::statistics_tolerance());
  expect_close("running_var", var, var_ref, cunorm::reference::statistics_tolerance());
  streaming.finalize(static_cast<float*>(d_mean.data()), static_cast<float*>(d_var.data()));
  EXPECT_EQ(d_mean.download<float>(channels), mean);
  EXPECT_EQ(d_var.download<float>(channels), var);
}

INSTANTIATE_TEST_SUITE_P(Layouts, BatchNormModuleCalibrate, ::testing::ValuesIn(kLayouts),
                         [](const ::testing::TestParamInfo<cunormLayout_t>& info) { return layout_label(info.param); });

}  // namespace
