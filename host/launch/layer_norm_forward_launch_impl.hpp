// From a LayerNorm forward plan to the kernel instantiation that serves it.
#pragma once

#include "../../kernels/layer_norm_forward.cuh"
#include "../static_dispatch.hpp"
#include "layer_norm_forward_launch.hpp"

namespace cunorm {

template <class Launcher, class T, class P>
Status launch_layer_norm_forward(Launcher& launcher, const LayerNormForwardCall& call,
                                 const LayerNormForwardPlan& plan) {
  using kernels::Global;
  const kernels::LayerNormForwardArgs<T, P> args{Global<const T>(static_cast<const T*>(call.x)),
                                                 Global<const P>(static_cast<const P*>(call.gamma)),
                                                 Global<const P>(static_cast<const P*>(call.beta)),
                                                 Global<T>(static_cast<T*>(call.y)),
                                                 Global<float>(call.mean),
                                                 Global<float>(call.rstd),
                                                 call.rows,
                                                 call.cols,
                                                 call.eps};
  constexpr int kVector = 16 / sizeof(T);
  return dispatch_int<1, kVector>("vec", plan.vec, [&](auto vec) -> Status {
    constexpr int VEC = decltype(vec)::value;
    switch (plan.variant) {
      case LayerNormVariant::kWarpRows:
        return dispatch_int<1, 2, 4, 8, 16, 32>("chunks", plan.chunks, [&](auto chunks) -> Status {
          constexpr int CHUNKS = decltype(chunks)::value;
          if constexpr (VEC * CHUNKS <= 32) {
            return launcher.launch(plan.shape, kernels::layer_norm_forward_warp_rows<T, P, VEC, CHUNKS>, args,
                                   plan.width);
          } else {
            return Status::internal("warp_rows holds at most 32 elements per lane");
          }
        });
      case LayerNormVariant::kBlockRegisters:
        return dispatch_int<1, 2, 4, 8>("chunks", plan.chunks, [&](auto chunks) -> Status {
          constexpr int CHUNKS = decltype(chunks)::value;
          if constexpr (VEC * CHUNKS <= 8) {
            return launcher.launch(plan.shape, kernels::layer_norm_forward_block_registers<T, P, VEC, CHUNKS>, args);
          } else {
            return Status::internal("block_registers holds at most 8 elements per thread");
          }
        });
      case LayerNormVariant::kBlockShared:
        return launcher.launch(plan.shape, kernels::layer_norm_forward_block_shared<T, P, VEC>, args);
      case LayerNormVariant::kBlockUncached:
        return launcher.launch(plan.shape, kernels::layer_norm_forward_block_uncached<T, P, VEC>, args);
    }
    return Status::internal("unknown LayerNorm forward variant");
  });
}

#define CUNORM_INSTANTIATE_LAYER_NORM_FORWARD(Launcher, T, P)                                       \
  template Status launch_layer_norm_forward<Launcher, T, P>(Launcher&, const LayerNormForwardCall&, \
                                                            const LayerNormForwardPlan&);

}  // namespace cunorm
