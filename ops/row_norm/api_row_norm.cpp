// The C API's LayerNorm and RMSNorm entry points and their workspace query: validation in
// argument order (the plan, whose workspace the sizes determine, with the sizes), then the
// workspace, and the backend.
#include "../../host/argument_checks.hpp"
#include "../../host/context.hpp"
#include "../../host/dtype.hpp"
#include "row_norm.hpp"

using cunorm::Null;
using cunorm::RowNormKind;
using cunorm::Status;

namespace {

// Byte sizes of the elements and buffers of one call.
struct RowBytes {
  std::size_t elem = 0, param_elem = 0;
  std::size_t tensor = 0, params = 0, stats = 0;
};

// rows, cols and the dtype pair, common to every LayerNorm/RMSNorm call, and the bytes of the
// buffers they size, each of which must fit in 63 bits (also for an empty batch, whose parameters
// still have cols elements).
Status check_row_problem(int64_t rows, int64_t cols, cunormDataType_t dtype, cunormDataType_t param_dtype,
                         RowBytes* bytes) {
  CUNORM_RETURN_IF_ERROR(cunorm::check_non_negative("rows", rows));
  CUNORM_RETURN_IF_ERROR(cunorm::check_positive("cols", cols));
  CUNORM_RETURN_IF_ERROR(cunorm::check_dtype("dtype", dtype));
  CUNORM_RETURN_IF_ERROR(cunorm::check_param_dtype(param_dtype, dtype));
  bytes->elem = cunorm::dtype_size(dtype);
  bytes->param_elem = cunorm::dtype_size(param_dtype);
  CUNORM_RETURN_IF_ERROR(
      cunorm::check_extent("the tensor's", {{"rows", rows}, {"cols", cols}}, bytes->elem, &bytes->tensor));
  CUNORM_RETURN_IF_ERROR(cunorm::check_extent("the parameters'", {{"cols", cols}}, bytes->param_elem, &bytes->params));
  return cunorm::check_extent("the row statistics'", {{"rows", rows}}, sizeof(float), &bytes->stats);
}

// The workspace is sized by rows and cols too (partial dgamma and dbeta rows of cols floats, one
// per resident block: it grows with cols), so it is planned and checked right after them, before
// the pointers; the plan reads only their alignment. An empty batch runs nothing and plans nothing.
Status check_workspace(std::size_t workspace_bytes, int64_t rows, int64_t cols) {
  return cunorm::check_workspace_extent(workspace_bytes, "cols", {{"rows", rows}, {"cols", cols}});
}

cunorm::RowNormPlan plan_call(const cunorm::RowNormForwardCall& call, const cunorm::DeviceInfo& device) {
  return cunorm::plan_row_norm_forward(call, device);
}
cunorm::RowNormPlan plan_call(const cunorm::RowNormBackwardCall& call, const cunorm::DeviceInfo& device) {
  return cunorm::plan_row_norm_backward(call, device);
}

// One LayerNorm/RMSNorm call: its problem, its plan (whose workspace the sizes determine), its
// buffers and scalars as `describe` states them in argument order, then the workspace and the
// launch. An empty batch plans, acquires and writes nothing.
template <class Call, class Describe>
cunormStatus_t run_row_norm(cunormHandle_t handle, const Call& call, Describe describe) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    RowBytes bytes;
    CUNORM_RETURN_IF_ERROR(check_row_problem(call.rows, call.cols, call.dtype, call.param_dtype, &bytes));
    const bool empty = call.rows == 0;
    cunorm::RowNormPlan plan;
    if (!empty) {
      plan = plan_call(call, context.backend->device());
      CUNORM_RETURN_IF_ERROR(check_workspace(plan.workspace_bytes, call.rows, call.cols));
    }
    cunorm::CallArguments arguments(empty);
    describe(arguments, bytes);
    CUNORM_RETURN_IF_ERROR(arguments.result());
    if (empty) return Status::ok();
    void* workspace = nullptr;
    if (plan.workspace_bytes != 0) {
      CUNORM_RETURN_IF_ERROR(context.workspace.acquire(*context.backend, plan.workspace_bytes, &workspace));
    }
    return context.backend->launch(call, plan, workspace);
  });
}

}  // namespace

extern "C" {

cunormStatus_t cunormLayerNormWorkspaceSize(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                            cunormDataType_t param_dtype, size_t* bytes) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    RowBytes buffers;
    CUNORM_RETURN_IF_ERROR(check_row_problem(rows, cols, dtype, param_dtype, &buffers));
    const std::size_t needed =
        rows == 0 ? 0 : cunorm::row_norm_workspace_bytes(rows, cols, dtype, param_dtype, context.backend->device());
    CUNORM_RETURN_IF_ERROR(check_workspace(needed, rows, cols));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("bytes", bytes, false, alignof(size_t)));
    *bytes = needed;
    return Status::ok();
  });
}

cunormStatus_t cunormLayerNormForward(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                      cunormDataType_t param_dtype, const void* x, const void* gamma, const void* beta,
                                      float eps, void* y, float* mean, float* rstd) {
  const cunorm::RowNormForwardCall call{
      RowNormKind::kLayerNorm, rows, cols, dtype, param_dtype, x, gamma, beta, eps, y, mean, rstd};
  return run_row_norm(handle, call, [&](cunorm::CallArguments& arguments, const RowBytes& bytes) {
    arguments.input("x", x, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("gamma", gamma, bytes.param_elem, bytes.params, Null::kAllowed)
        .input("beta", beta, bytes.param_elem, bytes.params, Null::kAllowed)
        .then([&] { return cunorm::check_eps(eps); })
        .output("y", y, bytes.elem, bytes.tensor, Null::kWhenEmpty, "x")
        .output("mean", mean, sizeof(float), bytes.stats, Null::kAllowed)
        .output("rstd", rstd, sizeof(float), bytes.stats, Null::kAllowed);
  });
}

cunormStatus_t cunormLayerNormBackward(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                       cunormDataType_t param_dtype, const void* dy, const void* x, const float* mean,
                                       const float* rstd, const void* gamma, void* dx, void* dgamma, void* dbeta) {
  const cunorm::RowNormBackwardCall call{
      RowNormKind::kLayerNorm, rows, cols, dtype, param_dtype, dy, x, mean, rstd, gamma, dx, dgamma, dbeta};
  return run_row_norm(handle, call, [&](cunorm::CallArguments& arguments, const RowBytes& bytes) {
    arguments.input("dy", dy, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("x", x, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("mean", mean, sizeof(float), bytes.stats, Null::kWhenEmpty)
        .input("rstd", rstd, sizeof(float), bytes.stats, Null::kWhenEmpty)
        .input("gamma", gamma, bytes.param_elem, bytes.params, Null::kAllowed)
        .output("dx", dx, bytes.elem, bytes.tensor, Null::kWhenEmpty, "dy")
        .output("dgamma", dgamma, bytes.param_elem, bytes.params, Null::kAllowed)
        .output("dbeta", dbeta, bytes.param_elem, bytes.params, Null::kAllowed);
  });
}

cunormStatus_t cunormRMSNormForward(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                    cunormDataType_t param_dtype, const void* x, const void* gamma, float eps, void* y,
                                    float* rrms) {
  const cunorm::RowNormForwardCall call{
      RowNormKind::kRmsNorm, rows, cols, dtype, param_dtype, x, gamma, nullptr, eps, y, nullptr, rrms};
  return run_row_norm(handle, call, [&](cunorm::CallArguments& arguments, const RowBytes& bytes) {
    arguments.input("x", x, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("gamma", gamma, bytes.param_elem, bytes.params, Null::kAllowed)
        .then([&] { return cunorm::check_eps(eps); })
        .output("y", y, bytes.elem, bytes.tensor, Null::kWhenEmpty, "x")
        .output("rrms", rrms, sizeof(float), bytes.stats, Null::kAllowed);
  });
}

cunormStatus_t cunormRMSNormBackward(cunormHandle_t handle, int64_t rows, int64_t cols, cunormDataType_t dtype,
                                     cunormDataType_t param_dtype, const void* dy, const void* x, const float* rrms,
                                     const void* gamma, void* dx, void* dgamma) {
  const cunorm::RowNormBackwardCall call{
      RowNormKind::kRmsNorm, rows, cols, dtype, param_dtype, dy, x, nullptr, rrms, gamma, dx, dgamma, nullptr};
  return run_row_norm(handle, call, [&](cunorm::CallArguments& arguments, const RowBytes& bytes) {
    arguments.input("dy", dy, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("x", x, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("rrms", rrms, sizeof(float), bytes.stats, Null::kWhenEmpty)
        .input("gamma", gamma, bytes.param_elem, bytes.params, Null::kAllowed)
        .output("dx", dx, bytes.elem, bytes.tensor, Null::kWhenEmpty, "dy")
        .output("dgamma", dgamma, bytes.param_elem, bytes.params, Null::kAllowed);
  });
}

}  // extern "C"
