// The API fuzzer's oracle (see fuzz_oracle.hpp).
#include "fuzz_oracle.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cunorm_fuzz {

ArenaSnapshot::ArenaSnapshot(const World& world) : bytes_(reinterpret_cast<const char*>(world.arena()), kArenaBytes) {}

bool ArenaSnapshot::unchanged(const World& world, const void* exempt, std::size_t exempt_bytes) const {
  std::size_t from = kArenaBytes, to = kArenaBytes;  // the exempt range, clipped to the arena
  if (world.bytes_left(exempt) > 0) {
    from = static_cast<std::size_t>(static_cast<const unsigned char*>(exempt) - world.arena());
    to = std::min(kArenaBytes, from + exempt_bytes);
  }
  return std::memcmp(bytes_.data(), world.arena(), from) == 0 &&
         std::memcmp(bytes_.data() + to, world.arena() + to, kArenaBytes - to) == 0;
}

// CUNORM_FUZZ_VERBOSE=1 prints every call and its outcome: what a seed or a finding really does.
bool verbose() {
  static const bool set = std::getenv("CUNORM_FUZZ_VERBOSE") != nullptr;
  return set;
}

void report(const std::string& call, const std::string& outcome) {
  if (verbose()) std::fprintf(stderr, "%s -> %s\n", call.c_str(), outcome.c_str());
}

void check_outcome(const World& world, const std::string& call, cunormStatus_t status, cunormHandle_t message_handle,
                   bool must_be_invalid, const ArenaSnapshot& before, const void* exempt, std::size_t exempt_bytes) {
  // Compared as an int: a value outside the enum is the finding, not something to switch on.
  const int code = static_cast<int>(status);
  if (code < CUNORM_STATUS_SUCCESS || code > CUNORM_STATUS_INTERNAL_ERROR) {
    fail(call + " returned " + std::to_string(code) + ", not a cunormStatus_t");
  }
  const char* message = cunormGetLastErrorMessage(message_handle);
  if (message == nullptr) fail(call + ": cunormGetLastErrorMessage returned NULL");
  const std::string text = message;
  const std::string outcome = std::string(cunormGetStatusString(status)) + " \"" + text + "\"";
  report(call, outcome);
  if (status == CUNORM_STATUS_INTERNAL_ERROR) fail(call + " returned " + outcome);
  if (status == CUNORM_STATUS_EXECUTION_FAILED) {
    fail(call + " returned " + outcome + ": on the SIMT backend, a fault the engine caught in a kernel");
  }
  if (status == CUNORM_STATUS_SUCCESS && !text.empty()) fail(call + " succeeded with the message \"" + text + "\"");
  if (status != CUNORM_STATUS_SUCCESS && text.empty()) fail(call + " returned " + outcome + " without a message");
  if (must_be_invalid && status != CUNORM_STATUS_INVALID_VALUE) {
    fail(call + " returned " + outcome + ", but its sizes must be rejected with INVALID_VALUE");
  }
  if (status != CUNORM_STATUS_SUCCESS && !before.unchanged(world, exempt, exempt_bytes)) {
    fail(call + " returned " + outcome + " and wrote to the arena");
  }
}

}  // namespace cunorm_fuzz
