// Guarded, pooled fiber stacks (see fiber_stack.hpp).
#include "fiber_stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <mutex>
#include <vector>

#include "sanitizer_hooks.hpp"

namespace simt::detail {
namespace {

std::mutex pool_mutex;
std::vector<FiberStack*>& pool() {
  static std::vector<FiberStack*>* stacks = new std::vector<FiberStack*>();  // lives until exit
  return *stacks;
}

std::size_t round_to_pages(std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

}  // namespace

std::size_t default_stack_bytes() { return kSanitizedBuild ? 1024 * 1024 : 128 * 1024; }

FiberStack* acquire_stack(std::size_t usable_bytes) {
  usable_bytes = round_to_pages(usable_bytes);
  {
    std::lock_guard<std::mutex> lock(pool_mutex);
    auto& stacks = pool();
    for (std::size_t i = stacks.size(); i-- > 0;) {
      if (stacks[i]->usable_bytes == usable_bytes) {
        FiberStack* stack = stacks[i];
        stacks[i] = stacks.back();
        stacks.pop_back();
        return stack;
      }
    }
  }
  const std::size_t region_bytes = kGuardBytes + usable_bytes;
  void* region =
      mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) return nullptr;
  if (mprotect(region, kGuardBytes, PROT_NONE) != 0) {
    munmap(region, region_bytes);
    return nullptr;
  }
  auto* stack = new FiberStack;
  stack->region = static_cast<char*>(region);
  stack->region_bytes = region_bytes;
  stack->usable = stack->region + kGuardBytes;
  stack->usable_bytes = usable_bytes;
  return stack;
}

void release_stack(FiberStack* stack) {
  // A fiber abandoned after a fault may leave sanitizer poison on its frames.
  unpoison_memory(stack->usable, stack->usable_bytes);
  std::lock_guard<std::mutex> lock(pool_mutex);
  pool().push_back(stack);
}

}  // namespace simt::detail
