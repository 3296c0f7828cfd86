// The seed of a fuzz test: CUNORM_FUZZ_SEED (decimal) when set, else the test's fixed seed, printed
// so that any failure reproduces with CUNORM_FUZZ_SEED=<seed>.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cunorm_test {

inline std::uint64_t fuzz_seed(std::uint64_t fixed) {
  std::uint64_t seed = fixed;
  if (const char* text = std::getenv("CUNORM_FUZZ_SEED")) {
    char* end = nullptr;
    seed = std::strtoull(text, &end, 10);
    if (*text == '\0' || *end != '\0') ADD_FAILURE() << "CUNORM_FUZZ_SEED must be a decimal integer, got " << text;
  }
  std::printf("fuzz seed %llu (set CUNORM_FUZZ_SEED to change it)\n", static_cast<unsigned long long>(seed));
  return seed;
}

// What a failure prints: the seed, the case's index and what the case did.
inline std::string fuzz_trace(std::uint64_t seed, int index, const std::string& description) {
  return "CUNORM_FUZZ_SEED=" + std::to_string(seed) + " case " + std::to_string(index) + ": " + description;
}

}  // namespace cunorm_test
