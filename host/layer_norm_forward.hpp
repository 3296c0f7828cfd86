// LayerNorm forward as the host sees it: the validated arguments of one call, and the plan
// (variant, vector width, launch shape) chosen for them.
#pragma once

#include <cstdint>

#include "cunorm/cunorm.h"
#include "device_info.hpp"
#include "launch_shape.hpp"

namespace cunorm {

struct LayerNormForwardCall {
  int64_t rows;
  int64_t cols;
  cunormDataType_t dtype;
  cunormDataType_t param_dtype;
  const void* x;
  const void* gamma;
  const void* beta;
  float eps;
  void* y;
  float* mean;
  float* rstd;
};

enum class LayerNormVariant { kWarpRows, kBlockRegisters, kBlockShared, kBlockUncached };

struct LayerNormForwardPlan {
  LayerNormVariant variant;
  int vec;     // elements per access
  int chunks;  // packs per thread (register variants)
  int width;   // lanes per row (warp_rows)
  bool tail;   // the last pass over a row leaves some threads without a pack
  LaunchShape shape;
};

const char* variant_name(LayerNormVariant variant);

// Picks the variant for this call on this device (see kernels/layer_norm_forward.cuh).
LayerNormForwardPlan plan_layer_norm_forward(const LayerNormForwardCall& call, const DeviceInfo& device);

}  // namespace cunorm
