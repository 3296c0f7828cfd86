// BatchNorm's passes over the tensor, for both layouts. Statistics are per channel over its
// M = N*S values, so a pass is a reduction per channel (partial Welford states or gradient sums
// written per chunk of the channel's values) or a per-element map with per-channel coefficients
// (normalize, inference, input gradient). Every pass of one call walks the tensor with the same
// tiling:
//
//   channels first (NCHW, [N][C][S]): blockIdx.y (looping) is the channel; blockIdx.x is a chunk
//     = (a group of n, a tile of S); threads are blockDim.x lanes along S (contiguous: coalesced)
//     by blockDim.y rows of n.
//   channels last (NHWC, [N*S][C]): blockIdx.x is a tile of blockDim.x * VEC channels;
//     blockIdx.y (looping) is a chunk of rows; threads are blockDim.x lanes along C by
//     blockDim.y rows.
//
// The chunks are many enough that every pass launches at least two blocks per SM whenever the
// tensor allows (ops/batch_norm/batch_norm_plan.cpp); partials are merged per channel in chunk order by
// batch_norm_finalize.cuh, so results do not depend on how blocks were scheduled.
#pragma once

#include <cstdint>

#include "../../kernels/element_io.cuh"
#include "../../kernels/float_math.cuh"
#include "../../kernels/global_memory.cuh"
#include "../../kernels/numeric.cuh"
#include "../../kernels/platform.cuh"
#include "../../kernels/reduce.cuh"
#include "../../kernels/welford.cuh"
#include "batch_norm_tiling.hpp"

namespace cunorm::kernels {

// What a reduction pass accumulates per channel.
enum class BatchNormReduction {
  kStatistics,  // Welford of x
  kGradients,   // sum(dy), sum(dy * xhat) with xhat = (x - mean) * invstd; optionally dx = dy * dx_scale
};

// Where a pass finds its per-channel values k[0..3] (load(c, k); the values it does not use read
// as 0): CoefficientRows, the first kRows rows of the [4][C] floats a finalize wrote to the
// workspace; SavedStatistics, the training backward's saved mean and invstd; RunningCoefficients
// (batch_norm_finalize.cuh), the inference's, computed from the running statistics in place.
template <int kRows>
struct CoefficientRows {
  Global<const float> rows;  // [kRows][channels]
  int64_t channels;
  CUNORM_DEVICE void load(int64_t c, float (&k)[4]) const {
    CUNORM_UNROLL
    for (int i = 0; i < 4; ++i) k[i] = i < kRows ? load_one(rows, i * channels + c) : 0.0f;
  }
};

struct SavedStatistics {
  Global<const float> mean;
  Global<const float> invstd;
  CUNORM_DEVICE void load(int64_t c, float (&k)[4]) const {
    k[0] = load_one(mean, c);
    k[1] = load_one(invstd, c);
    k[2] = 0.0f;
    k[3] = 0.0f;
  }
};

// x, dy and the stored output reached through functors (kernels/element_io.cuh), at the element's
// index in the tensor: XLoad = DyLoad = DirectLoad<T>, Store = DirectStore<T> for the C API's calls.
template <class Coefficients, class XLoad, class DyLoad, class Store>
struct BatchNormReduceArgs {
  XLoad x;
  DyLoad dy;                  // gradients only
  Coefficients coefficients;  // gradients: per channel (mean, invstd) xhat is formed with, and with dx its scale
  Store dx;                   // gradients, optional (is_null()): the inference backward's dx = dy * dx_scale
  Global<float> partials;     // [chunks][C] states
};

template <BatchNormReduction kMode>
struct BatchNormReducer;
template <>
struct BatchNormReducer<BatchNormReduction::kStatistics> {
  using Reducer = WelfordReducer;
};
template <>
struct BatchNormReducer<BatchNormReduction::kGradients> {
  using Reducer = SumReducer<2>;
};

// Per-element maps, with coefficients k[0..3] per channel (CoefficientRows or RunningCoefficients).
enum class BatchNormMap {
  kAffine,     // y = x * coef0 + coef1                        (inference: one FMA)
  kNormalize,  // y = (x - coef0) * coef1 + coef2              (training)
  kBackward,   // dx = coef0 * (dy - coef1 - coef2 * (x - coef3))  (training backward)
};

// The running statistics a training forward's normalize pass commits: the new values the finalize
// computed, copied by one thread per channel (channels first: block x = 0; channels last: block
// y = 0, thread row 0), so that they change only once the call's last launch runs.
struct BatchNormRunningCommit {
  Global<const float> update;  // [2][C] new running mean, var
  Global<float> running_mean;  // null: nothing to commit
  Global<float> running_var;
};

CUNORM_DEVICE void commit_running_statistics(const BatchNormRunningCommit& commit, int64_t channels, int64_t c) {
  if (commit.running_mean.is_null()) return;
  store_one(commit.running_mean, c, load_one(commit.update, c));
  store_one(commit.running_var, c, load_one(commit.update, channels + c));
}

template <class Coefficients, class XLoad, class DyLoad, class Store>
struct BatchNormMapArgs {
  XLoad x;
  DyLoad dy;  // backward only
  Coefficients coefficients;  // the map's k[0..3] per channel
  Store out;
  BatchNormRunningCommit running;  // training forward only
};

template <BatchNormMap kMap>
CUNORM_DEVICE float batch_norm_map(float x, float dy, const float (&k)[4]) {
  if constexpr (kMap == BatchNormMap::kAffine) {
    return x * k[0] + k[1];
  } else if constexpr (kMap == BatchNormMap::kNormalize) {
    return (x - k[0]) * k[1] + k[2];
  } else {
    return k[0] * (dy - k[1] - k[2] * (x - k[3]));
  }
}

// One element's contribution to a thread's reduction state. Statistics run Welford on x minus
// the thread's first value (`shift`), so that a channel whose mean is large against its spread
// keeps float32's precision in the deviations; unshift() adds it back before states merge.
template <BatchNormReduction kMode, class State>
CUNORM_DEVICE void accumulate(State& s, float& shift, float x, float dy, float mean, float invstd) {
  if constexpr (kMode == BatchNormReduction::kStatistics) {
    if (s.count == 0.0f) shift = x;
    const float v = x - shift;
    s.count += 1.0f;
    const float delta = v - s.mean;
    s.mean += divide_by_count(delta, s.count);
    s.m2 += delta * (v - s.mean);
  } else {
    s.v[0] += dy;
    s.v[1] += dy * ((x - mean) * invstd);
  }
}

template <BatchNormReduction kMode, class State>
CUNORM_DEVICE void unshift(State& s, float shift) {
  if constexpr (kMode == BatchNormReduction::kStatistics) {
    if (s.count > 0.0f) s.mean += shift;
  }
}

// Packs a pass has in flight per thread: each group of kInFlight packs is fetched whole before
// its first pack is used (use(u, i) in order, as one pack at a time would), so that a thread keeps
// kInFlight loads outstanding per tensor read instead of one. Channels last runs two 256-thread
// blocks per SM (~90 registers) and keeps 4 packs per tensor; channels first runs four or more
// (its grids are chunks x C blocks, and a 512-block grid on 132 SMs at 3 blocks per SM ends a
// third full) and keeps 32 bytes per thread, as at most 8 loads: with 16-byte packs 2 of x, or 1
// each of x and dy, which holds them at the registers they had (4 packs took ~76: 3 blocks per
// SM; a 64-register bound spills on sm_100); with scalar packs (S not a multiple of the vector,
// e.g. 7x7 or float16 14x14) 8 loads of x, or 4 each of x and dy, where 2 kept 4 to 8 bytes. 32
// KiB in flight per SM with 16-byte packs, where one pack of x kept 8 to 16 (Little's law on
// Hopper wants about 32, docs/performance_model.md).
constexpr int kChannelsLastInFlight = 4;
// Channels first: packs per thread and tensor for a pass that reads x (and dy when kReadsDy) in
// packs of VEC elements of XLoad's cached type.
template <class XLoad, int VEC, bool kReadsDy>
constexpr int kChannelsFirstInFlight =
    (32 / (VEC * sizeof(typename XLoad::Cached)) < 8 ? 32 / (VEC * sizeof(typename XLoad::Cached)) : 8) /
    (kReadsDy ? 2 : 1);

// Visits positions i0, i0 + step, ... < i1: fetch(u, i) for each of a group of kInFlight, then
// use(u, i) for each, in order; the last group's missing positions are skipped (one body, no tail
// loop).
template <int kInFlight, class Fetch, class Use>
CUNORM_DEVICE void for_packs_in_flight(int64_t i0, int64_t i1, int64_t step, Fetch&& fetch, Use&& use) {
  for (int64_t i = i0; i < i1; i += kInFlight * step) {
    CUNORM_UNROLL
    for (int u = 0; u < kInFlight; ++u) {
      if (i + u * step < i1) fetch(u, i + u * step);
    }
    CUNORM_UNROLL
    for (int u = 0; u < kInFlight; ++u) {
      if (i + u * step < i1) use(u, i + u * step);
    }
  }
}

// The packs of x (and of dy when kWithDy) that a thread has fetched ahead, kInFlight of each.
template <class XLoad, class DyLoad, int VEC, int kInFlight, bool kWithDy>
struct PacksInFlight {
  Pack<typename XLoad::Cached, VEC> x[kInFlight] = {};
  Pack<typename DyLoad::Cached, VEC> dy[kInFlight] = {};
  CUNORM_DEVICE void fetch(const XLoad& x_load, const DyLoad& dy_load, int u, int64_t at) {
    x[u] = x_load.template fetch<VEC>(at);
    if constexpr (kWithDy) dy[u] = dy_load.template fetch<VEC>(at);
  }
  CUNORM_DEVICE void unpack(int u, float (&x_values)[VEC], float (&dy_values)[VEC]) const {
    XLoad::template unpack<VEC>(x[u], x_values);
    if constexpr (kWithDy) DyLoad::template unpack<VEC>(dy[u], dy_values);
  }
};

// ---- channels first ------------------------------------------------------------------------

// The element range of a chunk of a channel: n in [n0, n1), packs of S in [p0, p1).
struct ChannelsFirstChunk {
  int64_t n0, n1, p0, p1;
};

template <int VEC>
CUNORM_DEVICE ChannelsFirstChunk channels_first_chunk(const ChannelsFirstTiling& t, int64_t chunk) {
  const int64_t group = chunk / t.tiles, tile = chunk - group * t.tiles;
  const int64_t packs = t.s / VEC;
  ChannelsFirstChunk r;
  r.n0 = group * t.n_per_group;
  r.n1 = r.n0 + t.n_per_group < t.n ? r.n0 + t.n_per_group : t.n;
  r.p0 = tile * t.packs_per_tile;
  r.p1 = r.p0 + t.packs_per_tile < packs ? r.p0 + t.packs_per_tile : packs;
  return r;
}

// Calls fetch(u, index) and use(u, index) with the first element index of each pack of channel c
// in the chunk that this thread covers: rows of n by threadIdx.y, packs of S by threadIdx.x
// (coalesced), in the order (n, then the pack along S), kInFlight packs fetched before the first
// is used. With 16-byte packs the planes are long (S a multiple of the pack) and the groups run
// along each plane (for_packs_in_flight). With scalar packs (S not a multiple of the vector:
// 7x7, or float16 14x14, one or two packs per lane and plane) the groups run on across planes, so
// that they stay kInFlight loads long. The 16-byte path keeps the per-plane walk: walking them
// across planes cost it a block per SM and, in its SASS (tools/performance_model.py), its second
// load issued only after the first pack's use.
template <int VEC, int kInFlight, class Fetch, class Use>
CUNORM_DEVICE void for_each_pack_channels_first(const ChannelsFirstTiling& t, const ChannelsFirstChunk& chunk,
                                                int64_t c, Fetch&& fetch, Use&& use) {
  if constexpr (VEC > 1) {
    for (int64_t n = chunk.n0 + threadIdx.y; n < chunk.n1; n += blockDim.y) {
      const int64_t plane = (n * t.c + c) * t.s;
      for_packs_in_flight<kInFlight>(
          chunk.p0 + threadIdx.x, chunk.p1, blockDim.x, [&](int u, int64_t p) { fetch(u, plane + p * VEC); },
          [&](int u, int64_t p) { use(u, plane + p * VEC); });
    }
  } else {
    const int64_t first_pack = chunk.p0 + threadIdx.x;
    if (first_pack >= chunk.p1) return;  // a lane past the tile's packs holds none
    int64_t n = chunk.n0 + threadIdx.y, p = first_pack;
    while (n < chunk.n1) {
      int64_t at[kInFlight] = {};
      int held = 0;
      CUNORM_UNROLL
      for (int u = 0; u < kInFlight; ++u) {
        if (n < chunk.n1) {
          at[u] = (n * t.c + c) * t.s + p;
          fetch(u, at[u]);
          held = u + 1;
          p += blockDim.x;
          if (p >= chunk.p1) {
            p = first_pack;
            n += blockDim.y;
          }
        }
      }
      CUNORM_UNROLL
      for (int u = 0; u < kInFlight; ++u) {
        if (u < held) use(u, at[u]);
      }
    }
  }
}

template <BatchNormReduction kMode, class Coefficients, class XLoad, class DyLoad, class Store, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kBatchNormThreads, 1)
    batch_norm_reduce_channels_first(BatchNormReduceArgs<Coefficients, XLoad, DyLoad, Store> a, ChannelsFirstTiling t) {
  using Reducer = typename BatchNormReducer<kMode>::Reducer;
  using Reduce = BlockAllReduce<Reducer>;
  CUNORM_SHARED(typename Reduce::TempStorage, reduce_storage);
  const ChannelsFirstChunk chunk = channels_first_chunk<VEC>(t, static_cast<int64_t>(blockIdx.x));
  const int tid = static_cast<int>(threadIdx.y * blockDim.x + threadIdx.x);
  for (int64_t c = blockIdx.y; c < t.c; c += gridDim.y) {
    float k[4] = {};
    if constexpr (kMode == BatchNormReduction::kGradients) a.coefficients.load(c, k);
    const float mean = k[0], invstd = k[1], dx_scale = k[2];
    typename Reducer::State s = Reducer::empty();
    float shift = 0.0f;
    constexpr bool kReadsDy = kMode == BatchNormReduction::kGradients;
    constexpr int kInFlight = kChannelsFirstInFlight<XLoad, VEC, kReadsDy>;
    PacksInFlight<XLoad, DyLoad, VEC, kInFlight, kReadsDy> packs;
    for_each_pack_channels_first<VEC, kInFlight>(
        t, chunk, c, [&](int u, int64_t at) { packs.fetch(a.x, a.dy, u, at); },
        [&](int u, int64_t at) {
          float x[VEC], dy[VEC] = {}, dx[VEC];
          packs.unpack(u, x, dy);
          CUNORM_UNROLL
          for (int e = 0; e < VEC; ++e) {
            accumulate<kMode>(s, shift, x[e], dy[e], mean, invstd);
            dx[e] = dy[e] * dx_scale;
          }
          if (kMode == BatchNormReduction::kGradients && !a.dx.is_null()) a.dx.template store<VEC>(at, dx);
        });
    unshift<kMode>(s, shift);
    s = Reduce(reduce_storage).all_reduce(s);
    if (tid == 0) store_state(a.partials, static_cast<int64_t>(blockIdx.x) * t.c + c, s);
  }
}

template <BatchNormMap kMap, class Coefficients, class XLoad, class DyLoad, class Store, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kBatchNormThreads, 1)
    batch_norm_map_channels_first(BatchNormMapArgs<Coefficients, XLoad, DyLoad, Store> a, ChannelsFirstTiling t) {
  const ChannelsFirstChunk chunk = channels_first_chunk<VEC>(t, static_cast<int64_t>(blockIdx.x));
  for (int64_t c = blockIdx.y; c < t.c; c += gridDim.y) {
    float k[4];
    a.coefficients.load(c, k);
    if (blockIdx.x == 0 && threadIdx.x == 0 && threadIdx.y == 0) commit_running_statistics(a.running, t.c, c);
    constexpr bool kReadsDy = kMap == BatchNormMap::kBackward;
    constexpr int kInFlight = kChannelsFirstInFlight<XLoad, VEC, kReadsDy>;
    PacksInFlight<XLoad, DyLoad, VEC, kInFlight, kReadsDy> packs;
    for_each_pack_channels_first<VEC, kInFlight>(
        t, chunk, c, [&](int u, int64_t at) { packs.fetch(a.x, a.dy, u, at); },
        [&](int u, int64_t at) {
          float x[VEC], dy[VEC] = {}, out[VEC];
          packs.unpack(u, x, dy);
          CUNORM_UNROLL
          for (int e = 0; e < VEC; ++e) out[e] = batch_norm_map<kMap>(x[e], dy[e], k);
          a.out.template store<VEC>(at, out);
        });
  }
}

// ---- channels last -------------------------------------------------------------------------

// The rows [begin, end) of a chunk: rows / chunks each, the first rows % chunks of them one more,
// so that any number of chunks (whole waves, ops/batch_norm/batch_norm_plan.cpp) splits the rows.
struct ChunkRows {
  int64_t begin, end;
};

CUNORM_DEVICE ChunkRows channels_last_rows(const ChannelsLastTiling& t, int64_t chunk) {
  const int64_t each = t.rows / t.chunks, longer = t.rows % t.chunks;
  const int64_t begin = chunk * each + (chunk < longer ? chunk : longer);
  return {begin, begin + each + (chunk < longer ? 1 : 0)};
}

// Each thread owns VEC consecutive channels (the same for every row it visits); the partial of a
// chunk is the fixed-order tree over the block's rows of threads, through shared memory.
template <BatchNormReduction kMode, class Coefficients, class XLoad, class DyLoad, class Store, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kBatchNormThreads, 1)
    batch_norm_reduce_channels_last(BatchNormReduceArgs<Coefficients, XLoad, DyLoad, Store> a, ChannelsLastTiling t) {
  using Reducer = typename BatchNormReducer<kMode>::Reducer;
  using State = typename Reducer::State;
  using Tree = State[kBatchNormThreads][VEC];
  CUNORM_SHARED(Tree, tree);
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * VEC;
  const bool active = c0 < t.c;
  float mean[VEC] = {}, invstd[VEC] = {}, dx_scale[VEC] = {};
  if constexpr (kMode == BatchNormReduction::kGradients) {
    if (active) {
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) {
        float k[4];
        a.coefficients.load(c0 + e, k);
        mean[e] = k[0];
        invstd[e] = k[1];
        dx_scale[e] = k[2];
      }
    }
  }
  const int slot = static_cast<int>(threadIdx.y * blockDim.x + threadIdx.x);
  for (int64_t chunk = blockIdx.y; chunk < t.chunks; chunk += gridDim.y) {
    State s[VEC];
    float shift[VEC] = {};
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) s[e] = Reducer::empty();
    const ChunkRows rows = channels_last_rows(t, chunk);
    if (active) {
      constexpr bool kReadsDy = kMode == BatchNormReduction::kGradients;
      PacksInFlight<XLoad, DyLoad, VEC, kChannelsLastInFlight, kReadsDy> packs;
      for_packs_in_flight<kChannelsLastInFlight>(
          rows.begin + threadIdx.y, rows.end, blockDim.y,
          [&](int u, int64_t r) { packs.fetch(a.x, a.dy, u, r * t.c + c0); },
          [&](int u, int64_t r) {
            float x[VEC], dy[VEC] = {}, dx[VEC];
            packs.unpack(u, x, dy);
            CUNORM_UNROLL
            for (int e = 0; e < VEC; ++e) {
              accumulate<kMode>(s[e], shift[e], x[e], dy[e], mean[e], invstd[e]);
              dx[e] = dy[e] * dx_scale[e];
            }
            if (kMode == BatchNormReduction::kGradients && !a.dx.is_null()) {
              a.dx.template store<VEC>(r * t.c + c0, dx);
            }
          });
    }
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) unshift<kMode>(s[e], shift[e]);
    // Rows of threads merge pairwise, the lower row's state first.
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) tree[slot][e] = s[e];
    __syncthreads();
    for (unsigned half = blockDim.y / 2; half > 0; half /= 2) {
      if (threadIdx.y < half) {
        const int upper = static_cast<int>((threadIdx.y + half) * blockDim.x + threadIdx.x);
        CUNORM_UNROLL
        for (int e = 0; e < VEC; ++e) tree[slot][e] = Reducer::merge(tree[slot][e], tree[upper][e]);
      }
      __syncthreads();
    }
    if (threadIdx.y == 0 && active) {
      CUNORM_UNROLL
      for (int e = 0; e < VEC; ++e) {
        if (c0 + e < t.c) store_state(a.partials, chunk * t.c + c0 + e, tree[slot][e]);
      }
    }
    __syncthreads();  // the tree is reused by the next chunk
  }
}

template <BatchNormMap kMap, class Coefficients, class XLoad, class DyLoad, class Store, int VEC>
CUNORM_KERNEL void CUNORM_LAUNCH_BOUNDS(kBatchNormThreads, 1)
    batch_norm_map_channels_last(BatchNormMapArgs<Coefficients, XLoad, DyLoad, Store> a, ChannelsLastTiling t) {
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * VEC;
  if (c0 >= t.c) return;  // no barrier below: idle channel lanes may leave
  float k[VEC][4];
  CUNORM_UNROLL
  for (int e = 0; e < VEC; ++e) a.coefficients.load(c0 + e, k[e]);
  if (blockIdx.y == 0 && threadIdx.y == 0) {
    CUNORM_UNROLL
    for (int e = 0; e < VEC; ++e) commit_running_statistics(a.running, t.c, c0 + e);
  }
  for (int64_t chunk = blockIdx.y; chunk < t.chunks; chunk += gridDim.y) {
    const ChunkRows rows = channels_last_rows(t, chunk);
    constexpr bool kReadsDy = kMap == BatchNormMap::kBackward;
    PacksInFlight<XLoad, DyLoad, VEC, kChannelsLastInFlight, kReadsDy> packs;
    for_packs_in_flight<kChannelsLastInFlight>(
        rows.begin + threadIdx.y, rows.end, blockDim.y,
        [&](int u, int64_t r) { packs.fetch(a.x, a.dy, u, r * t.c + c0); },
        [&](int u, int64_t r) {
          float x[VEC], dy[VEC] = {}, out[VEC];
          packs.unpack(u, x, dy);
          CUNORM_UNROLL
          for (int e = 0; e < VEC; ++e) out[e] = batch_norm_map<kMap>(x[e], dy[e], k[e]);
          a.out.template store<VEC>(r * t.c + c0, out);
        });
  }
}

}  // namespace cunorm::kernels
