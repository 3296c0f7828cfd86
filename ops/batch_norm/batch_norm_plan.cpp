// Tiling of BatchNorm's passes (ops/batch_norm/batch_norm_passes.cuh). The per-channel statistics and
// gradient sums are split into chunks so that every pass launches two blocks per SM whenever the
// tensor has enough elements (e.g. C = 64, N*S = 802816 on a 132-SM H100: 264 blocks or more;
// channels last in whole waves of 2 x SMs, as near as whole channel tiles allow), and no block
// takes more than about 64K elements (256 threads of about 256 elements each); the chunks' partial states are merged per channel in a fixed order. NCHW with S == 1 has the memory
// order of NHWC and is served by the channels-last passes. Vector accesses of 16 bytes need x, dy and the output
// 16-byte aligned and the contiguous extent (S for NCHW, C for NHWC) a multiple of the pack.
#include <algorithm>
#include <cstdint>

#include "../../host/byte_count.hpp"
#include "../../host/dtype.hpp"
#include "../../host/plan_math.hpp"
#include "batch_norm.hpp"
#include "batch_norm_finalize.cuh"

namespace cunorm {
namespace {

constexpr int64_t kElementsPerBlock = 65536;
constexpr int kThreads = kernels::kBatchNormThreads;

// Chunks wanted per channel (or per channel tile): enough blocks for two per SM, and no more
// than kElementsPerBlock elements in one block.
int64_t wanted_chunks(int64_t independent_blocks, int64_t elements_per_channel_unit, const DeviceInfo& d) {
  return std::max(ceil_div(2 * static_cast<int64_t>(d.sm_count), independent_blocks),
                  ceil_div(elements_per_channel_unit, kElementsPerBlock));
}

// Threads of a block: up to 256, fewer (down to a warp) when a channel has few elements, so that
// small channels do not leave most threads idle.
int64_t block_threads(int64_t elements_per_channel) {
  return std::clamp<int64_t>(next_power_of_two(ceil_div(elements_per_channel, 8)), 32, kThreads);
}

int64_t previous_power_of_two(int64_t v) {
  int64_t p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}

void plan_channels_first(const BatchNormCall& call, int64_t packs, const DeviceInfo& d, BatchNormPlan& plan) {
  const int64_t bx = packs >= 32 ? 32 : next_power_of_two(packs);
  const int64_t most_rows = block_threads(call.n * call.s) / bx;
  const int64_t target = wanted_chunks(call.c, call.n * call.s, d);
  // Tiles of S only when groups of n alone cannot give enough chunks.
  int64_t tiles = std::clamp<int64_t>(ceil_div(target, ceil_div(call.n, most_rows)), 1, ceil_div(packs, bx));
  const int64_t packs_per_tile = ceil_div(packs, tiles);
  tiles = ceil_div(packs, packs_per_tile);
  const int64_t n_per_wanted_group = std::max<int64_t>(1, call.n / ceil_div(target, tiles));
  // Fewer rows of threads when a group holds few n, so that the groups stay many enough; but at
  // least one whole warp, which the block reduction's shuffles need.
  const int64_t by = std::max(32 / bx, std::min(most_rows, previous_power_of_two(n_per_wanted_group)));
  const int64_t n_per_group = std::max(by, n_per_wanted_group / by * by);
  plan.chunks = ceil_div(call.n, n_per_group) * tiles;
  plan.first = kernels::ChannelsFirstTiling{call.n, call.c, call.s, packs_per_tile, tiles, n_per_group, plan.chunks};
  plan.block = dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by));
  plan.grid = dim3(static_cast<unsigned>(plan.chunks), static_cast<unsigned>(std::min<int64_t>(call.c, 65535)));
}

void plan_channels_last(const BatchNormCall& call, int64_t channel_packs, const DeviceInfo& d, BatchNormPlan& plan) {
  const int64_t rows = call.n * call.s;
  const int64_t bx = std::min<int64_t>(32, next_power_of_two(channel_packs));
  const int64_t tiles = ceil_div(channel_packs, bx);
  // Whole waves of two blocks per SM: a grid one block past a wave waits a whole block's time
  // for it (these passes run two 256-thread blocks per SM, ~90 registers each).
  const int64_t wave = std::max<int64_t>(1, 2 * static_cast<int64_t>(d.sm_count) / tiles);
  const int64_t target = ceil_div(wanted_chunks(tiles, rows * bx * plan.vec, d), wave) * wave;
  plan.chunks = std::max<int64_t>(1, std::min(target, rows));
  const int64_t by = std::min(std::max<int64_t>(1, block_threads(rows * bx) / bx),
                              previous_power_of_two(std::max<int64_t>(1, rows / plan.chunks)));
  plan.last = kernels::ChannelsLastTiling{rows, call.c, plan.chunks};
  plan.block = dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by));
  plan.grid = dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(std::min<int64_t>(plan.chunks, 65535)));
}

}  // namespace

const char* batch_norm_kind_name(BatchNormKind kind) {
  switch (kind) {
    case BatchNormKind::kTraining: return "batch_norm_training";
    case BatchNormKind::kInference: return "batch_norm_inference";
    case BatchNormKind::kBackward: return "batch_norm_backward";
    case BatchNormKind::kBackwardInference: return "batch_norm_backward_inference";
    case BatchNormKind::kCalibrationBatch: return "batch_norm_calibration";
  }
  return "batch_norm";
}

BatchNormPlan plan_batch_norm(const BatchNormCall& call, const DeviceInfo& device) {
  BatchNormPlan plan;
  plan.channels_last = call.layout == CUNORM_LAYOUT_NHWC || call.s == 1;
  const int64_t contiguous = plan.channels_last ? call.c : call.s;
  const int full = static_cast<int>(16 / dtype_size(call.dtype));
  const bool aligned =
      aligned16(call.x) && (call.dy == nullptr || aligned16(call.dy)) && (call.out == nullptr || aligned16(call.out));
  plan.vec = aligned && contiguous % full == 0 ? full : 1;
  if (plan.channels_last) {
    plan_channels_last(call, call.c / plan.vec, device, plan);
  } else {
    plan_channels_first(call, call.s / plan.vec, device, plan);
  }
  plan.finalize_grid = dim3(static_cast<unsigned>(ceil_div(call.c, kernels::kFinalizeChannelsPerBlock)));
  const std::size_t channels = static_cast<std::size_t>(call.c);
  const std::size_t state_bytes = std::max(sizeof(kernels::WelfordState), sizeof(kernels::Sums<2>));
  if (call.kind != BatchNormKind::kInference) {
    plan.partials_offset =
        add_region(plan.workspace_bytes,
                   saturating_mul(saturating_mul(static_cast<std::size_t>(plan.chunks), channels), state_bytes));
  }
  if (call.kind == BatchNormKind::kTraining || call.kind == BatchNormKind::kBackward) {
    plan.coefficients_offset = add_region(plan.workspace_bytes, saturating_mul(channels, 4 * sizeof(float)));
  }
  if (call.kind == BatchNormKind::kCalibrationBatch || call.kind == BatchNormKind::kTraining) {
    plan.batch_offset = add_region(plan.workspace_bytes, saturating_mul(channels, 2 * sizeof(float)));
  }
  plan.label.family = batch_norm_kind_name(call.kind);
  plan.label.variant = plan.channels_last ? "channels_last" : "channels_first";
  plan.label.types[0] = dtype_name(call.dtype);
  plan.label.types[1] = dtype_name(call.param_dtype);
  plan.label.with("vec", plan.vec).with("chunks", plan.chunks);
  return plan;
}

std::size_t batch_norm_workspace_bytes(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, cunormDataType_t dtype,
                                       const DeviceInfo& device) {
  alignas(16) static const char aligned = 0;
  std::size_t most = 0;
  for (BatchNormKind kind : {BatchNormKind::kTraining, BatchNormKind::kInference, BatchNormKind::kBackward,
                             BatchNormKind::kBackwardInference, BatchNormKind::kCalibrationBatch}) {
    for (const void* p : {static_cast<const void*>(&aligned), static_cast<const void*>(&aligned + 1)}) {
      BatchNormCall call = batch_norm_call(kind, layout, n, c, s, dtype, CUNORM_FLOAT32, p);
      call.out = const_cast<void*>(p);
      most = std::max(most, plan_batch_norm(call, device).workspace_bytes);
    }
  }
  return most;
}

}  // namespace cunorm
