// The C++ layer's BatchNorm module (cunorm.hpp) through the public headers only, on the SIMT
// backend, beyond its numerics (cpp_batch_norm_module_test.cpp): calibration requests it
// refuses, seed 003's worked example, PyTorch's defaults, parameter gradients overwritten rather
// than accumulated, errors as cunorm::Error naming the argument, and moves.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cunorm/cunorm.hpp"
#include "support/batch_norm_module_helpers.hpp"
#include "support/compare.hpp"
#include "support/module_helpers.hpp"

namespace {

using cunorm_test::channel_batch;
using cunorm_test::device_copy;
using cunorm_test::download;
using cunorm_test::expect_close;
using cunorm_test::expect_error;
using cunorm_test::kLayouts;
using cunorm_test::layout_label;
using cunorm_test::random_floats;
using cunorm_test::upload;

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
