// Element-by-element comparison with the reference, reporting how many values fail and the
// first few, instead of thousands of assertion lines.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cunorm/reference.hpp"
#include "simt/launch.hpp"

namespace cunorm_test {

// actual(i) within the tolerance of expected[i], plus slack[i] when given (the summation bound
// of a float32 reduction).
template <class Actual>
void expect_close(const char* what, std::size_t count, Actual actual, const std::vector<double>& expected,
                  const cunorm::reference::Tolerance& tolerance, const std::vector<double>& slack = {}) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double a = actual(i), e = expected[i];
    const double extra = slack.empty() ? 0.0 : slack[i];
    // a == e first: equal infinities (rstd of a constant row with eps = 0) differ by NaN.
    if (a == e || tolerance.accepts(a, e) || std::abs(a - e) <= extra + tolerance.allowed(e)) {
      continue;
    }
    if (++bad <= 3) ADD_FAILURE() << what << "[" << i << "] = " << a << ", reference " << e;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << count << " elements outside the tolerance";
}

// Bit for bit, NaN payloads included.
inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The SIMT orders a determinism test repeats a call under, after the default forward order:
// reverse and seeded random, or none when CUNORM_TEST_ONE_ORDER is set (the sanitizer job, which
// checks memory safety; the main job checks determinism).
inline std::vector<simt::Order> other_orders() {
  if (std::getenv("CUNORM_TEST_ONE_ORDER") != nullptr) return {};
  return {simt::Order::kReverse, simt::Order::kRandom};
}

}  // namespace cunorm_test
