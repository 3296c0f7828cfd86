// The write shadow: for every 4-byte word of global memory that a kernel stored to through the
// checked accessors, the launch, the write epoch (a block's stores between two publishing points,
// engine.hpp) of its last store and which of the word's bytes that epoch stored. A load looks its words up to find a word another block
// of the same launch wrote and has not published yet: on a GPU that block's store may still be
// invisible (CUDA orders it for other blocks only after a __threadfence() or the kernel's end).
// Bytes count, not words: two blocks may store and load neighbouring 2-byte elements that share a
// word (half-precision rows of odd length) without any fence. One entry per word holds one
// epoch, so when another epoch stores to other bytes of the word, the earlier epoch's bytes are
// no longer tracked: such a pair of stores can hide an unpublished one from the check (a missed
// report, never a false one).
//
// One process-wide table, shared by concurrent launches and workers: every entry is written and
// read with relaxed atomics and carries its launch's generation, so entries of finished launches
// need no clearing. Shadow memory is reserved without backing (MAP_NORESERVE) in 2 MiB chunks of
// application memory, created on the first store into each, so it costs two bytes per byte of
// the pages actually written.
#pragma once

#include <cstddef>
#include <cstdint>

namespace simt::detail {

constexpr std::size_t kShadowWordBytes = 4;

// A shadow entry: the launch generation in bits 32-63, the mask of the word's bytes stored in
// bits 28-31 and the write epoch in bits 0-27. 0 means no store was recorded.
constexpr int kShadowEpochBits = 28;
constexpr std::uint32_t kShadowEpochLimit = std::uint32_t{1} << kShadowEpochBits;  // epochs per launch
inline std::uint64_t shadow_value(std::uint32_t generation, std::uint32_t epoch, std::uint32_t byte_mask) {
  return static_cast<std::uint64_t>(generation) << 32 | std::uint64_t{byte_mask} << kShadowEpochBits | epoch;
}
inline std::uint32_t shadow_generation(std::uint64_t entry) { return static_cast<std::uint32_t>(entry >> 32); }
inline std::uint32_t shadow_epoch(std::uint64_t entry) {
  return static_cast<std::uint32_t>(entry) & (kShadowEpochLimit - 1);
}
inline std::uint32_t shadow_byte_mask(std::uint64_t entry) {
  return static_cast<std::uint32_t>(entry) >> kShadowEpochBits;
}
// The mask of the bytes of `word` (an address divided by kShadowWordBytes) that [address,
// address + bytes) covers.
inline std::uint32_t word_byte_mask(std::uintptr_t word, std::uintptr_t address, std::size_t bytes) {
  const std::uintptr_t begin = word * kShadowWordBytes;
  const std::uintptr_t first = address > begin ? address - begin : 0;
  const std::uintptr_t end = address + bytes < begin + kShadowWordBytes ? address + bytes - begin : kShadowWordBytes;
  return ((1u << end) - 1u) & ~((1u << first) - 1u);
}

// A new launch generation, never 0.
std::uint32_t next_shadow_generation();

// The entry of the 4-byte word at `word` (an address divided by kShadowWordBytes). nullptr when
// no store was ever recorded in its chunk and create is false, or for addresses the shadow does
// not cover (at or above 2^47, or once reserving shadow memory failed).
std::uint64_t* shadow_entry(std::uintptr_t word, bool create);

}  // namespace simt::detail
