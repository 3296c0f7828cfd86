// The passes of each BatchNorm call (batch_norm_passes.cuh, batch_norm_finalize.cuh):
//   training:            statistics partials -> finalize (saved statistics, coefficients, the
//                        running statistics' new values) -> normalize (commits the running
//                        statistics: a call failing earlier leaves them)  x read twice, y written
//   inference:           one FMA per element, its coefficients computed from the running
//                        statistics by each thread (RunningCoefficients): one launch
//   backward:            gradient partials -> finalize (dgamma, dbeta, dx coefficients) -> dx
//                                                                     x, dy read twice, dx written
//   backward inference:  dx fused with the gradient partials (coefficients as the inference's)
//                        -> finalize (dgamma, dbeta; no launch when neither is asked for)
//   calibration batch:   statistics partials -> finalize (the batch's mean and M2)
#pragma once

#include "../../host/static_dispatch.hpp"
#include "batch_norm_finalize.cuh"
#include "batch_norm_launch.hpp"
#include "batch_norm_passes.cuh"

namespace cunorm {

// Launches one pass over the tensor in the plan's layout.
template <class Launcher, class ChannelsFirstKernel, class ChannelsLastKernel, class Args>
Status launch_pass(Launcher& launcher, const BatchNormPlan& plan, const char* step, ChannelsFirstKernel channels_first,
                   ChannelsLastKernel channels_last, const Args& args) {
  LaunchShape shape;
  shape.grid = plan.grid;
  shape.block = plan.block;
  shape.label = plan.label;
  shape.label.suffix = step;
  if (plan.channels_last) return launcher.launch(shape, channels_last, args, plan.last);
  return launcher.launch(shape, channels_first, args, plan.first);
}

template <class Launcher, class T, class P>
Status launch_batch_norm(Launcher& launcher, const BatchNormCall& call, const BatchNormPlan& plan, void* workspace) {
  using kernels::BatchNormMap;
  using kernels::BatchNormReduction;
  using kernels::Global;
  char* const ws = static_cast<char*>(workspace);
  float* const partials = reinterpret_cast<float*>(ws + plan.partials_offset);
  float* const coefficients = reinterpret_cast<float*>(ws + plan.coefficients_offset);
  using Load = kernels::DirectLoad<T>;
  using Store = kernels::DirectStore<T>;
  const Load x{Global<const T>(static_cast<const T*>(call.x))};
  const Load dy{Global<const T>(static_cast<const T*>(call.dy))};
  const Store out{Global<T>(static_cast<T*>(call.out))};
  const Global<const P> gamma(static_cast<const P*>(call.gamma));
  const Global<const P> beta(static_cast<const P*>(call.beta));
  const float count = static_cast<float>(call.n * call.s);
  const int64_t c = call.c;
  LaunchShape finalize;
  finalize.grid = plan.finalize_grid;
  finalize.block = dim3(kernels::kFinalizeChannelsPerBlock * 32);
  finalize.label = plan.label;
  finalize.label.suffix = "finalize";
  // The inference passes' coefficients, from the running statistics.
  auto running_coefficients = [&](bool for_backward) {
    return kernels::RunningCoefficients<P>{Global<const float>(call.running_mean),
                                           Global<const float>(call.running_var),
                                           gamma,
                                           beta,
                                           call.eps,
                                           for_backward};
  };
  // dgamma and dbeta from the partials, and the map's coefficients when `out` is given.
  auto finalize_gradients = [&](Global<const float> mean, Global<const float> invstd, Global<float> out) {
    const kernels::BatchNormGradientArgs<P> args{Global<const float>(partials),
                                                 plan.chunks,
                                                 c,
                                                 count,
                                                 mean,
                                                 invstd,
                                                 gamma,
                                                 Global<P>(static_cast<P*>(call.dgamma)),
                                                 Global<P>(static_cast<P*>(call.dbeta)),
                                                 out};
    return launcher.launch(finalize, kernels::batch_norm_finalize_gradients<P>, args);
  };
  constexpr int kVector = 16 / sizeof(T);
  return dispatch_int<1, kVector>("vec", plan.vec, [&](auto vec) -> Status {
    constexpr int VEC = decltype(vec)::value;
    auto reduce = [&](auto mode, const auto& args) {
      constexpr BatchNormReduction kMode = decltype(mode)::value;
      using Coefficients = decltype(args.coefficients);
      return launch_pass(launcher, plan, "reduce",
                         kernels::batch_norm_reduce_channels_first<kMode, Coefficients, Load, Load, Store, VEC>,
                         kernels::batch_norm_reduce_channels_last<kMode, Coefficients, Load, Load, Store, VEC>, args);
    };
    auto map = [&](auto kind, const auto& args) {
      constexpr BatchNormMap kMap = decltype(kind)::value;
      using Coefficients = decltype(args.coefficients);
      return launch_pass(launcher, plan, "map",
                         kernels::batch_norm_map_channels_first<kMap, Coefficients, Load, Load, Store, VEC>,
                         kernels::batch_norm_map_channels_last<kMap, Coefficients, Load, Load, Store, VEC>, args);
    };
    using Statistics = std::integral_constant<BatchNormReduction, BatchNormReduction::kStatistics>;
    using Gradients = std::integral_constant<BatchNormReduction, BatchNormReduction::kGradients>;
    using Running = kernels::RunningCoefficients<P>;
    using Saved = kernels::SavedStatistics;
    const Global<const float> coefficient_rows(coefficients);
    const kernels::BatchNormReduceArgs<kernels::CoefficientRows<0>, Load, Load, Store> statistics_args{
        x, {}, {}, {}, Global<float>(partials)};
    kernels::BatchNormStatisticsArgs<P> finalize_args{Global<const float>(partials),
                                                      plan.chunks,
                                                      c,
                                                      count,
                                                      call.eps,
                                                      call.momentum,
                                                      call.unbiased_running_var,
                                                      gamma,
                                                      beta,
                                                      {},
                                                      {},
                                                      {},
                                                      {},
                                                      {},
                                                      {},
                                                      {},
                                                      {}};
    switch (call.kind) {
      case BatchNormKind::kTraining: {
        CUNORM_RETURN_IF_ERROR(reduce(Statistics{}, statistics_args));
        finalize_args.saved_mean = Global<float>(call.out_mean);
        finalize_args.saved_invstd = Global<float>(call.out_invstd);
        float* const running_update = reinterpret_cast<float*>(ws + plan.batch_offset);
        finalize_args.running_mean = Global<const float>(call.running_mean);
        finalize_args.running_var = Global<const float>(call.running_var);
        finalize_args.running_update = Global<float>(running_update);
        finalize_args.coefficients = Global<float>(coefficients);
        CUNORM_RETURN_IF_ERROR(launcher.launch(finalize, kernels::batch_norm_finalize_statistics<P>, finalize_args));
        const kernels::BatchNormRunningCommit commit{Global<const float>(running_update),
                                                     Global<float>(call.running_mean), Global<float>(call.running_var)};
        return map(std::integral_constant<BatchNormMap, BatchNormMap::kNormalize>{},
                   kernels::BatchNormMapArgs<kernels::CoefficientRows<3>, Load, Load, Store>{
                       x, {}, {coefficient_rows, c}, out, commit});
      }
      case BatchNormKind::kCalibrationBatch: {
        CUNORM_RETURN_IF_ERROR(reduce(Statistics{}, statistics_args));
        float* const batch = reinterpret_cast<float*>(ws + plan.batch_offset);
        finalize_args.batch_mean = Global<float>(batch);
        finalize_args.batch_m2 = Global<float>(batch + c);
        return launcher.launch(finalize, kernels::batch_norm_finalize_statistics<P>, finalize_args);
      }
      case BatchNormKind::kInference: {
        return map(std::integral_constant<BatchNormMap, BatchNormMap::kAffine>{},
                   kernels::BatchNormMapArgs<Running, Load, Load, Store>{x, {}, running_coefficients(false), out, {}});
      }
      case BatchNormKind::kBackward: {
        const Global<const float> mean(call.saved_mean), invstd(call.saved_invstd);
        CUNORM_RETURN_IF_ERROR(reduce(Gradients{}, kernels::BatchNormReduceArgs<Saved, Load, Load, Store>{
                                                       x, dy, {mean, invstd}, {}, Global<float>(partials)}));
        CUNORM_RETURN_IF_ERROR(finalize_gradients(mean, invstd, Global<float>(coefficients)));
        return map(std::integral_constant<BatchNormMap, BatchNormMap::kBackward>{},
                   kernels::BatchNormMapArgs<kernels::CoefficientRows<4>, Load, Load, Store>{
                       x, dy, {coefficient_rows, c}, out, {}});
      }
      case BatchNormKind::kBackwardInference: {
        // dgamma = sum(dy * xhat) and dbeta = sum(dy) need no statistics in the finalize.
        CUNORM_RETURN_IF_ERROR(reduce(Gradients{}, kernels::BatchNormReduceArgs<Running, Load, Load, Store>{
                                                       x, dy, running_coefficients(true), out, Global<float>(partials)}));
        if (call.dgamma == nullptr && call.dbeta == nullptr) return Status::ok();
        return finalize_gradients({}, {}, {});
      }
    }
    return Status::internal("unknown BatchNorm call");
  });
}

#define CUNORM_INSTANTIATE_BATCH_NORM(Launcher, T, P) \
  template Status launch_batch_norm<Launcher, T, P>(Launcher&, const BatchNormCall&, const BatchNormPlan&, void*);

}  // namespace cunorm
