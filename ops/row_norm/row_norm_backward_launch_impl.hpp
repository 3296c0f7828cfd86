// From a LayerNorm/RMSNorm backward plan to its kernels: dx with the partial parameter gradients,
// then one deterministic reduction per requested parameter gradient.
#pragma once

#include "row_norm_backward.cuh"
#include "row_norm_backward_launch.hpp"
#include "row_norm_op_dispatch.hpp"

namespace cunorm {

template <class Launcher, class T, class P>
Status launch_row_norm_backward(Launcher& launcher, const RowNormBackwardCall& call, const RowNormPlan& plan,
                                void* workspace) {
  using kernels::Global;
  char* const ws = static_cast<char*>(workspace);
  const bool gradients = call.dgamma != nullptr || call.dbeta != nullptr;
  float* const partial_dgamma = gradients ? reinterpret_cast<float*>(ws + plan.partial_dgamma_offset) : nullptr;
  float* const partial_dbeta = gradients && call.kind == RowNormKind::kLayerNorm
                                   ? reinterpret_cast<float*>(ws + plan.partial_dbeta_offset)
                                   : nullptr;
  using Load = kernels::DirectLoad<T>;
  using Affine = kernels::AffineParameters<P>;
  using Store = kernels::DirectStore<T>;
  const kernels::RowNormBackwardArgs<Load, Load, Affine, Store> args{
      Load{Global<const T>(static_cast<const T*>(call.dy))},
      Load{Global<const T>(static_cast<const T*>(call.x))},
      Global<const float>(call.mean),
      Global<const float>(call.rstd),
      Affine{Global<const P>(static_cast<const P*>(call.gamma)), Global<const P>()},
      Store{Global<T>(static_cast<T*>(call.dx))},
      Global<float>(partial_dgamma),
      Global<float>(partial_dbeta),
      call.rows,
      call.cols};
  constexpr int kVector = 16 / sizeof(T);
  CUNORM_RETURN_IF_ERROR(dispatch_row_norm_op(call.kind, [&](auto op) -> Status {
    using Op = typename decltype(op)::type;
    return dispatch_int<1, kVector>("vec", plan.vec, [&](auto vec) -> Status {
      constexpr int VEC = decltype(vec)::value;
      switch (plan.variant) {
        case RowNormVariant::kWarpRows:
          return dispatch_int<1, 2, 4, 8, 16>("chunks", plan.chunks, [&](auto chunks) -> Status {
            constexpr int CHUNKS = decltype(chunks)::value;
            if constexpr (VEC * CHUNKS <= 16) {
              return launcher.launch(plan.shape,
                                     kernels::row_norm_backward_warp_rows<Op, Load, Load, Affine, Store, VEC, CHUNKS>,
                                     args, plan.width);
            } else {
              return Status::internal("backward warp_rows holds at most 16 elements per lane");
            }
          });
        case RowNormVariant::kSegments:
          return launcher.launch(plan.shape, kernels::row_norm_backward_segments<Op, Load, Load, Affine, Store, VEC>,
                                 args, row_segments(plan, workspace));
        case RowNormVariant::kUncached:
          return launcher.launch(plan.shape, kernels::row_norm_backward_uncached<Op, Load, Load, Affine, Store, VEC>,
                                 args);
        case RowNormVariant::kBlockRegisters: break;
      }
      return Status::internal("no backward kernel for this row normalization variant");
    });
  }));
  // dgamma and dbeta: sum the partial rows, 32 columns per block.
  LaunchShape shape;
  shape.block = dim3(kernels::kGradientColumns * kernels::kGradientStripes);
  shape.grid = dim3(static_cast<unsigned>((call.cols + kernels::kGradientColumns - 1) / kernels::kGradientColumns));
  shape.label.family = row_norm_family(call.kind, false);
  const struct {
    void* out;
    float* partial;
    const char* variant;
  } outputs[] = {{call.dgamma, partial_dgamma, "reduce_dgamma"}, {call.dbeta, partial_dbeta, "reduce_dbeta"}};
  for (const auto& o : outputs) {
    if (o.out == nullptr) continue;
    shape.label.variant = o.variant;
    CUNORM_RETURN_IF_ERROR(launcher.launch(shape, kernels::reduce_parameter_gradient<P>, Global<const float>(o.partial),
                                           plan.partial_rows, call.cols, Global<P>(static_cast<P*>(o.out))));
  }
  return Status::ok();
}

#define CUNORM_INSTANTIATE_ROW_NORM_BACKWARD(Launcher, T, P)                                                          \
  template Status launch_row_norm_backward<Launcher, T, P>(Launcher&, const RowNormBackwardCall&, const RowNormPlan&, \
                                                           void*);

}  // namespace cunorm
