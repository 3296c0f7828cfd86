// The backends' one launch dispatch: from an erased launch of a registered op (backend.hpp) to
// the op's launch function, launch_<name><Launcher, T, P>, for the call's dtype pair. Each backend
// calls it with its own launcher; the op's launch functions are instantiated for that launcher
// in generated translation units (host/instantiate.cpp.in).
#pragma once

#include "backend.hpp"
#include "dtype.hpp"

namespace cunorm {

template <class Launcher>
Status launch_registered_op(Launcher& launcher, const OpLaunch& op) {
  switch (op.op) {
#define CUNORM_LAUNCH_CASE(name, CallType, PlanType)                                                               \
  case OpId::name: {                                                                                               \
    const CallType& call = *static_cast<const CallType*>(op.call);                                                 \
    const PlanType& plan = *static_cast<const PlanType*>(op.plan);                                                 \
    return dispatch_dtype_pair(call.dtype, call.param_dtype, [&](auto t, auto p) {                                 \
      return launch_##name<Launcher, typename decltype(t)::type, typename decltype(p)::type>(launcher, call, plan, \
                                                                                             op.workspace);        \
    });                                                                                                            \
  }
    CUNORM_FOR_EACH_OP(CUNORM_LAUNCH_CASE)
#undef CUNORM_LAUNCH_CASE
  }
  return Status::internal("launch of an op that is not in the registry");
}

}  // namespace cunorm
