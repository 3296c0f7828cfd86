// What distinguishes LayerNorm from RMSNorm, as policies for the row kernels
// (row_norm_forward.cuh, row_norm_backward.cuh), which are written once for both.
//
//   LayerNorm: mean and biased variance of the row (Welford/Chan; exact two-pass sums where a
//              block holds the row); scale = rstd = 1/sqrt(var + eps);
//              xhat = (x - mean) * rstd; y = xhat * gamma + beta;
//              dx = rstd * (g*dy - mean(g*dy) - xhat * mean(g*dy*xhat))
//   RMSNorm:   scale = rrms = 1/sqrt(sum(x^2)/cols + eps); xhat = x * rrms; y = xhat * gamma;
//              dx = rrms * (g*dy - xhat * mean(g*dy*xhat))
// with dgamma = sum over rows of dy * xhat and (LayerNorm) dbeta = sum of dy.
#pragma once

#include "../../kernels/float_math.cuh"
#include "../../kernels/platform.cuh"
#include "../../kernels/reduce.cuh"
#include "../../kernels/welford.cuh"

namespace cunorm::kernels {

// The statistics one row is normalized with: xhat = (x - mean) * scale.
struct RowStatistics {
  float mean;   // 0 for RMSNorm
  float scale;  // rstd (LayerNorm) or rrms (RMSNorm)
};

// Per-row terms of dx = scale * (g*dy - shift - xhat * slope).
struct RowGradient {
  float shift;  // mean(g*dy) for LayerNorm, 0 for RMSNorm
  float slope;  // mean(g*dy*xhat)
};

CUNORM_DEVICE float normalized(float x, const RowStatistics& st) { return (x - st.mean) * st.scale; }

// Shared memory of the block_statistics below: block reductions of one and of two float sums.
struct RowSumsStorage {
  BlockAllReduce<SumReducer<1>>::TempStorage one;
  BlockAllReduce<SumReducer<2>>::TempStorage two;
};

struct LayerNormOp {
  static constexpr bool kCentered = true;  // subtracts the mean, has beta, stores mean and rstd
  static constexpr const char* kName = "layer_norm";
  using Reducer = WelfordReducer;
  using GradientReducer = SumReducer<2>;  // sum(g*dy), sum(g*dy*xhat)

  // The (count, mean, M2) of a thread's values, in two passes: for_each(f) calls f on each value.
  // The sum is taken relative to the first value, so that equal values give their mean exactly
  // (a constant row has variance 0 and y = beta, as element-wise Welford gives).
  template <class ForEach>
  static CUNORM_DEVICE WelfordState thread_state(ForEach&& for_each) {
    float shift = 0.0f;
    float sum = 0.0f;
    float count = 0.0f;
    for_each([&](float x) {
      if (count == 0.0f) shift = x;
      sum += x - shift;
      count += 1.0f;
    });
    if (count == 0.0f) return welford_empty();
    const float mean = shift + divide_by_count(sum, count);
    float m2 = 0.0f;
    for_each([&](float x) {
      const float d = x - mean;
      m2 += d * d;
    });
    return WelfordState{count, mean, m2};
  }
  static CUNORM_DEVICE RowStatistics finish(const WelfordState& s, float, float eps) {
    return RowStatistics{s.mean, reciprocal_sqrt(welford_variance(s) + eps)};
  }
  // The statistics of a row whose values the block's threads hold (every thread calls it; for_each
  // visits the thread's values; inv_cols = 1/cols): exact two-pass float sums, no division and no
  // Welford merge in the reductions. The row's sum gives a first mean m0; the sums of d = x - m0
  // and d^2 give mean = m0 + sum(d)/cols and M2 = sum(d^2) - sum(d)^2/cols. sum(d) is of the
  // size of m0's rounding, so a constant row gets its value as mean exactly and M2 = 0.
  template <class ForEach>
  static CUNORM_DEVICE RowStatistics block_statistics(RowSumsStorage& storage, ForEach&& for_each, float inv_cols,
                                                      float, float eps) {
    float sum = 0.0f;
    for_each([&](float x) { sum += x; });
    const float m0 = BlockAllReduce<SumReducer<1>>(storage.one).all_reduce(Sums<1>{{sum}}).v[0] * inv_cols;
    Sums<2> d{{0.0f, 0.0f}};
    for_each([&](float x) {
      const float e = x - m0;
      d.v[0] += e;
      d.v[1] += e * e;
    });
    d = BlockAllReduce<SumReducer<2>>(storage.two).all_reduce(d);
    const float shift = d.v[0] * inv_cols;
    const float m2 = d.v[1] - d.v[0] * shift;
    return RowStatistics{m0 + shift, reciprocal_sqrt((m2 > 0.0f ? m2 * inv_cols : 0.0f) + eps)};
  }
  static CUNORM_DEVICE GradientReducer::State gradient_terms(float gdy, float xhat) {
    return GradientReducer::State{{gdy, gdy * xhat}};
  }
  static CUNORM_DEVICE RowGradient finish_gradient(const GradientReducer::State& s, float cols) {
    return RowGradient{divide_by_count(s.v[0], cols), divide_by_count(s.v[1], cols)};
  }
};

struct RmsNormOp {
  static constexpr bool kCentered = false;  // no mean, no beta; stores rrms
  static constexpr const char* kName = "rms_norm";
  using Reducer = SumReducer<1>;          // sum of squares
  using GradientReducer = SumReducer<1>;  // sum(g*dy*xhat)

  template <class ForEach>
  static CUNORM_DEVICE Sums<1> thread_state(ForEach&& for_each) {
    float squares = 0.0f;
    for_each([&](float x) { squares += x * x; });
    return Sums<1>{{squares}};
  }
  static CUNORM_DEVICE RowStatistics finish(const Sums<1>& s, float cols, float eps) {
    return RowStatistics{0.0f, reciprocal_sqrt(divide_by_count(s.v[0], cols) + eps)};
  }
  // As LayerNormOp::block_statistics: the block's sum of squares, as thread_state and finish.
  template <class ForEach>
  static CUNORM_DEVICE RowStatistics block_statistics(RowSumsStorage& storage, ForEach&& for_each, float, float cols,
                                                      float eps) {
    return finish(BlockAllReduce<Reducer>(storage.one).all_reduce(thread_state(for_each)), cols, eps);
  }
  static CUNORM_DEVICE GradientReducer::State gradient_terms(float gdy, float xhat) {
    return GradientReducer::State{{gdy * xhat}};
  }
  static CUNORM_DEVICE RowGradient finish_gradient(const GradientReducer::State& s, float cols) {
    return RowGradient{0.0f, divide_by_count(s.v[0], cols)};
  }
};

CUNORM_DEVICE float input_gradient(float gdy, float xhat, const RowStatistics& st, const RowGradient& rg) {
  return st.scale * (gdy - rg.shift - xhat * rg.slope);
}

}  // namespace cunorm::kernels
