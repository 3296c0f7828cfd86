// The API fuzzer's oracle, applied to every call it makes: the status is a cunormStatus_t, never
// INTERNAL_ERROR, and never EXECUTION_FAILED (on the SIMT backend that is a fault the engine caught
// in a kernel: a race, a misaligned or out-of-bounds access); an error comes with a message and a
// success with none; sizes the library must reject are INVALID_VALUE; and on every error the arena,
// which holds every buffer and every output argument of the call, is exactly as it was. (api.md
// lists the statuses that write nothing; cunormMalloc's ALLOC_FAILED is not one of them: it sets
// *ptr to NULL, which the caller exempts from the comparison and checks itself.)
// CUNORM_FUZZ_VERBOSE=1 in the environment prints every call with its status and message.
#pragma once

#include <cstddef>
#include <string>

#include "cunorm/cunorm.h"
#include "fuzz_world.hpp"

namespace cunorm_fuzz {

// A copy of the arena, taken before the call.
class ArenaSnapshot {
 public:
  explicit ArenaSnapshot(const World& world);
  // Every byte as it was, but the `exempt_bytes` at `exempt` (if in the arena).
  bool unchanged(const World& world, const void* exempt = nullptr, std::size_t exempt_bytes = 0) const;

 private:
  std::string bytes_;
};

// Whether CUNORM_FUZZ_VERBOSE is set; report() then prints a call and what it gave.
bool verbose();
void report(const std::string& call, const std::string& outcome);

// `message_handle` is the handle whose last message the call set (NULL: the thread's).
void check_outcome(const World& world, const std::string& call, cunormStatus_t status, cunormHandle_t message_handle,
                   bool must_be_invalid, const ArenaSnapshot& before, const void* exempt = nullptr,
                   std::size_t exempt_bytes = 0);

}  // namespace cunorm_fuzz
