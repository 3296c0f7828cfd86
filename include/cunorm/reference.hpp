// Float64 CPU reference of every cunorm operation. These functions are the judge for the
// library's kernels: tests run a kernel and a reference on the same inputs and compare, so
// the reference is written for clarity and accuracy, never for speed.
//
// Exactly what is computed (all arithmetic in double, every input converted by to_double):
//
//   LayerNorm, per row r of a rows x cols row-major matrix:
//     mean_r = sum_j x_rj / cols
//     var_r  = sum_j (x_rj - mean_r)^2 / cols          (biased, two-pass: mean first)
//     rstd_r = 1 / sqrt(var_r + eps)
//     y_rj   = (x_rj - mean_r) * rstd_r * gamma_j + beta_j
//   RMSNorm, per row r:
//     rrms_r = 1 / sqrt(sum_j x_rj^2 / cols + eps)
//     y_rj   = x_rj * rrms_r * gamma_j
//   BatchNorm, per channel c over the M = n * s values of that channel:
//     mean_c and var_c (biased, two-pass) over those values; invstd_c = 1 / sqrt(var_c + eps)
//     y = (x - mean_c) * invstd_c * gamma_c + beta_c                      (training)
//     y = (x - running_mean_c) / sqrt(running_var_c + eps) * gamma_c + beta_c  (inference)
//     running_mean = (1 - momentum) * running_mean + momentum * mean_c
//     running_var  = (1 - momentum) * running_var  + momentum * v,
//       v = var_c * M / (M - 1) (CUNORM_RUNNING_VAR_UNBIASED) or var_c (CUNORM_RUNNING_VAR_BIASED)
//
// Backward functions take the statistics as given (they are not recomputed from x), because a
// kernel's backward is judged on the statistics its own forward saved. Parameter gradients are
// overwritten, not accumulated, and are computed whether or not gamma is given:
// dgamma = sum(dy * xhat) and dbeta = sum(dy) over the reduced dimension.
//
// Conventions: gamma == nullptr means gamma = 1, beta == nullptr means beta = 0. Outputs are
// double arrays and must not overlap the inputs; an output marked nullable may be nullptr and
// is then not written. An empty batch (rows == 0; n == 0 or s == 0) writes nothing and leaves
// running statistics untouched. BatchNorm layouts place element (n, c, s) at (n*C + c)*S + s
// for CUNORM_LAYOUT_NCHW and at (n*S + s)*C + c for CUNORM_LAYOUT_NHWC; layout must be one of
// those two. The reference does not check preconditions at run time: they are stated per function.
// Parameter and statistic types are deduced from the pointers, so an absent gamma or beta is a
// typed null pointer (e.g. static_cast<const float*>(nullptr)), not a bare nullptr.
#ifndef CUNORM_REFERENCE_HPP
#define CUNORM_REFERENCE_HPP

#include <cunorm/cunorm.h>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace cunorm {
namespace reference {

// The single conversion of every input to double. Half-precision types (__half,
// __nv_bfloat16) only convert explicitly to float, which is exact, so they go through float.
template <class T>
double to_double(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<double>(v);
  } else {
    return static_cast<double>(static_cast<float>(v));
  }
}

namespace detail {

template <class P>
double param_or(const P* p, int64_t i, double absent) {
  return p == nullptr ? absent : to_double(p[i]);
}

// An optional output: written when given.
inline void store_optional(double* out, int64_t i, double value) {
  if (out != nullptr) out[i] = value;
}

// Distance in elements between neighbours along n, c and s, so that every BatchNorm function
// walks a channel the same way in both layouts.
struct Strides {
  int64_t n, c, s;
};

inline Strides strides_of(cunormLayout_t layout, int64_t c, int64_t s) {
  if (layout == CUNORM_LAYOUT_NHWC) {
    return {s * c, 1, c};
  }
  return {c * s, s, 1};
}

template <class F>
void for_each_in_channel(const Strides& st, int64_t n, int64_t s, int64_t ci, F&& f) {
  for (int64_t ni = 0; ni < n; ++ni) {
    for (int64_t si = 0; si < s; ++si) {
      f(ni * st.n + ci * st.c + si * st.s);
    }
  }
}

// Mean and sum of squared deviations (M2) of one channel, two-pass.
template <class T>
void channel_mean_m2(const Strides& st, int64_t n, int64_t s, int64_t ci, const T* x, double* mean, double* m2) {
  double sum = 0.0;
  for_each_in_channel(st, n, s, ci, [&](int64_t i) { sum += to_double(x[i]); });
  const double mu = sum / static_cast<double>(n * s);
  double sq = 0.0;
  for_each_in_channel(st, n, s, ci, [&](int64_t i) {
    const double d = to_double(x[i]) - mu;
    sq += d * d;
  });
  *mean = mu;
  *m2 = sq;
}

}  // namespace detail

// Precondition: rows >= 0, cols > 0, eps >= 0.
template <class T, class P>
void layer_norm_forward(int64_t rows, int64_t cols, const T* x, const P* gamma, const P* beta, double eps, double* y,
                        double* mean /*nullable*/, double* rstd /*nullable*/) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    double sum = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      sum += to_double(xr[j]);
    }
    const double mu = sum / static_cast<double>(cols);
    double sq = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      const double d = to_double(xr[j]) - mu;
      sq += d * d;
    }
    const double rs = 1.0 / std::sqrt(sq / static_cast<double>(cols) + eps);
    for (int64_t j = 0; j < cols; ++j) {
      y[r * cols + j] = (to_double(xr[j]) - mu) * rs * detail::param_or(gamma, j, 1.0) + detail::param_or(beta, j, 0.0);
    }
    detail::store_optional(mean, r, mu);
    detail::store_optional(rstd, r, rs);
  }
}

// dx = rstd * (g*dy - mean_j(g*dy) - xhat * mean_j(g*dy*xhat)), xhat = (x - mean) * rstd.
// Precondition: rows >= 0, cols > 0.
template <class T, class P, class S>
void layer_norm_backward(int64_t rows, int64_t cols, const T* dy, const T* x, const S* mean, const S* rstd,
                         const P* gamma, double* dx, double* dgamma /*nullable*/, double* dbeta /*nullable*/) {
  if (rows == 0) {
    return;
  }
  for (int64_t j = 0; j < cols; ++j) {
    detail::store_optional(dgamma, j, 0.0);
    detail::store_optional(dbeta, j, 0.0);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const double mu = to_double(mean[r]);
    const double rs = to_double(rstd[r]);
    double sum_gdy = 0.0;
    double sum_gdy_xhat = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t i = r * cols + j;
      const double xhat = (to_double(x[i]) - mu) * rs;
      const double gdy = detail::param_or(gamma, j, 1.0) * to_double(dy[i]);
      sum_gdy += gdy;
      sum_gdy_xhat += gdy * xhat;
      if (dgamma != nullptr) {
        dgamma[j] += to_double(dy[i]) * xhat;
      }
      if (dbeta != nullptr) {
        dbeta[j] += to_double(dy[i]);
      }
    }
    const double mean_gdy = sum_gdy / static_cast<double>(cols);
    const double mean_gdy_xhat = sum_gdy_xhat / static_cast<double>(cols);
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t i = r * cols + j;
      const double xhat = (to_double(x[i]) - mu) * rs;
      const double gdy = detail::param_or(gamma, j, 1.0) * to_double(dy[i]);
      dx[i] = rs * (gdy - mean_gdy - xhat * mean_gdy_xhat);
    }
  }
}

// Precondition: rows >= 0, cols > 0, eps >= 0.
template <class T, class P>
void rms_norm_forward(int64_t rows, int64_t cols, const T* x, const P* gamma, double eps, double* y,
                      double* rrms /*nullable*/) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    double sq = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      const double v = to_double(xr[j]);
      sq += v * v;
    }
    const double rr = 1.0 / std::sqrt(sq / static_cast<double>(cols) + eps);
    for (int64_t j = 0; j < cols; ++j) {
      y[r * cols + j] = to_double(xr[j]) * rr * detail::param_or(gamma, j, 1.0);
    }
    detail::store_optional(rrms, r, rr);
  }
}

// dx = rrms * (g*dy - x * rrms^2 * mean_j(g*dy*x)); dgamma_j = sum_r dy * x * rrms.
// Precondition: rows >= 0, cols > 0.
template <class T, class P, class S>
void rms_norm_backward(int64_t rows, int64_t cols, const T* dy, const T* x, const S* rrms, const P* gamma, double* dx,
                       double* dgamma /*nullable*/) {
  if (rows == 0) {
    return;
  }
  if (dgamma != nullptr) {
    for (int64_t j = 0; j < cols; ++j) {
      dgamma[j] = 0.0;
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    const double rr = to_double(rrms[r]);
    double sum_gdy_x = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t i = r * cols + j;
      const double xv = to_double(x[i]);
      sum_gdy_x += detail::param_or(gamma, j, 1.0) * to_double(dy[i]) * xv;
      if (dgamma != nullptr) {
        dgamma[j] += to_double(dy[i]) * xv * rr;
      }
    }
    const double mean_gdy_x = sum_gdy_x / static_cast<double>(cols);
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t i = r * cols + j;
      const double gdy = detail::param_or(gamma, j, 1.0) * to_double(dy[i]);
      dx[i] = rr * (gdy - to_double(x[i]) * rr * rr * mean_gdy_x);
    }
  }
}

// running_mean and running_var are both nullptr or both given; they are read and updated in place.
// Precondition: n, c, s >= 0, n * s != 1 (M >= 2 unless the batch is empty), eps >= 0,
// momentum in [0, 1].
template <class T, class P>
void batch_norm_forward_training(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, const T* x, const P* gamma,
                                 const P* beta, double eps, double momentum, cunormRunningVarMode_t running_var_mode,
                                 double* running_mean, double* running_var, double* y, double* saved_mean /*nullable*/,
                                 double* saved_invstd /*nullable*/) {
  if (n == 0 || s == 0) {
    return;
  }
  const detail::Strides st = detail::strides_of(layout, c, s);
  const double m = static_cast<double>(n * s);
  for (int64_t ci = 0; ci < c; ++ci) {
    double mu = 0.0;
    double m2 = 0.0;
    detail::channel_mean_m2(st, n, s, ci, x, &mu, &m2);
    const double var = m2 / m;
    const double invstd = 1.0 / std::sqrt(var + eps);
    const double g = detail::param_or(gamma, ci, 1.0);
    const double b = detail::param_or(beta, ci, 0.0);
    detail::for_each_in_channel(st, n, s, ci, [&](int64_t i) { y[i] = (to_double(x[i]) - mu) * invstd * g + b; });
    if (running_mean != nullptr) {
      const double v = running_var_mode == CUNORM_RUNNING_VAR_UNBIASED ? m2 / (m - 1.0) : var;
      running_mean[ci] = (1.0 - momentum) * running_mean[ci] + momentum * mu;
      running_var[ci] = (1.0 - momentum) * running_var[ci] + momentum * v;
    }
    detail::store_optional(saved_mean, ci, mu);
    detail::store_optional(saved_invstd, ci, invstd);
  }
}

// Precondition: n, c, s >= 0, eps >= 0, running_var + eps > 0. Any M, including 1.
template <class T, class P, class S>
void batch_norm_forward_inference(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, const T* x, const P* gamma,
                                  const P* beta, const S* running_mean, const S* running_var, double eps, double* y) {
  if (n == 0 || s == 0) {
    return;
  }
  const detail::Strides st = detail::strides_of(layout, c, s);
  for (int64_t ci = 0; ci < c; ++ci) {
    const double mu = to_double(running_mean[ci]);
    const double invstd = 1.0 / std::sqrt(to_double(running_var[ci]) + eps);
    const double g = detail::param_or(gamma, ci, 1.0);
    const double b = detail::param_or(beta, ci, 0.0);
    detail::for_each_in_channel(st, n, s, ci, [&](int64_t i) { y[i] = (to_double(x[i]) - mu) * invstd * g + b; });
  }
}

// dx = g * invstd * (dy - mean_c(dy) - xhat * mean_c(dy*xhat)), xhat = (x - saved_mean) * saved_invstd.
// Precondition: n, c, s >= 0, n * s != 1 (M >= 2 unless the batch is empty).
template <class T, class P, class S>
void batch_norm_backward(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, const T* dy, const T* x,
                         const P* gamma, const S* saved_mean, const S* saved_invstd, double* dx,
                         double* dgamma /*nullable*/, double* dbeta /*nullable*/) {
  if (n == 0 || s == 0) {
    return;
  }
  const detail::Strides st = detail::strides_of(layout, c, s);
  const double m = static_cast<double>(n * s);
  for (int64_t ci = 0; ci < c; ++ci) {
    const double mu = to_double(saved_mean[ci]);
    const double invstd = to_double(saved_invstd[ci]);
    double sum_dy = 0.0;
    double sum_dy_xhat = 0.0;
    detail::for_each_in_channel(st, n, s, ci, [&](int64_t i) {
      const double d = to_double(dy[i]);
      sum_dy += d;
      sum_dy_xhat += d * (to_double(x[i]) - mu) * invstd;
    });
    const double mean_dy = sum_dy / m;
    const double mean_dy_xhat = sum_dy_xhat / m;
    const double scale = detail::param_or(gamma, ci, 1.0) * invstd;
    detail::for_each_in_channel(st, n, s, ci, [&](int64_t i) {
      const double xhat = (to_double(x[i]) - mu) * invstd;
      dx[i] = scale * (to_double(dy[i]) - mean_dy - xhat * mean_dy_xhat);
    });
    detail::store_optional(dgamma, ci, sum_dy_xhat);
    detail::store_optional(dbeta, ci, sum_dy);
  }
}

// The statistics are constants here, so dx is the plain per-channel scale and
// dgamma = sum dy * (x - running_mean) / sqrt(running_var + eps).
// Precondition: n, c, s >= 0, eps >= 0, running_var + eps > 0.
template <class T, class P, class S>
void batch_norm_backward_inference(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, const T* dy, const T* x,
                                   const P* gamma, const S* running_mean, const S* running_var, double eps, double* dx,
                                   double* dgamma /*nullable*/, double* dbeta /*nullable*/) {
  if (n == 0 || s == 0) {
    return;
  }
  const detail::Strides st = detail::strides_of(layout, c, s);
  for (int64_t ci = 0; ci < c; ++ci) {
    const double mu = to_double(running_mean[ci]);
    const double invstd = 1.0 / std::sqrt(to_double(running_var[ci]) + eps);
    const double scale = detail::param_or(gamma, ci, 1.0) * invstd;
    double sum_dy = 0.0;
    double sum_dy_xhat = 0.0;
    detail::for_each_in_channel(st, n, s, ci, [&](int64_t i) {
      const double d = to_double(dy[i]);
      sum_dy += d;
      sum_dy_xhat += d * (to_double(x[i]) - mu) * invstd;
      dx[i] = d * scale;
    });
    detail::store_optional(dgamma, ci, sum_dy_xhat);
    detail::store_optional(dbeta, ci, sum_dy);
  }
}

// Exact population statistics of everything accumulated, batch by batch: each batch's
// (count, mean, M2) per channel is merged with Chan's formula, so the result does not depend
// on how the data was split and no batch is weighted by a momentum.
class BatchNormCalibration {
 public:
  // Precondition: c >= 0.
  explicit BatchNormCalibration(int64_t c)
      : count_(0), mean_(static_cast<size_t>(c), 0.0), m2_(static_cast<size_t>(c), 0.0) {}

  // x is an (n, c, s) tensor in the given layout, c as at construction. n == 0 or s == 0 adds nothing.
  template <class T>
  void accumulate(cunormLayout_t layout, int64_t n, int64_t s, const T* x) {
    if (n == 0 || s == 0) {
      return;
    }
    const int64_t c = static_cast<int64_t>(mean_.size());
    const detail::Strides st = detail::strides_of(layout, c, s);
    const double na = static_cast<double>(count_);
    const double nb = static_cast<double>(n * s);
    const double total = na + nb;
    for (int64_t ci = 0; ci < c; ++ci) {
      double mb = 0.0;
      double m2b = 0.0;
      detail::channel_mean_m2(st, n, s, ci, x, &mb, &m2b);
      const double delta = mb - mean_[ci];
      mean_[ci] += delta * (nb / total);
      m2_[ci] += m2b + delta * delta * (na * nb / total);
    }
    count_ += n * s;
  }

  // Values seen per channel.
  int64_t count() const { return count_; }

  // Writes the mean and the unbiased variance M2 / (count - 1) of every channel. Does not reset,
  // so more batches may be accumulated afterwards. Precondition: count() >= 2.
  void finalize(double* mean, double* var_unbiased) const {
    const double denom = static_cast<double>(count_ - 1);
    const int64_t c = static_cast<int64_t>(mean_.size());
    for (int64_t ci = 0; ci < c; ++ci) {
      mean[ci] = mean_[ci];
      var_unbiased[ci] = m2_[ci] / denom;
    }
  }

 private:
  int64_t count_;
  std::vector<double> mean_;
  std::vector<double> m2_;
};

// ---- Tolerances ------------------------------------------------------------------------------
// The one table of how far a kernel's result may be from this reference computed on the same
// (already rounded) inputs: float32 results are held to float32 arithmetic error, float16 and
// bfloat16 results to about two units in their last place.
struct Tolerance {
  double absolute;
  double relative;
  // The largest |actual - expected| accepted where the reference gives `expected`.
  double allowed(double expected) const { return absolute + relative * std::abs(expected); }
  bool accepts(double actual, double expected) const {
    if (std::isnan(expected)) return std::isnan(actual);
    return std::abs(actual - expected) <= allowed(expected);
  }
};

// For values stored in `dtype` (activations, parameter gradients).
inline Tolerance output_tolerance(cunormDataType_t dtype) {
  switch (dtype) {
    case CUNORM_FLOAT16: return Tolerance{1e-3, 1e-3};   // 2^-11 relative rounding
    case CUNORM_BFLOAT16: return Tolerance{8e-3, 8e-3};  // 2^-8 relative rounding
    default: return Tolerance{1e-5, 1e-5};
  }
}

// For float32 statistics (mean, rstd, invstd), whatever the activation type.
inline Tolerance statistics_tolerance() { return Tolerance{1e-6, 1e-5}; }

// Parameter gradients are float32 sums in a fixed order: each thread chains at most `chained`
// additions, then fixed trees combine the partial sums, so the sum is within
// float32_sum_error_factor(chained) * sum(|term|) of the exact one (the slack added to
// output_tolerance). LayerNorm/RMSNorm dgamma/dbeta: chained = rows; BatchNorm: min(N*S, 512)
// (a block of 256 threads takes at most 65536 elements of a channel, ops/batch_norm/batch_norm_plan.cpp).
inline double float32_sum_error_factor(int64_t chained) {
  return (static_cast<double>(chained) + 8.0) * std::ldexp(1.0, -23);
}

}  // namespace reference
}  // namespace cunorm

#endif  // CUNORM_REFERENCE_HPP
