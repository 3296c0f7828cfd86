// The bad-input tests' cases and their check: each case changes one argument of a valid call of
// some entry points, and each of those must then return INVALID_VALUE with a message containing
// the case's text, and write nothing.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"

namespace cunorm_test {

template <class Entry, class Args>
struct BadCase {
  std::vector<Entry> entries;
  const char* what;
  std::function<void(Args&)> change;
  const char* message;
};

// call(entry, handle, args) calls one entry point; unchanged() checks that every output is as it
// was before the calls.
template <class Entry, class Args, class Call, class Unchanged>
void expect_each_rejected(cunormHandle_t handle, const Args& good, const std::vector<BadCase<Entry, Args>>& cases,
                          Call call, Unchanged unchanged) {
  for (const BadCase<Entry, Args>& bad : cases) {
    for (Entry entry : bad.entries) {
      Args a = good;
      bad.change(a);
      SCOPED_TRACE(std::string(bad.what) + " in entry " + std::to_string(static_cast<int>(entry)));
      EXPECT_EQ(call(entry, handle, a), CUNORM_STATUS_INVALID_VALUE);
      EXPECT_NE(std::string(cunormGetLastErrorMessage(handle)).find(bad.message), std::string::npos)
          << cunormGetLastErrorMessage(handle);
      unchanged();
    }
  }
}

}  // namespace cunorm_test
