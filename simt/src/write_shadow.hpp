// The write shadow: for every 4-byte word of global memory that a kernel stored to through the
// checked accessors, the launch and the write epoch (a block's stores between two publishing
// points, engine.hpp) of its last store. A load looks its words up to find a word another block
// of the same launch wrote and has not published yet: on a GPU that block's store may still be
// invisible (CUDA orders it for other blocks only after a __threadfence() or the kernel's end).
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

// A shadow entry: the launch generation in the high half, the write epoch in the low half. 0
// means no store was recorded.
inline std::uint64_t shadow_value(std::uint32_t generation, std::uint32_t epoch) {
  return static_cast<std::uint64_t>(generation) << 32 | epoch;
}

// A new launch generation, never 0.
std::uint32_t next_shadow_generation();

// The entry of the 4-byte word at `word` (an address divided by kShadowWordBytes). nullptr when
// no store was ever recorded in its chunk and create is false, or for addresses the shadow does
// not cover (at or above 2^47, or once reserving shadow memory failed).
std::uint64_t* shadow_entry(std::uintptr_t word, bool create);

}  // namespace simt::detail
