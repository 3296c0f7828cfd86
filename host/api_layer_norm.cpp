// The C API's LayerNorm entry points and the LayerNorm/RMSNorm workspace query: validation in
// argument order, then the plan, then the backend.
#include "argument_checks.hpp"
#include "context.hpp"
#include "dtype.hpp"
#include "layer_norm_forward.hpp"

using cunorm::Status;

namespace {

// rows, cols and the dtype pair, common to every LayerNorm/RMSNorm call.
Status check_row_problem(int64_t rows, int64_t cols, cunormDataType_t dtype, cunormDataType_t param_dtype) {
  CUNORM_RETURN_IF_ERROR(cunorm::check_non_negative("rows", rows));
  CUNORM_RETURN_IF_ERROR(cunorm::check_positive("cols", cols));
  CUNORM_RETURN_IF_ERROR(cunorm::check_dtype("dtype", dtype));
  CUNORM_RETURN_IF_ERROR(cunorm::check_param_dtype(param_dtype, dtype));
  return cunorm::check_extent("rows * cols", {rows, cols}, cunorm::dtype_size(dtype));
}

}  // namespace

extern "C" {

cunormStatus_t cunormLayerNormWorkspaceSize(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                            cunormDataType_t param_dtype, size_t* bytes) {
  return cunorm::run_with_handle(handle, [&](cunormContext&) {
    CUNORM_RETURN_IF_ERROR(check_row_problem(rows, cols, dtype, param_dtype));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("bytes", bytes, false, alignof(size_t)));
    *bytes = 0;  // the forward kernels need no temporary memory
    return Status::ok();
  });
}

cunormStatus_t cunormLayerNormForward(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                      cunormDataType_t param_dtype, const void* x, const void* gamma, const void* beta,
                                      float eps, void* y, float* mean, float* rstd) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(check_row_problem(rows, cols, dtype, param_dtype));
    const std::size_t elem = cunorm::dtype_size(dtype);
    const std::size_t param_elem = cunorm::dtype_size(param_dtype);
    const bool empty = rows == 0;  // an empty batch needs no activation buffers
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("x", x, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("gamma", gamma, true, param_elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("beta", beta, true, param_elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_eps(eps));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("y", y, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("mean", mean, true, sizeof(float)));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("rstd", rstd, true, sizeof(float)));
    const std::size_t tensor_bytes = static_cast<std::size_t>(rows * cols) * elem;
    const std::size_t param_bytes = static_cast<std::size_t>(cols) * param_elem;
    const std::size_t stat_bytes = static_cast<std::size_t>(rows) * sizeof(float);
    cunorm::BufferOverlapCheck buffers;
    buffers.add_input("x", x, tensor_bytes);
    buffers.add_input("gamma", gamma, param_bytes);
    buffers.add_input("beta", beta, param_bytes);
    CUNORM_RETURN_IF_ERROR(buffers.add_output("y", y, tensor_bytes, "x"));
    CUNORM_RETURN_IF_ERROR(buffers.add_output("mean", mean, stat_bytes));
    CUNORM_RETURN_IF_ERROR(buffers.add_output("rstd", rstd, stat_bytes));
    if (empty) return Status::ok();
    const cunorm::LayerNormForwardCall call{rows, cols, dtype, param_dtype, x, gamma, beta, eps, y, mean, rstd};
    return context.backend->layer_norm_forward(call, cunorm::plan_layer_norm_forward(call, context.backend->device()));
  });
}

}  // extern "C"
