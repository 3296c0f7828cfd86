// The write shadow (see write_shadow.hpp): a two-level table over the 47-bit user address space.
// The first level holds one pointer per 2 MiB of application memory (512 MiB reserved, touched
// only where stores happen); each second-level chunk holds the 8-byte entries of that 2 MiB's
// words, carved from large reservations so that the process's memory-mapping count stays small
// (fiber stacks need it).
#include "write_shadow.hpp"

#include <sys/mman.h>

#include <atomic>
#include <mutex>

namespace simt::detail {
namespace {

constexpr int kAddressBits = 47;
constexpr int kChunkBits = 21;  // 2 MiB of application memory per chunk
constexpr std::size_t kTopEntries = std::size_t{1} << (kAddressBits - kChunkBits);
constexpr std::size_t kWordsPerChunk = (std::size_t{1} << kChunkBits) / kShadowWordBytes;
constexpr std::size_t kChunkBytes = kWordsPerChunk * sizeof(std::uint64_t);
constexpr std::size_t kChunksPerSlab = 4096;  // 16 GiB of reserved shadow per mapping

std::atomic<std::uint32_t> generation_counter{0};

void* reserve(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

struct ShadowTable {
  std::atomic<std::uint64_t*>* top = nullptr;
  std::mutex mutex;  // guards the slab below and chunk creation
  char* slab = nullptr;
  std::size_t slab_used = kChunksPerSlab;
  bool failed = false;

  ShadowTable() {
    top = static_cast<std::atomic<std::uint64_t*>*>(reserve(kTopEntries * sizeof(std::atomic<std::uint64_t*>)));
    if (top == nullptr) failed = true;
  }

  std::uint64_t* create_chunk(std::size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    std::uint64_t* chunk = top[index].load(std::memory_order_acquire);
    if (chunk != nullptr || failed) return chunk;
    if (slab_used == kChunksPerSlab) {
      slab = static_cast<char*>(reserve(kChunksPerSlab * kChunkBytes));
      if (slab == nullptr) {
        failed = true;
        return nullptr;
      }
      slab_used = 0;
    }
    chunk = reinterpret_cast<std::uint64_t*>(slab + slab_used++ * kChunkBytes);
    top[index].store(chunk, std::memory_order_release);
    return chunk;
  }
};

ShadowTable& table() {
  static ShadowTable* shadow = new ShadowTable();  // lives until exit, like the memory it maps
  return *shadow;
}

}  // namespace

std::uint32_t next_shadow_generation() {
  std::uint32_t g = generation_counter.fetch_add(1, std::memory_order_relaxed) + 1;
  while (g == 0) g = generation_counter.fetch_add(1, std::memory_order_relaxed) + 1;  // after 2^32 launches
  return g;
}

std::uint64_t* shadow_entry(std::uintptr_t word, bool create) {
  const std::size_t index = word / kWordsPerChunk;
  if (index >= kTopEntries) return nullptr;
  ShadowTable& shadow = table();
  if (shadow.top == nullptr) return nullptr;
  std::uint64_t* chunk = shadow.top[index].load(std::memory_order_acquire);
  if (chunk == nullptr) {
    if (!create) return nullptr;
    chunk = shadow.create_chunk(index);
    if (chunk == nullptr) return nullptr;
  }
  return chunk + word % kWordsPerChunk;
}

}  // namespace simt::detail
