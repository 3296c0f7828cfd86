// The C API's LayerNorm and RMSNorm entry points and their workspace query: validation in
// argument order, then the plan, the workspace, and the backend.
#include "argument_checks.hpp"
#include "context.hpp"
#include "dtype.hpp"
#include "row_norm.hpp"

using cunorm::RowNormKind;
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

// Byte sizes of the buffers of one call.
struct RowBytes {
  std::size_t tensor, params, stats;
  RowBytes(int64_t rows, int64_t cols, cunormDataType_t dtype, cunormDataType_t param_dtype)
      : tensor(static_cast<std::size_t>(rows * cols) * cunorm::dtype_size(dtype)),
        params(static_cast<std::size_t>(cols) * cunorm::dtype_size(param_dtype)),
        stats(static_cast<std::size_t>(rows) * sizeof(float)) {}
};

Status acquire_workspace(cunormContext& context, std::size_t bytes, void** workspace) {
  *workspace = nullptr;
  if (bytes == 0) return Status::ok();
  return context.workspace.acquire(*context.backend, bytes, workspace);
}

// Everything after argument validation: plan, workspace, launch. rows == 0 writes nothing.
Status run_forward(cunormContext& context, const cunorm::RowNormForwardCall& call) {
  if (call.rows == 0) return Status::ok();
  const cunorm::RowNormPlan plan = cunorm::plan_row_norm_forward(call, context.backend->device());
  void* workspace = nullptr;
  CUNORM_RETURN_IF_ERROR(acquire_workspace(context, plan.workspace_bytes, &workspace));
  return context.backend->row_norm_forward(call, plan, workspace);
}

Status run_backward(cunormContext& context, const cunorm::RowNormBackwardCall& call) {
  if (call.rows == 0) return Status::ok();
  const cunorm::RowNormPlan plan = cunorm::plan_row_norm_backward(call, context.backend->device());
  void* workspace = nullptr;
  CUNORM_RETURN_IF_ERROR(acquire_workspace(context, plan.workspace_bytes, &workspace));
  return context.backend->row_norm_backward(call, plan, workspace);
}

}  // namespace

extern "C" {

cunormStatus_t cunormLayerNormWorkspaceSize(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                            cunormDataType_t param_dtype, size_t* bytes) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(check_row_problem(rows, cols, dtype, param_dtype));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("bytes", bytes, false, alignof(size_t)));
    *bytes =
        rows == 0 ? 0 : cunorm::row_norm_workspace_bytes(rows, cols, dtype, param_dtype, context.backend->device());
    return Status::ok();
  });
}

cunormStatus_t cunormLayerNormForward(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                      cunormDataType_t param_dtype, const void* x, const void* gamma, const void* beta,
                                      float eps, void* y, float* mean, float* rstd) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(check_row_problem(rows, cols, dtype, param_dtype));
    const bool empty = rows == 0;  // an empty batch needs no activation buffers
    const std::size_t elem = cunorm::dtype_size(dtype), param_elem = cunorm::dtype_size(param_dtype);
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("x", x, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("gamma", gamma, true, param_elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("beta", beta, true, param_elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_eps(eps));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("y", y, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("mean", mean, true, sizeof(float)));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("rstd", rstd, true, sizeof(float)));
    const RowBytes bytes(rows, cols, dtype, param_dtype);
    cunorm::BufferOverlapCheck buffers;
    buffers.add_input("x", x, bytes.tensor);
    buffers.add_input("gamma", gamma, bytes.params);
    buffers.add_input("beta", beta, bytes.params);
    CUNORM_RETURN_IF_ERROR(buffers.add_output("y", y, bytes.tensor, "x"));
    CUNORM_RETURN_IF_ERROR(buffers.add_output("mean", mean, bytes.stats));
    CUNORM_RETURN_IF_ERROR(buffers.add_output("rstd", rstd, bytes.stats));
    return run_forward(context,
                       {RowNormKind::kLayerNorm, rows, cols, dtype, param_dtype, x, gamma, beta, eps, y, mean, rstd});
  });
}

cunormStatus_t cunormLayerNormBackward(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                       cunormDataType_t param_dtype, const void* dy, const void* x, const float* mean,
                                       const float* rstd, const void* gamma, void* dx, void* dgamma, void* dbeta) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(check_row_problem(rows, cols, dtype, param_dtype));
    const bool empty = rows == 0;
    const std::size_t elem = cunorm::dtype_size(dtype), param_elem = cunorm::dtype_size(param_dtype);
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("dy", dy, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("x", x, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("mean", mean, empty, sizeof(float)));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("rstd", rstd, empty, sizeof(float)));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("gamma", gamma, true, param_elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("dx", dx, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("dgamma", dgamma, true, param_elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("dbeta", dbeta, true, param_elem));
    const RowBytes bytes(rows, cols, dtype, param_dtype);
    cunorm::BufferOverlapCheck buffers;
    buffers.add_input("dy", dy, bytes.tensor);
    buffers.add_input("x", x, bytes.tensor);
    buffers.add_input("mean", mean, bytes.stats);
    buffers.add_input("rstd", rstd, bytes.stats);
    buffers.add_input("gamma", gamma, bytes.params);
    CUNORM_RETURN_IF_ERROR(buffers.add_output("dx", dx, bytes.tensor, "dy"));
    CUNORM_RETURN_IF_ERROR(buffers.add_output("dgamma", dgamma, bytes.params));
    CUNORM_RETURN_IF_ERROR(buffers.add_output("dbeta", dbeta, bytes.params));
    return run_backward(context, {RowNormKind::kLayerNorm, rows, cols, dtype, param_dtype, dy, x, mean, rstd, gamma, dx,
                                  dgamma, dbeta});
  });
}

cunormStatus_t cunormRMSNormForward(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                    cunormDataType_t param_dtype, const void* x, const void* gamma, float eps, void* y,
                                    float* rrms) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(check_row_problem(rows, cols, dtype, param_dtype));
    const bool empty = rows == 0;
    const std::size_t elem = cunorm::dtype_size(dtype), param_elem = cunorm::dtype_size(param_dtype);
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("x", x, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("gamma", gamma, true, param_elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_eps(eps));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("y", y, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("rrms", rrms, true, sizeof(float)));
    const RowBytes bytes(rows, cols, dtype, param_dtype);
    cunorm::BufferOverlapCheck buffers;
    buffers.add_input("x", x, bytes.tensor);
    buffers.add_input("gamma", gamma, bytes.params);
    CUNORM_RETURN_IF_ERROR(buffers.add_output("y", y, bytes.tensor, "x"));
    CUNORM_RETURN_IF_ERROR(buffers.add_output("rrms", rrms, bytes.stats));
    return run_forward(
        context, {RowNormKind::kRmsNorm, rows, cols, dtype, param_dtype, x, gamma, nullptr, eps, y, nullptr, rrms});
  });
}

cunormStatus_t cunormRMSNormBackward(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                     cunormDataType_t param_dtype, const void* dy, const void* x, const float* rrms,
                                     const void* gamma, void* dx, void* dgamma) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(check_row_problem(rows, cols, dtype, param_dtype));
    const bool empty = rows == 0;
    const std::size_t elem = cunorm::dtype_size(dtype), param_elem = cunorm::dtype_size(param_dtype);
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("dy", dy, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("x", x, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("rrms", rrms, empty, sizeof(float)));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("gamma", gamma, true, param_elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("dx", dx, empty, elem));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("dgamma", dgamma, true, param_elem));
    const RowBytes bytes(rows, cols, dtype, param_dtype);
    cunorm::BufferOverlapCheck buffers;
    buffers.add_input("dy", dy, bytes.tensor);
    buffers.add_input("x", x, bytes.tensor);
    buffers.add_input("rrms", rrms, bytes.stats);
    buffers.add_input("gamma", gamma, bytes.params);
    CUNORM_RETURN_IF_ERROR(buffers.add_output("dx", dx, bytes.tensor, "dy"));
    CUNORM_RETURN_IF_ERROR(buffers.add_output("dgamma", dgamma, bytes.params));
    return run_backward(context, {RowNormKind::kRmsNorm, rows, cols, dtype, param_dtype, dy, x, nullptr, rrms, gamma,
                                  dx, dgamma, nullptr});
  });
}

}  // extern "C"
