// Fiber stacks for the SIMT engine: mmap'd regions with a PROT_NONE guard below the usable part,
// so that a kernel thread overflowing its stack faults on the guard (reported as an error by the
// engine's SIGSEGV handler) instead of silently writing into its neighbour. Stacks are pooled:
// a 1024-thread block needs 1024 of them and mmap is slow.
#pragma once

#include <cstddef>

namespace simt::detail {

struct FiberStack {
  char* region = nullptr;  // guard + usable, as mapped
  std::size_t region_bytes = 0;
  char* usable = nullptr;  // lowest usable byte (just above the guard)
  std::size_t usable_bytes = 0;

  char* top() const { return usable + usable_bytes; }
  bool guard_contains(const void* address) const {
    const char* a = static_cast<const char*>(address);
    return a >= region && a < usable;
  }
};

// Bytes below each stack that fault when touched.
constexpr std::size_t kGuardBytes = 64 * 1024;

// The usable size when the options leave it unset: sanitizer builds need far larger frames.
std::size_t default_stack_bytes();

// A stack of at least usable_bytes, from the pool or newly mapped; nullptr if mapping fails.
FiberStack* acquire_stack(std::size_t usable_bytes);
void release_stack(FiberStack* stack);

}  // namespace simt::detail
