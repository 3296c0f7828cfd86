/* cunorm: fused normalization kernels (LayerNorm, RMSNorm, BatchNorm) for CUDA GPUs and for
 * the CPU SIMT engine that runs the same kernels where no GPU exists.
 *
 * This is the C ABI; docs/api.md documents every function, argument, status and message. It compiles as C99 and as
 * C++17. Every function returns a cunormStatus_t; on any status other than SUCCESS and
 * EXECUTION_FAILED nothing has been written, and cunormGetLastErrorMessage() names the
 * argument at fault. Quantities: rstd = 1/sqrt(var + eps) with var the biased variance. */
#ifndef CUNORM_CUNORM_H
#define CUNORM_CUNORM_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#if defined(_WIN32)
#define CUNORM_API
#else
#define CUNORM_API __attribute__((visibility("default")))
#endif

/* The version of this header; cunormGetVersion() gives the library's. CMakeLists.txt reads the
 * project's version from these three lines. */
#define CUNORM_VERSION_MAJOR 0
#define CUNORM_VERSION_MINOR 1
#define CUNORM_VERSION_PATCH 0
#define CUNORM_VERSION (CUNORM_VERSION_MAJOR * 10000 + CUNORM_VERSION_MINOR * 100 + CUNORM_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  CUNORM_STATUS_SUCCESS = 0,
  CUNORM_STATUS_INVALID_VALUE = 1,       /* a bad argument */
  CUNORM_STATUS_NOT_SUPPORTED = 2,       /* a valid request this build cannot serve */
  CUNORM_STATUS_WORKSPACE_TOO_SMALL = 3, /* the user's workspace is smaller than needed */
  CUNORM_STATUS_ALLOC_FAILED = 4,
  CUNORM_STATUS_NO_DEVICE = 5,           /* CUDA backend asked for, no usable GPU */
  CUNORM_STATUS_EXECUTION_FAILED = 6,    /* a launch or runtime call failed */
  CUNORM_STATUS_INTERNAL_ERROR = 7
} cunormStatus_t;

/* The *_RANGE_MIN_ / *_RANGE_MAX_ enumerators of the argument enums below are not values to
   pass: they make every int a valid value of the enum type in C++, so that a wrong value passed
   from C or through a cast is reported as INVALID_VALUE instead of being undefined behaviour. */
typedef enum {
  CUNORM_FLOAT32 = 0,
  CUNORM_FLOAT16 = 1,
  CUNORM_BFLOAT16 = 2,
  CUNORM_DATA_TYPE_RANGE_MIN_ = -0x7fffffff - 1,
  CUNORM_DATA_TYPE_RANGE_MAX_ = 0x7fffffff
} cunormDataType_t;
typedef enum {
  CUNORM_BACKEND_AUTO = 0,
  CUNORM_BACKEND_CUDA = 1,
  CUNORM_BACKEND_SIMT = 2,
  CUNORM_BACKEND_RANGE_MIN_ = -0x7fffffff - 1,
  CUNORM_BACKEND_RANGE_MAX_ = 0x7fffffff
} cunormBackend_t;
/* BatchNorm tensors are (N, C, S), S = product of the spatial sizes (1 for BatchNorm1d on (N, C)). */
typedef enum {
  CUNORM_LAYOUT_NCHW = 0, /* element (n, c, s) at (n*C + c)*S + s */
  CUNORM_LAYOUT_NHWC = 1, /* element (n, c, s) at (n*S + s)*C + c */
  CUNORM_LAYOUT_RANGE_MIN_ = -0x7fffffff - 1,
  CUNORM_LAYOUT_RANGE_MAX_ = 0x7fffffff
} cunormLayout_t;
typedef enum {
  CUNORM_RUNNING_VAR_UNBIASED = 0,
  CUNORM_RUNNING_VAR_BIASED = 1,
  CUNORM_RUNNING_VAR_RANGE_MIN_ = -0x7fffffff - 1,
  CUNORM_RUNNING_VAR_RANGE_MAX_ = 0x7fffffff
} cunormRunningVarMode_t;

typedef struct cunormContext* cunormHandle_t;
typedef struct cunormBatchNormCalibration* cunormBatchNormCalibration_t;

/* ---- Version, handle, memory, errors ------------------------------------------------- */

/* CUNORM_VERSION of the library this program runs with (it may differ from the header's). */
CUNORM_API int cunormGetVersion(void);

/* AUTO: the environment variable CUNORM_BACKEND ("cuda" or "simt") if set, else CUDA when a GPU
 * is usable, else SIMT. CUDA when no GPU is usable: NO_DEVICE; in a build without the CUDA
 * backend: NOT_SUPPORTED. Another value of CUNORM_BACKEND: INVALID_VALUE. */
CUNORM_API cunormStatus_t cunormCreate(cunormHandle_t* handle, cunormBackend_t backend);
CUNORM_API cunormStatus_t cunormDestroy(cunormHandle_t handle);
CUNORM_API cunormStatus_t cunormGetBackend(cunormHandle_t handle, cunormBackend_t* backend); /* never AUTO */
CUNORM_API cunormStatus_t cunormSetStream(cunormHandle_t handle, cudaStream_t stream); /* SIMT: accepted, unused */
/* NULL, 0: the handle owns its workspace again. */
CUNORM_API cunormStatus_t cunormSetWorkspace(cunormHandle_t handle, void* workspace, size_t bytes);
CUNORM_API cunormStatus_t cunormMalloc(cunormHandle_t handle, void** ptr, size_t bytes); /* 256-byte aligned */
CUNORM_API cunormStatus_t cunormFree(cunormHandle_t handle, void* ptr);                  /* NULL: no-op */
CUNORM_API cunormStatus_t cunormMemcpyToDevice(cunormHandle_t handle, void* dst, const void* host_src, size_t bytes);
CUNORM_API cunormStatus_t cunormMemcpyToHost(cunormHandle_t handle, void* host_dst, const void* src, size_t bytes);
CUNORM_API cunormStatus_t cunormSynchronize(cunormHandle_t handle);
CUNORM_API const char* cunormGetStatusString(cunormStatus_t status);
/* "" after a success. NULL: the last failure on this host thread of a call without a usable handle. */
CUNORM_API const char* cunormGetLastErrorMessage(cunormHandle_t handle);

/* Bytes of user workspace that every call of that family needs for these sizes. */
CUNORM_API cunormStatus_t cunormLayerNormWorkspaceSize(cunormHandle_t handle, int64_t rows, int64_t cols,
                                                       cunormDataType_t dtype, cunormDataType_t param_dtype,
                                                       size_t* bytes); /* LayerNorm and RMSNorm */
CUNORM_API cunormStatus_t cunormBatchNormWorkspaceSize(cunormHandle_t handle, cunormLayout_t layout, int64_t n,
                                                       int64_t c, int64_t s, cunormDataType_t dtype,
                                                       cunormDataType_t param_dtype, size_t* bytes);

/* ---- LayerNorm and RMSNorm: x is rows x cols, row-major, contiguous ------------------- */

/* mean_r = sum_j x_rj / cols;  var_r = sum_j (x_rj - mean_r)^2 / cols (biased);
   rstd_r = 1 / sqrt(var_r + eps);  y_rj = (x_rj - mean_r) * rstd_r * gamma_j + beta_j */
CUNORM_API cunormStatus_t cunormLayerNormForward(cunormHandle_t handle, int64_t rows, int64_t cols,
                                                 cunormDataType_t dtype, cunormDataType_t param_dtype,
                                                 const void* x, const void* gamma /*nullable*/,
                                                 const void* beta /*nullable*/, float eps, void* y,
                                                 float* mean /*nullable, rows*/, float* rstd /*nullable, rows*/);

/* Gradients of y with respect to x, gamma, beta, given the mean and rstd of the forward. */
CUNORM_API cunormStatus_t cunormLayerNormBackward(cunormHandle_t handle, int64_t rows, int64_t cols,
                                                  cunormDataType_t dtype, cunormDataType_t param_dtype,
                                                  const void* dy, const void* x, const float* mean,
                                                  const float* rstd, const void* gamma /*nullable*/, void* dx,
                                                  void* dgamma /*nullable*/, void* dbeta /*nullable*/);

/* rrms_r = 1 / sqrt(sum_j x_rj^2 / cols + eps);  y_rj = x_rj * rrms_r * gamma_j */
CUNORM_API cunormStatus_t cunormRMSNormForward(cunormHandle_t handle, int64_t rows, int64_t cols,
                                               cunormDataType_t dtype, cunormDataType_t param_dtype,
                                               const void* x, const void* gamma /*nullable*/, float eps, void* y,
                                               float* rrms /*nullable, rows*/);

CUNORM_API cunormStatus_t cunormRMSNormBackward(cunormHandle_t handle, int64_t rows, int64_t cols,
                                                cunormDataType_t dtype, cunormDataType_t param_dtype,
                                                const void* dy, const void* x, const float* rrms,
                                                const void* gamma /*nullable*/, void* dx, void* dgamma /*nullable*/);

/* ---- BatchNorm: statistics per channel over the N*S values of that channel ------------ */

/* Training forward. mean_c and var_c (biased) over the batch; invstd_c = 1/sqrt(var_c + eps);
   y = (x - mean_c) * invstd_c * gamma_c + beta_c. Running statistics (both NULL, or both given):
     running_mean = (1 - momentum) * running_mean + momentum * mean_c
     running_var  = (1 - momentum) * running_var  + momentum * var_c * M / (M - 1),  M = N*S.
   M == 1: INVALID_VALUE. */
CUNORM_API cunormStatus_t cunormBatchNormForwardTraining(
    cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c, int64_t s, cunormDataType_t dtype,
    cunormDataType_t param_dtype, const void* x, const void* gamma /*nullable*/, const void* beta /*nullable*/,
    float eps, float momentum, float* running_mean /*nullable*/, float* running_var /*nullable*/, void* y,
    float* saved_mean /*nullable, c*/, float* saved_invstd /*nullable, c*/);

/* As above with the running-variance update chosen: UNBIASED (PyTorch, cuDNN) or BIASED (ONNX, Keras,
   whose momentum is 1 - ours). */
CUNORM_API cunormStatus_t cunormBatchNormForwardTrainingEx(
    cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c, int64_t s, cunormDataType_t dtype,
    cunormDataType_t param_dtype, const void* x, const void* gamma /*nullable*/, const void* beta /*nullable*/,
    float eps, float momentum, cunormRunningVarMode_t running_var_mode, float* running_mean /*nullable*/,
    float* running_var /*nullable*/, void* y, float* saved_mean /*nullable, c*/,
    float* saved_invstd /*nullable, c*/);

/* y = (x - running_mean_c) / sqrt(running_var_c + eps) * gamma_c + beta_c  (any M, including 1) */
CUNORM_API cunormStatus_t cunormBatchNormForwardInference(cunormHandle_t handle, cunormLayout_t layout, int64_t n,
                                                          int64_t c, int64_t s, cunormDataType_t dtype,
                                                          cunormDataType_t param_dtype, const void* x,
                                                          const void* gamma /*nullable*/,
                                                          const void* beta /*nullable*/, const float* running_mean,
                                                          const float* running_var, float eps, void* y);

/* Training backward, from the saved batch statistics of the forward. M == 1: INVALID_VALUE. */
CUNORM_API cunormStatus_t cunormBatchNormBackward(cunormHandle_t handle, cunormLayout_t layout, int64_t n,
                                                  int64_t c, int64_t s, cunormDataType_t dtype,
                                                  cunormDataType_t param_dtype, const void* dy, const void* x,
                                                  const void* gamma /*nullable*/, const float* saved_mean,
                                                  const float* saved_invstd, void* dx, void* dgamma /*nullable*/,
                                                  void* dbeta /*nullable*/);

/* Backward through the inference form: dx = dy * gamma_c / sqrt(running_var_c + eps). */
CUNORM_API cunormStatus_t cunormBatchNormBackwardInference(
    cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c, int64_t s, cunormDataType_t dtype,
    cunormDataType_t param_dtype, const void* dy, const void* x, const void* gamma /*nullable*/,
    const float* running_mean, const float* running_var, float eps, void* dx, void* dgamma /*nullable*/,
    void* dbeta /*nullable*/);

/* ---- Exact population statistics (calibration): Chan merge over batches --------------- */

CUNORM_API cunormStatus_t cunormBatchNormCalibrationCreate(cunormHandle_t handle, int64_t c,
                                                           cunormBatchNormCalibration_t* calib);
CUNORM_API cunormStatus_t cunormBatchNormCalibrationAccumulate(cunormHandle_t handle,
                                                               cunormBatchNormCalibration_t calib,
                                                               cunormLayout_t layout, int64_t n, int64_t s,
                                                               cunormDataType_t dtype, const void* x);
/* Does not reset; INVALID_VALUE while fewer than 2 values were seen. running_var is unbiased. */
CUNORM_API cunormStatus_t cunormBatchNormCalibrationFinalize(cunormHandle_t handle,
                                                             cunormBatchNormCalibration_t calib,
                                                             float* running_mean, float* running_var);
CUNORM_API cunormStatus_t cunormBatchNormCalibrationDestroy(cunormHandle_t handle,
                                                            cunormBatchNormCalibration_t calib);

#ifdef __cplusplus
}
#endif

#endif /* CUNORM_CUNORM_H */
