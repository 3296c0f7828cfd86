// Seeded fuzz of valid calls: random ops (LayerNorm and RMSNorm forward and backward, every
// BatchNorm entry point, calibration), dtype pairs, layouts, small sizes (empty row batches
// included), optional pointers present or not, eps, momentum and running-variance mode, on the
// handle's own workspace or a user workspace of exactly the size the ...WorkspaceSize query gives.
// Every result must match the float64 reference within the tolerance table of reference.hpp.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cunorm/reference.hpp"
#include "support/backend_fixture.hpp"
#include "support/batch_norm_case.hpp"
#include "support/compare.hpp"
#include "support/dtype_pair.hpp"
#include "support/fuzz_seed.hpp"
#include "support/row_norm_case.hpp"

namespace cunorm_test {
namespace {

constexpr int kCases = 400;

enum class Op { kRowForward, kRowBackward, kTraining, kInference, kBackward, kBackwardInference, kCalibration };
constexpr int kOpCount = 7;

int64_t uniform(std::mt19937_64& rng, int64_t low, int64_t high) {
  return std::uniform_int_distribution<int64_t>(low, high)(rng);
}
bool coin(std::mt19937_64& rng) { return std::bernoulli_distribution(0.5)(rng); }

RunningStatistics random_running(std::mt19937_64& rng, int64_t c) {
  RunningStatistics r;
  std::uniform_real_distribution<float> mean(-1.0f, 1.0f), var(0.5f, 2.0f);
  for (int64_t i = 0; i < c; ++i) {
    r.mean.push_back(mean(rng));
    r.var.push_back(var(rng));
  }
  return r;
}

class ApiFuzzValid : public ::testing::Test, protected BackendTest {
 protected:
  void SetUp() override { ASSERT_TRUE(open(CUNORM_BACKEND_SIMT)); }
  void TearDown() override {
    release_workspace();
    close();
  }

  // A user workspace of exactly `bytes` (none when 0).
  void use_workspace(size_t bytes) {
    if (bytes == 0) return;
    ASSERT_EQ(cunormMalloc(handle_, &workspace_, bytes), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormSetWorkspace(handle_, workspace_, bytes), CUNORM_STATUS_SUCCESS);
  }
  void release_workspace() {
    EXPECT_EQ(cunormSetWorkspace(handle_, nullptr, 0), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(cunormFree(handle_, workspace_), CUNORM_STATUS_SUCCESS);
    workspace_ = nullptr;
  }

  void row_case(std::mt19937_64& rng, bool backward, bool user_workspace, std::string* what) {
    const Norm norm = coin(rng) ? Norm::kLayerNorm : Norm::kRmsNorm;
    const DtypePair dtypes = kDtypePairs[uniform(rng, 0, 4)];
    const int64_t rows = uniform(rng, 0, 9), cols = coin(rng) ? uniform(rng, 1, 40) : uniform(rng, 41, 300);
    const bool affine = coin(rng), want_dgamma = coin(rng), want_dbeta = coin(rng);
    const float eps = std::vector<float>{0.0f, 1e-5f, 1e-3f, 0.1f}[static_cast<std::size_t>(uniform(rng, 0, 3))];
    *what =
        std::string(norm_label(norm)) + (backward ? " backward " : " forward ") + dtypes.label() + " " +
        std::to_string(rows) + "x" + std::to_string(cols) + (affine ? " affine" : "") + " eps " + std::to_string(eps) +
        (backward ? std::string(" dgamma ") + (want_dgamma ? "1" : "0") + " dbeta " + (want_dbeta ? "1" : "0") : "") +
        (user_workspace ? " user workspace" : "");
    SCOPED_TRACE(*what);
    const RowNormCase c(norm, dtypes, rows, cols, affine, eps, rng());
    if (user_workspace) {
      size_t bytes = 0;
      ASSERT_EQ(cunormLayerNormWorkspaceSize(handle_, rows, cols, dtypes.dtype, dtypes.param, &bytes),
                CUNORM_STATUS_SUCCESS);
      use_workspace(bytes);
    }
    const ForwardResult forward = c.forward(handle_);
    if (!backward) {
      c.expect_forward_matches_reference(forward);
      return;
    }
    const BackwardResult result = c.backward(handle_, forward, want_dgamma, want_dbeta);
    if (rows > 0) {
      c.expect_backward_matches_reference(forward, result);
      return;
    }
    // An empty batch writes nothing, dgamma and dbeta included (docs/api.md): still the
    // 0xff bytes RowNormCase put there.
    HostArray untouched(dtypes.param, static_cast<std::size_t>(cols));
    untouched.fill_bytes(0xff);
    EXPECT_TRUE(result.dgamma.count() == 0 || result.dgamma.bitwise_equal(untouched));
    EXPECT_TRUE(result.dbeta.count() == 0 || result.dbeta.bitwise_equal(untouched));
  }

  void batch_case(std::mt19937_64& rng, Op op, bool user_workspace, std::string* what) {
    const cunormLayout_t layout = coin(rng) ? CUNORM_LAYOUT_NCHW : CUNORM_LAYOUT_NHWC;
    const DtypePair dtypes = kDtypePairs[uniform(rng, 0, 4)];
    const int64_t n = uniform(rng, 1, 5), c = uniform(rng, 1, 9),
                  s = n == 1 ? uniform(rng, 2, 12) : uniform(rng, 1, 12);
    const bool affine = coin(rng), want_dgamma = coin(rng), want_dbeta = coin(rng), with_running = coin(rng);
    const float eps = std::vector<float>{1e-5f, 1e-3f, 0.1f}[static_cast<std::size_t>(uniform(rng, 0, 2))];
    const float momentum = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
    const cunormRunningVarMode_t mode = coin(rng) ? CUNORM_RUNNING_VAR_UNBIASED : CUNORM_RUNNING_VAR_BIASED;
    const BatchNormCase bn(layout, dtypes, n, c, s, affine, eps, rng());
    *what = "BatchNorm op " + std::to_string(static_cast<int>(op)) + " " + bn.label() + (affine ? " affine" : "") +
            " eps " + std::to_string(eps) + " momentum " + std::to_string(momentum) + " mode " + std::to_string(mode) +
            " running " + (with_running ? "1" : "0") + " dgamma " + (want_dgamma ? "1" : "0") + " dbeta " +
            (want_dbeta ? "1" : "0") + (user_workspace ? " user workspace" : "");
    SCOPED_TRACE(*what);
    if (user_workspace) {
      size_t bytes = 0;
      ASSERT_EQ(cunormBatchNormWorkspaceSize(handle_, layout, n, c, s, dtypes.dtype, dtypes.param, &bytes),
                CUNORM_STATUS_SUCCESS);
      use_workspace(bytes);
    }
    const RunningStatistics running = random_running(rng, c);
    switch (op) {
      case Op::kTraining:
        bn.expect_training_matches_reference(momentum, mode, with_running ? &running : nullptr,
                                             bn.training(handle_, momentum, mode, with_running ? &running : nullptr));
        break;
      case Op::kInference: bn.expect_inference_matches_reference(running, bn.inference(handle_, running)); break;
      case Op::kBackward: {
        const TrainingResult saved = bn.training(handle_, momentum, mode, nullptr);
        bn.expect_backward_matches_reference(
            saved.saved_mean, saved.saved_invstd,
            bn.backward(handle_, saved.saved_mean, saved.saved_invstd, want_dgamma, want_dbeta));
        break;
      }
      case Op::kBackwardInference:
        bn.expect_backward_inference_matches_reference(
            running, bn.backward_inference(handle_, running, want_dgamma, want_dbeta));
        break;
      default: FAIL() << "not a BatchNorm op";
    }
  }

  // One to three batches of one channel count, finalized, against the float64 accumulator.
  void calibration_case(std::mt19937_64& rng, std::string* what) {
    const cunormLayout_t layout = coin(rng) ? CUNORM_LAYOUT_NCHW : CUNORM_LAYOUT_NHWC;
    const cunormDataType_t dtype = kDtypePairs[uniform(rng, 0, 4)].dtype;
    const int64_t c = uniform(rng, 1, 9), batches = uniform(rng, 1, 3);
    *what = std::string("calibration ") + (layout == CUNORM_LAYOUT_NCHW ? "NCHW " : "NHWC ") + short_name(dtype) +
            " c" + std::to_string(c) + " batches";
    cunormBatchNormCalibration_t calib = nullptr;
    ASSERT_EQ(cunormBatchNormCalibrationCreate(handle_, c, &calib), CUNORM_STATUS_SUCCESS);
    cunorm::reference::BatchNormCalibration reference(c);
    for (int64_t b = 0; b < batches; ++b) {
      const int64_t n = uniform(rng, 0, 5), s = uniform(rng, 1, 12);
      *what += " " + std::to_string(n) + "x" + std::to_string(s);
      const BatchNormCase bn(layout, DtypePair{dtype, CUNORM_FLOAT32}, n, c, s, false, 1e-5f, rng());
      const DeviceArray d_x(handle_, bn.x);
      ASSERT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calib, layout, n, s, dtype, d_x.data()),
                CUNORM_STATUS_SUCCESS)
          << *what << ": " << cunormGetLastErrorMessage(handle_);
      const std::vector<double> xs = bn.x.to_doubles();
      reference.accumulate(layout, n, s, xs.data());
    }
    SCOPED_TRACE(*what);
    HostArray poison(CUNORM_FLOAT32, static_cast<std::size_t>(c));
    poison.fill_bytes(0xa5);
    const DeviceArray d_mean(handle_, poison), d_var(handle_, poison);
    const cunormStatus_t status =
        cunormBatchNormCalibrationFinalize(handle_, calib, d_mean.as_floats(), d_var.as_floats());
    if (reference.count() < 2) {  // too few values: INVALID_VALUE, nothing written
      EXPECT_EQ(status, CUNORM_STATUS_INVALID_VALUE);
      EXPECT_TRUE(d_mean.download().bitwise_equal(poison));
      EXPECT_TRUE(d_var.download().bitwise_equal(poison));
    } else {
      EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle_);
      std::vector<double> mean(static_cast<std::size_t>(c)), var(static_cast<std::size_t>(c));
      reference.finalize(mean.data(), var.data());
      const HostArray got_mean = d_mean.download(), got_var = d_var.download();
      expect_array_close("mean", got_mean, mean, cunorm::reference::statistics_tolerance());
      expect_array_close("var", got_var, var, cunorm::reference::statistics_tolerance());
    }
    EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle_, calib), CUNORM_STATUS_SUCCESS);
  }

  void* workspace_ = nullptr;
};

TEST_F(ApiFuzzValid, ValidCallsMatchTheReference) {
  const std::uint64_t seed = fuzz_seed(20261123);
  std::mt19937_64 rng(seed);
  std::vector<int> per_op(kOpCount, 0);
  for (int index = 0; index < kCases; ++index) {
    const Op op = static_cast<Op>(uniform(rng, 0, kOpCount - 1));
    const bool user_workspace = op != Op::kCalibration && uniform(rng, 0, 2) == 0;
    ++per_op[static_cast<int>(op)];
    std::string what;
    if (op == Op::kRowForward || op == Op::kRowBackward) {
      row_case(rng, op == Op::kRowBackward, user_workspace, &what);
    } else if (op == Op::kCalibration) {
      calibration_case(rng, &what);
    } else {
      batch_case(rng, op, user_workspace, &what);
    }
    release_workspace();
    if (HasFailure()) {
      ADD_FAILURE() << fuzz_trace(seed, index, what);
      return;
    }
  }
  for (int op = 0; op < kOpCount; ++op) EXPECT_GT(per_op[op], 0) << "op " << op << " never ran";
  std::printf("%d cases\n", kCases);
}

}  // namespace
}  // namespace cunorm_test
