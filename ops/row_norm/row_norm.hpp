// LayerNorm and RMSNorm as the host sees them: the validated arguments of one call, and the plan
// (variant, vector width, segments, launch shape, workspace layout) chosen for them on a device.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../../host/device_info.hpp"
#include "../../host/launch_shape.hpp"
#include "cunorm/cunorm.h"

namespace cunorm {

enum class RowNormKind { kLayerNorm, kRmsNorm };

struct RowNormForwardCall {
  RowNormKind kind;
  int64_t rows;
  int64_t cols;
  cunormDataType_t dtype;
  cunormDataType_t param_dtype;
  const void* x;
  const void* gamma;
  const void* beta;  // NULL for RMSNorm
  float eps;
  void* y;
  float* mean;  // NULL for RMSNorm
  float* rstd;  // rstd (LayerNorm) or rrms (RMSNorm)
};

struct RowNormBackwardCall {
  RowNormKind kind;
  int64_t rows;
  int64_t cols;
  cunormDataType_t dtype;
  cunormDataType_t param_dtype;
  const void* dy;
  const void* x;
  const float* mean;  // NULL for RMSNorm
  const float* rstd;  // rstd or rrms
  const void* gamma;
  void* dx;
  void* dgamma;
  void* dbeta;  // NULL for RMSNorm
};

enum class RowNormVariant { kWarpRows, kBlockRegisters, kSegments, kUncached };

// A row split into `count` segments of packs_per_segment packs, one block each; `slots` rows at
// a time, in `waves` rounds (ops/row_norm/row_segments.cuh, RowSegments).
struct SegmentPlan {
  int count = 1;
  int packs_per_segment = 0;
  int slots = 0;
  int64_t waves = 0;
};

struct RowNormPlan {
  RowNormVariant variant = RowNormVariant::kUncached;
  int vec = 1;        // elements per access
  int chunks = 1;     // packs per thread (register variants)
  int width = 0;      // lanes per row (warp_rows)
  bool tail = false;  // the last pass over a row leaves some threads without a pack
  SegmentPlan segments;
  LaunchShape shape;
  // Workspace layout, in bytes from the workspace's start (256-byte aligned regions).
  std::size_t exchange_offset = 0;  // partial row statistics of segments (count > 1)
  int64_t partial_rows = 0;         // backward: rows of partial dgamma / dbeta
  std::size_t partial_dgamma_offset = 0;
  std::size_t partial_dbeta_offset = 0;
  std::size_t workspace_bytes = 0;
};

const char* variant_name(RowNormVariant variant);
// "layer_norm_forward", "rms_norm_backward", ...: the family of the op's launch labels.
const char* row_norm_family(RowNormKind kind, bool forward);

RowNormPlan plan_row_norm_forward(const RowNormForwardCall& call, const DeviceInfo& device);
RowNormPlan plan_row_norm_backward(const RowNormBackwardCall& call, const DeviceInfo& device);
// The most workspace any LayerNorm or RMSNorm call of these sizes needs on this device.
std::size_t row_norm_workspace_bytes(int64_t rows, int64_t cols, cunormDataType_t dtype, cunormDataType_t param_dtype,
                                     const DeviceInfo& device);

}  // namespace cunorm
