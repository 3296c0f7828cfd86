// LayerNorm and RMSNorm forward (Op = LayerNormOp or RmsNormOp, norm_ops.cuh), in four variants
// by row length, chosen on the host (ops/row_norm/row_norm_plan.cpp). The first three read each element
// of x from DRAM exactly once:
//
//   warp_rows        cols <= 1024: a group of `width` lanes (1..32) per row, the row in registers;
//                    gamma and beta staged once per block in shared memory as float.
//   block_registers  cols <= 8192: one block per row, the row in registers, gamma and beta in
//                    registers for every row the block visits; two rows' loads in flight at once
//                    with 16-byte packs.
//   segments         a row split into `count` segments, one block each, the segment (and its
//                    gamma/beta) kept in shared memory; blocks of a row merge their partial
//                    statistics through the workspace across a grid barrier (cooperative launch)
//                    when count > 1. Rows in waves of `slots` rows.
//   uncached         anything longer: x read once per statistics pass and once to normalize.
//
// Per-thread statistics come from values the thread already holds, in two passes (sum, then
// squared deviations: no division per element), merged by Chan's formula across lanes, warps
// and segments in a fixed order; block_registers, which holds the whole row, reduces exact
// two-pass plain sums instead (Op::block_statistics). rstd = 1/sqrt(var + eps) within 1 ulp
// (float_math.cuh).
// VEC elements move per access: 16 bytes when every pointer is aligned and cols % VEC == 0, else
// 1. Columns past cols in a thread's last pack are masked (the tail). x, gamma/beta and y are
// reached only through the argument struct's functors (kernels/element_io.cuh).
#pragma once

#include <cstdint>

#include "../../kernels/element_io.cuh"
#include "../../kernels/float_math.cuh"
#include "../../kernels/global_memory.cuh"
#include "../../kernels/platform.cuh"
#include "../../kernels/reduce.cuh"
#include "norm_ops.cuh"
#include "row_segments.cuh"

namespace cunorm::kernels {

// x, gamma/beta and y through functors (kernels/element_io.cuh): Load = DirectLoad<T>, Affine =
// AffineParameters<P>, Store = DirectStore<T> for the C API's ops. The segments variant caches
// Pack<Load::Cached, VEC> in shared memory, which the host sizes (row_norm_plan.cpp) as packs of T.
template <class Load, class Affine, class Store>
struct RowNormForwardArgs {
  Load x;
  Affine affine;  // gamma (absent: 1) and beta (absent: 0; always absent for RMSNorm)
  Store y;
  Global<float> mean;  // null: not stored (always null for RMSNorm)
  Global<float> rstd;  // rstd or rrms; null: not stored
  int64_t rows;
  int64_t cols;
  float eps;
};

constexpr int kWarpRowsThreads = 128;
constexpr int kMaxBlockThreads = 1024;
// Segment blocks are bounded at 512 threads, which lets ptxas use up to 128 registers: the
// segment kernels hold more live state than 64 registers (the bound at 1024 threads) allow
// without spilling on every architecture.
constexpr int kSegmentMaxThreads = 512;

template <class Args>
CUNORM_DEVICE void store_statistics(const Args& a, int64_t row, const RowStatistics& st) {
  if (!a.mean.is_null()) store_one(a.mean, row, st.mean);
  if (!a.rstd.is_null()) store_one(a.rstd, row, st.scale);
}

// y = xhat * g + b for VEC values of x at element `index` of the rows.
template <int VEC, class Store>
CUNORM_DEVICE void store_normalized(const Store& y, int64_t index, const float (&x)[VEC], const RowStatistics& st,
                                    const float (&g)[VEC], const float (&b)[VEC]) {
  float out[VEC];
  CUNORM_UNROLL
  for (int e = 0; e < VEC; ++e) out[e] = normalized(x[e], st) * g[e] + b[e];
  y.template store<VEC>(index, out);
}

// ---- warp_rows -------------------------------------------------------------------------------
// Dynamic shared memory: 2 * cols floats (gamma then beta).
template <class Op, class Load, class Affine, class Store, int VEC, int CHUNKS>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kWarpRowsThreads, 1)
    row_norm_forward_warp_rows(RowNormForwardArgs<Load, Affine, Store> a, int width) {
  const int cols = static_cast<int>(a.cols);
  float* staged_gamma = dynamic_shared_memory<float>();
  float* staged_beta = staged_gamma + cols;
  for (int col = static_cast<int>(threadIdx.x) * VEC; col < cols; col += static_cast<int>(blockDim.x) * VEC) {
    float g[VEC], b[VEC];
    a.affine.template scale<VEC>(col, g);
    a.affine.template shift<VEC>(col, b);
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
      if (valid[k]) load_values<VEC>(a.x, row * a.cols + col, v[k]);
    }
    const auto s = warp_all_reduce<typename Op::Reducer>(Op::thread_state([&](auto&& f) {
                                                           CUNORM_UNROLL
                                                           for (int k = 0; k < CHUNKS; ++k) {
                                                             if (!valid[k]) continue;
                                                             CUNORM_UNROLL
                                                             for (int e = 0; e < VEC; ++e) f(v[k][e]);
                                                           }
                                                         }),
                                                         width);
    if (!row_valid) continue;
    const RowStatistics st = Op::finish(s, static_cast<float>(a.cols), a.eps);
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
      store_normalized<VEC>(a.y, row * a.cols + col, v[k], st, g, b);
    }
  }
}

// ---- block_registers -------------------------------------------------------------------------
// With 16-byte packs a block takes two rows per iteration (first and first + gridDim.x) and
// requests the second row's packs, kept at the storage width, before it reduces the first: twice
// the loads in flight per thread of one row (x of two rows, gamma and beta stay within the 64
// registers of a 1024-thread block). Scalar packs, which need more registers per element, keep
// one row. Each row is reduced alone, in the same order as it would be by itself.
template <class Op, class Load, class Affine, class Store, int VEC, int CHUNKS>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kMaxBlockThreads, 1)
    row_norm_forward_block_registers(RowNormForwardArgs<Load, Affine, Store> a) {
  constexpr bool kTwoRows = VEC > 1;
  CUNORM_SHARED(RowSumsStorage, reduce_storage);
  const int cols = static_cast<int>(a.cols);
  const int threads = static_cast<int>(blockDim.x);
  float g[CHUNKS][VEC] = {}, b[CHUNKS][VEC] = {};
  bool valid[CHUNKS];
  CUNORM_UNROLL
  for (int k = 0; k < CHUNKS; ++k) {
    const int col = (k * threads + static_cast<int>(threadIdx.x)) * VEC;
    valid[k] = col < cols;
    if (valid[k]) {
      a.affine.template scale<VEC>(col, g[k]);
      a.affine.template shift<VEC>(col, b[k]);
    }
  }
  auto index = [&](int64_t row, int k) { return row * a.cols + (k * threads + static_cast<int>(threadIdx.x)) * VEC; };
  const float inv_cols = divide_by_count(1.0f, static_cast<float>(a.cols));
  // The statistics of `row` from its values v, and its output.
  auto normalize_row = [&](int64_t row, const float(&v)[CHUNKS][VEC]) {
    const RowStatistics st = Op::block_statistics(
        reduce_storage,
        [&](auto&& f) {
          CUNORM_UNROLL
          for (int k = 0; k < CHUNKS; ++k) {
            if (!valid[k]) continue;
            CUNORM_UNROLL
            for (int e = 0; e < VEC; ++e) f(v[k][e]);
          }
        },
        inv_cols, static_cast<float>(a.cols), a.eps);
    if (threadIdx.x == 0) store_statistics(a, row, st);
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      if (valid[k]) store_normalized<VEC>(a.y, index(row, k), v[k], st, g[k], b[k]);
    }
  };
  const int64_t stride = gridDim.x;
  for (int64_t first = blockIdx.x; first < a.rows; first += (kTwoRows ? 2 : 1) * stride) {
    const int64_t second = first + stride;
    const bool has_second = kTwoRows && second < a.rows;  // the same for the whole block
    float v[CHUNKS][VEC] = {};
    Pack<typename Load::Cached, VEC> later[CHUNKS] = {};
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      if (valid[k]) load_values<VEC>(a.x, index(first, k), v[k]);
    }
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      if (has_second && valid[k]) later[k] = a.x.template fetch<VEC>(index(second, k));
    }
    normalize_row(first, v);
    if (has_second) {
      CUNORM_UNROLL
      for (int k = 0; k < CHUNKS; ++k) {
        if (valid[k]) Load::template unpack<VEC>(later[k], v[k]);
      }
      normalize_row(second, v);
    }
  }
}

// ---- segments --------------------------------------------------------------------------------
// Dynamic shared memory: packs_per_segment packs of Load::Cached (rounded up to 16 bytes), then
// packs_per_segment * VEC floats of gamma and, for LayerNorm, as many of beta. Each thread reads
// back only the packs it cached, so the cache needs no barrier of its own.
template <class Op, class Load, class Affine, class Store, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kSegmentMaxThreads, 1)
    row_norm_forward_segments(RowNormForwardArgs<Load, Affine, Store> a, RowSegments seg) {
  using State = typename Op::Reducer::State;
  using Reduce = BlockAllReduce<typename Op::Reducer>;
  CUNORM_SHARED(typename Reduce::TempStorage, reduce_storage);
  CUNORM_SHARED(State, row_state);
  const SegmentPosition at = segment_position<VEC>(seg, a.cols);
  const int first_pack = at.first_pack, packs = at.packs;
  using Cached = Pack<typename Load::Cached, VEC>;
  Cached* cache = dynamic_shared_memory<Cached>();
  const int64_t cache_bytes = (static_cast<int64_t>(seg.packs_per_segment) * sizeof(Cached) + 15) / 16 * 16;
  float* staged_gamma = reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(cache) + cache_bytes);
  float* staged_beta = staged_gamma + seg.packs_per_segment * VEC;
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  for (int p = tid; p < packs; p += threads) {
    const int64_t col = static_cast<int64_t>(first_pack + p) * VEC;
    float g[VEC], b[VEC];
    a.affine.template scale<VEC>(col, g);
    a.affine.template shift<VEC>(col, b);
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) {
      staged_gamma[p * VEC + e] = g[e];
      if (Op::kCentered) staged_beta[p * VEC + e] = b[e];
    }
  }
  // Every block runs every wave (rows past the end included), so that the grid barriers match.
  for (int64_t wave = 0; wave < seg.waves; ++wave) {
    const int64_t row = wave * seg.slots + at.slot;
    const bool row_valid = row < a.rows;
    const int64_t base = row * a.cols + static_cast<int64_t>(first_pack) * VEC;
    if (row_valid) {
      for (int p = tid; p < packs; p += threads) {
        cache[p] = a.x.template fetch<VEC>(base + static_cast<int64_t>(p) * VEC);
      }
    }
    State s = Reduce(reduce_storage).all_reduce(Op::thread_state([&](auto&& f) {
      if (!row_valid) return;
      for (int p = tid; p < packs; p += threads) {
        float v[VEC];
        Load::template unpack<VEC>(cache[p], v);
        CUNORM_UNROLL
        for (int e = 0; e < VEC; ++e) f(v[e]);
      }
    }));
    s = merge_row_segments<typename Op::Reducer>(seg, at, wave, s, row_state);
    if (!row_valid) continue;
    const RowStatistics st = Op::finish(s, static_cast<float>(a.cols), a.eps);
    if (at.segment == 0 && tid == 0) store_statistics(a, row, st);
    for (int p = tid; p < packs; p += threads) {
      float v[VEC], g[VEC], b[VEC];
      Load::template unpack<VEC>(cache[p], v);
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) {
        g[e] = staged_gamma[p * VEC + e];
        b[e] = Op::kCentered ? staged_beta[p * VEC + e] : 0.0f;
      }
      store_normalized<VEC>(a.y, base + static_cast<int64_t>(p) * VEC, v, st, g, b);
    }
  }
}

// ---- uncached --------------------------------------------------------------------------------
// Rows too long for the grid's shared memory (up to 2^63 elements): x is requested once per
// statistics pass (two for LayerNorm, one for RMSNorm) and once to normalize; the later passes
// mostly hit L2 while a row's block is resident.
template <class Op, class Load, class Affine, class Store, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kMaxBlockThreads, 1)
    row_norm_forward_uncached(RowNormForwardArgs<Load, Affine, Store> a) {
  using Reduce = BlockAllReduce<typename Op::Reducer>;
  CUNORM_SHARED(typename Reduce::TempStorage, reduce_storage);
  const int64_t packs = a.cols / VEC;
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const int64_t base = row * a.cols;
    const auto s = Reduce(reduce_storage).all_reduce(Op::thread_state([&](auto&& f) {
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        float v[VEC];
        load_values<VEC>(a.x, base + p * VEC, v);
        CUNORM_UNROLL
        for (int e = 0; e < VEC; ++e) f(v[e]);
      }
    }));
    const RowStatistics st = Op::finish(s, static_cast<float>(a.cols), a.eps);
    if (threadIdx.x == 0) store_statistics(a, row, st);
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const int64_t col = p * VEC;
      float v[VEC], g[VEC], b[VEC];
      load_values<VEC>(a.x, base + col, v);
      a.affine.template scale<VEC>(col, g);
      a.affine.template shift<VEC>(col, b);
      store_normalized<VEC>(a.y, base + col, v, st, g, b);
    }
  }
}

}  // namespace cunorm::kernels
