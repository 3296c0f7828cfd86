// Every op of the C API against ATen (PyTorch's tensor library, Debian's libtorch-dev) on the CPU
// in float64: an oracle no one on this project wrote, so a misreading of PyTorch's semantics
// shared by the kernels and include/cunorm/reference.hpp shows up here.
//
//   LayerNorm forward, backward   at::native_layer_norm, at::native_layer_norm_backward
//   RMSNorm forward, backward     composed from ATen ops, differentiated by ATen's autograd
//   BatchNorm training forward    at::native_batch_norm(training), running statistics included;
//                                 the biased running variance (ONNX's, Keras') from at::var
//   BatchNorm inference forward   at::native_batch_norm(eval)
//   BatchNorm backward, both      at::native_batch_norm_backward(train and eval)
//   calibration                   at::mean and at::var (unbiased) over the concatenated batches
//
// Seeded random cases (520 per backend) span every dtype pair, both layouts, affine and not, and
// row lengths and channel sizes that reach every kernel variant. Both sides see the same rounded
// inputs; each side's backward runs from its own forward's statistics, so the comparison is end to
// end. Errors are judged with the project's one tolerance table (cunorm::reference), plus, for
// parameter gradients, the float32 summation bound the reference tests allow. The suite prints the
// worst error per op and dtype pair. CUDA cases run when a GPU is usable and are skipped with the
// reason otherwise.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "aten_oracle_cases.hpp"
#include "cunorm/reference.hpp"
#include "support/backend_fixture.hpp"
#include "support/batch_norm_case.hpp"
#include "support/dtype_pair.hpp"
#include "support/row_norm_case.hpp"

namespace cunorm_test {
namespace {

using cunorm::reference::output_tolerance;
using cunorm::reference::statistics_tolerance;
using cunorm::reference::Tolerance;

constexpr int kLayerNormCases = 130;
constexpr int kRmsNormCases = 130;
constexpr int kBatchNormCases = 200;
constexpr int kCalibrationCases = 60;

// ---- The worst error of each (backend, op, dtype pair) over every case and output ----------------

enum class Op {
  kLayerNormForward,
  kLayerNormBackward,
  kRmsNormForward,
  kRmsNormBackward,
  kBatchNormForwardTraining,
  kBatchNormForwardTrainingBiased,
  kBatchNormForwardInference,
  kBatchNormBackward,
  kBatchNormBackwardInference,
  kBatchNormCalibration,
};

const char* op_name(Op op) {
  switch (op) {
    case Op::kLayerNormForward: return "cunormLayerNormForward";
    case Op::kLayerNormBackward: return "cunormLayerNormBackward";
    case Op::kRmsNormForward: return "cunormRMSNormForward";
    case Op::kRmsNormBackward: return "cunormRMSNormBackward";
    case Op::kBatchNormForwardTraining: return "cunormBatchNormForwardTraining";
    case Op::kBatchNormForwardTrainingBiased: return "cunormBatchNormForwardTrainingEx BIASED";
    case Op::kBatchNormForwardInference: return "cunormBatchNormForwardInference";
    case Op::kBatchNormBackward: return "cunormBatchNormBackward";
    case Op::kBatchNormBackwardInference: return "cunormBatchNormBackwardInference";
    default: return "cunormBatchNormCalibration";
  }
}

struct Worst {
  int cases = 0;
  double error = 0.0;  // |cunorm - ATen|
  std::string error_output;
  double fraction = 0.0;  // error / allowed error
  std::string fraction_output;
};

using WorstKey = std::tuple<std::string, Op, std::string>;  // backend, op, dtypes
std::map<WorstKey, Worst>& worst_table() {
  static std::map<WorstKey, Worst> table;
  return table;
}

std::map<std::string, int>& cases_run() {
  static std::map<std::string, int> runs;
  return runs;
}

// The checks of one op in one case: every element within the tolerance (plus its slack), failures
// reported like compare.hpp's expect_close, the worst error kept for the summary.
class OpCheck {
 public:
  OpCheck(cunormBackend_t backend, Op op, const std::string& dtypes)
      : worst_(worst_table()[WorstKey{backend_label(backend), op, dtypes}]), op_(op) {
    ++worst_.cases;
  }

  // `expected` holds ATen's values in the library's element order; `slack` (undefined, or one value
  // per element) is a float32 summation bound added to the tolerance.
  void expect(const char* output, const HostArray& actual, const at::Tensor& expected, const Tolerance& tolerance,
              const at::Tensor& slack = at::Tensor()) {
    expect_values(
        output, actual.count(), [&](std::size_t i) { return actual.get(i); }, expected, tolerance, slack);
  }
  void expect(const char* output, const std::vector<float>& actual, const at::Tensor& expected,
              const Tolerance& tolerance) {
    expect_values(
        output, actual.size(), [&](std::size_t i) { return static_cast<double>(actual[i]); }, expected, tolerance,
        at::Tensor());
  }

 private:
  template <class Actual>
  void expect_values(const char* output, std::size_t count, Actual actual, const at::Tensor& expected,
                     const Tolerance& tolerance, const at::Tensor& slack) {
    const at::Tensor e = expected.reshape({-1}).contiguous();
    ASSERT_EQ(static_cast<std::size_t>(e.numel()), count) << op_name(op_) << " " << output;
    const at::Tensor s = slack.defined() ? slack.reshape({-1}).contiguous() : at::zeros_like(e);
    const double* ev = e.data_ptr<double>();
    const double* sv = s.data_ptr<double>();
    std::size_t bad = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const double a = actual(i), want = ev[i];
      const double error = std::isnan(want) ? (std::isnan(a) ? 0.0 : INFINITY) : std::abs(a - want);
      const double allowed = tolerance.allowed(want) + sv[i];
      if (error > worst_.error) {
        worst_.error = error;
        worst_.error_output = output;
      }
      if (error / allowed > worst_.fraction) {
        worst_.fraction = error / allowed;
        worst_.fraction_output = output;
      }
      if (error <= allowed) continue;
      if (++bad <= 3) ADD_FAILURE() << op_name(op_) << " " << output << "[" << i << "] = " << a << ", ATen " << want;
    }
    EXPECT_EQ(bad, 0u) << op_name(op_) << " " << output << ": " << bad << " of " << count
                       << " elements outside the tolerance";
  }

  Worst& worst_;
  Op op_;
};

// ---- Tensors ----------------------------------------------------------------------------------------

at::Tensor doubles(std::vector<double> values) {
  return at::from_blob(values.data(), {static_cast<int64_t>(values.size())}, at::kDouble).clone();
}
at::Tensor doubles(const HostArray& array) { return doubles(array.to_doubles()); }
at::Tensor doubles(const std::vector<float>& values) {
  return doubles(std::vector<double>(values.begin(), values.end()));
}

// A BatchNorm buffer of the layout as ATen's (N, C, S), and back.
at::Tensor to_ncs(const HostArray& array, cunormLayout_t layout, int64_t n, int64_t c, int64_t s) {
  const at::Tensor flat = doubles(array);
  return layout == CUNORM_LAYOUT_NCHW ? flat.reshape({n, c, s})
                                      : flat.reshape({n, s, c}).permute({0, 2, 1}).contiguous();
}
at::Tensor in_layout(const at::Tensor& ncs, cunormLayout_t layout) {
  return layout == CUNORM_LAYOUT_NCHW ? ncs.contiguous() : ncs.permute({0, 2, 1}).contiguous();
}

// A float32 sum of m terms is within (min(m, 512) + 8) 2^-23 sum|term| of the exact sum for the
// BatchNorm reductions (tests/support/batch_norm_case.cpp), (rows + 8) 2^-23 sum|term| for the
// row norms' parameter gradients (tests/support/row_norm_case.cpp).
double batch_norm_summation_factor(int64_t m) {
  return (static_cast<double>(std::min<int64_t>(m, 512)) + 8.0) * std::ldexp(1.0, -23);
}
double row_norm_summation_factor(int64_t rows) { return (static_cast<double>(rows) + 8.0) * std::ldexp(1.0, -23); }

// The dimensions of (N, C, S) that BatchNorm reduces: per-channel sums.
const int64_t kBatchAndSpatialDims[] = {0, 2};
const at::IntArrayRef kBatchAndSpatial(kBatchAndSpatialDims);

// ---- Tests -------------------------------------------------------------------------------------------

using Param = std::tuple<cunormBackend_t, int>;

class Oracle : public BackendParamTest<Param> {
 protected:
  void count_case() { ++cases_run()[backend_label(std::get<0>(GetParam()))]; }
};

class LayerNormOracle : public Oracle {};
class RmsNormOracle : public Oracle {};
class BatchNormOracle : public Oracle {};
class CalibrationOracle : public Oracle {};

TEST_P(LayerNormOracle, ForwardAndBackwardMatchATen) {
  const auto [backend, index] = GetParam();
  CUNORM_OPEN_BACKEND_OR_SKIP(backend);
  const RowShape shape = row_shape(Norm::kLayerNorm, index);
  const RowNormCase problem(Norm::kLayerNorm, shape.dtypes, shape.rows, shape.cols, shape.affine, shape.eps,
                            shape.seed);
  const ForwardResult forward = problem.forward(handle_);
  const BackwardResult backward = problem.backward(handle_, forward, true, true);

  const int64_t rows = shape.rows, cols = shape.cols;
  const double eps = static_cast<double>(shape.eps);
  const at::Tensor x = doubles(problem.x).reshape({rows, cols}), dy = doubles(problem.dy).reshape({rows, cols});
  const at::Tensor gamma = shape.affine ? doubles(problem.gamma) : at::Tensor();
  const at::Tensor beta = shape.affine ? doubles(problem.beta) : at::Tensor();
  const auto [y, mean, rstd] = at::native_layer_norm(x, {cols}, gamma, beta, eps);
  OpCheck fwd(backend, Op::kLayerNormForward, shape.dtypes.label());
  fwd.expect("y", forward.y, y, output_tolerance(shape.dtypes.dtype));
  fwd.expect("mean", forward.mean, mean, statistics_tolerance());
  fwd.expect("rstd", forward.rstd, rstd, statistics_tolerance());

  // ATen's native_layer_norm_backward cannot form dgamma without a weight (it throws); the
  // library's for an absent gamma and beta are those of gamma = 1, beta = 0.
  const at::Tensor weight = shape.affine ? gamma : at::ones({cols}, at::kDouble);
  const at::Tensor bias = shape.affine ? beta : at::zeros({cols}, at::kDouble);
  const auto [dx, dgamma, dbeta] =
      at::native_layer_norm_backward(dy, x, {cols}, mean, rstd, weight, bias, {true, true, true});
  const double factor = row_norm_summation_factor(rows);
  const at::Tensor xhat = (x - mean) * rstd;
  OpCheck bwd(backend, Op::kLayerNormBackward, shape.dtypes.label());
  bwd.expect("dx", backward.dx, dx, output_tolerance(shape.dtypes.dtype));
  bwd.expect("dgamma", backward.dgamma, dgamma, output_tolerance(shape.dtypes.param),
             (dy * xhat).abs().sum(0) * factor);
  bwd.expect("dbeta", backward.dbeta, dbeta, output_tolerance(shape.dtypes.param), dy.abs().sum(0) * factor);
  count_case();
}

TEST_P(RmsNormOracle, ForwardAndAutogradBackwardMatchATen) {
  const auto [backend, index] = GetParam();
  CUNORM_OPEN_BACKEND_OR_SKIP(backend);
  const RowShape shape = row_shape(Norm::kRmsNorm, index);
  const RowNormCase problem(Norm::kRmsNorm, shape.dtypes, shape.rows, shape.cols, shape.affine, shape.eps, shape.seed);
  const ForwardResult forward = problem.forward(handle_);
  const BackwardResult backward = problem.backward(handle_, forward, true, false);

  const int64_t rows = shape.rows, cols = shape.cols;
  const at::Tensor x = doubles(problem.x).reshape({rows, cols}).requires_grad_(true);
  const at::Tensor dy = doubles(problem.dy).reshape({rows, cols});
  // gamma = 1 when not affine: the same y, and the dgamma the library gives for an absent gamma.
  const at::Tensor gamma = (shape.affine ? doubles(problem.gamma) : at::ones({cols}, at::kDouble)).requires_grad_(true);
  const at::Tensor rrms = at::rsqrt(x.pow(2).mean({1}, /*keepdim=*/true) + static_cast<double>(shape.eps));
  const at::Tensor y = x * rrms * gamma;
  y.backward(dy);
  OpCheck fwd(backend, Op::kRmsNormForward, shape.dtypes.label());
  fwd.expect("y", forward.y, y.detach(), output_tolerance(shape.dtypes.dtype));
  fwd.expect("rrms", forward.rstd, rrms.detach(), statistics_tolerance());

  OpCheck bwd(backend, Op::kRmsNormBackward, shape.dtypes.label());
  bwd.expect("dx", backward.dx, x.grad(), output_tolerance(shape.dtypes.dtype));
  bwd.expect("dgamma", backward.dgamma, gamma.grad(), output_tolerance(shape.dtypes.param),
             (dy * x.detach() * rrms.detach()).abs().sum(0) * row_norm_summation_factor(rows));
  count_case();
}

TEST_P(BatchNormOracle, TrainingInferenceAndBothBackwardsMatchATen) {
  const auto [backend, index] = GetParam();
  CUNORM_OPEN_BACKEND_OR_SKIP(backend);
  const BatchShape shape = batch_shape(index);
  const BatchNormCase problem(shape.layout, shape.dtypes, shape.n, shape.c, shape.s, shape.affine, shape.eps,
                              shape.seed);
  const RunningStatistics running = random_running(shape.c, shape.seed + 1);
  const TrainingResult trained = problem.training(handle_, shape.momentum, CUNORM_RUNNING_VAR_UNBIASED, &running);
  const GradientResult grads = problem.backward(handle_, trained.saved_mean, trained.saved_invstd, true, true);
  const HostArray inferred = problem.inference(handle_, running);
  const GradientResult frozen = problem.backward_inference(handle_, running, true, true);

  const int64_t n = shape.n, c = shape.c, s = shape.s;
  const double eps = static_cast<double>(shape.eps), momentum = static_cast<double>(shape.momentum);
  const std::string dtypes = shape.dtypes.label();
  const auto activations = output_tolerance(shape.dtypes.dtype), params = output_tolerance(shape.dtypes.param);
  const at::Tensor x = to_ncs(problem.x, shape.layout, n, c, s), dy = to_ncs(problem.dy, shape.layout, n, c, s);
  const at::Tensor gamma = shape.affine ? doubles(problem.gamma) : at::Tensor();
  const at::Tensor beta = shape.affine ? doubles(problem.beta) : at::Tensor();
  const at::Tensor running_mean = doubles(running.mean), running_var = doubles(running.var);
  const double factor = batch_norm_summation_factor(n * s);
  const auto per_channel = [&](const at::Tensor& v) { return v.reshape({1, c, 1}); };

  // native_batch_norm updates the running statistics it is given in place: give it copies.
  const at::Tensor updated_mean = running_mean.clone(), updated_var = running_var.clone();
  const auto [y, save_mean, save_invstd] =
      at::native_batch_norm(x, gamma, beta, updated_mean, updated_var, true, momentum, eps);
  OpCheck train(backend, Op::kBatchNormForwardTraining, dtypes);
  train.expect("y", trained.y, in_layout(y, shape.layout), activations);
  train.expect("saved_mean", trained.saved_mean, save_mean, statistics_tolerance());
  train.expect("saved_invstd", trained.saved_invstd, save_invstd, statistics_tolerance());
  train.expect("running_mean", trained.running_mean, updated_mean, statistics_tolerance());
  train.expect("running_var", trained.running_var, updated_var, statistics_tolerance());

  // The same batch with CUNORM_RUNNING_VAR_BIASED. ATen has no such update; it is composed from the
  // biased batch variance.
  const TrainingResult biased = problem.training(handle_, shape.momentum, CUNORM_RUNNING_VAR_BIASED, &running);
  OpCheck train_biased(backend, Op::kBatchNormForwardTrainingBiased, dtypes);
  train_biased.expect("y", biased.y, in_layout(y, shape.layout), activations);
  train_biased.expect("running_mean", biased.running_mean, updated_mean, statistics_tolerance());
  train_biased.expect("running_var", biased.running_var,
                      running_var * (1.0 - momentum) + x.var(kBatchAndSpatial, /*unbiased=*/false) * momentum,
                      statistics_tolerance());

  const auto [dx, dgamma, dbeta] = at::native_batch_norm_backward(dy, x, gamma, at::Tensor(), at::Tensor(), save_mean,
                                                                  save_invstd, true, eps, {true, true, true});
  const at::Tensor xhat = (x - per_channel(save_mean)) * per_channel(save_invstd);
  OpCheck backward(backend, Op::kBatchNormBackward, dtypes);
  backward.expect("dx", grads.dx, in_layout(dx, shape.layout), activations);
  backward.expect("dgamma", grads.dgamma, dgamma, params, (dy * xhat).abs().sum(kBatchAndSpatial) * factor);
  backward.expect("dbeta", grads.dbeta, dbeta, params, dy.abs().sum(kBatchAndSpatial) * factor);

  const at::Tensor y_eval =
      std::get<0>(at::native_batch_norm(x, gamma, beta, running_mean, running_var, false, momentum, eps));
  OpCheck inference(backend, Op::kBatchNormForwardInference, dtypes);
  inference.expect("y", inferred, in_layout(y_eval, shape.layout), activations);

  const auto [dx_eval, dgamma_eval, dbeta_eval] = at::native_batch_norm_backward(
      dy, x, gamma, running_mean, running_var, at::Tensor(), at::Tensor(), false, eps, {true, true, true});
  const at::Tensor xhat_eval = (x - per_channel(running_mean)) * per_channel(at::rsqrt(running_var + eps));
  OpCheck frozen_check(backend, Op::kBatchNormBackwardInference, dtypes);
  frozen_check.expect("dx", frozen.dx, in_layout(dx_eval, shape.layout), activations);
  frozen_check.expect("dgamma", frozen.dgamma, dgamma_eval, params,
                      (dy * xhat_eval).abs().sum(kBatchAndSpatial) * factor);
  frozen_check.expect("dbeta", frozen.dbeta, dbeta_eval, params, dy.abs().sum(kBatchAndSpatial) * factor);
  count_case();
}

TEST_P(CalibrationOracle, PopulationStatisticsMatchATenOverConcatenatedBatches) {
  const auto [backend, index] = GetParam();
  CUNORM_OPEN_BACKEND_OR_SKIP(backend);
  const CalibrationShape shape = calibration_shape(index);
  cunormBatchNormCalibration_t calibration = nullptr;
  ASSERT_EQ(cunormBatchNormCalibrationCreate(handle_, shape.c, &calibration), CUNORM_STATUS_SUCCESS)
      << cunormGetLastErrorMessage(handle_);
  std::vector<at::Tensor> batches;
  for (std::size_t b = 0; b < shape.batch_n.size(); ++b) {
    // Each batch draws its own per-channel centres, so the merge of unlike batches is exercised.
    const BatchNormCase batch(shape.layout, {shape.dtype, shape.dtype}, shape.batch_n[b], shape.c, shape.s, false,
                              1e-5f, shape.seed + b);
    const DeviceArray d_x(handle_, batch.x);
    EXPECT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calibration, shape.layout, shape.batch_n[b], shape.s,
                                                   shape.dtype, d_x.data()),
              CUNORM_STATUS_SUCCESS)
        << cunormGetLastErrorMessage(handle_);
    batches.push_back(to_ncs(batch.x, shape.layout, shape.batch_n[b], shape.c, shape.s));
  }
  HostArray poison(CUNORM_FLOAT32, static_cast<std::size_t>(shape.c));
  poison.fill_bytes(0xff);
  const DeviceArray d_mean(handle_, poison), d_var(handle_, poison);
  EXPECT_EQ(cunormBatchNormCalibrationFinalize(handle_, calibration, d_mean.as_floats(), d_var.as_floats()),
            CUNORM_STATUS_SUCCESS)
      << cunormGetLastErrorMessage(handle_);
  EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle_, calibration), CUNORM_STATUS_SUCCESS);

  const at::Tensor all = at::cat(batches, 0);
  OpCheck check(backend, Op::kBatchNormCalibration, short_name(shape.dtype));
  check.expect("running_mean", d_mean.download(), all.mean(kBatchAndSpatial), statistics_tolerance());
  check.expect("running_var", d_var.download(), all.var(kBatchAndSpatial, /*unbiased=*/true), statistics_tolerance());
  count_case();
}

// ---- Instantiation and summary ---------------------------------------------------------------------

const auto kBackends = ::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA);

std::string row_name(Norm norm, const ::testing::TestParamInfo<Param>& info) {
  const RowShape shape = row_shape(norm, std::get<1>(info.param));
  return std::string(backend_label(std::get<0>(info.param))) + "_" + std::to_string(std::get<1>(info.param)) + "_" +
         shape.dtypes.label() + (shape.affine ? "_affine_" : "_plain_") + std::to_string(shape.rows) + "x" +
         std::to_string(shape.cols);
}
std::string layer_norm_name(const ::testing::TestParamInfo<Param>& info) { return row_name(Norm::kLayerNorm, info); }
std::string rms_norm_name(const ::testing::TestParamInfo<Param>& info) { return row_name(Norm::kRmsNorm, info); }
std::string batch_norm_name(const ::testing::TestParamInfo<Param>& info) {
  const BatchShape b = batch_shape(std::get<1>(info.param));
  return std::string(backend_label(std::get<0>(info.param))) + "_" + std::to_string(std::get<1>(info.param)) + "_" +
         (b.layout == CUNORM_LAYOUT_NCHW ? "NCHW_" : "NHWC_") + b.dtypes.label() + (b.affine ? "_affine_" : "_plain_") +
         std::to_string(b.n) + "x" + std::to_string(b.c) + "x" + std::to_string(b.s);
}
std::string calibration_name(const ::testing::TestParamInfo<Param>& info) {
  const CalibrationShape k = calibration_shape(std::get<1>(info.param));
  return std::string(backend_label(std::get<0>(info.param))) + "_" + std::to_string(std::get<1>(info.param)) + "_" +
         (k.layout == CUNORM_LAYOUT_NCHW ? "NCHW_" : "NHWC_") + short_name(k.dtype) + "_" +
         std::to_string(k.batch_n.size()) + "_batches";
}

INSTANTIATE_TEST_SUITE_P(Seeded, LayerNormOracle, ::testing::Combine(kBackends, ::testing::Range(0, kLayerNormCases)),
                         layer_norm_name);
INSTANTIATE_TEST_SUITE_P(Seeded, RmsNormOracle, ::testing::Combine(kBackends, ::testing::Range(0, kRmsNormCases)),
                         rms_norm_name);
INSTANTIATE_TEST_SUITE_P(Seeded, BatchNormOracle, ::testing::Combine(kBackends, ::testing::Range(0, kBatchNormCases)),
                         batch_norm_name);
INSTANTIATE_TEST_SUITE_P(Seeded, CalibrationOracle,
                         ::testing::Combine(kBackends, ::testing::Range(0, kCalibrationCases)), calibration_name);

// Prints, after every test, the worst error of each op and dtype pair on each backend that ran.
class Summary : public ::testing::Environment {
 public:
  void TearDown() override {
    std::printf(
        "== ATen oracle: worst |cunorm - ATen float64| per op and dtype pair, and the worst error as a\n"
        "== fraction of the allowed error (tolerance table + summation bound), each with its output\n");
    std::printf("%-7s %-40s %-9s %6s %12s %-14s %10s %s\n", "backend", "op", "dtypes", "cases", "worst error",
                "(output)", "of allowed", "(output)");
    for (const auto& [key, worst] : worst_table()) {
      const auto& [backend, op, dtypes] = key;
      std::printf("%-7s %-40s %-9s %6d %12.3e %-14s %10.4f %s\n", backend.c_str(), op_name(op), dtypes.c_str(),
                  worst.cases, worst.error, ("(" + worst.error_output + ")").c_str(), worst.fraction,
                  ("(" + worst.fraction_output + ")").c_str());
    }
    std::printf("== %d seeded cases per backend (%d LayerNorm, %d RMSNorm, %d BatchNorm, %d calibration)\n",
                kLayerNormCases + kRmsNormCases + kBatchNormCases + kCalibrationCases, kLayerNormCases, kRmsNormCases,
                kBatchNormCases, kCalibrationCases);
    for (const char* backend : {"SIMT", "CUDA"}) {
      const int ran = cases_run()[backend];
      std::printf("== %s: %d cases ran%s\n", backend, ran,
                  ran == 0 ? " (every case skipped: the reason is in the test log)" : "");
    }
    std::printf("== end of ATen oracle summary\n");
  }
};

}  // namespace
}  // namespace cunorm_test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new cunorm_test::Summary);
  return RUN_ALL_TESTS();
}
