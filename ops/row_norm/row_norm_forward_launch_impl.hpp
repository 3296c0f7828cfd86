// From a LayerNorm/RMSNorm forward plan to the kernel instantiation that serves it.
#pragma once

#include "row_norm_forward.cuh"
#include "row_norm_forward_launch.hpp"
#include "row_norm_op_dispatch.hpp"

namespace cunorm {

template <class Launcher, class T, class P>
Status launch_row_norm_forward(Launcher& launcher, const RowNormForwardCall& call, const RowNormPlan& plan,
                               void* workspace) {
  using kernels::Global;
  using Load = kernels::DirectLoad<T>;
  using Affine = kernels::AffineParameters<P>;
  using Store = kernels::DirectStore<T>;
  const kernels::RowNormForwardArgs<Load, Affine, Store> args{
      Load{Global<const T>(static_cast<const T*>(call.x))},
      Affine{Global<const P>(static_cast<const P*>(call.gamma)), Global<const P>(static_cast<const P*>(call.beta))},
      Store{Global<T>(static_cast<T*>(call.y))},
      Global<float>(call.mean),
      Global<float>(call.rstd),
      call.rows,
      call.cols,
      call.eps};
  constexpr int kVector = 16 / sizeof(T);
  return dispatch_row_norm_op(call.kind, [&](auto op) -> Status {
    using Op = typename decltype(op)::type;
    return dispatch_int<1, kVector>("vec", plan.vec, [&](auto vec) -> Status {
      constexpr int VEC = decltype(vec)::value;
      switch (plan.variant) {
        case RowNormVariant::kWarpRows:
          return dispatch_int<1, 2, 4, 8, 16, 32>("chunks", plan.chunks, [&](auto chunks) -> Status {
            constexpr int CHUNKS = decltype(chunks)::value;
            if constexpr (VEC * CHUNKS <= 32) {
              return launcher.launch(plan.shape,
                                     kernels::row_norm_forward_warp_rows<Op, Load, Affine, Store, VEC, CHUNKS>, args,
                                     plan.width);
            } else {
              return Status::internal("warp_rows holds at most 32 elements per lane");
            }
          });
        case RowNormVariant::kBlockRegisters:
          return dispatch_int<1, 2, 4, 8>("chunks", plan.chunks, [&](auto chunks) -> Status {
            constexpr int CHUNKS = decltype(chunks)::value;
            if constexpr (VEC * CHUNKS <= 8) {
              return launcher.launch(
                  plan.shape, kernels::row_norm_forward_block_registers<Op, Load, Affine, Store, VEC, CHUNKS>, args);
            } else {
              return Status::internal("block_registers holds at most 8 elements per thread");
            }
          });
        case RowNormVariant::kSegments:
          return launcher.launch(plan.shape, kernels::row_norm_forward_segments<Op, Load, Affine, Store, VEC>, args,
                                 row_segments(plan, workspace));
        case RowNormVariant::kUncached:
          return launcher.launch(plan.shape, kernels::row_norm_forward_uncached<Op, Load, Affine, Store, VEC>, args);
      }
      return Status::internal("unknown row normalization forward variant");
    });
  });
}

#define CUNORM_INSTANTIATE_ROW_NORM_FORWARD(Launcher, T, P)                                                         \
  template Status launch_row_norm_forward<Launcher, T, P>(Launcher&, const RowNormForwardCall&, const RowNormPlan&, \
                                                          void*);

}  // namespace cunorm
