// BatchNorm beyond the sweep: the seed's worked examples, running statistics over several steps
// (momentum 0.1, PyTorch's momentum=None, and the biased ONNX/Keras update), calibration over
// many batches, numerics (a large mean relative to the spread, constant channels, NaN confined
// to its channel), M == 1, empty batches, bad input, memory traffic and grid sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cunorm/reference.hpp"
#include "simt/launch.hpp"
#include "support/backend_fixture.hpp"
#include "support/batch_norm_case.hpp"
#include "support/host_array.hpp"

namespace cunorm_test {
namespace {

class BatchNormEdge : public BackendParamTest<cunormBackend_t> {};

HostArray values(cunormDataType_t dtype, const std::vector<double>& v) {
  HostArray out(dtype, v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out.set(i, v[i]);
  return out;
}

// Seed 003 with eps = 0, as the seed computes. BatchNorm of the (N = 2, C = 2) batch
// [[1, 2], [3, 4]] is [[-1, -1], [1, 1]] (means 2 and 3, variance 1); the 3-D example is channel 0
// of an NHWC tensor with N = 2, S = 2, C = 2 holding {1, 3, 2, 1}: mean 1.75, variance 0.6875.
TEST_P(BatchNormEdge, SeedWorkedExamples) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (const DtypePair& dtypes : kDtypePairs) {
    for (cunormLayout_t layout : {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC}) {
      const HostArray x = values(dtypes.dtype, {1, 2, 3, 4});
      HostArray y(dtypes.dtype, 4), stats(CUNORM_FLOAT32, 2);
      DeviceArray d_x(handle_, x), d_y(handle_, y), d_mean(handle_, stats), d_invstd(handle_, stats);
      ASSERT_EQ(cunormBatchNormForwardTraining(handle_, layout, 2, 2, 1, dtypes.dtype, dtypes.param, d_x.data(),
                                               nullptr, nullptr, 0.0f, 0.1f, nullptr, nullptr, d_y.data(),
                                               d_mean.as_floats(), d_invstd.as_floats()),
                CUNORM_STATUS_SUCCESS)
          << cunormGetLastErrorMessage(handle_);
      const HostArray out = d_y.download(), mean = d_mean.download(), invstd = d_invstd.download();
      const double expected[4] = {-1, -1, 1, 1};
      for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(out.get(i), expected[i]) << dtypes.label() << " " << i;
      EXPECT_EQ(mean.get(0), 2.0);
      EXPECT_EQ(mean.get(1), 3.0);
      EXPECT_EQ(invstd.get(0), 1.0);
      EXPECT_EQ(invstd.get(1), 1.0);
    }
    // NHWC (n, s, c): n = 0: (1, 2), (3, 4); n = 1: (2, 3), (1, 4). Channel 0 holds 1, 3, 2, 1.
    const HostArray x = values(dtypes.dtype, {1, 2, 3, 4, 2, 3, 1, 4});
    HostArray y(dtypes.dtype, 8), stats(CUNORM_FLOAT32, 2);
    DeviceArray d_x(handle_, x), d_y(handle_, y), d_mean(handle_, stats), d_invstd(handle_, stats);
    ASSERT_EQ(cunormBatchNormForwardTraining(handle_, CUNORM_LAYOUT_NHWC, 2, 2, 2, dtypes.dtype, dtypes.param,
                                             d_x.data(), nullptr, nullptr, 0.0f, 0.1f, nullptr, nullptr, d_y.data(),
                                             d_mean.as_floats(), d_invstd.as_floats()),
              CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(d_mean.download().get(0), 1.75);
    EXPECT_NEAR(d_invstd.download().get(0), 1.0 / std::sqrt(0.6875), 1e-6);
    EXPECT_NEAR(d_y.download().get(0), (1.0 - 1.75) / std::sqrt(0.6875), 2e-3);
  }
}

// Several training steps: momentum 0.1 (PyTorch's default), momentum None (the caller passes
// 1 / num_batches_tracked), and the biased update of ONNX and Keras.
TEST_P(BatchNormEdge, RunningStatisticsOverSeveralSteps) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (cunormLayout_t layout : {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC}) {
    for (int scheme = 0; scheme < 3; ++scheme) {
      const cunormRunningVarMode_t mode = scheme == 2 ? CUNORM_RUNNING_VAR_BIASED : CUNORM_RUNNING_VAR_UNBIASED;
      RunningStatistics running{std::vector<float>(6, 0.0f), std::vector<float>(6, 1.0f)};
      for (int step = 1; step <= 5; ++step) {
        const float momentum = scheme == 1 ? 1.0f / static_cast<float>(step) : 0.1f;
        BatchNormCase bn(layout, DtypePair{CUNORM_FLOAT32, CUNORM_FLOAT32}, 3 + step, 6, 5, true, 1e-5f,
                         static_cast<uint64_t>(step * 10 + scheme));
        const TrainingResult result = bn.training(handle_, momentum, mode, &running);
        bn.expect_training_matches_reference(momentum, mode, &running, result);
        running = RunningStatistics{result.running_mean, result.running_var};
      }
    }
  }
}

// Calibration over 12 batches of different sizes equals the mean and unbiased variance of their
// concatenation; finalize does not reset; fewer than 2 values is INVALID_VALUE.
TEST_P(BatchNormEdge, CalibrationGivesPopulationStatistics) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (cunormLayout_t layout : {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC}) {
    for (cunormDataType_t dtype : {CUNORM_FLOAT32, CUNORM_FLOAT16}) {
      const int64_t c = 5;
      cunormBatchNormCalibration_t calib = nullptr;
      ASSERT_EQ(cunormBatchNormCalibrationCreate(handle_, c, &calib), CUNORM_STATUS_SUCCESS);
      HostArray stats(CUNORM_FLOAT32, c);
      DeviceArray d_mean(handle_, stats), d_var(handle_, stats);
      EXPECT_EQ(cunormBatchNormCalibrationFinalize(handle_, calib, d_mean.as_floats(), d_var.as_floats()),
                CUNORM_STATUS_INVALID_VALUE);
      EXPECT_NE(std::string(cunormGetLastErrorMessage(handle_)).find("has seen 0 values"), std::string::npos);
      cunorm::reference::BatchNormCalibration reference(c);
      for (int batch = 0; batch < 12; ++batch) {
        const int64_t n = 1 + batch % 4, s = 3 + (batch * 7) % 11;
        BatchNormCase bn(layout, DtypePair{dtype, CUNORM_FLOAT32}, n, c, s, false, 1e-5f, static_cast<uint64_t>(batch),
                         5.0 + batch, 1.0 + 0.25 * batch);
        DeviceArray d_x(handle_, bn.x);
        ASSERT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calib, layout, n, s, dtype, d_x.data()),
                  CUNORM_STATUS_SUCCESS)
            << cunormGetLastErrorMessage(handle_);
        const std::vector<double> xs = bn.x.to_doubles();
        reference.accumulate(layout, n, s, xs.data());
        if (batch == 5 || batch == 11) {  // finalize part-way: it must not reset the accumulator
          ASSERT_EQ(cunormBatchNormCalibrationFinalize(handle_, calib, d_mean.as_floats(), d_var.as_floats()),
                    CUNORM_STATUS_SUCCESS);
          const HostArray mean = d_mean.download(), var = d_var.download();
          std::vector<double> m(static_cast<std::size_t>(c)), v(static_cast<std::size_t>(c));
          reference.finalize(m.data(), v.data());
          for (std::size_t ci = 0; ci < static_cast<std::size_t>(c); ++ci) {
            EXPECT_NEAR(mean.get(ci), m[ci], 1e-6 * std::abs(m[ci])) << "batch " << batch << " channel " << ci;
            EXPECT_NEAR(var.get(ci), v[ci], 2e-6 * v[ci]) << "batch " << batch << " channel " << ci;
          }
        }
      }
      EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle_, calib), CUNORM_STATUS_SUCCESS);
      EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle_, calib), CUNORM_STATUS_INVALID_VALUE);
    }
  }
}

// Channels whose mean is about 1e4 times their standard deviation. A float32 mean near 1e4 has
// an ulp of 2^-10; the Chan merges of the chunks' float32 states keep it within a few ulps, and
// that error reaches y multiplied by invstd. Within 4 ulps (plus the output tolerance) the
// results match the reference, where the single-pass E[x^2] - E[x]^2 in float32 misses the
// variance by more than 1.
TEST_P(BatchNormEdge, LargeMeanRelativeToSpread) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (cunormLayout_t layout : {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC}) {
    const int64_t n = 16, c = 3, s = 1000;
    BatchNormCase bn(layout, DtypePair{CUNORM_FLOAT32, CUNORM_FLOAT32}, n, c, s, false, 1e-5f, 3, 1e4, 1.7);
    const TrainingResult result = bn.training(handle_, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, nullptr);
    std::vector<double> xs = bn.x.to_doubles(), y(xs.size()), mean(c), invstd(c);
    cunorm::reference::batch_norm_forward_training(
        layout, n, c, s, xs.data(), static_cast<const double*>(nullptr), static_cast<const double*>(nullptr), 1e-5, 0.1,
        CUNORM_RUNNING_VAR_UNBIASED, nullptr, nullptr, y.data(), mean.data(), invstd.data());
    for (int64_t ci = 0; ci < c; ++ci) {
      double sum = 0.0, squares = 0.0;  // the naive formula, in float32 as a kernel would run it
      float fsum = 0.0f, fsquares = 0.0f;
      for (int64_t i = 0; i < n * c * s; ++i) {
        if ((layout == CUNORM_LAYOUT_NCHW ? (i / s) % c : i % c) != ci) continue;
        const float v = static_cast<float>(xs[static_cast<std::size_t>(i)]);
        fsum += v;
        fsquares += v * v;
        sum += v;
        squares += 1.0;
      }
      const float m = fsum / static_cast<float>(squares);
      const double naive = static_cast<double>(fsquares / static_cast<float>(squares) - m * m);
      const double var = 1.0 / (invstd[static_cast<std::size_t>(ci)] * invstd[static_cast<std::size_t>(ci)]) - 1e-5;
      EXPECT_GT(std::abs(naive - var), 1.0) << "channel " << ci;
      EXPECT_NEAR(result.saved_mean[static_cast<std::size_t>(ci)], sum / squares, 4 * std::ldexp(1.0, -10));
    }
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const int64_t ci = layout == CUNORM_LAYOUT_NCHW ? (static_cast<int64_t>(i) / s) % c : static_cast<int64_t>(i) % c;
      const double bound =
          4 * std::ldexp(1.0, -10) * invstd[static_cast<std::size_t>(ci)] + 1e-5 + 1e-5 * std::abs(y[i]);
      ASSERT_NEAR(result.y.get(i), y[i], bound) << "element " << i;
    }
  }
}

// A constant channel has variance 0 (no NaN with eps > 0); a NaN in one channel changes that
// channel only.
TEST_P(BatchNormEdge, ConstantAndNonFiniteChannels) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (cunormLayout_t layout : {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC}) {
    const int64_t n = 4, c = 3, s = 50;
    BatchNormCase clean(layout, DtypePair{CUNORM_FLOAT32, CUNORM_FLOAT32}, n, c, s, true, 1e-5f, 17);
    BatchNormCase constant = clean, dirty = clean;
    for (int64_t ni = 0; ni < n; ++ni) {
      for (int64_t si = 0; si < s; ++si) {
        const int64_t at = layout == CUNORM_LAYOUT_NCHW ? (ni * c + 1) * s + si : (ni * s + si) * c + 1;
        constant.x.set(static_cast<std::size_t>(at), 0.7);
      }
    }
    const int64_t bad_at = layout == CUNORM_LAYOUT_NCHW ? (2 * c + 2) * s + 9 : (2 * s + 9) * c + 2;
    dirty.x.set(static_cast<std::size_t>(bad_at), std::numeric_limits<double>::quiet_NaN());
    const TrainingResult flat = constant.training(handle_, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, nullptr);
    EXPECT_EQ(flat.saved_mean[1], 0.7f);
    EXPECT_NEAR(flat.saved_invstd[1], 1.0 / std::sqrt(static_cast<double>(1e-5f)), 1e-4);  // var == 0
    for (std::size_t i = 0; i < flat.y.count(); ++i) ASSERT_FALSE(std::isnan(flat.y.get(i))) << i;
    const TrainingResult a = clean.training(handle_, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, nullptr);
    const TrainingResult b = dirty.training(handle_, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, nullptr);
    for (int64_t i = 0; i < n * c * s; ++i) {
      const int64_t channel = layout == CUNORM_LAYOUT_NCHW ? (i / s) % c : i % c;
      const double ya = a.y.get(static_cast<std::size_t>(i)), yb = b.y.get(static_cast<std::size_t>(i));
      if (channel == 2) {
        EXPECT_TRUE(std::isnan(yb)) << i;
      } else {
        EXPECT_EQ(ya, yb) << i;
      }
    }
  }
}

// M = N*S = 1: training forward and backward refuse it with PyTorch's message and write nothing;
// inference accepts it. An empty batch is a SUCCESS that writes nothing.
TEST_P(BatchNormEdge, SingleValueAndEmptyBatches) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  HostArray x = values(CUNORM_FLOAT32, {1, 2, 3, 4}), poison(CUNORM_FLOAT32, 4);
  poison.fill_bytes(0xa5);
  DeviceArray d_x(handle_, x), d_y(handle_, poison), d_stats(handle_, poison), d_rm(handle_, x), d_rv(handle_, x);
  EXPECT_EQ(cunormBatchNormForwardTraining(handle_, CUNORM_LAYOUT_NCHW, 1, 4, 1, CUNORM_FLOAT32, CUNORM_FLOAT32,
                                           d_x.data(), nullptr, nullptr, 1e-5f, 0.1f, d_rm.as_floats(),
                                           d_rv.as_floats(), d_y.data(), d_stats.as_floats(), nullptr),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_NE(
      std::string(cunormGetLastErrorMessage(handle_)).find("Expected more than 1 value per channel when training"),
      std::string::npos);
  EXPECT_EQ(
      cunormBatchNormBackward(handle_, CUNORM_LAYOUT_NHWC, 1, 4, 1, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(),
                              d_x.data(), nullptr, d_rm.as_floats(), d_rv.as_floats(), d_y.data(), nullptr, nullptr),
      CUNORM_STATUS_INVALID_VALUE);
  EXPECT_TRUE(d_y.download().bitwise_equal(poison));
  EXPECT_TRUE(d_stats.download().bitwise_equal(poison));
  EXPECT_TRUE(d_rm.download().bitwise_equal(x));
  EXPECT_EQ(
      cunormBatchNormForwardInference(handle_, CUNORM_LAYOUT_NCHW, 1, 4, 1, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(),
                                      nullptr, nullptr, d_rm.as_floats(), d_rv.as_floats(), 1e-5f, d_y.data()),
      CUNORM_STATUS_SUCCESS);
  EXPECT_FALSE(d_y.download().bitwise_equal(poison));
  // Empty batches: n == 0 or s == 0.
  DeviceArray d_out(handle_, poison);
  EXPECT_EQ(cunormBatchNormForwardTraining(handle_, CUNORM_LAYOUT_NHWC, 0, 4, 7, CUNORM_FLOAT32, CUNORM_FLOAT32,
                                           nullptr, nullptr, nullptr, 1e-5f, 0.1f, d_rm.as_floats(), d_rv.as_floats(),
                                           nullptr, d_out.as_floats(), nullptr),
            CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(
      cunormBatchNormBackward(handle_, CUNORM_LAYOUT_NCHW, 3, 4, 0, CUNORM_FLOAT32, CUNORM_FLOAT32, nullptr, nullptr,
                              nullptr, d_rm.as_floats(), d_rv.as_floats(), nullptr, d_out.data(), nullptr),
      CUNORM_STATUS_SUCCESS);
  EXPECT_TRUE(d_out.download().bitwise_equal(poison));
  EXPECT_TRUE(d_rm.download().bitwise_equal(x));
}

// The passes request x once per statistics pass and y once: 3S per element forward and 5S
// backward (plus per-channel terms), inference exactly 2S; vector paths coalesce.
TEST(BatchNormTraffic, BytesPerElementStayWithinTheirBounds) {
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  for (cunormLayout_t layout : {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC}) {
    for (const DtypePair& dtypes : kDtypePairs) {
      BatchNormCase bn(layout, dtypes, 4, 24, 300, true, 1e-5f, 5);
      const uint64_t tensor = bn.x.byte_size();
      simt::LaunchRecorder recorder;
      RunningStatistics running{std::vector<float>(24, 0.0f), std::vector<float>(24, 1.0f)};
      const TrainingResult trained = bn.training(handle, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, &running);
      auto sum = [&](const char* buffer, bool write) {
        uint64_t bytes = 0;
        for (const simt::LaunchRecord& r : recorder.records()) {
          for (const simt::BufferTraffic& t : r.buffers) {
            if (t.name == buffer) bytes += write ? t.bytes_written : t.bytes_read;
          }
        }
        return bytes;
      };
      EXPECT_EQ(sum("x", false), 2 * tensor) << bn.label();
      EXPECT_EQ(sum("y", true), tensor) << bn.label();
      EXPECT_EQ(sum("y", false), 0u) << bn.label();
      recorder.clear();
      bn.backward(handle, trained.saved_mean, trained.saved_invstd, true, true);
      EXPECT_EQ(sum("x", false) + sum("dy", false) + sum("dx", true), 5 * tensor) << bn.label();
      recorder.clear();
      bn.inference(handle, running);
      EXPECT_EQ(sum("x", false) + sum("y", true), 2 * tensor) << bn.label();
      recorder.clear();
      bn.backward_inference(handle, running, true, true);
      EXPECT_EQ(sum("x", false) + sum("dy", false) + sum("dx", true), 3 * tensor) << bn.label();
      // Every pass of the vector path coalesces: at least 90% of each sector it touches is used.
      recorder.clear();
      bn.training(handle, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, &running);
      for (const simt::LaunchRecord& r : recorder.records()) {
        if (r.label.parameter("vec") == 1) continue;
        for (const simt::BufferTraffic& t : r.buffers) {
          if (t.name == "x" || t.name == "y") {  // the activations; per-channel terms are a few floats
            EXPECT_GE(t.sector_efficiency(), 0.9) << r.name << " " << t.name;
          }
        }
      }
    }
  }
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

// The statistics and backward-reduction passes launch at least twice as many blocks as the GPU
// has SMs whenever the tensor has that many chunks of work (sm_90: 132 SMs), e.g. C = 64 with
// N*S = 50176 (ResNet-50's 56x56 layers at batch 16), where one block per channel would fill 64
// SMs, and C = 1 with a long channel.
TEST(BatchNormGrid, ReductionsUseTheWholeGpu) {
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  struct Case {
    cunormLayout_t layout;
    int64_t n, c, s;
  };
  for (const Case& k : {Case{CUNORM_LAYOUT_NCHW, 16, 64, 3136}, Case{CUNORM_LAYOUT_NHWC, 16, 64, 3136},
                        Case{CUNORM_LAYOUT_NCHW, 1, 1, 400000}, Case{CUNORM_LAYOUT_NHWC, 2, 3, 100000},
                        Case{CUNORM_LAYOUT_NCHW, 256, 2048, 1}}) {
    BatchNormCase bn(k.layout, DtypePair{CUNORM_FLOAT16, CUNORM_FLOAT32}, k.n, k.c, k.s, false, 1e-5f, 1);
    simt::LaunchRecorder recorder;
    const TrainingResult trained = bn.training(handle, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, nullptr);
    bn.backward(handle, trained.saved_mean, trained.saved_invstd, true, true);
    int reductions = 0;
    for (const simt::LaunchRecord& r : recorder.records()) {
      if (std::strcmp(r.label.suffix, "reduce") != 0) continue;
      ++reductions;
      EXPECT_GE(1ull * r.grid.x * r.grid.y * r.grid.z, 264u) << bn.label() << ": " << r.name;
    }
    EXPECT_EQ(reductions, 2) << bn.label();
  }
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

std::string backend_name(const ::testing::TestParamInfo<cunormBackend_t>& info) { return backend_label(info.param); }

INSTANTIATE_TEST_SUITE_P(All, BatchNormEdge, ::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA), backend_name);

}  // namespace
}  // namespace cunorm_test
