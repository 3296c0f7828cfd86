// BatchNorm's per-channel steps: merging the partial states of a channel's chunks (in chunk
// order: lane l of the channel's warp merges chunks l, l + 32, ..., then the warp's canonical
// butterfly), and turning the channel's statistics into what the next pass and the caller need.
//
//   finalize_statistics (training forward, calibration): mean and biased var; invstd =
//     1/sqrt(var + eps); the saved statistics; the running statistics' new values (unbiased:
//     var * M / (M - 1), or biased), into the workspace, for the normalize pass, the call's last
//     launch, to commit (so that a call failing before that launch leaves them as they were, and
//     its retry applies momentum once); the normalize coefficients (mean, invstd * gamma, beta);
//     or the batch's (mean, M2).
//   finalize_gradients (backward): dgamma = sum(dy * xhat), dbeta = sum(dy); for the training
//     backward the coefficients of dx = g*invstd * (dy - mean(dy) - (x - mean) * invstd * mean(dy*xhat)).
//   RunningCoefficients: the inference passes' per-channel values from the running statistics,
//     computed in the pass that uses them (no launch of their own).
#pragma once

#include <cstdint>

#include "../../kernels/float_math.cuh"
#include "../../kernels/global_memory.cuh"
#include "../../kernels/numeric.cuh"
#include "../../kernels/platform.cuh"
#include "../../kernels/reduce.cuh"
#include "../../kernels/welford.cuh"

namespace cunorm::kernels {

constexpr int kFinalizeChannelsPerBlock = 8;  // one warp per channel

template <class P>
struct BatchNormStatisticsArgs {
  Global<const float> partials;  // [chunks][C] Welford states
  int64_t chunks;
  int64_t c;
  float count;  // M = N*S
  float eps;
  float momentum;
  bool unbiased_running_var;
  Global<const P> gamma;     // null: 1
  Global<const P> beta;      // null: 0
  Global<float> saved_mean;  // optional outputs
  Global<float> saved_invstd;
  Global<const float> running_mean;  // optional: read, their new values go to running_update
  Global<const float> running_var;
  Global<float> running_update;  // with the running statistics: [2][C] new running mean, var
  Global<float> coefficients;    // optional: [3][C] mean, invstd * gamma, beta
  Global<float> batch_mean;      // optional (calibration): the batch's mean and M2
  Global<float> batch_m2;
};

template <class P>
CUNORM_DEVICE float parameter_or(Global<const P> p, int64_t c, float absent) {
  return p.is_null() ? absent : to_float(load_one(p, c));
}

// The channel's state merged over its chunks, on every lane of the calling warp.
template <class Reducer>
CUNORM_DEVICE typename Reducer::State merge_chunks(Global<const float> partials, int64_t chunks, int64_t channels,
                                                   int64_t c) {
  typename Reducer::State s = Reducer::empty();
  for (int64_t chunk = threadIdx.x % 32; chunk < chunks; chunk += 32) {
    s = Reducer::merge(s, load_state<typename Reducer::State>(partials, chunk * channels + c));
  }
  return warp_all_reduce<Reducer>(s, 32);
}

template <class P>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kFinalizeChannelsPerBlock * 32, 1)
    batch_norm_finalize_statistics(BatchNormStatisticsArgs<P> a) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kFinalizeChannelsPerBlock + threadIdx.x / 32;
  if (c >= a.c) return;  // a whole warp leaves together: no collective is left waiting
  const WelfordState s = merge_chunks<WelfordReducer>(a.partials, a.chunks, a.c, c);
  if (threadIdx.x % 32 != 0) return;
  const float var = welford_variance(s);
  const float invstd = reciprocal_sqrt(var + a.eps);
  if (!a.saved_mean.is_null()) store_one(a.saved_mean, c, s.mean);
  if (!a.saved_invstd.is_null()) store_one(a.saved_invstd, c, invstd);
  if (!a.running_mean.is_null()) {
    const float batch_var = a.unbiased_running_var ? divide_by_count(s.m2, a.count - 1.0f) : var;
    const float keep = 1.0f - a.momentum;
    store_one(a.running_update, c, keep * load_one(a.running_mean, c) + a.momentum * s.mean);
    store_one(a.running_update, a.c + c, keep * load_one(a.running_var, c) + a.momentum * batch_var);
  }
  if (!a.coefficients.is_null()) {
    store_one(a.coefficients, c, s.mean);
    store_one(a.coefficients, a.c + c, invstd * parameter_or(a.gamma, c, 1.0f));
    store_one(a.coefficients, 2 * a.c + c, parameter_or(a.beta, c, 0.0f));
  }
  if (!a.batch_mean.is_null()) {
    store_one(a.batch_mean, c, s.mean);
    store_one(a.batch_m2, c, s.m2);
  }
}

template <class P>
struct BatchNormGradientArgs {
  Global<const float> partials;  // [chunks][C] of (sum dy, sum dy * xhat)
  int64_t chunks;
  int64_t c;
  float count;               // M
  Global<const float> mean;  // per channel: the statistics xhat was formed with
  Global<const float> invstd;
  Global<const P> gamma;          // null: 1
  Global<P> dgamma;               // optional
  Global<P> dbeta;                // optional
  Global<float> dx_coefficients;  // optional (training): [4][C] for BatchNormMap::kBackward
};

template <class P>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kFinalizeChannelsPerBlock * 32, 1)
    batch_norm_finalize_gradients(BatchNormGradientArgs<P> a) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kFinalizeChannelsPerBlock + threadIdx.x / 32;
  if (c >= a.c) return;  // a whole warp leaves together
  const Sums<2> s = merge_chunks<SumReducer<2>>(a.partials, a.chunks, a.c, c);
  if (threadIdx.x % 32 != 0) return;
  if (!a.dgamma.is_null()) store_one(a.dgamma, c, from_float<P>(s.v[1]));
  if (!a.dbeta.is_null()) store_one(a.dbeta, c, from_float<P>(s.v[0]));
  if (!a.dx_coefficients.is_null()) {
    const float mean = load_one(a.mean, c), invstd = load_one(a.invstd, c);
    store_one(a.dx_coefficients, c, parameter_or(a.gamma, c, 1.0f) * invstd);
    store_one(a.dx_coefficients, a.c + c, divide_by_count(s.v[0], a.count));
    store_one(a.dx_coefficients, 2 * a.c + c, invstd * divide_by_count(s.v[1], a.count));
    store_one(a.dx_coefficients, 3 * a.c + c, mean);
  }
}

// The inference passes' per-channel values, computed from the running statistics by each thread
// that uses them, so that no launch has to write them first: forward, k = (scale, shift) with
// scale = gamma / sqrt(var + eps), shift = beta - mean * scale; backward, k = (mean, invstd,
// dx scale = gamma * invstd), the values the gradient reduction reads (the interface of CoefficientRows,
// batch_norm_passes.cuh).
template <class P>
struct RunningCoefficients {
  Global<const float> running_mean;
  Global<const float> running_var;
  Global<const P> gamma;  // null: 1
  Global<const P> beta;   // null: 0 (forward only)
  float eps;
  bool for_backward;
  CUNORM_DEVICE void load(int64_t c, float (&k)[4]) const {
    const float mean = load_one(running_mean, c);
    const float invstd = reciprocal_sqrt(load_one(running_var, c) + eps);
    const float scale = parameter_or(gamma, c, 1.0f) * invstd;
    if (for_backward) {
      k[0] = mean;
      k[1] = invstd;
      k[2] = scale;
    } else {
      k[0] = scale;
      k[1] = parameter_or(beta, c, 0.0f) - mean * scale;
      k[2] = 0.0f;
    }
    k[3] = 0.0f;
  }
};

}  // namespace cunorm::kernels
