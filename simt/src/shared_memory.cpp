// Shared memory of the blocks a worker keeps resident: one arena per block, reserved without
// backing (untouched bytes cost nothing), its dynamic part at the start and static variables
// after it, each followed by a canary redzone checked when the blocks end, so a write past a
// shared array is reported instead of landing silently in the next one. Fresh shared memory
// holds 0xff bytes (NaN in every float type), as uninitialized memory on a GPU holds garbage.
#include <sys/mman.h>

#include <cstring>

#include "engine.hpp"
#include "fault_text.hpp"
#include "sanitizer_hooks.hpp"

namespace simt::detail {
namespace {

std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

}  // namespace

bool Worker::reserve_shared_arenas(std::uint64_t count) {
  // Each block's arena holds its dynamic part and up to 48 KiB of static allocations.
  arena_per_block_ = round_up(launch_.config.dynamic_shared_bytes + launch_.target->shared_per_block +
                                  (kMaxStaticSharedVariables + 1) * (kSharedRedzone + 16),
                              4096);
  const std::size_t arena_needed = arena_per_block_ * count;
  if (arena_needed <= arena_bytes_) return true;
  release_shared_arenas();
  void* arena = mmap(nullptr, arena_needed, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (arena == MAP_FAILED) {
    record_fault(FaultText("could not reserve shared memory for the blocks"), nullptr, SourceLocation{"", 0});
    return false;
  }
  arena_ = static_cast<unsigned char*>(arena);
  arena_bytes_ = arena_needed;
  return true;
}

void Worker::release_shared_arenas() {
  if (arena_ != nullptr) munmap(arena_, arena_bytes_);
  arena_ = nullptr;
  arena_bytes_ = 0;
}

void Worker::prepare_shared(Block& block, std::uint64_t b) {
  block.shared = arena_ + arena_per_block_ * b;
  unpoison_memory(block.shared, arena_per_block_);
  std::memset(block.shared, 0xff, launch_.config.dynamic_shared_bytes);
  add_redzone(block, launch_.config.dynamic_shared_bytes);
}

void Worker::add_redzone(Block& block, std::size_t offset) {
  std::memset(block.shared + offset, kSharedCanary, kSharedRedzone);
  block.redzones.push_back(offset);
  block.shared_used = offset + kSharedRedzone;
}

// After the blocks ran: a changed canary means a kernel wrote past a shared allocation.
bool Worker::check_redzones(std::uint64_t count) {
  for (std::uint64_t b = 0; b < count; ++b) {
    Block& block = *blocks_[b];
    for (std::size_t offset : block.redzones) {
      for (std::size_t i = 0; i < kSharedRedzone; ++i) {
        if (block.shared[offset + i] == kSharedCanary) continue;
        FaultText what;
        what << "shared memory written out of bounds: byte " << (offset + i) << " of block " << Dim{block.index}
             << ", past ";
        if (offset == launch_.config.dynamic_shared_bytes) {
          what << "the " << launch_.config.dynamic_shared_bytes << " bytes of dynamic shared memory";
        } else {
          what << "a static shared variable";
        }
        record_fault(what, nullptr, SourceLocation{"", 0});
        return false;
      }
    }
  }
  return true;
}
void* Worker::static_shared(const void* key, std::size_t bytes, std::size_t align, SourceLocation loc) {
  Block& block = *current_->block;
  for (const StaticSharedAllocation& a : block.static_allocations) {
    if (a.key == key) return block.shared + a.offset;
  }
  const std::size_t static_bytes = block.static_bytes + bytes;
  if (static_bytes > launch_.target->shared_per_block) {
    fail(FaultText() << "static shared memory of " << static_bytes << " bytes exceeds the "
                     << launch_.target->shared_per_block << " bytes a block may declare",
         loc);
  }
  if (launch_.config.dynamic_shared_bytes + static_bytes > launch_.target->shared_per_block_optin) {
    fail(FaultText() << "static shared memory of " << static_bytes << " bytes plus "
                     << launch_.config.dynamic_shared_bytes << " dynamic bytes exceed the "
                     << launch_.target->shared_per_block_optin << " bytes per block of "
                     << launch_.target->name,
         loc);
  }
  if (block.static_allocations.size() == kMaxStaticSharedVariables) {
    fail(FaultText() << "more than " << kMaxStaticSharedVariables << " static shared variables in one kernel", loc);
  }
  const std::size_t offset = round_up(block.shared_used, align);
  std::memset(block.shared + offset, 0xff, bytes);
  add_redzone(block, offset + bytes);
  block.static_bytes = static_bytes;
  block.static_allocations.push_back(StaticSharedAllocation{key, offset});
  return block.shared + offset;
}

void* Worker::dynamic_shared() { return current_->block->shared; }

}  // namespace simt::detail
