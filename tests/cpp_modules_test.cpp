// The C++ layer (cunorm.hpp) through its public headers only, on the SIMT backend: the
// LayerNorm and RMSNorm modules against the float64 reference (fed the statistics the module
// saved), PyTorch's parameter initialization and default RMSNorm epsilon, and the parameters'
// gradients and saved statistics. cpp_modules_api_test.cpp has the errors, the handle and moves.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cunorm/cunorm.hpp"
#include "cunorm/reference.hpp"
#include "support/compare.hpp"
#include "support/module_helpers.hpp"

namespace {

using cunorm::reference::Tolerance;
using cunorm_test::download;
using cunorm_test::expect_close;
using cunorm_test::kNoParam;
using cunorm_test::random_floats;
using cunorm_test::upload;

constexpr double kFloat32Eps = 1.1920928955078125e-07;  // torch.finfo(torch.float32).eps
constexpr int64_t kRows = 6;                            // a (2, 3) batch in front of normalized_shape

// dgamma and dbeta sum `rows` float32 terms: whatever the order, the sum is within
// (rows + 8) * 2^-23 * sum(|term|) of the exact one. term(r, j) gives each term.
template <class Term>
std::vector<double> summation_slack(int64_t rows, int64_t cols, Term term) {
  std::vector<double> slack(static_cast<std::size_t>(cols), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) slack[static_cast<std::size_t>(j)] += std::abs(term(r, j));
  }
  for (double& s : slack) s *= (static_cast<double>(rows) + 8.0) * std::ldexp(1.0, -23);
  return slack;
}

std::string shape_label(const std::vector<int64_t>& shape) {
  std::string label;
  for (int64_t d : shape) label += (label.empty() ? "" : "x") + std::to_string(d);
  return label;
}

const std::vector<int64_t> kShapes[] = {{64}, {3, 5}, {1000}};

// ---- LayerNorm against the reference ---------------------------------------------------------

using LayerNormParam = std::tuple<std::vector<int64_t>, bool, bool>;  // shape, elementwise_affine, bias

class LayerNormModule : public ::testing::TestWithParam<LayerNormParam> {};

TEST_P(LayerNormModule, ForwardAndBackwardMatchReference) {
  const auto& [shape, affine, with_bias] = GetParam();
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, shape, 1e-2, affine, with_bias);  // an eps that shows in rstd
  int64_t cols = 1;
  for (int64_t d : shape) cols *= d;
  ASSERT_EQ(ln.normalized_size(), cols);
  const std::size_t n = static_cast<std::size_t>(cols), numel = static_cast<std::size_t>(kRows * cols);
  const bool has_bias = affine && with_bias;
  ASSERT_EQ(ln.weight() != nullptr, affine);
  ASSERT_EQ(ln.weight_grad() != nullptr, affine);
  ASSERT_EQ(ln.bias() != nullptr, has_bias);
  ASSERT_EQ(ln.bias_grad() != nullptr, has_bias);

  std::vector<float> gamma, beta;
  if (affine) {
    EXPECT_EQ(download<float>(handle, ln.weight(), n), std::vector<float>(n, 1.0f));  // reset_parameters
    gamma = random_floats(n, 0.5, 1.5, 11);
    upload(handle, ln.weight(), gamma);
  }
  if (has_bias) {
    EXPECT_EQ(download<float>(handle, ln.bias(), n), std::vector<float>(n, 0.0f));
    beta = random_floats(n, -0.5, 0.5, 12);
    upload(handle, ln.bias(), beta);
  }
  const std::vector<float> x = random_floats(numel, -1.0, 3.0, 13), dy = random_floats(numel, -1.0, 1.0, 14);
  cunorm::DeviceBuffer d_x(handle, numel * sizeof(float)), d_y(handle, numel * sizeof(float)),
      d_dy(handle, numel * sizeof(float)), d_dx(handle, numel * sizeof(float));
  d_x.upload(x);
  d_dy.upload(dy);

  ln.forward(d_x.data(), d_y.data(), static_cast<int64_t>(numel), CUNORM_FLOAT32);
  const std::vector<float> mean = download<float>(handle, ln.saved_mean(), kRows);
  const std::vector<float> rstd = download<float>(handle, ln.saved_rstd(), kRows);
  std::vector<double> y_ref(numel), mean_ref(kRows), rstd_ref(kRows);
  const float* g = affine ? gamma.data() : kNoParam;
  const float* b = has_bias ? beta.data() : kNoParam;
  cunorm::reference::layer_norm_forward(kRows, cols, x.data(), g, b, static_cast<float>(ln.eps()), y_ref.data(),
                                        mean_ref.data(), rstd_ref.data());
  expect_close("y", d_y.download<float>(numel), y_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  expect_close("mean", mean, mean_ref, cunorm::reference::statistics_tolerance());
  expect_close("rstd", rstd, rstd_ref, cunorm::reference::statistics_tolerance());

  ln.backward(d_dy.data(), d_dx.data());
  std::vector<double> dx_ref(numel), dgamma_ref(n), dbeta_ref(n);
  cunorm::reference::layer_norm_backward(kRows, cols, dy.data(), x.data(), mean.data(), rstd.data(), g, dx_ref.data(),
                                         dgamma_ref.data(), dbeta_ref.data());
  expect_close("dx", d_dx.download<float>(numel), dx_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  const auto at = [&](int64_t r, int64_t j) { return static_cast<std::size_t>(r * cols + j); };
  if (affine) {
    const auto slack = summation_slack(kRows, cols, [&](int64_t r, int64_t j) {
      return dy[at(r, j)] * (x[at(r, j)] - mean[static_cast<std::size_t>(r)]) * rstd[static_cast<std::size_t>(r)];
    });
    expect_close("dgamma", download<float>(handle, ln.weight_grad(), n), dgamma_ref,
                 cunorm::reference::output_tolerance(CUNORM_FLOAT32), slack);
  }
  if (has_bias) {
    const auto slack = summation_slack(kRows, cols, [&](int64_t r, int64_t j) { return dy[at(r, j)]; });
    expect_close("dbeta", download<float>(handle, ln.bias_grad(), n), dbeta_ref,
                 cunorm::reference::output_tolerance(CUNORM_FLOAT32), slack);
  }
}

std::string layer_norm_name(const ::testing::TestParamInfo<LayerNormParam>& info) {
  const auto& [shape, affine, bias] = info.param;
  return shape_label(shape) + (affine ? "_Affine" : "_NoAffine") + (bias ? "_Bias" : "_NoBias");
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNormModule,
                         ::testing::Combine(::testing::ValuesIn(kShapes), ::testing::Bool(), ::testing::Bool()),
                         layer_norm_name);

// ---- RMSNorm against the reference -----------------------------------------------------------

using RMSNormParam = std::tuple<std::vector<int64_t>, bool, std::optional<double>>;  // shape, affine, eps

class RMSNormModule : public ::testing::TestWithParam<RMSNormParam> {};

TEST_P(RMSNormModule, ForwardAndBackwardMatchReference) {
  const auto& [shape, affine, eps] = GetParam();
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::RMSNorm rms(handle, shape, eps, affine);
  const int64_t cols = rms.normalized_size();
  const std::size_t n = static_cast<std::size_t>(cols), numel = static_cast<std::size_t>(kRows * cols);
  ASSERT_EQ(rms.weight() != nullptr, affine);
  ASSERT_EQ(rms.weight_grad() != nullptr, affine);
  EXPECT_EQ(rms.eps(), eps);

  std::vector<float> gamma;
  if (affine) {
    EXPECT_EQ(download<float>(handle, rms.weight(), n), std::vector<float>(n, 1.0f));
    gamma = random_floats(n, 0.5, 1.5, 21);
    upload(handle, rms.weight(), gamma);
  }
  const std::vector<float> x = random_floats(numel, -2.0, 2.0, 23), dy = random_floats(numel, -1.0, 1.0, 24);
  cunorm::DeviceBuffer d_x(handle, numel * sizeof(float)), d_y(handle, numel * sizeof(float)),
      d_dy(handle, numel * sizeof(float)), d_dx(handle, numel * sizeof(float));
  d_x.upload(x);
  d_dy.upload(dy);

  rms.forward(d_x.data(), d_y.data(), static_cast<int64_t>(numel), CUNORM_FLOAT32);
  const std::vector<float> rrms = download<float>(handle, rms.saved_rrms(), kRows);
  std::vector<double> y_ref(numel), rrms_ref(kRows);
  const float* g = affine ? gamma.data() : kNoParam;
  const double used_eps = eps ? static_cast<double>(static_cast<float>(*eps)) : kFloat32Eps;
  cunorm::reference::rms_norm_forward(kRows, cols, x.data(), g, used_eps, y_ref.data(), rrms_ref.data());
  expect_close("y", d_y.download<float>(numel), y_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  expect_close("rrms", rrms, rrms_ref, cunorm::reference::statistics_tolerance());

  rms.backward(d_dy.data(), d_dx.data());
  std::vector<double> dx_ref(numel), dgamma_ref(n);
  cunorm::reference::rms_norm_backward(kRows, cols, dy.data(), x.data(), rrms.data(), g, dx_ref.data(),
                                       dgamma_ref.data());
  expect_close("dx", d_dx.download<float>(numel), dx_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  if (affine) {
    const auto at = [&](int64_t r, int64_t j) { return static_cast<std::size_t>(r * cols + j); };
    const auto slack = summation_slack(kRows, cols, [&](int64_t r, int64_t j) {
      return dy[at(r, j)] * x[at(r, j)] * rrms[static_cast<std::size_t>(r)];
    });
    expect_close("dgamma", download<float>(handle, rms.weight_grad(), n), dgamma_ref,
                 cunorm::reference::output_tolerance(CUNORM_FLOAT32), slack);
  }
}

std::string rms_norm_name(const ::testing::TestParamInfo<RMSNormParam>& info) {
  const auto& [shape, affine, eps] = info.param;
  return shape_label(shape) + (affine ? "_Affine" : "_NoAffine") + (eps ? "_Eps1e6" : "_EpsFinfo");
}

INSTANTIATE_TEST_SUITE_P(Shapes, RMSNormModule,
                         ::testing::Combine(::testing::ValuesIn(kShapes), ::testing::Bool(),
                                            ::testing::Values(std::optional<double>(), std::optional<double>(1e-6))),
                         rms_norm_name);

// With x of order 1e-4, mean(x^2) is of the order of eps, so rrms shows which eps was used.
TEST(RMSNormEps, DefaultIsFloat32FinfoEps) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::RMSNorm rms(handle, {256});
  EXPECT_FALSE(rms.eps().has_value());
  const std::vector<float> x = random_floats(4 * 256, -3e-4, 3e-4, 31);
  cunorm::DeviceBuffer d_x(handle, x.size() * sizeof(float)), d_y(handle, x.size() * sizeof(float));
  d_x.upload(x);
  rms.forward(d_x.data(), d_y.data(), static_cast<int64_t>(x.size()), CUNORM_FLOAT32);
  std::vector<double> y_ref(x.size()), rrms_ref(4);
  cunorm::reference::rms_norm_forward(4, 256, x.data(), kNoParam, kFloat32Eps, y_ref.data(), rrms_ref.data());
  expect_close("rrms", download<float>(handle, rms.saved_rrms(), 4), rrms_ref,
               cunorm::reference::statistics_tolerance());
  EXPECT_EQ(cunorm::finfo_eps(CUNORM_FLOAT32), kFloat32Eps);
}

// Every x = 2^-7, so rrms = 1 / sqrt(2^-14 + eps) and eps is torch.finfo of the activation type.
TEST(RMSNormEps, DefaultFollowsTheHalfActivationDtype) {
  const struct {
    cunormDataType_t dtype;
    std::uint16_t two_to_minus_7;
    double finfo_eps;
  } cases[] = {{CUNORM_FLOAT16, 0x2000, 0.0009765625}, {CUNORM_BFLOAT16, 0x3C00, 0.0078125}};
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::RMSNorm rms(handle, {16});  // float32 weight serves every activation dtype
  for (const auto& c : cases) {
    const std::vector<std::uint16_t> x(3 * 16, c.two_to_minus_7);
    cunorm::DeviceBuffer d_x(handle, x.size() * 2), d_y(handle, x.size() * 2);
    d_x.upload(x);
    rms.forward(d_x.data(), d_y.data(), static_cast<int64_t>(x.size()), c.dtype);
    const double expected = 1.0 / std::sqrt(std::ldexp(1.0, -14) + c.finfo_eps);
    expect_close("rrms", download<float>(handle, rms.saved_rrms(), 3), std::vector<double>(3, expected),
                 cunorm::reference::statistics_tolerance());
    EXPECT_EQ(cunorm::finfo_eps(c.dtype), c.finfo_eps);
  }
}

// ---- Parameters ------------------------------------------------------------------------------

TEST(ModuleParameters, HalfTypesStartAsOnesAndZerosBitPatterns) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  const std::pair<cunormDataType_t, std::uint16_t> ones[] = {{CUNORM_FLOAT16, 0x3C00}, {CUNORM_BFLOAT16, 0x3F80}};
  for (const auto& [dtype, one] : ones) {
    cunorm::LayerNorm ln(handle, {2, 3}, 1e-5, true, true, dtype);
    EXPECT_EQ(ln.param_dtype(), dtype);
    EXPECT_EQ(download<std::uint16_t>(handle, ln.weight(), 6), std::vector<std::uint16_t>(6, one));
    EXPECT_EQ(download<std::uint16_t>(handle, ln.bias(), 6), std::vector<std::uint16_t>(6, 0));
    EXPECT_EQ(download<std::uint16_t>(handle, ln.weight_grad(), 6), std::vector<std::uint16_t>(6, 0));
    EXPECT_EQ(download<std::uint16_t>(handle, ln.bias_grad(), 6), std::vector<std::uint16_t>(6, 0));
    cunorm::RMSNorm rms(handle, {5}, std::nullopt, true, dtype);
    EXPECT_EQ(download<std::uint16_t>(handle, rms.weight(), 5), std::vector<std::uint16_t>(5, one));
    EXPECT_EQ(download<std::uint16_t>(handle, rms.weight_grad(), 5), std::vector<std::uint16_t>(5, 0));
  }
}

// Rows (1, 3) have mean 2 and variance 1, so y = (-1, 1) * 1/sqrt(1 + eps), which rounds to -1, 1 in
// float16: the half parameters (weight 1, bias 0) are used as such.
TEST(ModuleParameters, HalfParametersRunWithTheirActivationDtype) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {2}, 1e-5, true, true, CUNORM_FLOAT16);
  const std::vector<std::uint16_t> x = {0x3C00, 0x4200, 0x3C00, 0x4200};  // 1, 3, 1, 3
  cunorm::DeviceBuffer d_x(handle, 8), d_y(handle, 8);
  d_x.upload(x);
  ln.forward(d_x.data(), d_y.data(), 4, CUNORM_FLOAT16);
  EXPECT_EQ(d_y.download<std::uint16_t>(4), (std::vector<std::uint16_t>{0xBC00, 0x3C00, 0xBC00, 0x3C00}));
}

TEST(ModuleParameters, DefaultsFollowPyTorch) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {3, 4});
  EXPECT_EQ(ln.eps(), 1e-5);
  EXPECT_EQ(ln.param_dtype(), CUNORM_FLOAT32);
  EXPECT_EQ(ln.normalized_shape(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(download<float>(handle, ln.weight(), 12), std::vector<float>(12, 1.0f));
  EXPECT_EQ(download<float>(handle, ln.bias(), 12), std::vector<float>(12, 0.0f));
  EXPECT_EQ(ln.saved_mean(), nullptr);
  EXPECT_EQ(ln.saved_rstd(), nullptr);
  cunorm::RMSNorm rms(handle, {7});
  EXPECT_EQ(rms.eps(), std::nullopt);
  EXPECT_EQ(rms.param_dtype(), CUNORM_FLOAT32);
  EXPECT_EQ(download<float>(handle, rms.weight(), 7), std::vector<float>(7, 1.0f));
  EXPECT_EQ(rms.saved_rrms(), nullptr);
}

// The saved statistics follow the batch: a batch of many rows after one of a single row gets room
// for all of them (a buffer left at one row would be overrun, clobbering the statistics).
TEST(ModuleParameters, SavedStatisticsGrowWithTheBatch) {
  constexpr int64_t kMany = 4096, kCols = 16;
  const std::size_t many = static_cast<std::size_t>(kMany);
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {kCols});
  cunorm::RMSNorm rms(handle, {kCols});
  const std::vector<float> x = random_floats(many * kCols, -1.0, 2.0, 91);
  cunorm::DeviceBuffer d_x(handle, x.size() * 4), d_y(handle, x.size() * 4);
  d_x.upload(x);
  ln.forward(d_x.data(), d_y.data(), kCols, CUNORM_FLOAT32);
  rms.forward(d_x.data(), d_y.data(), kCols, CUNORM_FLOAT32);
  ln.forward(d_x.data(), d_y.data(), kMany * kCols, CUNORM_FLOAT32);
  rms.forward(d_x.data(), d_y.data(), kMany * kCols, CUNORM_FLOAT32);
  std::vector<double> y_ref(x.size()), mean_ref(many), rstd_ref(many), rrms_ref(many);
  cunorm::reference::layer_norm_forward(kMany, kCols, x.data(), kNoParam, kNoParam, static_cast<float>(1e-5),
                                        y_ref.data(), mean_ref.data(), rstd_ref.data());
  cunorm::reference::rms_norm_forward(kMany, kCols, x.data(), kNoParam, kFloat32Eps, y_ref.data(), rrms_ref.data());
  const Tolerance stats = cunorm::reference::statistics_tolerance();
  expect_close("mean", download<float>(handle, ln.saved_mean(), many), mean_ref, stats);
  expect_close("rstd", download<float>(handle, ln.saved_rstd(), many), rstd_ref, stats);
  expect_close("rrms", download<float>(handle, rms.saved_rrms(), many), rrms_ref, stats);
}

TEST(ModuleParameters, GradientsAreOverwrittenNotAccumulated) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {32});
  const std::vector<float> x = random_floats(4 * 32, -1.0, 1.0, 41), dy = random_floats(4 * 32, -1.0, 1.0, 42);
  cunorm::DeviceBuffer d_x(handle, 4 * 32 * 4), d_y(handle, 4 * 32 * 4), d_dy(handle, 4 * 32 * 4),
      d_dx(handle, 4 * 32 * 4);
  d_x.upload(x);
  d_dy.upload(dy);
  ln.forward(d_x.data(), d_y.data(), 4 * 32, CUNORM_FLOAT32);
  ln.backward(d_dy.data(), d_dx.data());
  const std::vector<float> dgamma = download<float>(handle, ln.weight_grad(), 32);
  const std::vector<float> dbeta = download<float>(handle, ln.bias_grad(), 32);
  EXPECT_NE(dbeta, std::vector<float>(32, 0.0f));
  ln.backward(d_dy.data(), d_dx.data());  // a second backward of the same forward
  EXPECT_EQ(download<float>(handle, ln.weight_grad(), 32), dgamma);
  EXPECT_EQ(download<float>(handle, ln.bias_grad(), 32), dbeta);
}

// The C API writes nothing for an empty batch; the module still overwrites the gradients with
// the gradient of an empty sum.
TEST(ModuleParameters, EmptyBatchZeroesTheGradients) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {8});
  cunorm::RMSNorm rms(handle, {8});
  const std::vector<float> x = random_floats(16, -1.0, 1.0, 51), dy = random_floats(16, -1.0, 1.0, 52);
  cunorm::DeviceBuffer d_x(handle, 64), d_y(handle, 64), d_dy(handle, 64), d_dx(handle, 64);
  d_x.upload(x);
  d_dy.upload(dy);
  ln.forward(d_x.data(), d_y.data(), 16, CUNORM_FLOAT32);
  ln.backward(d_dy.data(), d_dx.data());
  rms.forward(d_x.data(), d_y.data(), 16, CUNORM_FLOAT32);
  rms.backward(d_dy.data(), d_dx.data());
  ASSERT_NE(download<float>(handle, ln.bias_grad(), 8), std::vector<float>(8, 0.0f));
  ASSERT_NE(download<float>(handle, rms.weight_grad(), 8), std::vector<float>(8, 0.0f));

  ln.forward(nullptr, nullptr, 0, CUNORM_FLOAT32);
  ln.backward(nullptr, nullptr);
  rms.forward(nullptr, nullptr, 0, CUNORM_FLOAT32);
  rms.backward(nullptr, nullptr);
  EXPECT_EQ(download<float>(handle, ln.weight_grad(), 8), std::vector<float>(8, 0.0f));
  EXPECT_EQ(download<float>(handle, ln.bias_grad(), 8), std::vector<float>(8, 0.0f));
  EXPECT_EQ(download<float>(handle, rms.weight_grad(), 8), std::vector<float>(8, 0.0f));
}

}  // namespace
