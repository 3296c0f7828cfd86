// Launching the LayerNorm forward plan on a backend. Declared here, defined (with the kernels)
// in layer_norm_forward_launch_impl.hpp, and instantiated per backend and activation type in
// generated translation units (host/instantiate.cpp.in) so that they compile in parallel.
#pragma once

#include "../layer_norm_forward.hpp"
#include "../status.hpp"

namespace cunorm {

template <class Launcher, class T, class P>
Status launch_layer_norm_forward(Launcher& launcher, const LayerNormForwardCall& call,
                                 const LayerNormForwardPlan& plan);

}  // namespace cunorm
