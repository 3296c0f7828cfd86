// Byte counts the library derives from user sizes: tensors, parameters, statistics, workspace
// regions. The API requires each to fit in 63 bits (the largest object a 64-bit process can
// address, and what int64_t sizes can describe); validation rejects any that does not with
// INVALID_VALUE naming the size. Planning adds and multiplies such counts; these helpers saturate
// at kTooManyBytes instead of wrapping, so that an overflow anywhere in a sum of workspace regions
// stays visible as a count past kMaxBytes rather than turning into a small, wrong size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace cunorm {

inline constexpr std::size_t kMaxBytes = static_cast<std::size_t>(std::numeric_limits<int64_t>::max());
inline constexpr std::size_t kTooManyBytes = std::numeric_limits<std::size_t>::max();

inline bool fits_in_63_bits(std::size_t bytes) { return bytes <= kMaxBytes; }

inline std::size_t saturating_mul(std::size_t a, std::size_t b) {
  if (a != 0 && b > kTooManyBytes / a) return kTooManyBytes;
  return a * b;
}

inline std::size_t saturating_add(std::size_t a, std::size_t b) {
  return a > kTooManyBytes - b ? kTooManyBytes : a + b;
}

// v rounded up to a multiple of m; counts past kMaxBytes stay too many (m is small).
inline std::size_t saturating_round_up(std::size_t v, std::size_t m) {
  if (!fits_in_63_bits(v)) return kTooManyBytes;
  return (v + m - 1) / m * m;
}

}  // namespace cunorm
