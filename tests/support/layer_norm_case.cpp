// LayerNorm test problems (see layer_norm_case.hpp).
#include "layer_norm_case.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "backend_fixture.hpp"
#include "cunorm/reference.hpp"

namespace cunorm_test {
namespace {

const char* short_name(cunormDataType_t dtype) {
  switch (dtype) {
    case CUNORM_FLOAT32: return "f32";
    case CUNORM_FLOAT16: return "f16";
    case CUNORM_BFLOAT16: return "bf16";
    default: return "unknown";
  }
}

// Compares element by element and reports the number of mismatches and the first few.
template <class Actual>
void expect_close(const char* what, std::size_t count, Actual actual, const std::vector<double>& expected,
                  const cunorm::reference::Tolerance& tolerance) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (tolerance.accepts(actual(i), expected[i])) continue;
    if (++bad <= 3) ADD_FAILURE() << what << "[" << i << "] = " << actual(i) << ", reference " << expected[i];
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << count << " elements outside the tolerance";
}

}  // namespace

std::string DtypePair::label() const { return std::string(short_name(dtype)) + "_" + short_name(param); }

LayerNormCase::LayerNormCase(DtypePair dtypes_, int64_t rows_, int64_t cols_, bool affine_, float eps_, uint64_t seed)
    : dtypes(dtypes_),
      rows(rows_),
      cols(cols_),
      affine(affine_),
      eps(eps_),
      x(dtypes_.dtype, static_cast<std::size_t>(rows_ * cols_)),
      gamma(dtypes_.param, affine_ ? static_cast<std::size_t>(cols_) : 0),
      beta(dtypes_.param, affine_ ? static_cast<std::size_t>(cols_) : 0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> shift(-1.0, 1.0);
  std::uniform_real_distribution<double> value(-2.0, 2.0);
  for (int64_t r = 0; r < rows; ++r) {
    const double row_shift = shift(rng);
    for (int64_t j = 0; j < cols; ++j) x.set(static_cast<std::size_t>(r * cols + j), row_shift + value(rng));
  }
  gamma.fill_uniform(rng, 0.5, 1.5);
  beta.fill_uniform(rng, -0.5, 0.5);
}

LayerNormResult LayerNormCase::run(cunormHandle_t handle, const BufferOffsets& offsets) const {
  HostArray poison_y(dtypes.dtype, x.count());
  poison_y.fill_bytes(0xff);
  HostArray poison_stats(CUNORM_FLOAT32, static_cast<std::size_t>(rows));
  poison_stats.fill_bytes(0xff);
  DeviceArray d_x(handle, x, offsets.x);
  DeviceArray d_gamma(handle, gamma, offsets.gamma);
  DeviceArray d_beta(handle, beta, offsets.beta);
  DeviceArray d_y(handle, poison_y, offsets.y);
  DeviceArray d_mean(handle, poison_stats);
  DeviceArray d_rstd(handle, poison_stats);
  const cunormStatus_t status = cunormLayerNormForward(
      handle, rows, cols, dtypes.dtype, dtypes.param, d_x.data(), affine ? d_gamma.data() : nullptr,
      affine ? d_beta.data() : nullptr, eps, d_y.data(), d_mean.as_floats(), d_rstd.as_floats());
  EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
  LayerNormResult result{d_y.download(), std::vector<float>(static_cast<std::size_t>(rows)),
                         std::vector<float>(static_cast<std::size_t>(rows))};
  const HostArray mean = d_mean.download(), rstd = d_rstd.download();
  std::memcpy(result.mean.data(), mean.data(), mean.byte_size());
  std::memcpy(result.rstd.data(), rstd.data(), rstd.byte_size());
  return result;
}

void LayerNormCase::expect_matches_reference(const LayerNormResult& result) const {
  const std::vector<double> xs = x.to_doubles(), gs = gamma.to_doubles(), bs = beta.to_doubles();
  std::vector<double> y(x.count()), mean(static_cast<std::size_t>(rows)), rstd(static_cast<std::size_t>(rows));
  const double* no_param = nullptr;
  cunorm::reference::layer_norm_forward(rows, cols, xs.data(), affine ? gs.data() : no_param,
                                        affine ? bs.data() : no_param, static_cast<double>(eps), y.data(), mean.data(),
                                        rstd.data());
  expect_close(
      "y", x.count(), [&](std::size_t i) { return result.y.get(i); }, y,
      cunorm::reference::output_tolerance(dtypes.dtype));
  expect_close(
      "mean", mean.size(), [&](std::size_t i) { return static_cast<double>(result.mean[i]); }, mean,
      cunorm::reference::statistics_tolerance());
  expect_close(
      "rstd", rstd.size(), [&](std::size_t i) { return static_cast<double>(result.rstd[i]); }, rstd,
      cunorm::reference::statistics_tolerance());
}

void LayerNormCase::expect_bitwise_equal(const LayerNormResult& expected, const LayerNormResult& actual,
                                         const char* what) const {
  EXPECT_TRUE(expected.y.bitwise_equal(actual.y)) << "y differs in " << what;
  EXPECT_EQ(0, std::memcmp(expected.mean.data(), actual.mean.data(), expected.mean.size() * sizeof(float)))
      << "mean differs in " << what;
  EXPECT_EQ(0, std::memcmp(expected.rstd.data(), actual.rstd.data(), expected.rstd.size() * sizeof(float)))
      << "rstd differs in " << what;
}

}  // namespace cunorm_test
