// LayerNorm forward: y = (x - mean) * rstd * gamma + beta per row, with mean and the biased
// variance from per-thread two-pass statistics merged by Chan's formula in float32, and
// rstd = 1 / sqrt(var + eps) to within 1 ulp (float_math.cuh; not the rsqrtf approximation).
// Four variants by row length, chosen on the host (host/layer_norm_plan.cpp); the first three
// read each element of x from DRAM exactly once:
//
//   warp_rows        cols <= 1024: a group of `width` lanes (1..32) per row, the row in registers;
//                    gamma and beta staged once per block in shared memory as float.
//   block_registers  cols <= 8192: one block per row, the row in registers, gamma and beta
//                    in registers for all the rows the block visits.
//   block_shared     the row fits the block's shared memory: one block per row, the row kept in
//                    shared memory between the statistics and the normalization.
//   block_uncached   anything longer: x read once per statistics pass and once to normalize.
//
// VEC elements move per access: 16 bytes when every pointer is aligned and cols % VEC == 0,
// else 1 (chosen on the host). Columns past cols in a thread's last pack are masked (the tail).
#pragma once

#include <cstdint>

#include "float_math.cuh"
#include "global_memory.cuh"
#include "numeric.cuh"
#include "platform.cuh"
#include "welford.cuh"

namespace cunorm::kernels {

template <class T, class P>
struct LayerNormForwardArgs {
  Global<const T> x;
  Global<const P> gamma;  // null: 1
  Global<const P> beta;   // null: 0
  Global<T> y;
  Global<float> mean;  // null: not stored
  Global<float> rstd;  // null: not stored
  int64_t rows;
  int64_t cols;
  float eps;
};

constexpr int kWarpRowsThreads = 128;
constexpr int kMaxBlockThreads = 1024;

struct RowStatistics {
  float mean;
  float rstd;
};

CUNORM_DEVICE RowStatistics finish_statistics(const WelfordState& s, float eps) {
  return RowStatistics{s.mean, reciprocal_sqrt(welford_variance(s) + eps)};
}

CUNORM_DEVICE float layer_norm_apply(float x, const RowStatistics& st, float g, float b) {
  return (x - st.mean) * st.rstd * g + b;
}

template <class T, class P>
CUNORM_DEVICE void store_statistics(const LayerNormForwardArgs<T, P>& a, int64_t row, const RowStatistics& st) {
  if (!a.mean.is_null()) store_one(a.mean, row, st.mean);
  if (!a.rstd.is_null()) store_one(a.rstd, row, st.rstd);
}

// Loads VEC parameters as floats, or `fallback` for each when the parameter is absent.
template <int VEC, class P>
CUNORM_DEVICE void load_parameters(Global<const P> p, int64_t col, float fallback, float (&out)[VEC]) {
  if (p.is_null()) {
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) out[e] = fallback;
    return;
  }
  const Pack<P, VEC> pack = load<VEC>(p, col);
  CUNORM_UNROLL
  for (int e = 0; e < VEC; ++e) out[e] = to_float(pack.elements[e]);
}

template <class T, int VEC>
CUNORM_DEVICE void store_normalized(Global<T> y, int64_t offset, const float (&x)[VEC], const RowStatistics& st,
                                    const float (&g)[VEC], const float (&b)[VEC]) {
  Pack<T, VEC> out;
  CUNORM_UNROLL
  for (int e = 0; e < VEC; ++e) out.elements[e] = from_float<T>(layer_norm_apply(x[e], st, g[e], b[e]));
  store<VEC>(y, offset, out);
}

// ---- warp_rows -------------------------------------------------------------------------------
// Dynamic shared memory: 2 * cols floats (gamma then beta).
template <class T, class P, int VEC, int CHUNKS>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kWarpRowsThreads, 1)
    layer_norm_forward_warp_rows(LayerNormForwardArgs<T, P> a, int width) {
  const int cols = static_cast<int>(a.cols);
  float* staged_gamma = dynamic_shared_memory<float>();
  float* staged_beta = staged_gamma + cols;
  for (int col = static_cast<int>(threadIdx.x) * VEC; col < cols; col += static_cast<int>(blockDim.x) * VEC) {
    float g[VEC], b[VEC];
    load_parameters<VEC>(a.gamma, col, 1.0f, g);
    load_parameters<VEC>(a.beta, col, 0.0f, b);
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) {
      staged_gamma[col + e] = g[e];
      staged_beta[col + e] = b[e];
    }
  }
  __syncthreads();

  const int lane = static_cast<int>(threadIdx.x) % width;
  const int groups = static_cast<int>(blockDim.x) / width;
  const int64_t group_row = static_cast<int64_t>(threadIdx.x) / width;
  // The loop bound depends on the block only, so every lane of a warp takes part in every
  // shuffle of the reduction, including lanes whose row is past the end.
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * groups; first < a.rows;
       first += static_cast<int64_t>(gridDim.x) * groups) {
    const int64_t row = first + group_row;
    const bool row_valid = row < a.rows;
    float v[CHUNKS][VEC] = {};  // masked packs stay unused; zeroed so no path reads garbage
    bool valid[CHUNKS];
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      const int col = (k * width + lane) * VEC;
      valid[k] = row_valid && col < cols;
      if (valid[k]) {
        const Pack<T, VEC> pack = load<VEC>(a.x, row * a.cols + col);
        CUNORM_UNROLL
        for (int e = 0; e < VEC; ++e) v[k][e] = to_float(pack.elements[e]);
      }
    }
    const WelfordState s = WarpWelford::all_reduce(welford_of_registers(v, valid), width);
    if (!row_valid) continue;
    const RowStatistics st = finish_statistics(s, a.eps);
    if (lane == 0) store_statistics(a, row, st);
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      if (!valid[k]) continue;
      const int col = (k * width + lane) * VEC;
      float g[VEC], b[VEC];
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) {
        g[e] = staged_gamma[col + e];
        b[e] = staged_beta[col + e];
      }
      store_normalized<T, VEC>(a.y, row * a.cols + col, v[k], st, g, b);
    }
  }
}

// ---- block_registers -------------------------------------------------------------------------
template <class T, class P, int VEC, int CHUNKS>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kMaxBlockThreads, 1)
    layer_norm_forward_block_registers(LayerNormForwardArgs<T, P> a) {
  CUNORM_SHARED(BlockWelford::TempStorage, reduce_storage);
  const int cols = static_cast<int>(a.cols);
  const int threads = static_cast<int>(blockDim.x);
  float g[CHUNKS][VEC] = {}, b[CHUNKS][VEC] = {};
  bool valid[CHUNKS];
  CUNORM_UNROLL
  for (int k = 0; k < CHUNKS; ++k) {
    const int col = (k * threads + static_cast<int>(threadIdx.x)) * VEC;
    valid[k] = col < cols;
    if (valid[k]) {
      load_parameters<VEC>(a.gamma, col, 1.0f, g[k]);
      load_parameters<VEC>(a.beta, col, 0.0f, b[k]);
    }
  }
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    float v[CHUNKS][VEC] = {};
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      if (valid[k]) {
        const Pack<T, VEC> pack = load<VEC>(a.x, row * a.cols + (k * threads + static_cast<int>(threadIdx.x)) * VEC);
        CUNORM_UNROLL
        for (int e = 0; e < VEC; ++e) v[k][e] = to_float(pack.elements[e]);
      }
    }
    const WelfordState s = BlockWelford(reduce_storage).all_reduce(welford_of_registers(v, valid));
    const RowStatistics st = finish_statistics(s, a.eps);
    if (threadIdx.x == 0) store_statistics(a, row, st);
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      if (valid[k]) {
        store_normalized<T, VEC>(a.y, row * a.cols + (k * threads + static_cast<int>(threadIdx.x)) * VEC, v[k], st,
                                 g[k], b[k]);
      }
    }
  }
}

// ---- block_shared ----------------------------------------------------------------------------
// Dynamic shared memory: cols elements of T. Each thread reads back only the packs it wrote, so
// the cache itself needs no barrier; the reduction's barriers order the rows. Statistics per
// thread in two passes over its cached packs (sum, then squared deviations): a division per
// thread and row, not per element.
template <class T, class P, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kMaxBlockThreads, 1)
    layer_norm_forward_block_shared(LayerNormForwardArgs<T, P> a) {
  CUNORM_SHARED(BlockWelford::TempStorage, reduce_storage);
  Pack<T, VEC>* row_cache = dynamic_shared_memory<Pack<T, VEC>>();
  const int packs = static_cast<int>(a.cols / VEC);
  const int first = static_cast<int>(threadIdx.x), stride = static_cast<int>(blockDim.x);
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    float sum = 0.0f;
    int count = 0;
    for (int p = first; p < packs; p += stride) {
      const Pack<T, VEC> pack = load<VEC>(a.x, row * a.cols + static_cast<int64_t>(p) * VEC);
      row_cache[p] = pack;
      count += VEC;
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) sum += to_float(pack.elements[e]);
    }
    WelfordState s = welford_empty();
    if (count > 0) {
      const float mean = divide_by_count(sum, static_cast<float>(count));
      float m2 = 0.0f;
      for (int p = first; p < packs; p += stride) {
        CUNORM_UNROLL
        for (int e = 0; e < VEC; ++e) {
          const float d = to_float(row_cache[p].elements[e]) - mean;
          m2 += d * d;
        }
      }
      s = WelfordState{static_cast<float>(count), mean, m2};
    }
    const RowStatistics st = finish_statistics(BlockWelford(reduce_storage).all_reduce(s), a.eps);
    if (threadIdx.x == 0) store_statistics(a, row, st);
    for (int p = first; p < packs; p += stride) {
      const int64_t col = static_cast<int64_t>(p) * VEC;
      float v[VEC], g[VEC], b[VEC];
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) v[e] = to_float(row_cache[p].elements[e]);
      load_parameters<VEC>(a.gamma, col, 1.0f, g);
      load_parameters<VEC>(a.beta, col, 0.0f, b);
      store_normalized<T, VEC>(a.y, row * a.cols + col, v, st, g, b);
    }
  }
}

// ---- block_uncached --------------------------------------------------------------------------
// Rows too long for shared memory (up to 2^63 elements). Statistics per thread in two passes over
// its packs, then a third pass normalizes: x is requested three times, the later passes mostly
// from L2 while the row's blocks stay resident.
template <class T, class P, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kMaxBlockThreads, 1)
    layer_norm_forward_block_uncached(LayerNormForwardArgs<T, P> a) {
  CUNORM_SHARED(BlockWelford::TempStorage, reduce_storage);
  const int64_t packs = a.cols / VEC;
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const int64_t row_offset = row * a.cols;
    float sum = 0.0f;
    int64_t count = 0;
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const Pack<T, VEC> pack = load<VEC>(a.x, row_offset + p * VEC);
      count += VEC;
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) sum += to_float(pack.elements[e]);
    }
    WelfordState s = welford_empty();
    if (count > 0) {
      const float mean = divide_by_count(sum, static_cast<float>(count));
      float m2 = 0.0f;
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        const Pack<T, VEC> pack = load<VEC>(a.x, row_offset + p * VEC);
        CUNORM_UNROLL
        for (int e = 0; e < VEC; ++e) {
          const float d = to_float(pack.elements[e]) - mean;
          m2 += d * d;
        }
      }
      s = WelfordState{static_cast<float>(count), mean, m2};
    }
    const RowStatistics st = finish_statistics(BlockWelford(reduce_storage).all_reduce(s), a.eps);
    if (threadIdx.x == 0) store_statistics(a, row, st);
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const int64_t col = p * VEC;
      const Pack<T, VEC> pack = load<VEC>(a.x, row_offset + col);
      float v[VEC], g[VEC], b[VEC];
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) v[e] = to_float(pack.elements[e]);
      load_parameters<VEC>(a.gamma, col, 1.0f, g);
      load_parameters<VEC>(a.beta, col, 0.0f, b);
      store_normalized<T, VEC>(a.y, row_offset + col, v, st, g, b);
    }
  }
}

}  // namespace cunorm::kernels
