// Turns a runtime integer into a compile-time one (flash-attention's BOOL_SWITCH idea): calls
// f(std::integral_constant<int, V>{}) for the listed V equal to value. A value with no kernel
// instantiated is an INTERNAL_ERROR naming it, never a silent fall-through; its message is built
// only then (a call's success path builds no strings).
#pragma once

#include <string>
#include <type_traits>

#include "status.hpp"

namespace cunorm {

template <int... Values, class F>
Status dispatch_int(const char* what, int value, F&& f) {
  Status result;
  const bool matched = ((value == Values ? (result = f(std::integral_constant<int, Values>{}), true) : false) || ...);
  if (!matched) return Status::internal(std::string("no kernel was built for ") + what + " = " + std::to_string(value));
  return result;
}

}  // namespace cunorm
