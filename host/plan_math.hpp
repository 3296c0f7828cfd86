// Arithmetic the planners share: divisions rounding up, powers of two, the 16-byte alignment that
// vector accesses need, and the workspace layout (regions at 256-byte offsets, saturating as
// byte_count.hpp's counts do).
#pragma once

#include <cstddef>
#include <cstdint>

#include "byte_count.hpp"

namespace cunorm {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline std::size_t round_up(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }

// The least power of two >= v (1 for v <= 1).
inline int64_t next_power_of_two(int64_t v) {
  int64_t p = 1;
  while (p < v) p *= 2;
  return p;
}

inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// Appends a region of `bytes` to a workspace of `total` bytes and returns its offset; every region
// starts 256-byte aligned. Saturating: the entry points reject a total past 63 bits before using
// an offset.
inline std::size_t add_region(std::size_t& total, std::size_t bytes) {
  const std::size_t offset = total;
  total = saturating_round_up(saturating_add(total, bytes), 256);
  return offset;
}

}  // namespace cunorm
