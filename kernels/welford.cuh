// Welford statistics (count, mean, M2) in float32: a thread's state from values it holds, Chan's
// merge of two states, and the Reducer that lets reduce.cuh merge them across lanes and warps.
// A merge rounds differently depending on which state comes first; the reductions always put
// the lower lane's state first.
#pragma once

#include "float_math.cuh"
#include "platform.cuh"

namespace cunorm::kernels {

// count values with mean `mean` and sum of squared deviations `m2`. count is a float: exact up
// to 2^24 values per state, and a relative error of 2^-24 in the merge weights beyond.
struct WelfordState {
  float count;
  float mean;
  float m2;
};

CUNORM_DEVICE WelfordState welford_empty() { return WelfordState{0.0f, 0.0f, 0.0f}; }

// Chan et al.: the statistics of the union of two disjoint sets.
CUNORM_DEVICE WelfordState welford_merge(const WelfordState& a, const WelfordState& b) {
  if (b.count == 0.0f) return a;
  if (a.count == 0.0f) return b;
  const float count = a.count + b.count;
  const float delta = b.mean - a.mean;
  const float b_share = divide_by_count(b.count, count);
  return WelfordState{count, a.mean + delta * b_share, a.m2 + b.m2 + delta * delta * a.count * b_share};
}

// Biased variance, clamped at zero against rounding.
CUNORM_DEVICE float welford_variance(const WelfordState& s) {
  const float var = divide_by_count(s.m2, s.count);
  return var > 0.0f ? var : 0.0f;
}

// Welford states as a Reducer (reduce.cuh).
struct WelfordReducer {
  using State = WelfordState;
  static CUNORM_DEVICE State empty() { return welford_empty(); }
  static CUNORM_DEVICE State merge(const State& lower, const State& upper) { return welford_merge(lower, upper); }
  static CUNORM_DEVICE State shuffle_xor(const State& s, int offset, int width) {
    return State{__shfl_xor_sync(0xffffffffu, s.count, offset, width),
                 __shfl_xor_sync(0xffffffffu, s.mean, offset, width),
                 __shfl_xor_sync(0xffffffffu, s.m2, offset, width)};
  }
};

}  // namespace cunorm::kernels
