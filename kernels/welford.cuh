// Welford statistics in float32 and their Chan merges across lanes and warps, shaped like CUB's
// WarpReduce/BlockReduce: a state type, a warp all-reduce, and a block all-reduce whose caller
// owns the shared TempStorage.
//
// Determinism: a merge rounds differently depending on which state comes first, so every
// merge puts the lower lane's (or warp's) state first. In the xor butterfly both partners then
// compute the identical merge, and every lane ends with bitwise the same result, whatever the
// order in which the hardware (or the SIMT engine) runs them.
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

// The state of the valid packs of a thread's register-resident row segment, in two passes over
// the registers (sum, then squared deviations from the mean): no division per element, and at
// least as accurate as element-wise Welford. Masked packs (valid[k] false) are skipped.
template <int CHUNKS, int VEC>
CUNORM_DEVICE WelfordState welford_of_registers(const float (&v)[CHUNKS][VEC], const bool (&valid)[CHUNKS]) {
  float sum = 0.0f;
  int count = 0;
  CUNORM_UNROLL
  for (int k = 0; k < CHUNKS; ++k) {
    if (!valid[k]) continue;
    count += VEC;
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) sum += v[k][e];
  }
  if (count == 0) return welford_empty();
  const float mean = divide_by_count(sum, static_cast<float>(count));
  float m2 = 0.0f;
  CUNORM_UNROLL
  for (int k = 0; k < CHUNKS; ++k) {
    if (!valid[k]) continue;
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) {
      const float d = v[k][e] - mean;
      m2 += d * d;
    }
  }
  return WelfordState{static_cast<float>(count), mean, m2};
}

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

struct WarpWelford {
  // All-reduce within aligned groups of `width` lanes (a power of two up to 32). Every lane of
  // the warp must call it.
  static CUNORM_DEVICE WelfordState all_reduce(WelfordState s, int width) {
    const int lane = static_cast<int>(threadIdx.x % 32);
    for (int offset = width / 2; offset > 0; offset /= 2) {
      WelfordState other;
      other.count = __shfl_xor_sync(0xffffffffu, s.count, offset, width);
      other.mean = __shfl_xor_sync(0xffffffffu, s.mean, offset, width);
      other.m2 = __shfl_xor_sync(0xffffffffu, s.m2, offset, width);
      s = (lane & offset) != 0 ? welford_merge(other, s) : welford_merge(s, other);
    }
    return s;
  }
};

// All-reduce over a 1-D block whose size is a multiple of 32. Every thread must call it.
class BlockWelford {
 public:
  struct TempStorage {
    WelfordState warps[32];
    WelfordState total;
  };

  CUNORM_DEVICE explicit BlockWelford(TempStorage& storage) : storage_(storage) {}

  CUNORM_DEVICE WelfordState all_reduce(WelfordState s) {
    const unsigned lane = threadIdx.x % 32;
    const unsigned warp = threadIdx.x / 32;
    s = WarpWelford::all_reduce(s, 32);
    if (lane == 0) storage_.warps[warp] = s;
    __syncthreads();
    if (warp == 0) {
      WelfordState t = lane < blockDim.x / 32 ? storage_.warps[lane] : welford_empty();
      t = WarpWelford::all_reduce(t, 32);
      if (lane == 0) storage_.total = t;
    }
    __syncthreads();
    return storage_.total;
  }

 private:
  TempStorage& storage_;
};

}  // namespace cunorm::kernels
