// The C++ layer (cunorm.hpp) through its public headers only, on the SIMT backend: the
// LayerNorm and RMSNorm modules against the float64 reference (fed the statistics the module
// saved), PyTorch's parameter initialization and default RMSNorm epsilon, every error turned
// into cunorm::Error with its status and a message naming the argument, and the RAII and move
// rules of Handle, DeviceBuffer and the modules.
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

namespace {

using cunorm::reference::Tolerance;

constexpr double kFloat32Eps = 1.1920928955078125e-07;  // torch.finfo(torch.float32).eps
constexpr int64_t kRows = 6;                            // a (2, 3) batch in front of normalized_shape
const float* const kNoParam = nullptr;                  // the reference's typed "absent gamma/beta"

std::vector<float> random_floats(std::size_t count, double low, double high, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<float> out(count);
  for (float& v : out) v = static_cast<float>(dist(rng));
  return out;
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

// Element by element within `tolerance` plus a per-element slack (the summation bound of a
// float32 reduction); reports the number of mismatches and the first few.
template <class A>
void expect_close(const char* what, const std::vector<A>& actual, const std::vector<double>& expected,
                  const Tolerance& tolerance, const std::vector<double>& slack = {}) {
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

// ---- Errors ----------------------------------------------------------------------------------

TEST(Errors, CheckPrefixesTheStatusNameToTheHandlesMessage) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  try {
    cunorm::check(cunormGetBackend(handle.get(), nullptr), handle.get());
    ADD_FAILURE() << "no cunorm::Error thrown";
  } catch (const cunorm::Error& e) {
    EXPECT_EQ(e.status(), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_STREQ(e.what(), "CUNORM_STATUS_INVALID_VALUE: backend must not be NULL");
    EXPECT_EQ(e.message(), "backend must not be NULL");
  }
  cunormBackend_t backend = CUNORM_BACKEND_AUTO;
  expect_error([&] { cunorm::check(cunormGetBackend(nullptr, &backend), nullptr); }, CUNORM_STATUS_INVALID_VALUE,
               "handle must not be NULL");
  EXPECT_NO_THROW(cunorm::check(CUNORM_STATUS_SUCCESS, nullptr));
}

TEST(Errors, NumelNotAMultipleOfTheNormalizedSize) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {3, 5});
  cunorm::RMSNorm rms(handle, {3, 5});
  cunorm::DeviceBuffer d_x(handle, 64 * 4), d_y(handle, 64 * 4);
  expect_error([&] { ln.forward(d_x.data(), d_y.data(), 16, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "numel must be a multiple of the product of normalized_shape (15), got 16");
  expect_error([&] { rms.forward(d_x.data(), d_y.data(), 31, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "numel must be a multiple of the product of normalized_shape (15), got 31");
  expect_error([&] { ln.forward(d_x.data(), d_y.data(), -15, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "numel must be >= 0, got -15");
}

TEST(Errors, EmptyNormalizedShape) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  expect_error([&] { cunorm::LayerNorm ln(handle, {}); }, CUNORM_STATUS_INVALID_VALUE,
               "normalized_shape must not be empty");
  expect_error([&] { cunorm::RMSNorm rms(handle, {}); }, CUNORM_STATUS_INVALID_VALUE,
               "normalized_shape must not be empty");
}

TEST(Errors, NonPositiveDimension) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  expect_error(
      [&] {
        cunorm::LayerNorm ln(handle, {4, 0});
      },
      CUNORM_STATUS_INVALID_VALUE, "normalized_shape[1] must be > 0, got 0");
  expect_error([&] { cunorm::RMSNorm rms(handle, {-3}); }, CUNORM_STATUS_INVALID_VALUE,
               "normalized_shape[0] must be > 0, got -3");
}

TEST(Errors, NormalizedSizeOverflow) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  expect_error(
      [&] {
        cunorm::LayerNorm ln(handle, {int64_t{1} << 32, int64_t{1} << 32});
      },
      CUNORM_STATUS_INVALID_VALUE, "the product of normalized_shape must fit in int64_t");
}

TEST(Errors, BackwardBeforeForward) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {8});
  cunorm::RMSNorm rms(handle, {8});
  cunorm::DeviceBuffer d_dy(handle, 32), d_dx(handle, 32);
  expect_error([&] { ln.backward(d_dy.data(), d_dx.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
  expect_error([&] { rms.backward(d_dy.data(), d_dx.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
}

// A forward that threw leaves nothing to differentiate, even after an earlier good forward.
TEST(Errors, FailedForwardForgetsThePreviousForward) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {8});
  cunorm::DeviceBuffer d_x(handle, 32), d_y(handle, 32);
  d_x.upload(std::vector<float>(8, 1.0f));
  ln.forward(d_x.data(), d_y.data(), 8, CUNORM_FLOAT32);
  expect_error([&] { ln.forward(nullptr, d_y.data(), 8, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "x must not be NULL");
  expect_error([&] { ln.backward(d_y.data(), d_x.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
}

// Without a usable GPU (or without the CUDA backend in this build) the Handle throws the
// status and message of cunormCreate; with one it works. Either way one branch is asserted.
TEST(Errors, CudaHandleWithoutGpu) {
  cunormHandle_t raw = nullptr;
  const cunormStatus_t status = cunormCreate(&raw, CUNORM_BACKEND_CUDA);
  if (status == CUNORM_STATUS_SUCCESS) {
    cunormDestroy(raw);
    cunorm::Handle handle(CUNORM_BACKEND_CUDA);
    EXPECT_EQ(handle.backend(), CUNORM_BACKEND_CUDA);
    return;
  }
  ASSERT_TRUE(status == CUNORM_STATUS_NO_DEVICE || status == CUNORM_STATUS_NOT_SUPPORTED) << status;
  const std::string message = cunormGetLastErrorMessage(nullptr);
  ASSERT_FALSE(message.empty());
  expect_error([] { cunorm::Handle handle(CUNORM_BACKEND_CUDA); }, status, message);
}

TEST(Errors, ParamDtypeNeitherFloat32NorTheActivationDtype) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {4}, 1e-5, true, true, CUNORM_FLOAT16);
  cunorm::RMSNorm rms(handle, {4}, std::nullopt, true, CUNORM_BFLOAT16);
  const std::vector<float> poison(4, -7.0f);
  cunorm::DeviceBuffer d_x(handle, 16), d_y(handle, 16);
  d_x.upload(std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f});
  d_y.upload(poison);
  expect_error([&] { ln.forward(d_x.data(), d_y.data(), 4, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "param_dtype must be CUNORM_FLOAT32 or equal to dtype");
  expect_error([&] { rms.forward(d_x.data(), d_y.data(), 4, CUNORM_FLOAT16); }, CUNORM_STATUS_INVALID_VALUE,
               "param_dtype must be CUNORM_FLOAT32 or equal to dtype");
  EXPECT_EQ(d_y.download<float>(4), poison);
  expect_error([&] { cunorm::LayerNorm bad(handle, {4}, 1e-5, true, true, static_cast<cunormDataType_t>(7)); },
               CUNORM_STATUS_INVALID_VALUE,
               "param_dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got 7");
  expect_error([&] { cunorm::RMSNorm bad(handle, {4}, 1e-6, false, static_cast<cunormDataType_t>(-1)); },
               CUNORM_STATUS_INVALID_VALUE,
               "param_dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got -1");
  expect_error([&] { rms.forward(d_x.data(), d_y.data(), 4, static_cast<cunormDataType_t>(9)); },
               CUNORM_STATUS_INVALID_VALUE, "dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got 9");
}

TEST(Errors, BufferCopiesPastTheEnd) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::DeviceBuffer buffer(handle, 12);
  expect_error([&] { buffer.upload(std::vector<float>(4, 1.0f)); }, CUNORM_STATUS_INVALID_VALUE,
               "bytes must be <= the buffer's size (12), got 16");
  expect_error([&] { buffer.download<float>(4); }, CUNORM_STATUS_INVALID_VALUE,
               "bytes must be <= the buffer's size (12), got 16");
}

// ---- Handle ----------------------------------------------------------------------------------

TEST(HandleTest, StreamWorkspaceAndSynchronize) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  EXPECT_EQ(handle.backend(), CUNORM_BACKEND_SIMT);
  handle.set_stream(nullptr);
  size_t bytes = 0;
  cunorm::check(cunormLayerNormWorkspaceSize(handle.get(), 4, 4096, CUNORM_FLOAT32, CUNORM_FLOAT32, &bytes),
                handle.get());
  cunorm::DeviceBuffer workspace(handle, bytes);
  handle.set_workspace(workspace.data(), workspace.bytes());
  cunorm::LayerNorm ln(handle, {4096});
  const std::vector<float> x = random_floats(4 * 4096, -1.0, 1.0, 61);
  cunorm::DeviceBuffer d_x(handle, x.size() * 4), d_y(handle, x.size() * 4);
  d_x.upload(x);
  ln.forward(d_x.data(), d_y.data(), 4 * 4096, CUNORM_FLOAT32);
  handle.synchronize();
  std::vector<double> y_ref(x.size());
  cunorm::reference::layer_norm_forward(4, 4096, x.data(), kNoParam, kNoParam, static_cast<float>(1e-5), y_ref.data(),
                                        static_cast<double*>(nullptr), static_cast<double*>(nullptr));
  expect_close("y", d_y.download<float>(x.size()), y_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  handle.set_workspace(nullptr, 0);
  expect_error([&] { handle.set_workspace(static_cast<char*>(workspace.data()) + 4, 256); },
               CUNORM_STATUS_INVALID_VALUE, "workspace must be 256-byte aligned");
}

// ---- Moves -----------------------------------------------------------------------------------

TEST(Moves, HandleMovesItsHandle) {
  cunorm::Handle a(CUNORM_BACKEND_SIMT);
  const cunormHandle_t raw = a.get();
  cunorm::Handle b(std::move(a));
  EXPECT_EQ(a.get(), nullptr);
  EXPECT_EQ(b.get(), raw);
  EXPECT_EQ(b.backend(), CUNORM_BACKEND_SIMT);
  expect_error([&] { a.synchronize(); }, CUNORM_STATUS_INVALID_VALUE, "handle must not be NULL");
  cunorm::Handle c(CUNORM_BACKEND_SIMT);
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_EQ(b.get(), nullptr);
  cunorm::DeviceBuffer buffer(c, 16);
  buffer.upload(std::vector<float>{1, 2, 3, 4});
  EXPECT_EQ(buffer.download<float>(4), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Moves, BufferMovesItsMemory) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::DeviceBuffer a(handle, 16);
  a.upload(std::vector<float>{1, 2, 3, 4});
  const void* raw = a.data();
  cunorm::DeviceBuffer b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.bytes(), 0u);
  EXPECT_EQ(b.data(), raw);
  EXPECT_EQ(b.bytes(), 16u);
  cunorm::DeviceBuffer c(handle, 8);
  c = std::move(b);  // frees c's 8 bytes
  EXPECT_EQ(c.data(), raw);
  EXPECT_EQ(c.download<float>(4), (std::vector<float>{1, 2, 3, 4}));
  expect_error([&] { a.upload(std::vector<float>{1}); }, CUNORM_STATUS_INVALID_VALUE,
               "bytes must be <= the buffer's size (0), got 4");
}

// A moved module keeps its parameters and its saved forward: the moved-to one's backward equals
// that of a module that was never moved, bit for bit (results are deterministic).
TEST(Moves, ModulesMoveWithTheirForward) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  const std::vector<float> x = random_floats(3 * 24, -1.0, 2.0, 71), dy = random_floats(3 * 24, -1.0, 1.0, 72);
  const std::vector<float> gamma = random_floats(24, 0.5, 1.5, 73);
  cunorm::DeviceBuffer d_x(handle, x.size() * 4), d_y(handle, x.size() * 4), d_dy(handle, x.size() * 4),
      d_dx(handle, x.size() * 4);
  d_x.upload(x);
  d_dy.upload(dy);
  const auto run_backward = [&](auto& module) {
    module.backward(d_dy.data(), d_dx.data());
    return std::make_pair(d_dx.download<float>(x.size()), download<float>(handle, module.weight_grad(), 24));
  };

  cunorm::LayerNorm unmoved_ln(handle, {4, 6});
  upload(handle, unmoved_ln.weight(), gamma);
  unmoved_ln.forward(d_x.data(), d_y.data(), 72, CUNORM_FLOAT32);
  const auto expected_ln = run_backward(unmoved_ln);
  cunorm::LayerNorm ln(handle, {4, 6});
  upload(handle, ln.weight(), gamma);
  ln.forward(d_x.data(), d_y.data(), 72, CUNORM_FLOAT32);
  cunorm::LayerNorm moved_ln(std::move(ln));
  EXPECT_EQ(ln.weight(), nullptr);
  EXPECT_EQ(ln.saved_mean(), nullptr);
  EXPECT_EQ(run_backward(moved_ln), expected_ln);
  cunorm::LayerNorm assigned_ln(handle, {2});
  assigned_ln = std::move(moved_ln);
  EXPECT_EQ(assigned_ln.normalized_size(), 24);
  EXPECT_EQ(run_backward(assigned_ln), expected_ln);

  cunorm::RMSNorm unmoved_rms(handle, {24});
  upload(handle, unmoved_rms.weight(), gamma);
  unmoved_rms.forward(d_x.data(), d_y.data(), 72, CUNORM_FLOAT32);
  const auto expected_rms = run_backward(unmoved_rms);
  cunorm::RMSNorm rms(handle, {24});
  upload(handle, rms.weight(), gamma);
  rms.forward(d_x.data(), d_y.data(), 72, CUNORM_FLOAT32);
  cunorm::RMSNorm assigned_rms(handle, {3}, 0.5);
  assigned_rms = std::move(rms);
  EXPECT_EQ(rms.weight(), nullptr);
  EXPECT_EQ(rms.saved_rrms(), nullptr);
  EXPECT_EQ(run_backward(assigned_rms), expected_rms);
}

// Modules keep the raw handle, so moving the Handle object (or the modules, as a vector does
// when it grows) leaves them working.
TEST(Moves, ModulesOutliveMovesOfTheirHandleAndOfThemselves) {
  cunorm::Handle first(CUNORM_BACKEND_SIMT);
  std::vector<cunorm::RMSNorm> modules;
  for (int64_t cols = 1; cols <= 9; ++cols) modules.emplace_back(first, std::vector<int64_t>{cols});
  cunorm::Handle handle(std::move(first));
  const std::vector<float> x = random_floats(2 * 9, 0.5, 1.5, 81);
  cunorm::DeviceBuffer d_x(handle, x.size() * 4), d_y(handle, x.size() * 4);
  d_x.upload(x);
  for (cunorm::RMSNorm& rms : modules) {
    const int64_t cols = rms.normalized_size();
    rms.forward(d_x.data(), d_y.data(), 2 * cols, CUNORM_FLOAT32);
    std::vector<double> y_ref(static_cast<std::size_t>(2 * cols));
    cunorm::reference::rms_norm_forward(2, cols, x.data(), kNoParam, kFloat32Eps, y_ref.data(),
                                        static_cast<double*>(nullptr));
    expect_close("y", d_y.download<float>(y_ref.size()), y_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  }
}

}  // namespace
