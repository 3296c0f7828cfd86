// Variant choice for LayerNorm and RMSNorm, forward and backward: the smallest working set that
// keeps a row on chip (see docs/row_norms.md).
//
// Forward: up to 1024 elements a row fits a warp's registers (32 per lane at most); up to 8192
// a block's registers (8 per thread, so that x, gamma and beta stay within 64 registers at 1024
// threads). Longer rows are cut into segments that fit one block's shared memory, with as many
// blocks per row as needed (a cooperative launch when more than one); beyond what the whole GPU
// can hold at once, the row is read again. Backward holds x and dy: warps up to 512 elements,
// then segments, then re-reading. Few long rows are also cut into more segments than shared
// memory requires, so that every SM has work.
// Vector accesses of 16 bytes need every pointer 16-byte aligned and cols a multiple of the
// pack; otherwise every access is scalar.
#include <algorithm>
#include <cstdint>

#include "../../host/byte_count.hpp"
#include "../../host/dtype.hpp"
#include "../../host/plan_math.hpp"
#include "../../kernels/reduce.cuh"
#include "norm_ops.cuh"
#include "row_norm.hpp"

namespace cunorm {
namespace {

constexpr int kWarpRowsThreads = 128;  // ops/row_norm/row_norm_forward.cuh
constexpr int kMaxThreads = 1024;
constexpr int kSegmentMaxThreads = 512;
constexpr int64_t kWarpRowsMaxCols = 1024;
constexpr int64_t kBackwardWarpRowsMaxCols = 512;
constexpr int kBlockRegistersMaxItems = 8;
// Registers per thread the planner assumes when sizing grids: what launch bounds of 1024 threads
// allow. Cooperative grids assume the most their kernel's bounds allow, so that they really
// stay resident (the CUDA launcher checks the actual occupancy too).
constexpr int kAssumedRegisters = 64;
constexpr int kSegmentAssumedRegisters = 65536 / kSegmentMaxThreads;
// Segments are not cut smaller than this many packs just to spread few rows over the SMs.
constexpr int64_t kMinPacksPerSegment = 2048;
// The uncached backward keeps one row of partials per block: bound that workspace.
constexpr std::size_t kUncachedPartialBudget = std::size_t{256} << 20;

// Bytes of the state a kernel keeps per row, and of its block-reduction storage.
std::size_t statistics_state_bytes(RowNormKind kind) {
  return kind == RowNormKind::kLayerNorm ? sizeof(kernels::LayerNormOp::Reducer::State)
                                         : sizeof(kernels::RmsNormOp::Reducer::State);
}
std::size_t gradient_state_bytes(RowNormKind kind) {
  return kind == RowNormKind::kLayerNorm ? sizeof(kernels::LayerNormOp::GradientReducer::State)
                                         : sizeof(kernels::RmsNormOp::GradientReducer::State);
}
std::size_t block_reduce_bytes(std::size_t state_bytes) { return 34 * state_bytes; }  // 32 warps, total, row state

// Blocks one SM keeps resident with this many threads and this much shared memory.
int64_t blocks_per_sm(int threads, std::size_t shared_bytes, const DeviceInfo& d,
                      int registers_per_thread = kAssumedRegisters) {
  int64_t n = std::min<int64_t>(d.max_blocks_per_sm, d.max_threads_per_sm / threads);
  n = std::min<int64_t>(n, d.registers_per_sm / (registers_per_thread * threads));
  if (shared_bytes > 0) n = std::min<int64_t>(n, static_cast<int64_t>(d.shared_per_sm / shared_bytes));
  return n;
}

unsigned resident_grid(int64_t wanted, int threads, std::size_t shared_bytes, const DeviceInfo& d) {
  const int64_t per_sm = std::max<int64_t>(1, blocks_per_sm(threads, shared_bytes, d));
  return static_cast<unsigned>(std::min<int64_t>(wanted, per_sm * d.sm_count));
}

// Shared memory a segment of pps packs needs, given the bytes per element that stay in it.
struct SegmentFootprint {
  std::size_t cached_bytes_per_element;  // activations cached as T (x; backward x and dy)
  int cached_arrays;                     // each rounded up to 16 bytes
  std::size_t float_bytes_per_element;   // staged parameters and accumulators
  std::size_t static_bytes;
  std::size_t dynamic_bytes(int64_t pps, int vec) const {
    const std::size_t elements = static_cast<std::size_t>(pps * vec);
    return cached_arrays * round_up(elements * cached_bytes_per_element, 16) + elements * float_bytes_per_element;
  }
};

// Threads of a block that holds pps packs: 8 packs each (independent loads in flight per
// thread), from 128 to 512.
int segment_threads(int64_t pps) {
  return static_cast<int>(
      std::min<int64_t>(kSegmentMaxThreads, std::max<int64_t>(128, ceil_div(ceil_div(pps, 8), 32) * 32)));
}

// The segment split for `packs` packs per row, or false if a row does not fit the GPU at once.
bool plan_segments(int64_t rows, int64_t packs, int vec, const SegmentFootprint& f, const DeviceInfo& d,
                   RowNormPlan& plan) {
  const std::size_t budget = d.shared_per_block_optin - f.static_bytes;
  const std::size_t per_pack =
      static_cast<std::size_t>(vec) * (f.cached_arrays * f.cached_bytes_per_element + f.float_bytes_per_element);
  const int64_t capacity = static_cast<int64_t>((budget - 16 * f.cached_arrays) / per_pack);
  if (capacity < 1) return false;
  const int64_t needed = ceil_div(packs, capacity);  // fewest segments shared memory allows
  int64_t count = needed;
  if (rows < d.sm_count) {
    const int64_t spread = std::min(ceil_div(d.sm_count, rows), std::max<int64_t>(1, packs / kMinPacksPerSegment));
    count = std::max(count, spread);
  }
  // Blocks (and, where the device limits cooperative grids by threads, threads) resident at once.
  auto resident_for = [&](int64_t c, int* threads, std::size_t* dynamic) {
    const int64_t pps = ceil_div(packs, c);
    *threads = segment_threads(pps);
    *dynamic = f.dynamic_bytes(pps, vec);
    int64_t blocks = blocks_per_sm(*threads, *dynamic + f.static_bytes, d, kSegmentAssumedRegisters) * d.sm_count;
    if (c > 1 && d.max_cooperative_threads > 0) {
      blocks = std::min<int64_t>(blocks, static_cast<int64_t>(d.max_cooperative_threads) / *threads);
    }
    return blocks;
  };
  int threads = 0;
  std::size_t dynamic = 0;
  int64_t resident = resident_for(count, &threads, &dynamic);
  if (count > resident && count > needed) {  // spreading went too far: only what shared memory needs
    count = needed;
    resident = resident_for(count, &threads, &dynamic);
  }
  if (count > resident) return false;
  const int64_t pps = ceil_div(packs, count);
  count = ceil_div(packs, pps);
  plan.variant = RowNormVariant::kSegments;
  plan.segments.count = static_cast<int>(count);
  plan.segments.packs_per_segment = static_cast<int>(pps);
  plan.segments.slots = static_cast<int>(std::min<int64_t>(rows, resident / count));
  plan.segments.waves = ceil_div(rows, plan.segments.slots);
  plan.tail = pps % threads != 0 || packs % pps != 0;
  plan.shape.block = dim3(static_cast<unsigned>(threads));
  plan.shape.grid = dim3(static_cast<unsigned>(plan.segments.slots * count));
  plan.shape.dynamic_shared_bytes = dynamic;
  plan.shape.cooperative = count > 1;
  return true;
}

// Lanes per row and packs per lane of the warp variants.
void plan_warp_rows(int64_t packs, RowNormPlan& plan) {
  plan.variant = RowNormVariant::kWarpRows;
  plan.width = packs <= 32 ? next_power_of_two(packs) : 32;
  plan.chunks = packs <= 32 ? 1 : next_power_of_two(ceil_div(packs, 32));
  plan.tail = packs != static_cast<int64_t>(plan.width) * plan.chunks;
  plan.shape.block = dim3(kWarpRowsThreads);
}

int vector_width(cunormDataType_t dtype, int64_t cols, std::initializer_list<const void*> pointers) {
  const int full = static_cast<int>(16 / dtype_size(dtype));
  if (cols % full != 0) return 1;
  for (const void* p : pointers) {
    if (p != nullptr && !aligned16(p)) return 1;
  }
  return full;
}

// The plan's launch label: static strings and integers, nothing allocated.
void label_plan(RowNormPlan& plan, RowNormKind kind, bool forward, cunormDataType_t dtype,
                cunormDataType_t param_dtype) {
  simt::LaunchLabel& label = plan.shape.label;
  label.family = row_norm_family(kind, forward);
  label.variant = variant_name(plan.variant);
  label.types[0] = dtype_name(dtype);
  label.types[1] = dtype_name(param_dtype);
  label.with("vec", plan.vec).with("chunks", plan.chunks).with("width", plan.width);
  label.with("segments", plan.segments.count);
  if (plan.variant == RowNormVariant::kSegments) label.with("waves", plan.segments.waves);
  label.suffix = plan.tail ? "tail" : "full";
}

}  // namespace

const char* variant_name(RowNormVariant variant) {
  switch (variant) {
    case RowNormVariant::kWarpRows: return "warp_rows";
    case RowNormVariant::kBlockRegisters: return "block_registers";
    case RowNormVariant::kSegments: return "segments";
    case RowNormVariant::kUncached: return "uncached";
  }
  return "unknown";
}

const char* row_norm_family(RowNormKind kind, bool forward) {
  if (kind == RowNormKind::kLayerNorm) return forward ? "layer_norm_forward" : "layer_norm_backward";
  return forward ? "rms_norm_forward" : "rms_norm_backward";
}

RowNormPlan plan_row_norm_forward(const RowNormForwardCall& call, const DeviceInfo& device) {
  RowNormPlan plan;
  plan.vec = vector_width(call.dtype, call.cols, {call.x, call.y, call.gamma, call.beta});
  const int64_t packs = call.cols / plan.vec;
  const bool centered = call.kind == RowNormKind::kLayerNorm;
  const std::size_t state = statistics_state_bytes(call.kind);
  if (call.cols <= kWarpRowsMaxCols) {
    plan_warp_rows(packs, plan);
    plan.shape.dynamic_shared_bytes = 2 * static_cast<std::size_t>(call.cols) * sizeof(float);
    plan.shape.grid = dim3(resident_grid(ceil_div(call.rows, kWarpRowsThreads / plan.width), kWarpRowsThreads,
                                         plan.shape.dynamic_shared_bytes, device));
  } else if (call.cols <= static_cast<int64_t>(kMaxThreads) * kBlockRegistersMaxItems) {
    plan.variant = RowNormVariant::kBlockRegisters;
    while (ceil_div(packs, plan.chunks) > kMaxThreads) plan.chunks *= 2;
    const int threads = static_cast<int>(ceil_div(ceil_div(packs, plan.chunks), 32) * 32);
    plan.tail = packs != static_cast<int64_t>(threads) * plan.chunks;
    plan.shape.block = dim3(threads);
    plan.shape.grid = dim3(resident_grid(call.rows, threads, block_reduce_bytes(state), device));
  } else {
    // x cached as T; gamma (and beta) staged as float.
    const SegmentFootprint footprint{dtype_size(call.dtype), 1, (centered ? 2u : 1u) * sizeof(float),
                                     block_reduce_bytes(state)};
    if (!plan_segments(call.rows, packs, plan.vec, footprint, device, plan)) {
      plan.variant = RowNormVariant::kUncached;
      plan.shape.block = dim3(kMaxThreads);
      plan.tail = packs % kMaxThreads != 0;
      plan.shape.grid = dim3(resident_grid(call.rows, kMaxThreads, block_reduce_bytes(state), device));
    }
  }
  if (plan.shape.cooperative) {
    plan.exchange_offset = add_region(plan.workspace_bytes, 2 * static_cast<std::size_t>(plan.segments.slots) *
                                                                static_cast<std::size_t>(plan.segments.count) * state);
  }
  label_plan(plan, call.kind, true, call.dtype, call.param_dtype);
  return plan;
}

RowNormPlan plan_row_norm_backward(const RowNormBackwardCall& call, const DeviceInfo& device) {
  RowNormPlan plan;
  plan.vec = vector_width(call.dtype, call.cols, {call.dy, call.x, call.dx, call.gamma});
  const int64_t packs = call.cols / plan.vec;
  const bool centered = call.kind == RowNormKind::kLayerNorm;
  const std::size_t state = gradient_state_bytes(call.kind);
  if (call.cols <= kBackwardWarpRowsMaxCols) {
    plan_warp_rows(packs, plan);
    const std::size_t groups = static_cast<std::size_t>(kWarpRowsThreads / plan.width);
    plan.shape.dynamic_shared_bytes = (1 + 2 * groups) * static_cast<std::size_t>(call.cols) * sizeof(float);
    plan.shape.grid = dim3(resident_grid(ceil_div(call.rows, static_cast<int64_t>(groups)), kWarpRowsThreads,
                                         plan.shape.dynamic_shared_bytes, device));
    plan.partial_rows = plan.shape.grid.x;
  } else {
    // x and dy cached as T; gamma staged as float; dgamma (and dbeta) accumulated as float.
    const SegmentFootprint footprint{dtype_size(call.dtype), 2, (centered ? 3u : 2u) * sizeof(float),
                                     block_reduce_bytes(state)};
    if (plan_segments(call.rows, packs, plan.vec, footprint, device, plan)) {
      plan.partial_rows = plan.segments.slots;
    } else {
      plan.variant = RowNormVariant::kUncached;
      plan.shape.block = dim3(kMaxThreads);
      plan.tail = packs % kMaxThreads != 0;
      // A row of partial dgamma and dbeta per block; rows of 2^61 floats and more saturate (one block).
      const std::size_t partial_row_bytes = saturating_mul(static_cast<std::size_t>(call.cols), 2 * sizeof(float));
      const int64_t affordable = std::max<int64_t>(1, static_cast<int64_t>(kUncachedPartialBudget / partial_row_bytes));
      plan.shape.grid =
          dim3(resident_grid(std::min(call.rows, affordable), kMaxThreads, block_reduce_bytes(state), device));
      plan.partial_rows = plan.shape.grid.x;
    }
  }
  if (call.dgamma != nullptr || call.dbeta != nullptr) {
    const std::size_t partial_bytes =
        saturating_mul(saturating_mul(static_cast<std::size_t>(plan.partial_rows), static_cast<std::size_t>(call.cols)),
                       sizeof(float));
    plan.partial_dgamma_offset = add_region(plan.workspace_bytes, partial_bytes);
    if (centered) plan.partial_dbeta_offset = add_region(plan.workspace_bytes, partial_bytes);
  }
  if (plan.shape.cooperative) {
    plan.exchange_offset = add_region(plan.workspace_bytes, 2 * static_cast<std::size_t>(plan.segments.slots) *
                                                                static_cast<std::size_t>(plan.segments.count) * state);
  }
  label_plan(plan, call.kind, false, call.dtype, call.param_dtype);
  return plan;
}

std::size_t row_norm_workspace_bytes(int64_t rows, int64_t cols, cunormDataType_t dtype, cunormDataType_t param_dtype,
                                     const DeviceInfo& device) {
  // Plans depend on pointer alignment only through the vector width: try both.
  alignas(16) static const char aligned = 0;
  const void* vector_ok = &aligned;
  const void* scalar = &aligned + 1;
  std::size_t most = 0;
  for (RowNormKind kind : {RowNormKind::kLayerNorm, RowNormKind::kRmsNorm}) {
    for (const void* p : {vector_ok, scalar}) {
      const RowNormForwardCall forward{
          kind, rows, cols, dtype, param_dtype, p, nullptr, nullptr, 0.0f, const_cast<void*>(p), nullptr, nullptr};
      const RowNormBackwardCall backward{kind,
                                         rows,
                                         cols,
                                         dtype,
                                         param_dtype,
                                         p,
                                         p,
                                         nullptr,
                                         nullptr,
                                         nullptr,
                                         const_cast<void*>(p),
                                         const_cast<void*>(p),
                                         const_cast<void*>(p)};
      most = std::max({most, plan_row_norm_forward(forward, device).workspace_bytes,
                       plan_row_norm_backward(backward, device).workspace_bytes});
    }
  }
  return most;
}

}  // namespace cunorm
