// The BatchNorm module and BatchNormCalibration of the C++ layer (cunorm.hpp), through the public
// headers only, on the SIMT backend: training forward and backward against the float64
// reference (fed the statistics the module saved), running statistics over several steps with
// momentum 0.1 and PyTorch's momentum=None, eval mode through the running statistics and, without
// track_running_stats, through the batch statistics, calibration to the exact population
// statistics, seed 003's worked example, errors as cunorm::Error naming the argument, and moves.
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

namespace {

using cunorm::reference::Tolerance;

const float* const kNoParam = nullptr;  // the reference's typed "absent gamma/beta"
const std::vector<double> kNoSlack;

constexpr cunormLayout_t kLayouts[] = {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC};

std::string layout_label(cunormLayout_t layout) { return layout == CUNORM_LAYOUT_NCHW ? "NCHW" : "NHWC"; }

std::vector<float> random_floats(std::size_t count, double low, double high, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<float> out(count);
  for (float& v : out) v = static_cast<float>(dist(rng));
  return out;
}

// Channel of the element at flat offset i of an (n, c, s) tensor.
std::size_t channel_of(cunormLayout_t layout, std::size_t i, int64_t c, int64_t s) {
  const auto cs = static_cast<std::size_t>(c), ss = static_cast<std::size_t>(s);
  return layout == CUNORM_LAYOUT_NCHW ? (i / ss) % cs : i % cs;
}

// An (n, c, s) batch whose channels have their own centre and spread, so that every channel's
// statistics differ; offset shifts all of them.
std::vector<float> channel_batch(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, uint64_t seed,
                                 double offset = 0.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> centre(-2.0, 2.0), spread(0.5, 1.5), unit(-1.0, 1.0);
  std::vector<double> centres(static_cast<std::size_t>(c)), spreads(static_cast<std::size_t>(c));
  for (std::size_t ci = 0; ci < centres.size(); ++ci) {
    centres[ci] = centre(rng);
    spreads[ci] = spread(rng);
  }
  std::vector<float> x(static_cast<std::size_t>(n * c * s));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t ci = channel_of(layout, i, c, s);
    x[i] = static_cast<float>(offset + centres[ci] + spreads[ci] * unit(rng));
  }
  return x;
}

// Module parameters and statistics are exposed as raw pointers, so they are read through the C API.
template <class T>
std::vector<T> download(cunorm::Handle& handle, const void* device, std::size_t count) {
  std::vector<T> host(count);
  cunorm::check(cunormMemcpyToHost(handle.get(), host.data(), device, count * sizeof(T)), handle.get());
  return host;
}

void upload(cunorm::Handle& handle, void* device, const std::vector<float>& host) {
  cunorm::check(cunormMemcpyToDevice(handle.get(), device, host.data(), host.size() * sizeof(float)), handle.get());
}

cunorm::DeviceBuffer device_copy(cunorm::Handle& handle, const std::vector<float>& host) {
  cunorm::DeviceBuffer buffer(handle, host.size() * sizeof(float));
  buffer.upload(host);
  return buffer;
}

std::vector<double> to_doubles(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Element by element within `tolerance` plus a per-element slack (the summation bound of a
// float32 reduction); reports the number of mismatches and the first few.
void expect_close(const std::string& what, const std::vector<float>& actual, const std::vector<double>& expected,
                  const Tolerance& tolerance, const std::vector<double>& slack = kNoSlack) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], e = expected[i];
    const double allowed = (slack.empty() ? 0.0 : slack[i]) + tolerance.allowed(e);
    if (std::abs(a - e) <= allowed) continue;
    if (++bad <= 3) ADD_FAILURE() << what << "[" << i << "] = " << a << ", reference " << e;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << actual.size() << " elements outside the tolerance";
}

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

// Runs `f`, which must throw cunorm::Error with `status` and a message containing `needle`.
template <class F>
void expect_error(F&& f, cunormStatus_t status, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no cunorm::Error thrown; expected one naming \"" << needle << "\"";
  } catch (const cunorm::Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(e.message().find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()), std::string(cunormGetStatusString(status)) + ": " + e.message());
  }
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

// Calibration errors leave the running statistics as they were.
TEST(BatchNormModuleCalibrateErrors, BadRequests) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm untracked(handle, 3, 1e-5, 0.1, true, false);
  const std::vector<float> x = channel_batch(CUNORM_LAYOUT_NCHW, 2, 3, 4, 61);
  cunorm::DeviceBuffer d_x = device_copy(handle, x);
  expect_error([&] { untracked.calibrate({d_x.data()}, {2}, CUNORM_LAYOUT_NCHW, 4, CUNORM_FLOAT32); },
               CUNORM_STATUS_INVALID_VALUE, "calibrate needs track_running_stats");

  cunorm::BatchNorm bn(handle, 3);
  expect_error(
      [&] {
        bn.calibrate({d_x.data(), d_x.data()}, {2}, CUNORM_LAYOUT_NCHW, 4, CUNORM_FLOAT32);
      },
      CUNORM_STATUS_INVALID_VALUE, "batch_sizes_n must hold one size per batch (2), got 1");
  expect_error(
      [&] {
        bn.calibrate({d_x.data(), d_x.data()}, {2, -1}, CUNORM_LAYOUT_NCHW, 4, CUNORM_FLOAT32);
      },
      CUNORM_STATUS_INVALID_VALUE, "batches[1]: n must be >= 0, got -1");
  expect_error([&] { bn.calibrate({}, {}, CUNORM_LAYOUT_NCHW, 4, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "has seen 0 values per channel");
  EXPECT_EQ(download<float>(handle, bn.running_mean(), 3), std::vector<float>(3, 0.0f));
  EXPECT_EQ(download<float>(handle, bn.running_var(), 3), std::vector<float>(3, 1.0f));
}

// ---- Seed 003 --------------------------------------------------------------------------------

// BatchNorm of the (N = 2, C = 2) batch [[1, 2], [3, 4]] with eps = 0 is [[-1, -1], [1, 1]]:
// channel means 2 and 3, biased variance 1 (S = 1, so both layouts store it the same way).
// The running statistics take 0.1 of the means and of the unbiased variance 2.
TEST(BatchNormModuleSeed, WorkedExample) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  for (cunormLayout_t layout : kLayouts) {
    cunorm::BatchNorm bn(handle, 2, 0.0);
    cunorm::DeviceBuffer d_x = device_copy(handle, {1, 2, 3, 4}), d_y(handle, 4 * sizeof(float));
    bn.forward(d_x.data(), d_y.data(), layout, 2, 1, CUNORM_FLOAT32);
    EXPECT_EQ(d_y.download<float>(4), (std::vector<float>{-1, -1, 1, 1})) << layout_label(layout);
    EXPECT_EQ(download<float>(handle, bn.saved_mean(), 2), (std::vector<float>{2, 3}));
    EXPECT_EQ(download<float>(handle, bn.saved_invstd(), 2), (std::vector<float>{1, 1}));
    expect_close("running_mean", download<float>(handle, bn.running_mean(), 2), {0.2, 0.3},
                 cunorm::reference::statistics_tolerance());
    expect_close("running_var", download<float>(handle, bn.running_var(), 2), {1.1, 1.1},
                 cunorm::reference::statistics_tolerance());
  }
}

// ---- Defaults, gradients, empty batches ------------------------------------------------------

TEST(BatchNormModuleDefaults, FollowPyTorch) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, 6);
  EXPECT_EQ(bn.num_features(), 6);
  EXPECT_EQ(bn.eps(), 1e-5);
  EXPECT_EQ(bn.momentum(), std::optional<double>(0.1));
  EXPECT_TRUE(bn.affine());
  EXPECT_TRUE(bn.track_running_stats());
  EXPECT_EQ(bn.param_dtype(), CUNORM_FLOAT32);
  EXPECT_TRUE(bn.training());
  EXPECT_EQ(bn.num_batches_tracked(), 0);
  EXPECT_EQ(download<float>(handle, bn.weight(), 6), std::vector<float>(6, 1.0f));
  EXPECT_EQ(download<float>(handle, bn.bias(), 6), std::vector<float>(6, 0.0f));
  EXPECT_EQ(download<float>(handle, bn.weight_grad(), 6), std::vector<float>(6, 0.0f));
  EXPECT_EQ(download<float>(handle, bn.bias_grad(), 6), std::vector<float>(6, 0.0f));
  EXPECT_EQ(download<float>(handle, bn.running_mean(), 6), std::vector<float>(6, 0.0f));
  EXPECT_EQ(download<float>(handle, bn.running_var(), 6), std::vector<float>(6, 1.0f));
  EXPECT_EQ(bn.saved_mean(), nullptr);
  EXPECT_EQ(bn.saved_invstd(), nullptr);
  bn.eval();
  EXPECT_FALSE(bn.training());
  bn.train(false);
  EXPECT_FALSE(bn.training());
  bn.train();
  EXPECT_TRUE(bn.training());

  cunorm::BatchNorm plain(handle, 6, 1e-3, std::nullopt, false, false);
  EXPECT_EQ(plain.weight(), nullptr);
  EXPECT_EQ(plain.bias(), nullptr);
  EXPECT_EQ(plain.weight_grad(), nullptr);
  EXPECT_EQ(plain.bias_grad(), nullptr);
  EXPECT_EQ(plain.running_mean(), nullptr);
  EXPECT_EQ(plain.running_var(), nullptr);
  EXPECT_EQ(plain.momentum(), std::nullopt);
}

// Half parameters start as the bit patterns of 1 and 0 and run with their activation dtype.
TEST(BatchNormModuleDefaults, HalfParameters) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, 2, 0.0, 0.1, true, true, CUNORM_FLOAT16);
  EXPECT_EQ(download<std::uint16_t>(handle, bn.weight(), 2), (std::vector<std::uint16_t>{0x3C00, 0x3C00}));
  EXPECT_EQ(download<std::uint16_t>(handle, bn.bias(), 2), (std::vector<std::uint16_t>{0, 0}));
  const std::vector<std::uint16_t> x = {0x3C00, 0x4000, 0x4200, 0x4400};  // 1, 2, 3, 4
  cunorm::DeviceBuffer d_x(handle, 8), d_y(handle, 8);
  d_x.upload(x);
  bn.forward(d_x.data(), d_y.data(), CUNORM_LAYOUT_NCHW, 2, 1, CUNORM_FLOAT16);
  EXPECT_EQ(d_y.download<std::uint16_t>(4), (std::vector<std::uint16_t>{0xBC00, 0xBC00, 0x3C00, 0x3C00}));
}

TEST(BatchNormModuleGradients, OverwrittenNotAccumulated) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, 8);
  const std::vector<float> x = channel_batch(CUNORM_LAYOUT_NHWC, 4, 8, 3, 71), dy = random_floats(96, -1.0, 1.0, 72);
  cunorm::DeviceBuffer d_x = device_copy(handle, x), d_dy = device_copy(handle, dy), d_y(handle, 96 * 4),
                       d_dx(handle, 96 * 4);
  bn.forward(d_x.data(), d_y.data(), CUNORM_LAYOUT_NHWC, 4, 3, CUNORM_FLOAT32);
  bn.backward(d_dy.data(), d_dx.data());
  const std::vector<float> dgamma = download<float>(handle, bn.weight_grad(), 8);
  const std::vector<float> dbeta = download<float>(handle, bn.bias_grad(), 8);
  EXPECT_NE(dbeta, std::vector<float>(8, 0.0f));
  bn.backward(d_dy.data(), d_dx.data());  // a second backward of the same forward
  EXPECT_EQ(download<float>(handle, bn.weight_grad(), 8), dgamma);
  EXPECT_EQ(download<float>(handle, bn.bias_grad(), 8), dbeta);
}

// The C API writes nothing for an empty batch; the module still overwrites the gradients with
// the gradient of an empty sum, and counts the batch as PyTorch does.
TEST(BatchNormModuleGradients, EmptyBatchZeroesTheGradients) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  for (bool training : {true, false}) {
    cunorm::BatchNorm bn(handle, 4);
    const std::vector<float> x = channel_batch(CUNORM_LAYOUT_NCHW, 3, 4, 2, 81), dy = random_floats(24, -1, 1, 82);
    cunorm::DeviceBuffer d_x = device_copy(handle, x), d_dy = device_copy(handle, dy), d_y(handle, 96),
                         d_dx(handle, 96);
    bn.forward(d_x.data(), d_y.data(), CUNORM_LAYOUT_NCHW, 3, 2, CUNORM_FLOAT32);
    bn.backward(d_dy.data(), d_dx.data());
    ASSERT_NE(download<float>(handle, bn.bias_grad(), 4), std::vector<float>(4, 0.0f));
    const std::vector<float> running_mean = download<float>(handle, bn.running_mean(), 4);
    bn.train(training);
    bn.forward(nullptr, nullptr, CUNORM_LAYOUT_NCHW, 0, 2, CUNORM_FLOAT32);
    bn.backward(nullptr, nullptr);
    EXPECT_EQ(download<float>(handle, bn.weight_grad(), 4), std::vector<float>(4, 0.0f));
    EXPECT_EQ(download<float>(handle, bn.bias_grad(), 4), std::vector<float>(4, 0.0f));
    EXPECT_EQ(download<float>(handle, bn.running_mean(), 4), running_mean);
    EXPECT_EQ(bn.num_batches_tracked(), training ? 2 : 1);
  }
}

// ---- Errors ----------------------------------------------------------------------------------

TEST(BatchNormModuleErrors, NumFeaturesMustBePositive) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  expect_error([&] { cunorm::BatchNorm bn(handle, 0); }, CUNORM_STATUS_INVALID_VALUE,
               "num_features must be > 0, got 0");
  expect_error([&] { cunorm::BatchNorm bn(handle, -3); }, CUNORM_STATUS_INVALID_VALUE,
               "num_features must be > 0, got -3");
  expect_error([&] { cunorm::BatchNormCalibration calibration(handle, 0); }, CUNORM_STATUS_INVALID_VALUE,
               "c must be > 0, got 0");
}

// Checked at construction, even without track_running_stats where it would never reach the C API.
TEST(BatchNormModuleErrors, MomentumOutsideZeroOne) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  for (bool track : {true, false}) {
    expect_error([&] { cunorm::BatchNorm bn(handle, 4, 1e-5, -0.1, true, track); }, CUNORM_STATUS_INVALID_VALUE,
                 "momentum must be in [0, 1] and not NaN, got -0.1");
    expect_error([&] { cunorm::BatchNorm bn(handle, 4, 1e-5, 1.5, true, track); }, CUNORM_STATUS_INVALID_VALUE,
                 "momentum must be in [0, 1] and not NaN, got 1.5");
    expect_error([&] { cunorm::BatchNorm bn(handle, 4, 1e-5, std::numeric_limits<double>::quiet_NaN(), true, track); },
                 CUNORM_STATUS_INVALID_VALUE, "momentum must be in [0, 1] and not NaN, got NaN");
  }
  EXPECT_NO_THROW(cunorm::BatchNorm(handle, 4, 1e-5, 0.0));
  EXPECT_NO_THROW(cunorm::BatchNorm(handle, 4, 1e-5, 1.0));
}

// A rejected forward writes nothing: y, the running statistics and num_batches_tracked are as
// they were, and there is no forward to differentiate.
TEST(BatchNormModuleErrors, BadDtypes) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, 2, 1e-5, 0.1, true, true, CUNORM_FLOAT16);
  const std::vector<float> poison(4, -7.0f);
  cunorm::DeviceBuffer d_x = device_copy(handle, {1, 2, 3, 4}), d_y = device_copy(handle, poison);
  expect_error([&] { bn.forward(d_x.data(), d_y.data(), CUNORM_LAYOUT_NCHW, 2, 1, CUNORM_FLOAT32); },
               CUNORM_STATUS_INVALID_VALUE, "param_dtype must be CUNORM_FLOAT32 or equal to dtype");
  expect_error([&] { bn.forward(d_x.data(), d_y.data(), CUNORM_LAYOUT_NCHW, 2, 1, static_cast<cunormDataType_t>(9)); },
               CUNORM_STATUS_INVALID_VALUE, "dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got 9");
  EXPECT_EQ(d_y.download<float>(4), poison);
  EXPECT_EQ(bn.num_batches_tracked(), 0);
  EXPECT_EQ(download<float>(handle, bn.running_mean(), 2), std::vector<float>(2, 0.0f));
  EXPECT_EQ(download<float>(handle, bn.running_var(), 2), std::vector<float>(2, 1.0f));
  expect_error([&] { bn.backward(d_x.data(), d_y.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
  expect_error([&] { cunorm::BatchNorm bad(handle, 2, 1e-5, 0.1, true, true, static_cast<cunormDataType_t>(7)); },
               CUNORM_STATUS_INVALID_VALUE,
               "param_dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got 7");
}

TEST(BatchNormModuleErrors, BackwardBeforeForward) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, 4);
  cunorm::DeviceBuffer d_dy(handle, 64), d_dx(handle, 64);
  expect_error([&] { bn.backward(d_dy.data(), d_dx.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
  bn.eval();
  expect_error([&] { bn.backward(d_dy.data(), d_dx.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
}

// One value per channel cannot be normalized with batch statistics (PyTorch's message); the
// failed forward is not counted and forgets the previous forward.
TEST(BatchNormModuleErrors, OneValuePerChannelInTraining) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::BatchNorm bn(handle, 3, 1e-5, std::nullopt);
  const std::vector<float> x = channel_batch(CUNORM_LAYOUT_NCHW, 2, 3, 2, 91);
  cunorm::DeviceBuffer d_x = device_copy(handle, x), d_y(handle, x.size() * sizeof(float));
  bn.forward(d_x.data(), d_y.data(), CUNORM_LAYOUT_NCHW, 2, 2, CUNORM_FLOAT32);
  const std::vector<float> running_var = download<float>(handle, bn.running_var(), 3);
  expect_error([&] { bn.forward(d_x.data(), d_y.data(), CUNORM_LAYOUT_NCHW, 1, 1, CUNORM_FLOAT32); },
               CUNORM_STATUS_INVALID_VALUE,
               "Expected more than 1 value per channel when training, got input size (n, c, s) = (1, 3, 1)");
  EXPECT_EQ(bn.num_batches_tracked(), 1);
  EXPECT_EQ(download<float>(handle, bn.running_var(), 3), running_var);
  expect_error([&] { bn.backward(d_y.data(), d_x.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
}

// ---- Moves -----------------------------------------------------------------------------------

// A moved module keeps its parameters, running statistics, count, mode and saved forward: its
// backward equals that of a module that was never moved, bit for bit (results are deterministic).
TEST(BatchNormModuleMoves, ModuleMovesWithItsForward) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  constexpr int64_t n = 3, c = 5, s = 4;
  const std::vector<float> x = channel_batch(CUNORM_LAYOUT_NCHW, n, c, s, 101), dy = random_floats(60, -1, 1, 102);
  const std::vector<float> gamma = random_floats(c, 0.5, 1.5, 103);
  cunorm::DeviceBuffer d_x = device_copy(handle, x), d_dy = device_copy(handle, dy), d_y(handle, 240),
                       d_dx(handle, 240);
  const auto run = [&](cunorm::BatchNorm& bn) {
    upload(handle, bn.weight(), gamma);
    bn.forward(d_x.data(), d_y.data(), CUNORM_LAYOUT_NCHW, n, s, CUNORM_FLOAT32);
  };
  const auto result = [&](cunorm::BatchNorm& bn) {
    bn.backward(d_dy.data(), d_dx.data());
    return std::make_tuple(d_dx.download<float>(60), download<float>(handle, bn.weight_grad(), c),
                           download<float>(handle, bn.running_mean(), c), bn.num_batches_tracked());
  };
  cunorm::BatchNorm unmoved(handle, c);
  run(unmoved);
  const auto expected = result(unmoved);

  cunorm::BatchNorm bn(handle, c);
  run(bn);
  cunorm::BatchNorm moved(std::move(bn));
  EXPECT_EQ(bn.weight(), nullptr);
  EXPECT_EQ(bn.running_mean(), nullptr);
  EXPECT_EQ(bn.saved_mean(), nullptr);
  EXPECT_EQ(result(moved), expected);
  cunorm::BatchNorm assigned(handle, 2, 1e-3, std::nullopt, false, false);
  assigned = std::move(moved);
  EXPECT_EQ(assigned.num_features(), c);
  EXPECT_EQ(assigned.momentum(), std::optional<double>(0.1));
  EXPECT_EQ(result(assigned), expected);
}

TEST(BatchNormModuleMoves, CalibrationMovesItsAccumulator) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  const std::vector<float> x = channel_batch(CUNORM_LAYOUT_NHWC, 4, 3, 2, 111);
  cunorm::DeviceBuffer d_x = device_copy(handle, x), d_mean(handle, 12), d_var(handle, 12);
  cunorm::BatchNormCalibration calibration(handle, 3);
  calibration.accumulate(d_x.data(), CUNORM_LAYOUT_NHWC, 4, 2, CUNORM_FLOAT32);
  const cunormBatchNormCalibration_t raw = calibration.get();
  cunorm::BatchNormCalibration moved(std::move(calibration));
  EXPECT_EQ(calibration.get(), nullptr);
  EXPECT_EQ(moved.get(), raw);
  cunorm::BatchNormCalibration assigned(handle, 7);
  assigned = std::move(moved);  // destroys the 7-channel calibration
  EXPECT_EQ(assigned.get(), raw);
  EXPECT_EQ(assigned.num_features(), 3);
  assigned.finalize(static_cast<float*>(d_mean.data()), static_cast<float*>(d_var.data()));
  cunorm::reference::BatchNormCalibration reference(3);
  reference.accumulate(CUNORM_LAYOUT_NHWC, 4, 2, x.data());
  std::vector<double> mean_ref(3), var_ref(3);
  reference.finalize(mean_ref.data(), var_ref.data());
  expect_close("mean", d_mean.download<float>(3), mean_ref, cunorm::reference::statistics_tolerance());
  expect_close("var", d_var.download<float>(3), var_ref, cunorm::reference::statistics_tolerance());
  expect_error([&] { moved.accumulate(d_x.data(), CUNORM_LAYOUT_NHWC, 4, 2, CUNORM_FLOAT32); },
               CUNORM_STATUS_INVALID_VALUE, "calib must not be NULL");
}

}  // namespace
