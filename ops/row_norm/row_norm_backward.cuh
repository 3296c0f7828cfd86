// LayerNorm and RMSNorm backward (Op from norm_ops.cuh). One pass over x and dy per row gives dx
// from the forward's statistics; meanwhile every block accumulates float32 partial dgamma
// (dy * xhat) and dbeta (dy) over the rows it handles, for its columns, and writes them as one
// row of the partials in the workspace. reduce_parameter_gradient (below) then sums the partial
// rows in a fixed order: no float atomics, the same bits on every run.
//
//   warp_rows  cols <= 512: a group of `width` lanes per row, x and dy in registers, the
//              accumulators in registers; the groups of a block add theirs in group order.
//   segments   a row split into `count` segments, one block each, x, dy, gamma and the
//              accumulators of the segment in shared memory; the row sums of the segments meet
//              in the workspace across a grid barrier (cooperative launch) when count > 1.
//   uncached   rows too long for the grid's shared memory: x and dy read twice, the
//              accumulators in the block's own row of the partials.
// dy, x, gamma and dx are reached only through the argument struct's functors
// (kernels/element_io.cuh); the partials and statistics through Global.
#pragma once

#include <cstdint>

#include "../../kernels/element_io.cuh"
#include "../../kernels/global_memory.cuh"
#include "../../kernels/numeric.cuh"
#include "../../kernels/platform.cuh"
#include "../../kernels/reduce.cuh"
#include "norm_ops.cuh"
#include "row_norm_forward.cuh"

namespace cunorm::kernels {

// dy, x, gamma and dx through functors (kernels/element_io.cuh): DyLoad = XLoad = DirectLoad<T>,
// Affine = AffineParameters<P> (beta unused), Store = DirectStore<T> for the C API's ops. The
// segments variant caches Pack<XLoad::Cached, VEC> and Pack<DyLoad::Cached, VEC> in shared
// memory, which the host sizes (row_norm_plan.cpp) as packs of T.
template <class DyLoad, class XLoad, class Affine, class Store>
struct RowNormBackwardArgs {
  DyLoad dy;
  XLoad x;
  Global<const float> mean;  // null for RMSNorm
  Global<const float> rstd;  // rstd or rrms
  Affine affine;             // gamma (absent: 1)
  Store dx;
  Global<float> partial_dgamma;  // [partial rows][cols]; null when no parameter gradient is wanted
  Global<float> partial_dbeta;   // [partial rows][cols]; null for RMSNorm or when not wanted
  int64_t rows;
  int64_t cols;
};

template <class Args>
CUNORM_DEVICE RowStatistics load_statistics(const Args& a, int64_t row) {
  return RowStatistics{a.mean.is_null() ? 0.0f : load_one(a.mean, row), load_one(a.rstd, row)};
}

// ---- warp_rows -------------------------------------------------------------------------------
// Dynamic shared memory: cols floats of gamma, then 2 * (128 / width) * cols floats where the
// groups leave their dgamma and dbeta accumulators.
template <class Op, class DyLoad, class XLoad, class Affine, class Store, int VEC, int CHUNKS>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kWarpRowsThreads, 1)
    row_norm_backward_warp_rows(RowNormBackwardArgs<DyLoad, XLoad, Affine, Store> a, int width) {
  using Gradient = typename Op::GradientReducer;
  const int cols = static_cast<int>(a.cols);
  float* staged_gamma = dynamic_shared_memory<float>();
  float* group_sums = staged_gamma + cols;
  for (int col = static_cast<int>(threadIdx.x) * VEC; col < cols; col += static_cast<int>(blockDim.x) * VEC) {
    float g[VEC];
    a.affine.template scale<VEC>(col, g);
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) staged_gamma[col + e] = g[e];
  }
  __syncthreads();

  const int lane = static_cast<int>(threadIdx.x) % width;
  const int group = static_cast<int>(threadIdx.x) / width;
  const int groups = static_cast<int>(blockDim.x) / width;
  float dgamma[CHUNKS][VEC] = {}, dbeta[CHUNKS][VEC] = {};
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * groups; first < a.rows;
       first += static_cast<int64_t>(gridDim.x) * groups) {
    const int64_t row = first + group;
    const bool row_valid = row < a.rows;
    float xs[CHUNKS][VEC] = {}, dys[CHUNKS][VEC] = {};
    bool valid[CHUNKS];
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      const int col = (k * width + lane) * VEC;
      valid[k] = row_valid && col < cols;
      if (valid[k]) {
        load_values<VEC>(a.x, row * a.cols + col, xs[k]);
        load_values<VEC>(a.dy, row * a.cols + col, dys[k]);
      }
    }
    const RowStatistics st = row_valid ? load_statistics(a, row) : RowStatistics{0.0f, 0.0f};
    typename Gradient::State terms = Gradient::empty();
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      if (!valid[k]) continue;
      const int col = (k * width + lane) * VEC;
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) {
        terms = Gradient::merge(terms, Op::gradient_terms(staged_gamma[col + e] * dys[k][e], normalized(xs[k][e], st)));
      }
    }
    terms = warp_all_reduce<Gradient>(terms, width);
    if (!row_valid) continue;
    const RowGradient rg = Op::finish_gradient(terms, static_cast<float>(a.cols));
    CUNORM_UNROLL
    for (int k = 0; k < CHUNKS; ++k) {
      if (!valid[k]) continue;
      const int col = (k * width + lane) * VEC;
      float dx[VEC];
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) {
        const float xhat = normalized(xs[k][e], st);
        dx[e] = input_gradient(staged_gamma[col + e] * dys[k][e], xhat, st, rg);
        dgamma[k][e] += dys[k][e] * xhat;
        dbeta[k][e] += dys[k][e];
      }
      a.dx.template store<VEC>(row * a.cols + col, dx);
    }
  }
  if (a.partial_dgamma.is_null()) return;
  // The block's partial rows: the groups' accumulators added in group order.
  float* dbeta_sums = group_sums + groups * cols;
  CUNORM_UNROLL
  for (int k = 0; k < CHUNKS; ++k) {
    const int col = (k * width + lane) * VEC;
    if (col >= cols) continue;
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) {
      group_sums[group * cols + col + e] = dgamma[k][e];
      dbeta_sums[group * cols + col + e] = dbeta[k][e];
    }
  }
  __syncthreads();
  const bool keep_dbeta = Op::kCentered && !a.partial_dbeta.is_null();
  for (int col = static_cast<int>(threadIdx.x); col < cols; col += static_cast<int>(blockDim.x)) {
    float sum_g = 0.0f, sum_b = 0.0f;
    for (int g = 0; g < groups; ++g) {
      sum_g += group_sums[g * cols + col];
      sum_b += dbeta_sums[g * cols + col];
    }
    const int64_t at = static_cast<int64_t>(blockIdx.x) * a.cols + col;
    store_one(a.partial_dgamma, at, sum_g);
    if (keep_dbeta) store_one(a.partial_dbeta, at, sum_b);
  }
}

// ---- segments --------------------------------------------------------------------------------
// Shared memory layout of one segment of packs_per_segment packs (host: row_norm_plan.cpp).
template <class X, class Dy, int VEC>
struct BackwardSegmentLayout {
  Pack<X, VEC>* x;
  Pack<Dy, VEC>* dy;
  float* gamma;
  float* dgamma;
  float* dbeta;
  CUNORM_DEVICE explicit BackwardSegmentLayout(int packs_per_segment) {
    const int64_t x_bytes = (static_cast<int64_t>(packs_per_segment) * sizeof(Pack<X, VEC>) + 15) / 16 * 16;
    const int64_t dy_bytes = (static_cast<int64_t>(packs_per_segment) * sizeof(Pack<Dy, VEC>) + 15) / 16 * 16;
    unsigned char* base = dynamic_shared_memory<unsigned char>();
    x = reinterpret_cast<Pack<X, VEC>*>(base);
    dy = reinterpret_cast<Pack<Dy, VEC>*>(base + x_bytes);
    gamma = reinterpret_cast<float*>(base + x_bytes + dy_bytes);
    dgamma = gamma + packs_per_segment * VEC;
    dbeta = dgamma + packs_per_segment * VEC;
  }
};

template <class Op, class DyLoad, class XLoad, class Affine, class Store, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kSegmentMaxThreads, 1)
    row_norm_backward_segments(RowNormBackwardArgs<DyLoad, XLoad, Affine, Store> a, RowSegments seg) {
  using Gradient = typename Op::GradientReducer;
  using State = typename Gradient::State;
  using Reduce = BlockAllReduce<Gradient>;
  CUNORM_SHARED(typename Reduce::TempStorage, reduce_storage);
  CUNORM_SHARED(State, row_terms);
  const SegmentPosition at = segment_position<VEC>(seg, a.cols);
  const int first_pack = at.first_pack, packs = at.packs;
  const BackwardSegmentLayout<typename XLoad::Cached, typename DyLoad::Cached, VEC> smem(seg.packs_per_segment);
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  for (int p = tid; p < packs; p += threads) {
    float g[VEC];
    a.affine.template scale<VEC>(static_cast<int64_t>(first_pack + p) * VEC, g);
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) {
      smem.gamma[p * VEC + e] = g[e];
      smem.dgamma[p * VEC + e] = 0.0f;
      if (Op::kCentered) smem.dbeta[p * VEC + e] = 0.0f;
    }
  }
  // Every block runs every wave (rows past the end included), so that the grid barriers match.
  for (int64_t wave = 0; wave < seg.waves; ++wave) {
    const int64_t row = wave * seg.slots + at.slot;
    const bool row_valid = row < a.rows;
    const int64_t base = row * a.cols + static_cast<int64_t>(first_pack) * VEC;
    const RowStatistics st = row_valid ? load_statistics(a, row) : RowStatistics{0.0f, 0.0f};
    State terms = Gradient::empty();
    if (row_valid) {
      for (int p = tid; p < packs; p += threads) {
        smem.x[p] = a.x.template fetch<VEC>(base + static_cast<int64_t>(p) * VEC);
        smem.dy[p] = a.dy.template fetch<VEC>(base + static_cast<int64_t>(p) * VEC);
        float x[VEC], dy[VEC];
        XLoad::template unpack<VEC>(smem.x[p], x);
        DyLoad::template unpack<VEC>(smem.dy[p], dy);
        CUNORM_UNROLL
        for (int e = 0; e < VEC; ++e) {
          terms = Gradient::merge(terms, Op::gradient_terms(smem.gamma[p * VEC + e] * dy[e], normalized(x[e], st)));
        }
      }
    }
    terms = Reduce(reduce_storage).all_reduce(terms);
    terms = merge_row_segments<Gradient>(seg, at, wave, terms, row_terms);
    if (!row_valid) continue;
    const RowGradient rg = Op::finish_gradient(terms, static_cast<float>(a.cols));
    for (int p = tid; p < packs; p += threads) {
      float x[VEC], dy[VEC], dx[VEC];
      XLoad::template unpack<VEC>(smem.x[p], x);
      DyLoad::template unpack<VEC>(smem.dy[p], dy);
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) {
        const float xhat = normalized(x[e], st);
        dx[e] = input_gradient(smem.gamma[p * VEC + e] * dy[e], xhat, st, rg);
        smem.dgamma[p * VEC + e] += dy[e] * xhat;
        if (Op::kCentered) smem.dbeta[p * VEC + e] += dy[e];
      }
      a.dx.template store<VEC>(base + static_cast<int64_t>(p) * VEC, dx);
    }
  }
  if (a.partial_dgamma.is_null()) return;
  // Each thread writes the elements it accumulated: no barrier needed.
  const int64_t out = static_cast<int64_t>(at.slot) * a.cols + static_cast<int64_t>(first_pack) * VEC;
  for (int p = tid; p < packs; p += threads) {
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) {
      store_one(a.partial_dgamma, out + p * VEC + e, smem.dgamma[p * VEC + e]);
      if (Op::kCentered && !a.partial_dbeta.is_null()) {
        store_one(a.partial_dbeta, out + p * VEC + e, smem.dbeta[p * VEC + e]);
      }
    }
  }
}

// ---- uncached --------------------------------------------------------------------------------
// x and dy read once for the row sums and once for dx; the block's accumulators live in its row
// of the partials (each pack owned by one thread, so the updates are ordered), read and written
// a pack at a time. The row loops are not unrolled: at 1024 threads one iteration already keeps
// 48-80 bytes of loads per thread in flight (48-80 KB per SM, several times the latency-bandwidth
// product), and ptxas for sm_100, sm_103 and sm_110 unrolled them into more than the 64
// registers the launch bound allows (a spill).
template <class Op, class DyLoad, class XLoad, class Affine, class Store, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kMaxBlockThreads, 1)
    row_norm_backward_uncached(RowNormBackwardArgs<DyLoad, XLoad, Affine, Store> a) {
  using Gradient = typename Op::GradientReducer;
  using Reduce = BlockAllReduce<Gradient>;
  CUNORM_SHARED(typename Reduce::TempStorage, reduce_storage);
  const int64_t packs = a.cols / VEC;
  const int64_t partial = static_cast<int64_t>(blockIdx.x) * a.cols;
  const bool keep_dgamma = !a.partial_dgamma.is_null();
  const bool keep_dbeta = Op::kCentered && !a.partial_dbeta.is_null();
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    if (keep_dgamma) store<VEC>(a.partial_dgamma, partial + p * VEC, Pack<float, VEC>{});
    if (keep_dbeta) store<VEC>(a.partial_dbeta, partial + p * VEC, Pack<float, VEC>{});
  }
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const int64_t base = row * a.cols;
    const RowStatistics st = load_statistics(a, row);
    typename Gradient::State terms = Gradient::empty();
    CUNORM_NO_UNROLL
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      float x[VEC], dy[VEC], g[VEC];
      load_values<VEC>(a.x, base + p * VEC, x);
      load_values<VEC>(a.dy, base + p * VEC, dy);
      a.affine.template scale<VEC>(p * VEC, g);
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e)
        terms = Gradient::merge(terms, Op::gradient_terms(g[e] * dy[e], normalized(x[e], st)));
    }
    const RowGradient rg = Op::finish_gradient(Reduce(reduce_storage).all_reduce(terms), static_cast<float>(a.cols));
    CUNORM_NO_UNROLL
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      float x[VEC], dy[VEC], g[VEC], dx[VEC];
      load_values<VEC>(a.x, base + p * VEC, x);
      load_values<VEC>(a.dy, base + p * VEC, dy);
      a.affine.template scale<VEC>(p * VEC, g);
      Pack<float, VEC> dgamma{}, dbeta{};
      if (keep_dgamma) dgamma = load<VEC>(a.partial_dgamma, partial + p * VEC);
      if (keep_dbeta) dbeta = load<VEC>(a.partial_dbeta, partial + p * VEC);
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) {
        const float xhat = normalized(x[e], st);
        dx[e] = input_gradient(g[e] * dy[e], xhat, st, rg);
        dgamma.elements[e] += dy[e] * xhat;
        dbeta.elements[e] += dy[e];
      }
      a.dx.template store<VEC>(base + p * VEC, dx);
      if (keep_dgamma) store<VEC>(a.partial_dgamma, partial + p * VEC, dgamma);
      if (keep_dbeta) store<VEC>(a.partial_dbeta, partial + p * VEC, dbeta);
    }
  }
}

// ---- parameter gradients ---------------------------------------------------------------------
// out[col] = sum over r of partials[r][col], in a fixed order: 8 stripes of rows per column
// summed in row order, then the stripes in stripe order. 256 threads cover 32 columns.
constexpr int kGradientColumns = 32;
constexpr int kGradientStripes = 8;

template <class P>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kGradientColumns* kGradientStripes, 1)
    reduce_parameter_gradient(Global<const float> partials, int64_t partial_rows, int64_t cols, Global<P> out) {
  using Stripes = float[kGradientStripes][kGradientColumns];
  CUNORM_SHARED(Stripes, stripe_sums);
  const int column = static_cast<int>(threadIdx.x) % kGradientColumns;
  const int stripe = static_cast<int>(threadIdx.x) / kGradientColumns;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kGradientColumns + column;
  float sum = 0.0f;
  if (col < cols) {
    for (int64_t r = stripe; r < partial_rows; r += kGradientStripes) sum += load_one(partials, r * cols + col);
  }
  stripe_sums[stripe][column] = sum;
  __syncthreads();
  if (stripe != 0 || col >= cols) return;
  float total = 0.0f;
  for (int s = 0; s < kGradientStripes; ++s) total += stripe_sums[s][column];
  store_one(out, col, from_float<P>(total));
}

}  // namespace cunorm::kernels
