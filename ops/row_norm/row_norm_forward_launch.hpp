// Launching a LayerNorm or RMSNorm forward plan on a backend. Declared here, defined (with the
// kernels) in row_norm_forward_launch_impl.hpp, and instantiated per backend and activation
// type in generated translation units (host/instantiate.cpp.in) so that they compile in parallel.
#pragma once

#include "../../host/status.hpp"
#include "row_norm.hpp"

namespace cunorm {

template <class Launcher, class T, class P>
Status launch_row_norm_forward(Launcher& launcher, const RowNormForwardCall& call, const RowNormPlan& plan,
                               void* workspace);

}  // namespace cunorm
