// Shared by the row-norm launch code: from a RowNormKind to the kernels' policy type
// (norm_ops.cuh; an INTERNAL_ERROR for a kind no kernel was built for), and the segment split
// of a plan as the kernels take it.
#pragma once

#include "../../host/dtype.hpp"
#include "../../host/static_dispatch.hpp"
#include "../../host/status.hpp"
#include "norm_ops.cuh"
#include "row_norm.hpp"
#include "row_norm_forward.cuh"

namespace cunorm {

template <class F>
Status dispatch_row_norm_op(RowNormKind kind, F&& f) {
  switch (kind) {
    case RowNormKind::kLayerNorm: return f(TypeTag<kernels::LayerNormOp>{});
    case RowNormKind::kRmsNorm: return f(TypeTag<kernels::RmsNormOp>{});
  }
  return Status::internal("unknown row normalization kind");
}

inline kernels::RowSegments row_segments(const RowNormPlan& plan, void* workspace) {
  return kernels::RowSegments{
      plan.segments.count, plan.segments.packs_per_segment, plan.segments.slots, plan.segments.waves,
      kernels::Global<float>(plan.shape.cooperative
                                 ? reinterpret_cast<float*>(static_cast<char*>(workspace) + plan.exchange_offset)
                                 : nullptr)};
}

}  // namespace cunorm
