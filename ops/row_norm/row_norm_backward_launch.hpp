// Launching a LayerNorm or RMSNorm backward plan (the dx kernel, then the parameter-gradient
// reductions) on a backend; instantiated like the forward (row_norm_forward_launch.hpp).
#pragma once

#include "../../host/status.hpp"
#include "row_norm.hpp"

namespace cunorm {

template <class Launcher, class T, class P>
Status launch_row_norm_backward(Launcher& launcher, const RowNormBackwardCall& call, const RowNormPlan& plan,
                                void* workspace);

}  // namespace cunorm
