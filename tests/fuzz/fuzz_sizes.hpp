// The API fuzzer's rule for the sizes it decoded for a compute, query or calibration call: sizes
// the library must reject (a negative size, a zero where api.md wants > 0, or a buffer whose bytes
// do not fit in 63 bits, computed here with overflow checks) are passed as they are, and the call
// must then be INVALID_VALUE; valid-looking sizes are cut down (by remainders, which keep their
// low bits: odd widths, tails, zeros) until every buffer they size fits the harness's slots, since
// the library cannot know how large a buffer really is. The workspace queries size no buffer and
// get their sizes as they are.
#pragma once

#include <cstdint>

#include "support/api_calls.hpp"

namespace cunorm_fuzz {

enum class SizeVerdict {
  kFitted,    // every buffer the sizes claim is at most kSlotBytes
  kRejected,  // passed as they are: the call must be INVALID_VALUE
  kAsIs,      // a workspace query with valid-looking sizes, passed as they are
};

// calib_c: the channels of args->calib (for the calibration entries).
SizeVerdict fit_sizes(cunorm_test::Entry entry, cunorm_test::Args* args, std::int64_t calib_c);

}  // namespace cunorm_fuzz
