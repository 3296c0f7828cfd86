// Coverage-guided fuzzing of the whole C API on the SIMT backend (libFuzzer; docs/robustness.md).
// An input is a program of up to kMaxCalls calls: its first byte seeds the arena's contents, then
// each call is a byte choosing one of the 27 entry points followed by that call's arguments
// (fuzz_input.hpp says how each kind is read). Unlike the seeded fuzz tests, which break one
// argument of a valid call from a fixed menu, this explores combinations: an empty batch with an
// overflowing width, a workspace set and then outgrown, a calibration accumulated, destroyed and
// used again. Every call must pass the oracle of fuzz_oracle.hpp; the library, the SIMT engine and
// this harness are built with AddressSanitizer and UBSan, so that any memory error or undefined
// behaviour is a finding too.
#include <cstddef>
#include <cstdint>

#include "fuzz_calls.hpp"
#include "fuzz_input.hpp"
#include "fuzz_world.hpp"

namespace {

constexpr int kMaxCalls = 12;  // enough for create, accumulate twice, finalize, destroy and misuse

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cunorm_fuzz::World& world = cunorm_fuzz::World::get();
  cunorm_fuzz::FuzzInput in(data, size);
  world.begin_input(in.byte());
  for (int i = 0; i < kMaxCalls && !in.used_up(); ++i) {
    const int which = in.byte() % (cunorm_test::kEntryCount + cunorm_fuzz::kHandleCalls);
    if (which < cunorm_test::kEntryCount) {
      cunorm_fuzz::fuzz_api_call(world, in, static_cast<cunorm_test::Entry>(which));
    } else {
      cunorm_fuzz::fuzz_handle_call(world, in, which - cunorm_test::kEntryCount);
    }
  }
  world.end_input();
  return 0;
}
