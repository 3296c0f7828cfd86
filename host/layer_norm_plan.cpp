// Variant choice for LayerNorm forward: the smallest working set that keeps a row on chip.
// Rows of up to 1024 elements fit a warp's registers (32 per lane at most); up to 8192 a block's
// registers (8 per thread, so that x, gamma and beta stay within 64 registers at 1024 threads);
// then the block's shared memory, as much as the device lets one block opt into; beyond that
// the row is read twice. Vector accesses of 16 bytes need every pointer 16-byte aligned and
// cols a multiple of the pack, else every access is scalar.
#include <algorithm>
#include <cstdint>
#include <string>

#include "dtype.hpp"
#include "layer_norm_forward.hpp"

namespace cunorm {
namespace {

constexpr int kWarpRowsThreads = 128;  // kernels/layer_norm_forward.cuh
constexpr int kMaxThreads = 1024;
constexpr int64_t kWarpRowsMaxCols = 1024;
constexpr int kBlockRegistersMaxItems = 8;
// BlockWelford's TempStorage (33 states of 3 floats), declared statically by the block kernels.
constexpr std::size_t kBlockReduceSharedBytes = 33 * 3 * sizeof(float);

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

int next_power_of_two(int64_t v) {
  int p = 1;
  while (p < v) p *= 2;
  return p;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

unsigned resident_grid(int64_t wanted, int threads, const DeviceInfo& device, std::size_t shared_per_block) {
  int64_t per_sm = std::max(1, device.max_threads_per_sm / threads);
  if (shared_per_block > 0)
    per_sm = std::min<int64_t>(per_sm, std::max<int64_t>(1, device.shared_per_sm / shared_per_block));
  return static_cast<unsigned>(std::min<int64_t>(wanted, per_sm * device.sm_count));
}

}  // namespace

const char* variant_name(LayerNormVariant variant) {
  switch (variant) {
    case LayerNormVariant::kWarpRows: return "warp_rows";
    case LayerNormVariant::kBlockRegisters: return "block_registers";
    case LayerNormVariant::kBlockShared: return "block_shared";
    case LayerNormVariant::kBlockUncached: return "block_uncached";
  }
  return "unknown";
}

LayerNormForwardPlan plan_layer_norm_forward(const LayerNormForwardCall& call, const DeviceInfo& device) {
  const std::size_t elem = dtype_size(call.dtype);
  const int full_vec = static_cast<int>(16 / elem);
  const bool vector_ok = call.cols % full_vec == 0 && aligned16(call.x) && aligned16(call.y) &&
                         (call.gamma == nullptr || aligned16(call.gamma)) &&
                         (call.beta == nullptr || aligned16(call.beta));
  LayerNormForwardPlan plan{};
  plan.vec = vector_ok ? full_vec : 1;
  const int64_t packs = call.cols / plan.vec;

  if (call.cols <= kWarpRowsMaxCols) {
    plan.variant = LayerNormVariant::kWarpRows;
    plan.width = packs <= 32 ? next_power_of_two(packs) : 32;
    plan.chunks = packs <= 32 ? 1 : next_power_of_two(ceil_div(packs, 32));
    plan.tail = packs != static_cast<int64_t>(plan.width) * plan.chunks;
    const int64_t rows_per_block = kWarpRowsThreads / plan.width;
    plan.shape.block = dim3(kWarpRowsThreads);
    plan.shape.dynamic_shared_bytes = 2 * static_cast<std::size_t>(call.cols) * sizeof(float);
    plan.shape.grid = dim3(resident_grid(ceil_div(call.rows, rows_per_block), kWarpRowsThreads, device, 0));
  } else if (call.cols <= static_cast<int64_t>(kMaxThreads) * kBlockRegistersMaxItems) {
    plan.variant = LayerNormVariant::kBlockRegisters;
    plan.chunks = 1;
    while (ceil_div(packs, plan.chunks) > kMaxThreads) plan.chunks *= 2;
    const int threads = static_cast<int>(ceil_div(ceil_div(packs, plan.chunks), 32) * 32);
    plan.tail = packs != static_cast<int64_t>(threads) * plan.chunks;
    plan.shape.block = dim3(threads);
    plan.shape.grid = dim3(resident_grid(call.rows, threads, device, kBlockReduceSharedBytes));
  } else {
    const std::size_t row_bytes = static_cast<std::size_t>(call.cols) * elem;
    const bool fits = row_bytes + kBlockReduceSharedBytes <= device.shared_per_block_optin;
    plan.variant = fits ? LayerNormVariant::kBlockShared : LayerNormVariant::kBlockUncached;
    plan.shape.block = dim3(kMaxThreads);
    plan.shape.dynamic_shared_bytes = fits ? row_bytes : 0;
    plan.tail = packs % kMaxThreads != 0;
    plan.shape.grid =
        dim3(resident_grid(call.rows, kMaxThreads, device, plan.shape.dynamic_shared_bytes + kBlockReduceSharedBytes));
  }
  plan.shape.name = std::string("layer_norm_forward.") + variant_name(plan.variant) + "<" + dtype_name(call.dtype) +
                    "," + dtype_name(call.param_dtype) + "> vec=" + std::to_string(plan.vec) +
                    " chunks=" + std::to_string(plan.chunks) + " width=" + std::to_string(plan.width) +
                    (plan.tail ? " tail" : " full");
  return plan;
}

}  // namespace cunorm
