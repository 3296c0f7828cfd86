// Row-norm test problems (see row_norm_case.hpp).
#include "row_norm_case.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "backend_fixture.hpp"
#include "compare.hpp"
#include "cunorm/reference.hpp"
#include "simt/launch.hpp"

namespace cunorm_test {
namespace {

std::vector<float> download_floats(const DeviceArray& array, std::size_t count) {
  std::vector<float> out(count);
  const HostArray host = array.download();
  if (count != 0) std::memcpy(out.data(), host.data(), host.byte_size());  // no NULL to memcpy for rows == 0
  return out;
}

HostArray floats_to_array(const std::vector<float>& values) {
  HostArray out(CUNORM_FLOAT32, values.size());
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.byte_size());
  return out;
}

}  // namespace

const char* norm_label(Norm norm) { return norm == Norm::kLayerNorm ? "LayerNorm" : "RMSNorm"; }

RowNormCase::RowNormCase(Norm norm_, DtypePair dtypes_, int64_t rows_, int64_t cols_, bool affine_, float eps_,
                         uint64_t seed)
    : norm(norm_),
      dtypes(dtypes_),
      rows(rows_),
      cols(cols_),
      affine(affine_),
      eps(eps_),
      x(dtypes_.dtype, static_cast<std::size_t>(rows_ * cols_)),
      dy(dtypes_.dtype, static_cast<std::size_t>(rows_ * cols_)),
      gamma(dtypes_.param, affine_ ? static_cast<std::size_t>(cols_) : 0),
      beta(dtypes_.param, affine_ && norm_ == Norm::kLayerNorm ? static_cast<std::size_t>(cols_) : 0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> shift(-1.0, 1.0), value(-2.0, 2.0);
  for (int64_t r = 0; r < rows; ++r) {
    const double row_shift = shift(rng);
    for (int64_t j = 0; j < cols; ++j) x.set(static_cast<std::size_t>(r * cols + j), row_shift + value(rng));
  }
  dy.fill_uniform(rng, -1.0, 1.0);
  gamma.fill_uniform(rng, 0.5, 1.5);
  beta.fill_uniform(rng, -0.5, 0.5);
}

ForwardResult RowNormCase::forward(cunormHandle_t handle, const BufferOffsets& offsets) const {
  HostArray poison_y(dtypes.dtype, x.count()), poison_stats(CUNORM_FLOAT32, static_cast<std::size_t>(rows));
  poison_y.fill_bytes(0xff);
  poison_stats.fill_bytes(0xff);
  DeviceArray d_x(handle, x, offsets.x), d_gamma(handle, gamma, offsets.gamma), d_beta(handle, beta, offsets.beta),
      d_y(handle, poison_y, offsets.y), d_mean(handle, poison_stats), d_rstd(handle, poison_stats);
  void* g = affine ? d_gamma.data() : nullptr;
  const simt::TrafficWatch watch({{"x", d_x.data(), x.byte_size()},
                                  {"gamma", d_gamma.data(), gamma.byte_size()},
                                  {"beta", d_beta.data(), beta.byte_size()},
                                  {"y", d_y.data(), poison_y.byte_size()},
                                  {"mean", d_mean.data(), poison_stats.byte_size()},
                                  {"rstd", d_rstd.data(), poison_stats.byte_size()}});
  const cunormStatus_t status = norm == Norm::kLayerNorm
                                    ? cunormLayerNormForward(handle, rows, cols, dtypes.dtype, dtypes.param, d_x.data(),
                                                             g, affine ? d_beta.data() : nullptr, eps, d_y.data(),
                                                             d_mean.as_floats(), d_rstd.as_floats())
                                    : cunormRMSNormForward(handle, rows, cols, dtypes.dtype, dtypes.param, d_x.data(),
                                                           g, eps, d_y.data(), d_rstd.as_floats());
  EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
  ForwardResult result{d_y.download(), {}, download_floats(d_rstd, static_cast<std::size_t>(rows))};
  if (norm == Norm::kLayerNorm) result.mean = download_floats(d_mean, static_cast<std::size_t>(rows));
  return result;
}

BackwardResult RowNormCase::backward(cunormHandle_t handle, const ForwardResult& saved, bool want_dgamma,
                                     bool want_dbeta, const BufferOffsets& offsets) const {
  HostArray poison_dx(dtypes.dtype, x.count()), poison_params(dtypes.param, static_cast<std::size_t>(cols));
  poison_dx.fill_bytes(0xff);
  poison_params.fill_bytes(0xff);
  DeviceArray d_dy(handle, dy, offsets.x), d_x(handle, x, offsets.x), d_gamma(handle, gamma, offsets.gamma),
      d_dx(handle, poison_dx, offsets.y), d_dgamma(handle, poison_params, offsets.beta),
      d_dbeta(handle, poison_params, offsets.beta), d_rstd(handle, floats_to_array(saved.rstd));
  const HostArray mean = floats_to_array(saved.mean.empty() ? std::vector<float>(1) : saved.mean);
  DeviceArray d_mean(handle, mean);
  void* g = affine ? d_gamma.data() : nullptr;
  void* dg = want_dgamma ? d_dgamma.data() : nullptr;
  const simt::TrafficWatch watch({{"dy", d_dy.data(), dy.byte_size()},
                                  {"x", d_x.data(), x.byte_size()},
                                  {"gamma", d_gamma.data(), gamma.byte_size()},
                                  {"dx", d_dx.data(), poison_dx.byte_size()},
                                  {"dgamma", d_dgamma.data(), poison_params.byte_size()},
                                  {"dbeta", d_dbeta.data(), poison_params.byte_size()},
                                  {"mean", d_mean.data(), mean.byte_size()},
                                  {"rstd", d_rstd.data(), saved.rstd.size() * sizeof(float)}});
  const cunormStatus_t status =
      norm == Norm::kLayerNorm ? cunormLayerNormBackward(handle, rows, cols, dtypes.dtype, dtypes.param, d_dy.data(),
                                                         d_x.data(), d_mean.as_floats(), d_rstd.as_floats(), g,
                                                         d_dx.data(), dg, want_dbeta ? d_dbeta.data() : nullptr)
                               : cunormRMSNormBackward(handle, rows, cols, dtypes.dtype, dtypes.param, d_dy.data(),
                                                       d_x.data(), d_rstd.as_floats(), g, d_dx.data(), dg);
  EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
  BackwardResult result{d_dx.download(), {}, {}};
  if (want_dgamma) result.dgamma = d_dgamma.download();
  if (want_dbeta && norm == Norm::kLayerNorm) result.dbeta = d_dbeta.download();
  return result;
}

void RowNormCase::expect_forward_matches_reference(const ForwardResult& result) const {
  const std::vector<double> xs = x.to_doubles(), gs = gamma.to_doubles(), bs = beta.to_doubles();
  std::vector<double> y(x.count()), mean(static_cast<std::size_t>(rows)), rstd(static_cast<std::size_t>(rows));
  const double* absent = nullptr;
  if (norm == Norm::kLayerNorm) {
    cunorm::reference::layer_norm_forward(rows, cols, xs.data(), affine ? gs.data() : absent,
                                          affine ? bs.data() : absent, static_cast<double>(eps), y.data(), mean.data(),
                                          rstd.data());
    expect_close("mean", result.mean, mean, cunorm::reference::statistics_tolerance());
  } else {
    cunorm::reference::rms_norm_forward(rows, cols, xs.data(), affine ? gs.data() : absent, static_cast<double>(eps),
                                        y.data(), rstd.data());
  }
  expect_array_close("y", result.y, y, cunorm::reference::output_tolerance(dtypes.dtype));
  expect_close(norm == Norm::kLayerNorm ? "rstd" : "rrms", result.rstd, rstd,
               cunorm::reference::statistics_tolerance());
}

void RowNormCase::expect_backward_matches_reference(const ForwardResult& saved, const BackwardResult& result) const {
  const std::vector<double> xs = x.to_doubles(), dys = dy.to_doubles(), gs = gamma.to_doubles();
  const std::size_t n = static_cast<std::size_t>(cols);
  std::vector<double> dx(x.count()), dgamma(n), dbeta(n);
  const double* absent = nullptr;
  const float* mean = norm == Norm::kLayerNorm ? saved.mean.data() : nullptr;
  if (norm == Norm::kLayerNorm) {
    cunorm::reference::layer_norm_backward(rows, cols, dys.data(), xs.data(), mean, saved.rstd.data(),
                                           affine ? gs.data() : absent, dx.data(), dgamma.data(), dbeta.data());
  } else {
    cunorm::reference::rms_norm_backward(rows, cols, dys.data(), xs.data(), saved.rstd.data(),
                                         affine ? gs.data() : absent, dx.data(), dgamma.data());
  }
  expect_array_close("dx", result.dx, dx, cunorm::reference::output_tolerance(dtypes.dtype));
  // dgamma and dbeta sum `rows` float32 terms: within float32_sum_error_factor(rows) * sum(|term|)
  // of the exact sum, on top of rounding to the parameter type.
  std::vector<double> slack_g(n, 0.0), slack_b(n, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const double m = mean != nullptr ? mean[r] : 0.0, s = saved.rstd[static_cast<std::size_t>(r)];
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t i = static_cast<std::size_t>(r) * n + j;
      slack_g[j] += std::abs(dys[i] * (xs[i] - m) * s);
      slack_b[j] += std::abs(dys[i]);
    }
  }
  const double factor = cunorm::reference::float32_sum_error_factor(rows);
  for (std::size_t j = 0; j < n; ++j) {
    slack_g[j] *= factor;
    slack_b[j] *= factor;
  }
  const auto param_tolerance = cunorm::reference::output_tolerance(dtypes.param);
  if (result.dgamma.count() != 0) expect_array_close("dgamma", result.dgamma, dgamma, param_tolerance, slack_g);
  if (result.dbeta.count() != 0) expect_array_close("dbeta", result.dbeta, dbeta, param_tolerance, slack_b);
}

void RowNormCase::expect_bitwise_equal(const ForwardResult& expected, const ForwardResult& actual,
                                       const char* what) const {
  EXPECT_TRUE(expected.y.bitwise_equal(actual.y)) << "y differs in " << what;
  EXPECT_TRUE(bitwise_equal(expected.mean, actual.mean)) << "mean differs in " << what;
  EXPECT_TRUE(bitwise_equal(expected.rstd, actual.rstd)) << "rstd differs in " << what;
}

void RowNormCase::expect_bitwise_equal(const BackwardResult& expected, const BackwardResult& actual,
                                       const char* what) const {
  EXPECT_TRUE(expected.dx.bitwise_equal(actual.dx)) << "dx differs in " << what;
  EXPECT_TRUE(expected.dgamma.bitwise_equal(actual.dgamma)) << "dgamma differs in " << what;
  EXPECT_TRUE(expected.dbeta.bitwise_equal(actual.dbeta)) << "dbeta differs in " << what;
}

}  // namespace cunorm_test
