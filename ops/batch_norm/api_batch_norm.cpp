// The C API's BatchNorm entry points, their workspace query and the calibration accumulator:
// validation in argument order, then the plan, the workspace, and the backend.
//
// Calibration keeps, per channel, an int64 count and float64 mean and M2 on the host
// (calibration.hpp): each batch's
// per-channel (mean, M2) comes from the statistics passes on the device, is copied back (the call
// synchronizes the handle's stream), and is merged in float64 with Chan's formula.
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../host/argument_checks.hpp"
#include "../../host/calibration.hpp"
#include "../../host/context.hpp"
#include "../../host/dtype.hpp"
#include "batch_norm.hpp"

using cunorm::BatchNormCall;
using cunorm::BatchNormKind;
using cunorm::Null;
using cunorm::Status;

namespace {

Status check_calibration(cunormContext& context, cunormBatchNormCalibration* calib) {
  if (calib == nullptr) return Status::invalid("calib must not be NULL");
  if (context.calibrations.count(calib) == 0) {
    return Status::invalid("calib is not a live calibration of this handle (destroyed, or created on another one)");
  }
  return Status::ok();
}

// Byte sizes of the elements and buffers of one call.
struct Bytes {
  std::size_t elem = 0, param_elem = 0;
  std::size_t tensor = 0, params = 0, channel = 0;
};

// layout, n, c, s (c may be given by a calibration), and the bytes of the buffers they size, each
// within 63 bits: the tensor, and the per-channel statistics (c floats, also for an empty batch).
Status check_tensor(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, cunormDataType_t dtype, Bytes* bytes) {
  CUNORM_RETURN_IF_ERROR(cunorm::check_layout(layout));
  CUNORM_RETURN_IF_ERROR(cunorm::check_non_negative("n", n));
  CUNORM_RETURN_IF_ERROR(cunorm::check_positive("c", c));
  CUNORM_RETURN_IF_ERROR(cunorm::check_non_negative("s", s));
  CUNORM_RETURN_IF_ERROR(cunorm::check_dtype("dtype", dtype));
  bytes->elem = cunorm::dtype_size(dtype);
  CUNORM_RETURN_IF_ERROR(
      cunorm::check_extent("the tensor's", {{"n", n}, {"c", c}, {"s", s}}, bytes->elem, &bytes->tensor));
  return cunorm::check_extent("the per-channel statistics'", {{"c", c}}, sizeof(float), &bytes->channel);
}

// check_tensor and the dtype pair; the parameters (c of param_dtype) are no larger than the
// per-channel statistics.
Status check_problem(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, cunormDataType_t dtype,
                     cunormDataType_t param_dtype, Bytes* bytes) {
  CUNORM_RETURN_IF_ERROR(check_tensor(layout, n, c, s, dtype, bytes));
  CUNORM_RETURN_IF_ERROR(cunorm::check_param_dtype(param_dtype, dtype));
  bytes->param_elem = cunorm::dtype_size(param_dtype);
  bytes->params = static_cast<std::size_t>(c) * bytes->param_elem;
  return Status::ok();
}

Status check_workspace(std::size_t workspace_bytes, int64_t n, int64_t c, int64_t s) {
  return cunorm::check_workspace_extent(workspace_bytes, "c", {{"n", n}, {"c", c}, {"s", s}});
}

// The workspace is sized by n, c and s too (per-channel coefficients and the chunks' partial
// states: it grows with c), so it is planned and checked right after them, before the pointers;
// the plan reads only their alignment. An empty batch runs nothing and plans nothing.
Status plan_call(cunormContext& context, const BatchNormCall& call, cunorm::BatchNormPlan* plan) {
  if (call.n * call.s == 0) return Status::ok();
  *plan = cunorm::plan_batch_norm(call, context.backend->device());
  return check_workspace(plan->workspace_bytes, call.n, call.c, call.s);
}

// Training needs two values per channel (PyTorch's rule and message).
Status check_training_batch(int64_t n, int64_t c, int64_t s) {
  if (n * s != 1) return Status::ok();
  return Status::invalid("Expected more than 1 value per channel when training, got input size (n, c, s) = (" +
                         std::to_string(n) + ", " + std::to_string(c) + ", " + std::to_string(s) + ")");
}

Status check_momentum(float momentum) {
  if (momentum >= 0.0f && momentum <= 1.0f) return Status::ok();
  return Status::invalid(std::string("momentum must be in [0, 1] and not NaN, got ") +
                         (std::isnan(momentum) ? std::string("NaN") : std::to_string(momentum)));
}

Status check_running_var_mode(cunormRunningVarMode_t mode) {
  if (mode == CUNORM_RUNNING_VAR_UNBIASED || mode == CUNORM_RUNNING_VAR_BIASED) return Status::ok();
  return Status::invalid("running_var_mode must be CUNORM_RUNNING_VAR_UNBIASED or CUNORM_RUNNING_VAR_BIASED, got " +
                         std::to_string(static_cast<int>(mode)));
}

Status check_running_pair(const float* running_mean, const float* running_var) {
  if ((running_mean == nullptr) != (running_var == nullptr)) {
    return Status::invalid("running_mean and running_var must be both NULL or both given");
  }
  return Status::ok();
}

// Takes the workspace and runs a validated, planned call; an empty batch writes nothing.
Status run(cunormContext& context, const BatchNormCall& call, const cunorm::BatchNormPlan& plan) {
  if (call.n * call.s == 0) return Status::ok();
  void* workspace = nullptr;
  CUNORM_RETURN_IF_ERROR(context.workspace.acquire(*context.backend, plan.workspace_bytes, &workspace));
  return context.backend->launch(call, plan, workspace);
}

// One BatchNorm call: its problem, its plan (whose workspace the sizes determine), a training
// batch's two values per channel, its buffers and scalars as `describe` states them in argument
// order, then the workspace and the launch.
template <class Describe>
cunormStatus_t run_batch_norm(cunormHandle_t handle, const BatchNormCall& call, Describe describe) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    Bytes bytes;
    CUNORM_RETURN_IF_ERROR(check_problem(call.layout, call.n, call.c, call.s, call.dtype, call.param_dtype, &bytes));
    cunorm::BatchNormPlan plan;
    CUNORM_RETURN_IF_ERROR(plan_call(context, call, &plan));
    if (call.kind == BatchNormKind::kTraining || call.kind == BatchNormKind::kBackward) {
      CUNORM_RETURN_IF_ERROR(check_training_batch(call.n, call.c, call.s));
    }
    cunorm::CallArguments arguments(call.n * call.s == 0);
    describe(arguments, bytes);
    CUNORM_RETURN_IF_ERROR(arguments.result());
    return run(context, call, plan);
  });
}

cunormStatus_t forward_training(cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c, int64_t s,
                                cunormDataType_t dtype, cunormDataType_t param_dtype, const void* x, const void* gamma,
                                const void* beta, float eps, float momentum, bool check_mode,
                                cunormRunningVarMode_t mode, float* running_mean, float* running_var, void* y,
                                float* saved_mean, float* saved_invstd) {
  BatchNormCall call = cunorm::batch_norm_call(BatchNormKind::kTraining, layout, n, c, s, dtype, param_dtype, x);
  call.gamma = gamma;
  call.beta = beta;
  call.eps = eps;
  call.momentum = momentum;
  call.unbiased_running_var = mode == CUNORM_RUNNING_VAR_UNBIASED;
  call.running_mean = running_mean;
  call.running_var = running_var;
  call.out = y;
  call.out_mean = saved_mean;
  call.out_invstd = saved_invstd;
  return run_batch_norm(handle, call, [&](cunorm::CallArguments& arguments, const Bytes& bytes) {
    arguments.input("x", x, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("gamma", gamma, bytes.param_elem, bytes.params, Null::kAllowed)
        .input("beta", beta, bytes.param_elem, bytes.params, Null::kAllowed)
        .then([&] { return cunorm::check_eps(eps); })
        .then([&] { return check_momentum(momentum); })
        .then([&] { return check_mode ? check_running_var_mode(mode) : Status::ok(); })
        .output("running_mean", running_mean, sizeof(float), bytes.channel, Null::kAllowed)
        .output("running_var", running_var, sizeof(float), bytes.channel, Null::kAllowed)
        .then([&] { return check_running_pair(running_mean, running_var); })
        .output("y", y, bytes.elem, bytes.tensor, Null::kWhenEmpty, "x")
        .output("saved_mean", saved_mean, sizeof(float), bytes.channel, Null::kAllowed)
        .output("saved_invstd", saved_invstd, sizeof(float), bytes.channel, Null::kAllowed);
  });
}

cunormStatus_t backward(cunormHandle_t handle, bool inference, cunormLayout_t layout, int64_t n, int64_t c, int64_t s,
                        cunormDataType_t dtype, cunormDataType_t param_dtype, const void* dy, const void* x,
                        const void* gamma, const float* mean, const float* second, float eps, void* dx, void* dgamma,
                        void* dbeta) {
  const char* mean_name = inference ? "running_mean" : "saved_mean";
  const char* second_name = inference ? "running_var" : "saved_invstd";
  const BatchNormKind kind = inference ? BatchNormKind::kBackwardInference : BatchNormKind::kBackward;
  BatchNormCall call = cunorm::batch_norm_call(kind, layout, n, c, s, dtype, param_dtype, x);
  call.dy = dy;
  call.gamma = gamma;
  call.eps = eps;
  if (inference) {
    call.running_mean = const_cast<float*>(mean);
    call.running_var = const_cast<float*>(second);
  } else {
    call.saved_mean = mean;
    call.saved_invstd = second;
  }
  call.out = dx;
  call.dgamma = dgamma;
  call.dbeta = dbeta;
  return run_batch_norm(handle, call, [&](cunorm::CallArguments& arguments, const Bytes& bytes) {
    arguments.input("dy", dy, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("x", x, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("gamma", gamma, bytes.param_elem, bytes.params, Null::kAllowed)
        .input(mean_name, mean, sizeof(float), bytes.channel, Null::kRejected)
        .input(second_name, second, sizeof(float), bytes.channel, Null::kRejected)
        .then([&] { return inference ? cunorm::check_eps(eps) : Status::ok(); })
        .output("dx", dx, bytes.elem, bytes.tensor, Null::kWhenEmpty, "dy")
        .output("dgamma", dgamma, bytes.param_elem, bytes.params, Null::kAllowed)
        .output("dbeta", dbeta, bytes.param_elem, bytes.params, Null::kAllowed);
  });
}

}  // namespace

extern "C" {

cunormStatus_t cunormBatchNormWorkspaceSize(cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c,
                                            int64_t s, cunormDataType_t dtype, cunormDataType_t param_dtype,
                                            size_t* bytes) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    Bytes buffers;
    CUNORM_RETURN_IF_ERROR(check_problem(layout, n, c, s, dtype, param_dtype, &buffers));
    const std::size_t needed =
        n * s == 0 ? 0 : cunorm::batch_norm_workspace_bytes(layout, n, c, s, dtype, context.backend->device());
    CUNORM_RETURN_IF_ERROR(check_workspace(needed, n, c, s));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("bytes", bytes, false, alignof(size_t)));
    *bytes = needed;
    return Status::ok();
  });
}

cunormStatus_t cunormBatchNormForwardTraining(cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c,
                                              int64_t s, cunormDataType_t dtype, cunormDataType_t param_dtype,
                                              const void* x, const void* gamma, const void* beta, float eps,
                                              float momentum, float* running_mean, float* running_var, void* y,
                                              float* saved_mean, float* saved_invstd) {
  return forward_training(handle, layout, n, c, s, dtype, param_dtype, x, gamma, beta, eps, momentum, false,
                          CUNORM_RUNNING_VAR_UNBIASED, running_mean, running_var, y, saved_mean, saved_invstd);
}

cunormStatus_t cunormBatchNormForwardTrainingEx(cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c,
                                                int64_t s, cunormDataType_t dtype, cunormDataType_t param_dtype,
                                                const void* x, const void* gamma, const void* beta, float eps,
                                                float momentum, cunormRunningVarMode_t running_var_mode,
                                                float* running_mean, float* running_var, void* y, float* saved_mean,
                                                float* saved_invstd) {
  return forward_training(handle, layout, n, c, s, dtype, param_dtype, x, gamma, beta, eps, momentum, true,
                          running_var_mode, running_mean, running_var, y, saved_mean, saved_invstd);
}

cunormStatus_t cunormBatchNormForwardInference(cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c,
                                               int64_t s, cunormDataType_t dtype, cunormDataType_t param_dtype,
                                               const void* x, const void* gamma, const void* beta,
                                               const float* running_mean, const float* running_var, float eps,
                                               void* y) {
  BatchNormCall call = cunorm::batch_norm_call(BatchNormKind::kInference, layout, n, c, s, dtype, param_dtype, x);
  call.gamma = gamma;
  call.beta = beta;
  call.eps = eps;
  call.running_mean = const_cast<float*>(running_mean);
  call.running_var = const_cast<float*>(running_var);
  call.out = y;
  return run_batch_norm(handle, call, [&](cunorm::CallArguments& arguments, const Bytes& bytes) {
    arguments.input("x", x, bytes.elem, bytes.tensor, Null::kWhenEmpty)
        .input("gamma", gamma, bytes.param_elem, bytes.params, Null::kAllowed)
        .input("beta", beta, bytes.param_elem, bytes.params, Null::kAllowed)
        .input("running_mean", running_mean, sizeof(float), bytes.channel, Null::kRejected)
        .input("running_var", running_var, sizeof(float), bytes.channel, Null::kRejected)
        .then([&] { return cunorm::check_eps(eps); })
        .output("y", y, bytes.elem, bytes.tensor, Null::kWhenEmpty, "x");
  });
}

cunormStatus_t cunormBatchNormBackward(cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c, int64_t s,
                                       cunormDataType_t dtype, cunormDataType_t param_dtype, const void* dy,
                                       const void* x, const void* gamma, const float* saved_mean,
                                       const float* saved_invstd, void* dx, void* dgamma, void* dbeta) {
  return backward(handle, false, layout, n, c, s, dtype, param_dtype, dy, x, gamma, saved_mean, saved_invstd, 0.0f, dx,
                  dgamma, dbeta);
}

cunormStatus_t cunormBatchNormBackwardInference(cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c,
                                                int64_t s, cunormDataType_t dtype, cunormDataType_t param_dtype,
                                                const void* dy, const void* x, const void* gamma,
                                                const float* running_mean, const float* running_var, float eps,
                                                void* dx, void* dgamma, void* dbeta) {
  return backward(handle, true, layout, n, c, s, dtype, param_dtype, dy, x, gamma, running_mean, running_var, eps, dx,
                  dgamma, dbeta);
}

cunormStatus_t cunormBatchNormCalibrationCreate(cunormHandle_t handle, int64_t c, cunormBatchNormCalibration_t* calib) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(cunorm::check_positive("c", c));
    std::size_t accumulator_bytes = 0;  // each of mean and M2; the running statistics are half as large
    CUNORM_RETURN_IF_ERROR(cunorm::check_extent("the calibration's float64 accumulators'", {{"c", c}}, sizeof(double),
                                                &accumulator_bytes));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("calib", calib, false, alignof(cunormBatchNormCalibration_t)));
    auto created = std::make_unique<cunormBatchNormCalibration>();
    created->c = c;
    try {
      created->mean.assign(static_cast<std::size_t>(c), 0.0);
      created->m2.assign(static_cast<std::size_t>(c), 0.0);
      created->batch.assign(2 * static_cast<std::size_t>(c), 0.0f);  // as many bytes as one accumulator
    } catch (const std::bad_alloc&) {  // within 63 bits, hence within vector's max_size: no length_error
      return Status(CUNORM_STATUS_ALLOC_FAILED, "c = " + std::to_string(c) +
                                                    " channels: cannot allocate the calibration's float64 "
                                                    "accumulators and its float copy of a batch's statistics");
    }
    cunormBatchNormCalibration* const raw = created.get();
    context.calibrations.emplace(raw, std::move(created));
    *calib = raw;
    return Status::ok();
  });
}

cunormStatus_t cunormBatchNormCalibrationAccumulate(cunormHandle_t handle, cunormBatchNormCalibration_t calib,
                                                    cunormLayout_t layout, int64_t n, int64_t s, cunormDataType_t dtype,
                                                    const void* x) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(check_calibration(context, calib));
    Bytes bytes;
    CUNORM_RETURN_IF_ERROR(check_tensor(layout, n, calib->c, s, dtype, &bytes));
    BatchNormCall call =
        cunorm::batch_norm_call(BatchNormKind::kCalibrationBatch, layout, n, calib->c, s, dtype, CUNORM_FLOAT32, x);
    cunorm::BatchNormPlan plan;
    CUNORM_RETURN_IF_ERROR(plan_call(context, call, &plan));
    CUNORM_RETURN_IF_ERROR(
        cunorm::CallArguments(n * s == 0).input("x", x, bytes.elem, bytes.tensor, Null::kWhenEmpty).result());
    if (n * s == 0) return Status::ok();
    void* workspace = nullptr;
    CUNORM_RETURN_IF_ERROR(context.workspace.acquire(*context.backend, plan.workspace_bytes, &workspace));
    CUNORM_RETURN_IF_ERROR(context.backend->launch(call, plan, workspace));
    const std::size_t channels = static_cast<std::size_t>(calib->c);
    std::vector<float>& batch = calib->batch;
    CUNORM_RETURN_IF_ERROR(context.backend->copy_to_host(
        batch.data(), static_cast<const char*>(workspace) + plan.batch_offset, batch.size() * sizeof(float)));
    // Chan's merge of the batch's (count, mean, M2) into the accumulator, in float64.
    const double nb = static_cast<double>(n * s), na = static_cast<double>(calib->count), total = na + nb;
    for (std::size_t i = 0; i < channels; ++i) {
      const double delta = static_cast<double>(batch[i]) - calib->mean[i];
      calib->mean[i] += delta * nb / total;
      calib->m2[i] += static_cast<double>(batch[channels + i]) + delta * delta * na * nb / total;
    }
    calib->count += n * s;
    return Status::ok();
  });
}

cunormStatus_t cunormBatchNormCalibrationFinalize(cunormHandle_t handle, cunormBatchNormCalibration_t calib,
                                                  float* running_mean, float* running_var) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(check_calibration(context, calib));
    const std::size_t channels = static_cast<std::size_t>(calib->c);
    CUNORM_RETURN_IF_ERROR(
        cunorm::CallArguments(false)
            .output("running_mean", running_mean, sizeof(float), channels * sizeof(float), Null::kRejected)
            .output("running_var", running_var, sizeof(float), channels * sizeof(float), Null::kRejected)
            .result());
    if (calib->count < 2) {
      return Status::invalid("calib has seen " + std::to_string(calib->count) +
                             " values per channel; the unbiased variance needs at least 2");
    }
    std::vector<float> mean(channels), var(channels);
    for (std::size_t i = 0; i < channels; ++i) {
      mean[i] = static_cast<float>(calib->mean[i]);
      var[i] = static_cast<float>(calib->m2[i] / static_cast<double>(calib->count - 1));
    }
    CUNORM_RETURN_IF_ERROR(context.backend->copy_to_device(running_mean, mean.data(), channels * sizeof(float)));
    return context.backend->copy_to_device(running_var, var.data(), channels * sizeof(float));
  });
}

cunormStatus_t cunormBatchNormCalibrationDestroy(cunormHandle_t handle, cunormBatchNormCalibration_t calib) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(check_calibration(context, calib));
    context.calibrations.erase(calib);
    return Status::ok();
  });
}

}  // extern "C"
