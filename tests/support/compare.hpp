// Element-by-element comparison with the reference, reporting how many values fail and the
// first few, instead of thousands of assertion lines. Public headers only, so that the tests of
// the C++ layer, which use nothing else, use it too.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "cunorm/reference.hpp"

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

// The same for a whole vector of results.
template <class A>
void expect_close(const std::string& what, const std::vector<A>& actual, const std::vector<double>& expected,
                  const cunorm::reference::Tolerance& tolerance, const std::vector<double>& slack = {}) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  expect_close(
      what.c_str(), actual.size(), [&](std::size_t i) { return static_cast<double>(actual[i]); }, expected, tolerance,
      slack);
}

// The same for an array of the tests' own (count() values, get(i) as double; a HostArray).
template <class Array>
void expect_array_close(const char* what, const Array& actual, const std::vector<double>& expected,
                        const cunorm::reference::Tolerance& tolerance, const std::vector<double>& slack = {}) {
  ASSERT_EQ(actual.count(), expected.size()) << what;
  expect_close(
      what, actual.count(), [&](std::size_t i) { return actual.get(i); }, expected, tolerance, slack);
}

// Bit for bit, NaN payloads included.
inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace cunorm_test
