// Launching the passes of a BatchNorm call on a backend; defined in batch_norm_launch_impl.hpp
// and instantiated per backend and activation type like the row norms.
#pragma once

#include "../../host/status.hpp"
#include "batch_norm.hpp"

namespace cunorm {

template <class Launcher, class T, class P>
Status launch_batch_norm(Launcher& launcher, const BatchNormCall& call, const BatchNormPlan& plan, void* workspace);

}  // namespace cunorm
