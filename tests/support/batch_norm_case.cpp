// BatchNorm test problems (see batch_norm_case.hpp).
#include "batch_norm_case.hpp"

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

HostArray floats(const std::vector<float>& values) {
  HostArray out(CUNORM_FLOAT32, values.size());
  std::memcpy(out.data(), values.data(), out.byte_size());
  return out;
}

std::vector<float> to_floats(const HostArray& array) {
  std::vector<float> out(array.count());
  std::memcpy(out.data(), array.data(), array.byte_size());
  return out;
}

std::vector<double> to_doubles(const std::vector<float>& values) { return {values.begin(), values.end()}; }

// Offset of element (n, c, s) in the layout.
int64_t offset_of(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, int64_t C, int64_t S) {
  return layout == CUNORM_LAYOUT_NCHW ? (n * C + c) * S + s : (n * S + s) * C + c;
}

}  // namespace

BatchNormCase::BatchNormCase(cunormLayout_t layout_, DtypePair dtypes_, int64_t n_, int64_t c_, int64_t s_,
                             bool affine_, float eps_, uint64_t seed, double offset, double scale)
    : layout(layout_),
      dtypes(dtypes_),
      n(n_),
      c(c_),
      s(s_),
      affine(affine_),
      eps(eps_),
      x(dtypes_.dtype, static_cast<std::size_t>(n_ * c_ * s_)),
      dy(dtypes_.dtype, static_cast<std::size_t>(n_ * c_ * s_)),
      gamma(dtypes_.param, affine_ ? static_cast<std::size_t>(c_) : 0),
      beta(dtypes_.param, affine_ ? static_cast<std::size_t>(c_) : 0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> centre(-2.0, 2.0), spread(0.5, 1.5), unit(-1.0, 1.0);
  std::vector<double> centres(static_cast<std::size_t>(c)), spreads(static_cast<std::size_t>(c));
  for (int64_t ci = 0; ci < c; ++ci) {
    centres[static_cast<std::size_t>(ci)] = centre(rng);
    spreads[static_cast<std::size_t>(ci)] = spread(rng);
  }
  for (int64_t ni = 0; ni < n; ++ni) {
    for (int64_t ci = 0; ci < c; ++ci) {
      for (int64_t si = 0; si < s; ++si) {
        const double v = offset + scale * (centres[static_cast<std::size_t>(ci)] +
                                           spreads[static_cast<std::size_t>(ci)] * unit(rng));
        x.set(static_cast<std::size_t>(offset_of(layout, ni, ci, si, c, s)), v);
      }
    }
  }
  dy.fill_uniform(rng, -1.0, 1.0);
  gamma.fill_uniform(rng, 0.5, 1.5);
  beta.fill_uniform(rng, -0.5, 0.5);
}

RunningStatistics random_running(int64_t c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> mean(-1.0f, 1.0f), var(0.5f, 2.0f);
  RunningStatistics r{std::vector<float>(static_cast<std::size_t>(c)), std::vector<float>(static_cast<std::size_t>(c))};
  for (float& v : r.mean) v = mean(rng);
  for (float& v : r.var) v = var(rng);
  return r;
}

std::string BatchNormCase::label() const {
  return std::string(layout == CUNORM_LAYOUT_NCHW ? "NCHW" : "NHWC") + " " + dtypes.label() + " n" + std::to_string(n) +
         " c" + std::to_string(c) + " s" + std::to_string(s);
}

TrainingResult BatchNormCase::training(cunormHandle_t handle, float momentum, cunormRunningVarMode_t mode,
                                       const RunningStatistics* running) const {
  HostArray poison_y(dtypes.dtype, x.count()), poison_c(CUNORM_FLOAT32, static_cast<std::size_t>(c));
  poison_y.fill_bytes(0xff);
  poison_c.fill_bytes(0xff);
  const RunningStatistics none{std::vector<float>(static_cast<std::size_t>(c)),
                               std::vector<float>(static_cast<std::size_t>(c))};
  const RunningStatistics& r = running != nullptr ? *running : none;
  DeviceArray d_x(handle, x), d_gamma(handle, gamma), d_beta(handle, beta), d_y(handle, poison_y),
      d_mean(handle, poison_c), d_invstd(handle, poison_c), d_rm(handle, floats(r.mean)), d_rv(handle, floats(r.var));
  const simt::TrafficWatch watch({{"x", d_x.data(), x.byte_size()},
                                  {"y", d_y.data(), poison_y.byte_size()},
                                  {"gamma", d_gamma.data(), gamma.byte_size()},
                                  {"beta", d_beta.data(), beta.byte_size()}});
  const cunormStatus_t status = cunormBatchNormForwardTrainingEx(
      handle, layout, n, c, s, dtypes.dtype, dtypes.param, d_x.data(), affine ? d_gamma.data() : nullptr,
      affine ? d_beta.data() : nullptr, eps, momentum, mode, running != nullptr ? d_rm.as_floats() : nullptr,
      running != nullptr ? d_rv.as_floats() : nullptr, d_y.data(), d_mean.as_floats(), d_invstd.as_floats());
  EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
  return TrainingResult{d_y.download(), to_floats(d_mean.download()), to_floats(d_invstd.download()),
                        to_floats(d_rm.download()), to_floats(d_rv.download())};
}

HostArray BatchNormCase::inference(cunormHandle_t handle, const RunningStatistics& running) const {
  HostArray poison_y(dtypes.dtype, x.count());
  poison_y.fill_bytes(0xff);
  DeviceArray d_x(handle, x), d_gamma(handle, gamma), d_beta(handle, beta), d_y(handle, poison_y),
      d_rm(handle, floats(running.mean)), d_rv(handle, floats(running.var));
  const simt::TrafficWatch watch({{"x", d_x.data(), x.byte_size()}, {"y", d_y.data(), poison_y.byte_size()}});
  const cunormStatus_t status = cunormBatchNormForwardInference(
      handle, layout, n, c, s, dtypes.dtype, dtypes.param, d_x.data(), affine ? d_gamma.data() : nullptr,
      affine ? d_beta.data() : nullptr, d_rm.as_floats(), d_rv.as_floats(), eps, d_y.data());
  EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
  return d_y.download();
}

GradientResult BatchNormCase::backward(cunormHandle_t handle, const std::vector<float>& saved_mean,
                                       const std::vector<float>& saved_invstd, bool want_dgamma,
                                       bool want_dbeta) const {
  HostArray poison_dx(dtypes.dtype, x.count()), poison_p(dtypes.param, static_cast<std::size_t>(c));
  poison_dx.fill_bytes(0xff);
  poison_p.fill_bytes(0xff);
  DeviceArray d_x(handle, x), d_dy(handle, dy), d_gamma(handle, gamma), d_dx(handle, poison_dx),
      d_dgamma(handle, poison_p), d_dbeta(handle, poison_p), d_mean(handle, floats(saved_mean)),
      d_invstd(handle, floats(saved_invstd));
  const simt::TrafficWatch watch({{"x", d_x.data(), x.byte_size()},
                                  {"dy", d_dy.data(), dy.byte_size()},
                                  {"dx", d_dx.data(), poison_dx.byte_size()}});
  const cunormStatus_t status =
      cunormBatchNormBackward(handle, layout, n, c, s, dtypes.dtype, dtypes.param, d_dy.data(), d_x.data(),
                              affine ? d_gamma.data() : nullptr, d_mean.as_floats(), d_invstd.as_floats(), d_dx.data(),
                              want_dgamma ? d_dgamma.data() : nullptr, want_dbeta ? d_dbeta.data() : nullptr);
  EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
  GradientResult result{d_dx.download(), {}, {}};
  if (want_dgamma) result.dgamma = d_dgamma.download();
  if (want_dbeta) result.dbeta = d_dbeta.download();
  return result;
}

GradientResult BatchNormCase::backward_inference(cunormHandle_t handle, const RunningStatistics& running,
                                                 bool want_dgamma, bool want_dbeta) const {
  HostArray poison_dx(dtypes.dtype, x.count()), poison_p(dtypes.param, static_cast<std::size_t>(c));
  poison_dx.fill_bytes(0xff);
  poison_p.fill_bytes(0xff);
  DeviceArray d_x(handle, x), d_dy(handle, dy), d_gamma(handle, gamma), d_dx(handle, poison_dx),
      d_dgamma(handle, poison_p), d_dbeta(handle, poison_p), d_rm(handle, floats(running.mean)),
      d_rv(handle, floats(running.var));
  const simt::TrafficWatch watch({{"x", d_x.data(), x.byte_size()},
                                  {"dy", d_dy.data(), dy.byte_size()},
                                  {"dx", d_dx.data(), poison_dx.byte_size()}});
  const cunormStatus_t status = cunormBatchNormBackwardInference(
      handle, layout, n, c, s, dtypes.dtype, dtypes.param, d_dy.data(), d_x.data(), affine ? d_gamma.data() : nullptr,
      d_rm.as_floats(), d_rv.as_floats(), eps, d_dx.data(), want_dgamma ? d_dgamma.data() : nullptr,
      want_dbeta ? d_dbeta.data() : nullptr);
  EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
  GradientResult result{d_dx.download(), {}, {}};
  if (want_dgamma) result.dgamma = d_dgamma.download();
  if (want_dbeta) result.dbeta = d_dbeta.download();
  return result;
}

void BatchNormCase::expect_training_matches_reference(float momentum, cunormRunningVarMode_t mode,
                                                      const RunningStatistics* before,
                                                      const TrainingResult& result) const {
  const std::vector<double> xs = x.to_doubles(), gs = gamma.to_doubles(), bs = beta.to_doubles();
  const std::size_t channels = static_cast<std::size_t>(c);
  std::vector<double> y(x.count()), mean(channels), invstd(channels);
  std::vector<double> rm = before != nullptr ? to_doubles(before->mean) : std::vector<double>(channels);
  std::vector<double> rv = before != nullptr ? to_doubles(before->var) : std::vector<double>(channels);
  const double* absent = nullptr;
  cunorm::reference::batch_norm_forward_training(
      layout, n, c, s, xs.data(), affine ? gs.data() : absent, affine ? bs.data() : absent, static_cast<double>(eps),
      static_cast<double>(momentum), mode, before != nullptr ? rm.data() : nullptr,
      before != nullptr ? rv.data() : nullptr, y.data(), mean.data(), invstd.data());
  const auto stats = cunorm::reference::statistics_tolerance();
  expect_array_close("y", result.y, y, cunorm::reference::output_tolerance(dtypes.dtype));
  expect_close("saved_mean", result.saved_mean, mean, stats);
  expect_close("saved_invstd", result.saved_invstd, invstd, stats);
  if (before != nullptr) {
    expect_close("running_mean", result.running_mean, rm, stats);
    expect_close("running_var", result.running_var, rv, stats);
  }
}

void BatchNormCase::expect_inference_matches_reference(const RunningStatistics& running, const HostArray& y) const {
  const std::vector<double> xs = x.to_doubles(), gs = gamma.to_doubles(), bs = beta.to_doubles();
  std::vector<double> ref(x.count());
  const double* absent = nullptr;
  cunorm::reference::batch_norm_forward_inference(layout, n, c, s, xs.data(), affine ? gs.data() : absent,
                                                  affine ? bs.data() : absent, running.mean.data(), running.var.data(),
                                                  static_cast<double>(eps), ref.data());
  expect_array_close("y", y, ref, cunorm::reference::output_tolerance(dtypes.dtype));
}

namespace {

// Per channel, the sums of |dy * xhat| and |dy| that bound a float32 reduction's error.
void magnitudes(const BatchNormCase& bn, const std::vector<double>& centre, const std::vector<double>& inverse,
                std::vector<double>& dgamma_slack, std::vector<double>& dbeta_slack) {
  const std::vector<double> xs = bn.x.to_doubles(), dys = bn.dy.to_doubles();
  dgamma_slack.assign(static_cast<std::size_t>(bn.c), 0.0);
  dbeta_slack.assign(static_cast<std::size_t>(bn.c), 0.0);
  for (int64_t ni = 0; ni < bn.n; ++ni) {
    for (int64_t ci = 0; ci < bn.c; ++ci) {
      for (int64_t si = 0; si < bn.s; ++si) {
        const std::size_t i = static_cast<std::size_t>(offset_of(bn.layout, ni, ci, si, bn.c, bn.s));
        const std::size_t k = static_cast<std::size_t>(ci);
        dgamma_slack[k] += std::abs(dys[i] * (xs[i] - centre[k]) * inverse[k]);
        dbeta_slack[k] += std::abs(dys[i]);
      }
    }
  }
  const double factor = cunorm::reference::float32_sum_error_factor(std::min<int64_t>(bn.n * bn.s, 512));
  for (double& v : dgamma_slack) v *= factor;
  for (double& v : dbeta_slack) v *= factor;
}

void expect_gradients(const BatchNormCase& bn, const GradientResult& result, const std::vector<double>& dx,
                      const std::vector<double>& dgamma, const std::vector<double>& dbeta,
                      const std::vector<double>& dgamma_slack, const std::vector<double>& dbeta_slack) {
  expect_array_close("dx", result.dx, dx, cunorm::reference::output_tolerance(bn.dtypes.dtype));
  const auto param = cunorm::reference::output_tolerance(bn.dtypes.param);
  if (result.dgamma.count() != 0) expect_array_close("dgamma", result.dgamma, dgamma, param, dgamma_slack);
  if (result.dbeta.count() != 0) expect_array_close("dbeta", result.dbeta, dbeta, param, dbeta_slack);
}

}  // namespace

void BatchNormCase::expect_backward_matches_reference(const std::vector<float>& saved_mean,
                                                      const std::vector<float>& saved_invstd,
                                                      const GradientResult& result) const {
  const std::vector<double> xs = x.to_doubles(), dys = dy.to_doubles(), gs = gamma.to_doubles();
  const std::size_t channels = static_cast<std::size_t>(c);
  std::vector<double> dx(x.count()), dgamma(channels), dbeta(channels), slack_g, slack_b;
  cunorm::reference::batch_norm_backward(layout, n, c, s, dys.data(), xs.data(),
                                         affine ? gs.data() : static_cast<const double*>(nullptr), saved_mean.data(),
                                         saved_invstd.data(), dx.data(), dgamma.data(), dbeta.data());
  magnitudes(*this, to_doubles(saved_mean), to_doubles(saved_invstd), slack_g, slack_b);
  expect_gradients(*this, result, dx, dgamma, dbeta, slack_g, slack_b);
}

void BatchNormCase::expect_backward_inference_matches_reference(const RunningStatistics& running,
                                                                const GradientResult& result) const {
  const std::vector<double> xs = x.to_doubles(), dys = dy.to_doubles(), gs = gamma.to_doubles();
  const std::size_t channels = static_cast<std::size_t>(c);
  std::vector<double> dx(x.count()), dgamma(channels), dbeta(channels), slack_g, slack_b, inverse(channels);
  cunorm::reference::batch_norm_backward_inference(
      layout, n, c, s, dys.data(), xs.data(), affine ? gs.data() : static_cast<const double*>(nullptr),
      running.mean.data(), running.var.data(), static_cast<double>(eps), dx.data(), dgamma.data(), dbeta.data());
  for (std::size_t k = 0; k < channels; ++k) inverse[k] = 1.0 / std::sqrt(static_cast<double>(running.var[k]) + eps);
  magnitudes(*this, to_doubles(running.mean), inverse, slack_g, slack_b);
  expect_gradients(*this, result, dx, dgamma, dbeta, slack_g, slack_b);
}

}  // namespace cunorm_test
