// How the determinism tests repeat a call: on SIMT under the engine's other thread orders, on a
// GPU once more.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "cunorm/cunorm.h"
#include "simt/launch.hpp"

namespace cunorm_test {

// The SIMT orders a determinism test repeats a call under, after the default forward order:
// reverse and seeded random, or none when CUNORM_TEST_ONE_ORDER is set (the sanitizer job, which
// checks memory safety; the main job checks determinism).
inline std::vector<simt::Order> other_orders() {
  if (std::getenv("CUNORM_TEST_ONE_ORDER") != nullptr) return {};
  return {simt::Order::kReverse, simt::Order::kRandom};
}

// Calls again(what) for each repetition: on SIMT once per other_orders() order (random orders
// seeded with `seed`), `what` naming the order; on a GPU once, as "a second run". `again` runs
// the call and compares its result with the first run's.
template <class Again>
void repeat_in_other_orders(cunormBackend_t backend, uint64_t seed, Again again) {
  if (backend != CUNORM_BACKEND_SIMT) {
    again("a second run");
    return;
  }
  for (simt::Order order : other_orders()) {
    simt::Options options = simt::current_options();
    options.order = order;
    options.seed = seed;
    simt::ScopedOptions scoped(options);
    again(simt::order_name(order));
  }
}

}  // namespace cunorm_test
