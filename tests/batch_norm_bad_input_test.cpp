// Bad input to every BatchNorm entry point and to the calibration functions: the status api.md
// names, a message naming the argument, and every output and running statistic exactly as it
// was.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "support/backend_fixture.hpp"
#include "support/bad_input.hpp"
#include "support/host_array.hpp"

namespace cunorm_test {
namespace {

enum class Entry { kTraining, kTrainingEx, kInference, kBackward, kBackwardInference };

struct Args {
  int layout;
  int64_t n, c, s;
  int dtype, param;
  const void *x, *dy, *gamma, *beta;
  float eps, momentum;
  int mode;
  float *running_mean, *running_var;
  const float *saved_mean, *saved_invstd;
  void *y, *dx, *dgamma, *dbeta;
  float *out_mean, *out_invstd;
};

cunormStatus_t call(Entry entry, cunormHandle_t h, const Args& a) {
  const auto layout = static_cast<cunormLayout_t>(a.layout);
  const auto dtype = static_cast<cunormDataType_t>(a.dtype), param = static_cast<cunormDataType_t>(a.param);
  switch (entry) {
    case Entry::kTraining:
      return cunormBatchNormForwardTraining(h, layout, a.n, a.c, a.s, dtype, param, a.x, a.gamma, a.beta, a.eps,
                                            a.momentum, a.running_mean, a.running_var, a.y, a.out_mean, a.out_invstd);
    case Entry::kTrainingEx:
      return cunormBatchNormForwardTrainingEx(h, layout, a.n, a.c, a.s, dtype, param, a.x, a.gamma, a.beta, a.eps,
                                              a.momentum, static_cast<cunormRunningVarMode_t>(a.mode), a.running_mean,
                                              a.running_var, a.y, a.out_mean, a.out_invstd);
    case Entry::kInference:
      return cunormBatchNormForwardInference(h, layout, a.n, a.c, a.s, dtype, param, a.x, a.gamma, a.beta,
                                             a.running_mean, a.running_var, a.eps, a.y);
    case Entry::kBackward:
      return cunormBatchNormBackward(h, layout, a.n, a.c, a.s, dtype, param, a.dy, a.x, a.gamma, a.saved_mean,
                                     a.saved_invstd, a.dx, a.dgamma, a.dbeta);
    case Entry::kBackwardInference:
      return cunormBatchNormBackwardInference(h, layout, a.n, a.c, a.s, dtype, param, a.dy, a.x, a.gamma,
                                              a.running_mean, a.running_var, a.eps, a.dx, a.dgamma, a.dbeta);
  }
  return CUNORM_STATUS_INTERNAL_ERROR;
}

using BadCase = cunorm_test::BadCase<Entry, Args>;

const std::vector<Entry> kAll = {Entry::kTraining, Entry::kTrainingEx, Entry::kInference, Entry::kBackward,
                                 Entry::kBackwardInference};
const std::vector<Entry> kTrainingForward = {Entry::kTraining, Entry::kTrainingEx};
const std::vector<Entry> kForward = {Entry::kTraining, Entry::kTrainingEx, Entry::kInference};
const std::vector<Entry> kBackwards = {Entry::kBackward, Entry::kBackwardInference};
const std::vector<Entry> kWithEps = {Entry::kTraining, Entry::kTrainingEx, Entry::kInference,
                                     Entry::kBackwardInference};

class BatchNormBadInput : public BackendParamTest<cunormBackend_t> {};

TEST_P(BatchNormBadInput, IsRejectedAndWritesNothing) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  const int64_t n = 4, c = 8, s = 16;
  HostArray input(CUNORM_FLOAT32, n * c * s), poison(CUNORM_FLOAT32, n * c * s), running(CUNORM_FLOAT32, c);
  input.fill_bytes(0x3c);
  poison.fill_bytes(0xa5);
  running.fill_bytes(0x3f);
  DeviceArray d_x(handle_, input), d_dy(handle_, input), d_gamma(handle_, input), d_beta(handle_, input),
      d_saved_mean(handle_, input), d_saved_invstd(handle_, input);
  DeviceArray d_y(handle_, poison), d_dx(handle_, poison), d_dgamma(handle_, poison), d_dbeta(handle_, poison),
      d_mean(handle_, poison), d_invstd(handle_, poison), d_rm(handle_, running), d_rv(handle_, running);
  const DeviceArray* outputs[] = {&d_y, &d_dx, &d_dgamma, &d_dbeta, &d_mean, &d_invstd};
  char* const y_bytes = static_cast<char*>(d_y.data());
  const Args good{CUNORM_LAYOUT_NCHW,
                  n,
                  c,
                  s,
                  CUNORM_FLOAT32,
                  CUNORM_FLOAT32,
                  d_x.data(),
                  d_dy.data(),
                  d_gamma.data(),
                  d_beta.data(),
                  1e-5f,
                  0.1f,
                  CUNORM_RUNNING_VAR_UNBIASED,
                  d_rm.as_floats(),
                  d_rv.as_floats(),
                  d_saved_mean.as_floats(),
                  d_saved_invstd.as_floats(),
                  d_y.data(),
                  d_dx.data(),
                  d_dgamma.data(),
                  d_dbeta.data(),
                  d_mean.as_floats(),
                  d_invstd.as_floats()};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<BadCase> cases = {
      {kAll, "layout", [](Args& a) { a.layout = 7; }, "layout must be CUNORM_LAYOUT_NCHW or CUNORM_LAYOUT_NHWC, got 7"},
      {kAll, "negative n", [](Args& a) { a.n = -2; }, "n must be >= 0, got -2"},
      {kAll, "c 0", [](Args& a) { a.c = 0; }, "c must be > 0, got 0"},
      {kAll, "negative s", [](Args& a) { a.s = -1; }, "s must be >= 0, got -1"},
      {kAll, "huge", [](Args& a) { a.n = int64_t{1} << 30, a.s = int64_t{1} << 32; }, "n * c * s is too large"},
      {kAll, "dtype", [](Args& a) { a.dtype = 3; },
       "dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got 3"},
      {kAll, "dtype pair", [](Args& a) { a.dtype = CUNORM_BFLOAT16, a.param = CUNORM_FLOAT16; },
       "param_dtype must be CUNORM_FLOAT32 or equal to dtype (CUNORM_BFLOAT16), got CUNORM_FLOAT16"},
      {{Entry::kTraining, Entry::kBackward},
       "M == 1",
       [](Args& a) { a.n = 1, a.s = 1; },
       "Expected more than 1 value per channel when training, got input size (n, c, s) = (1, 8, 1)"},
      {kAll, "x NULL", [](Args& a) { a.x = nullptr; }, "x must not be NULL"},
      {kAll, "x misaligned", [](Args& a) { a.x = static_cast<const char*>(a.x) + 2; }, "x must be aligned"},
      {kAll, "gamma misaligned", [](Args& a) { a.gamma = static_cast<const char*>(a.gamma) + 2; },
       "gamma must be aligned"},
      {kWithEps, "eps negative", [](Args& a) { a.eps = -1.0f; }, "eps must be >= 0 and not NaN, got -1.000000"},
      {kWithEps, "eps NaN", [nan](Args& a) { a.eps = nan; }, "eps must be >= 0 and not NaN, got NaN"},
      {kTrainingForward, "momentum above 1", [](Args& a) { a.momentum = 1.5f; },
       "momentum must be in [0, 1] and not NaN, got 1.500000"},
      {kTrainingForward, "momentum NaN", [nan](Args& a) { a.momentum = nan; },
       "momentum must be in [0, 1] and not NaN, got NaN"},
      {{Entry::kTrainingEx},
       "running var mode",
       [](Args& a) { a.mode = 2; },
       "running_var_mode must be CUNORM_RUNNING_VAR_UNBIASED or CUNORM_RUNNING_VAR_BIASED, got 2"},
      {kTrainingForward, "running_mean alone", [](Args& a) { a.running_var = nullptr; },
       "running_mean and running_var must be both NULL or both given"},
      {kTrainingForward, "running_var alone", [](Args& a) { a.running_mean = nullptr; },
       "running_mean and running_var must be both NULL or both given"},
      {kTrainingForward, "running_mean overlaps x",
       [](Args& a) { a.running_mean = static_cast<float*>(const_cast<void*>(a.x)); }, "running_mean overlaps x"},
      {kTrainingForward, "running_var is running_mean", [](Args& a) { a.running_var = a.running_mean; },
       "running_var overlaps running_mean"},
      {kForward, "y NULL", [](Args& a) { a.y = nullptr; }, "y must not be NULL"},
      {kForward, "y overlaps x", [&](Args& a) { a.x = y_bytes + 8; }, "y overlaps x (only y == x is allowed)"},
      {kForward, "y overlaps beta", [&](Args& a) { a.beta = y_bytes + 4; }, "y overlaps beta"},
      {kTrainingForward, "saved_mean overlaps y", [&](Args& a) { a.out_mean = reinterpret_cast<float*>(y_bytes) + 2; },
       "saved_mean overlaps y"},
      {kTrainingForward, "saved_invstd is saved_mean", [](Args& a) { a.out_invstd = a.out_mean; },
       "saved_invstd overlaps saved_mean"},
      {{Entry::kInference, Entry::kBackwardInference},
       "running_mean NULL",
       [](Args& a) { a.running_mean = nullptr; },
       "running_mean must not be NULL"},
      {{Entry::kInference, Entry::kBackwardInference},
       "running_var NULL",
       [](Args& a) { a.running_var = nullptr; },
       "running_var must not be NULL"},
      {{Entry::kInference}, "y overlaps running_var", [](Args& a) { a.y = a.running_var; }, "y overlaps running_var"},
      {kBackwards, "dy NULL", [](Args& a) { a.dy = nullptr; }, "dy must not be NULL"},
      {{Entry::kBackward}, "saved_mean NULL", [](Args& a) { a.saved_mean = nullptr; }, "saved_mean must not be NULL"},
      {{Entry::kBackward},
       "saved_invstd NULL",
       [](Args& a) { a.saved_invstd = nullptr; },
       "saved_invstd must not be NULL"},
      {kBackwards, "dx NULL", [](Args& a) { a.dx = nullptr; }, "dx must not be NULL"},
      {kBackwards, "dx overlaps dy", [](Args& a) { a.dx = static_cast<char*>(const_cast<void*>(a.dy)) + 4; },
       "dx overlaps dy (only dx == dy is allowed)"},
      {kBackwards, "dgamma overlaps dx", [](Args& a) { a.dgamma = static_cast<char*>(a.dx) + 8; },
       "dgamma overlaps dx"},
      {kBackwards, "dbeta is dgamma", [](Args& a) { a.dbeta = a.dgamma; }, "dbeta overlaps dgamma"},
      {{Entry::kBackward},
       "dgamma overlaps saved_invstd",
       [](Args& a) { a.dgamma = const_cast<float*>(a.saved_invstd); },
       "dgamma overlaps saved_invstd"},
  };
  expect_each_rejected(handle_, good, cases, call, [&] {
    for (const DeviceArray* out : outputs) EXPECT_TRUE(out->download().bitwise_equal(poison));
    EXPECT_TRUE(d_rm.download().bitwise_equal(running));
    EXPECT_TRUE(d_rv.download().bitwise_equal(running));
  });
  for (Entry entry : kAll) {
    EXPECT_EQ(call(entry, handle_, good), CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle_);
    EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "");
  }
}

// Calibration objects: bad sizes and pointers, objects destroyed or from another handle, and
// finalizing before two values were seen.
TEST_P(BatchNormBadInput, CalibrationArguments) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  cunormBatchNormCalibration_t calib = nullptr;
  EXPECT_EQ(cunormBatchNormCalibrationCreate(handle_, 0, &calib), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "c must be > 0, got 0");
  EXPECT_EQ(cunormBatchNormCalibrationCreate(handle_, 4, nullptr), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "calib must not be NULL");
  ASSERT_EQ(cunormBatchNormCalibrationCreate(handle_, 4, &calib), CUNORM_STATUS_SUCCESS);
  HostArray x(CUNORM_FLOAT32, 4 * 3), out(CUNORM_FLOAT32, 8);
  x.fill_bytes(0x3c);
  out.fill_bytes(0xa5);
  DeviceArray d_x(handle_, x), d_out(handle_, out);
  EXPECT_EQ(
      cunormBatchNormCalibrationAccumulate(handle_, nullptr, CUNORM_LAYOUT_NCHW, 1, 3, CUNORM_FLOAT32, d_x.data()),
      CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "calib must not be NULL");
  EXPECT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calib, static_cast<cunormLayout_t>(5), 1, 3, CUNORM_FLOAT32,
                                                 d_x.data()),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calib, CUNORM_LAYOUT_NCHW, -1, 3, CUNORM_FLOAT32, d_x.data()),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "n must be >= 0, got -1");
  EXPECT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calib, CUNORM_LAYOUT_NCHW, 1, 3, CUNORM_FLOAT32, nullptr),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "x must not be NULL");
  // One value per channel is not enough to finalize; nothing is written.
  ASSERT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calib, CUNORM_LAYOUT_NHWC, 1, 1, CUNORM_FLOAT32, d_x.data()),
            CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormBatchNormCalibrationFinalize(handle_, calib, d_out.as_floats(), d_out.as_floats() + 4),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cunormGetLastErrorMessage(handle_)).find("has seen 1 values"), std::string::npos);
  EXPECT_EQ(cunormBatchNormCalibrationFinalize(handle_, calib, d_out.as_floats(), d_out.as_floats() + 2),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "running_var overlaps running_mean");
  EXPECT_EQ(cunormBatchNormCalibrationFinalize(handle_, calib, nullptr, d_out.as_floats()),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_TRUE(d_out.download().bitwise_equal(out));
  // A calibration belongs to the handle that created it.
  cunormHandle_t other = nullptr;
  ASSERT_EQ(cunormCreate(&other, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormBatchNormCalibrationDestroy(other, calib), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cunormGetLastErrorMessage(other)).find("not a live calibration of this handle"),
            std::string::npos);
  EXPECT_EQ(cunormDestroy(other), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle_, calib), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calib, CUNORM_LAYOUT_NCHW, 1, 3, CUNORM_FLOAT32, d_x.data()),
            CUNORM_STATUS_INVALID_VALUE);
  // Calibrations not destroyed die with their handle (the sanitizer job would report a leak).
  ASSERT_EQ(cunormBatchNormCalibrationCreate(handle_, 2, &calib), CUNORM_STATUS_SUCCESS);
}

// A channel count whose float64 accumulators' bytes do not fit in 63 bits is INVALID_VALUE naming
// c, as every size is (tests/size_overflow_test.cpp has the boundary), and leaves *calib as it was
// (it was INTERNAL_ERROR from an uncaught std::length_error, then ALLOC_FAILED). One whose
// accumulators fit but cannot be allocated is ALLOC_FAILED (tests/host_memory_test.cpp).
TEST_P(BatchNormBadInput, CalibrationTooManyChannels) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (const int64_t c : {int64_t{1} << 61, std::numeric_limits<int64_t>::max()}) {
    cunormBatchNormCalibration_t calib = nullptr;
    EXPECT_EQ(cunormBatchNormCalibrationCreate(handle_, c, &calib), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_EQ(std::string(cunormGetLastErrorMessage(handle_)).rfind("c is too large", 0), 0u)
        << cunormGetLastErrorMessage(handle_);
    EXPECT_NE(std::string(cunormGetLastErrorMessage(handle_)).find("got c = " + std::to_string(c)), std::string::npos);
    EXPECT_EQ(calib, nullptr);
  }
}

std::string backend_name(const ::testing::TestParamInfo<cunormBackend_t>& info) { return backend_label(info.param); }

INSTANTIATE_TEST_SUITE_P(All, BatchNormBadInput, ::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA),
                         backend_name);

}  // namespace
}  // namespace cunorm_test
