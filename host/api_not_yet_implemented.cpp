// Entry points of the C API whose kernels are not written yet. They exist so that programs
// written against the whole contract link; each checks its handle and answers NOT_SUPPORTED
// with a message saying so. Each moves to its own file when its kernels land.
#include "context.hpp"

using cunorm::Status;

namespace {

cunormStatus_t not_yet(cunormHandle_t handle, const char* function) {
  return cunorm::run_with_handle(handle, [&](cunormContext&) {
    return Status::not_supported(std::string(function) + " is not implemented in this build of cunorm yet");
  });
}

}  // namespace

extern "C" {

cunormStatus_t cunormBatchNormWorkspaceSize(cunormHandle_t handle, cunormLayout_t, int64_t, int64_t, int64_t,
                                            cunormDataType_t, cunormDataType_t, size_t*) {
  return not_yet(handle, "cunormBatchNormWorkspaceSize");
}

cunormStatus_t cunormBatchNormForwardTraining(cunormHandle_t handle, cunormLayout_t, int64_t, int64_t, int64_t,
                                              cunormDataType_t, cunormDataType_t, const void*, const void*, const void*,
                                              float, float, float*, float*, void*, float*, float*) {
  return not_yet(handle, "cunormBatchNormForwardTraining");
}

cunormStatus_t cunormBatchNormForwardTrainingEx(cunormHandle_t handle, cunormLayout_t, int64_t, int64_t, int64_t,
                                                cunormDataType_t, cunormDataType_t, const void*, const void*,
                                                const void*, float, float, cunormRunningVarMode_t, float*, float*,
                                                void*, float*, float*) {
  return not_yet(handle, "cunormBatchNormForwardTrainingEx");
}

cunormStatus_t cunormBatchNormForwardInference(cunormHandle_t handle, cunormLayout_t, int64_t, int64_t, int64_t,
                                               cunormDataType_t, cunormDataType_t, const void*, const void*,
                                               const void*, const float*, const float*, float, void*) {
  return not_yet(handle, "cunormBatchNormForwardInference");
}

cunormStatus_t cunormBatchNormBackward(cunormHandle_t handle, cunormLayout_t, int64_t, int64_t, int64_t,
                                       cunormDataType_t, cunormDataType_t, const void*, const void*, const void*,
                                       const float*, const float*, void*, void*, void*) {
  return not_yet(handle, "cunormBatchNormBackward");
}

cunormStatus_t cunormBatchNormBackwardInference(cunormHandle_t handle, cunormLayout_t, int64_t, int64_t, int64_t,
                                                cunormDataType_t, cunormDataType_t, const void*, const void*,
                                                const void*, const float*, const float*, float, void*, void*, void*) {
  return not_yet(handle, "cunormBatchNormBackwardInference");
}

cunormStatus_t cunormBatchNormCalibrationCreate(cunormHandle_t handle, int64_t, cunormBatchNormCalibration_t*) {
  return not_yet(handle, "cunormBatchNormCalibrationCreate");
}

cunormStatus_t cunormBatchNormCalibrationAccumulate(cunormHandle_t handle, cunormBatchNormCalibration_t, cunormLayout_t,
                                                    int64_t, int64_t, cunormDataType_t, const void*) {
  return not_yet(handle, "cunormBatchNormCalibrationAccumulate");
}

cunormStatus_t cunormBatchNormCalibrationFinalize(cunormHandle_t handle, cunormBatchNormCalibration_t, float*, float*) {
  return not_yet(handle, "cunormBatchNormCalibrationFinalize");
}

cunormStatus_t cunormBatchNormCalibrationDestroy(cunormHandle_t handle, cunormBatchNormCalibration_t) {
  return not_yet(handle, "cunormBatchNormCalibrationDestroy");
}

}  // extern "C"
