// The API fuzzer's calls: each decodes one call of one C entry point from the input, makes it,
// applies the oracle (fuzz_oracle.hpp) and keeps the world's bookkeeping (fuzz_world.hpp).
#pragma once

#include "fuzz_input.hpp"
#include "fuzz_world.hpp"
#include "support/api_calls.hpp"

namespace cunorm_fuzz {

// The compute, workspace-query and calibration entry points (support/api_calls.hpp).
void fuzz_api_call(World& world, FuzzInput& in, cunorm_test::Entry entry);

// The handle, memory, workspace and error functions, `which` in [0, kHandleCalls).
constexpr int kHandleCalls = 12;
void fuzz_handle_call(World& world, FuzzInput& in, int which);

}  // namespace cunorm_fuzz
