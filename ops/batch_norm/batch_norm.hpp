// BatchNorm as the host sees it: one call of any BatchNorm entry point (training or inference
// forward, either backward, or a calibration batch) with its validated arguments, and the plan
// (tiling of the passes, vector width, workspace layout) chosen for it on a device.
#pragma once

#include <vector_types.h>

#include <cstddef>
#include <cstdint>

#include "../../host/device_info.hpp"
#include "batch_norm_tiling.hpp"
#include "cunorm/cunorm.h"
#include "simt/launch_label.hpp"

namespace cunorm {

enum class BatchNormKind { kTraining, kInference, kBackward, kBackwardInference, kCalibrationBatch };

struct BatchNormCall {
  BatchNormKind kind;
  cunormLayout_t layout;
  int64_t n, c, s;
  cunormDataType_t dtype;
  cunormDataType_t param_dtype;  // CUNORM_FLOAT32 for calibration
  const void* x;
  const void* dy;     // backward
  const void* gamma;  // NULL: 1
  const void* beta;   // NULL: 0
  float eps;
  float momentum;             // training
  bool unbiased_running_var;  // training
  float* running_mean;        // training: updated in place (or NULL); inference: read
  float* running_var;
  const float* saved_mean;  // backward (training)
  const float* saved_invstd;
  void* out;          // y, or dx
  float* out_mean;    // training: saved_mean output (nullable)
  float* out_invstd;  // training: saved_invstd output (nullable)
  void* dgamma;       // backward (nullable)
  void* dbeta;        // backward (nullable)
};

// A call with the problem every BatchNorm entry point states first; the caller sets its buffers
// and scalars.
inline BatchNormCall batch_norm_call(BatchNormKind kind, cunormLayout_t layout, int64_t n, int64_t c, int64_t s,
                                     cunormDataType_t dtype, cunormDataType_t param_dtype, const void* x) {
  BatchNormCall call{};
  call.kind = kind;
  call.layout = layout;
  call.n = n;
  call.c = c;
  call.s = s;
  call.dtype = dtype;
  call.param_dtype = param_dtype;
  call.x = x;
  return call;
}

struct BatchNormPlan {
  bool channels_last = false;  // NHWC, or NCHW with S == 1 (the same memory order)
  int vec = 1;
  kernels::ChannelsFirstTiling first{};
  kernels::ChannelsLastTiling last{};
  int64_t chunks = 0;  // partial states per channel
  dim3 grid{1, 1, 1};
  dim3 block{1, 1, 1};
  dim3 finalize_grid{1, 1, 1};
  // Workspace layout, in bytes from its start.
  std::size_t partials_offset = 0;      // chunks x C states
  std::size_t coefficients_offset = 0;  // training, backward: 4 x C floats a finalize writes for the map
  std::size_t batch_offset = 0;         // 2 x C floats: calibration, the batch's (mean, M2);
                                        // training, the new running (mean, var) the last pass commits
  std::size_t workspace_bytes = 0;
  simt::LaunchLabel label;  // "batch_norm_training.channels_last<f32,f32> vec=4 chunks=12"; a pass adds its step
};

BatchNormPlan plan_batch_norm(const BatchNormCall& call, const DeviceInfo& device);
// The most workspace any BatchNorm call of these sizes needs on this device.
std::size_t batch_norm_workspace_bytes(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, cunormDataType_t dtype,
                                       const DeviceInfo& device);
const char* batch_norm_kind_name(BatchNormKind kind);

}  // namespace cunorm
