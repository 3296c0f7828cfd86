// Publication of global writes: what the engine models of CUDA's memory model across blocks. A
// block's global store becomes visible to other blocks at the block's next __threadfence() (by
// any of its threads), at a grid barrier, or at the kernel's end; a load by another block before
// that is reported. Stores within a block need no fence (the block's own barriers order them, and
// races within a block are the thread orders' and ThreadSanitizer's business). Each word's last
// store is stamped in the write shadow (write_shadow.hpp) with its write epoch.
#include "engine.hpp"
#include "fault_text.hpp"
#include "write_shadow.hpp"

namespace simt::detail {

void Worker::note_global_store(const void* address, std::size_t bytes) {
  Block& block = *current_->block;
  if (block.write_epoch == kNoEpoch) {
    {
      std::lock_guard<SpinLock> lock(launch_.epochs_lock);
      if (launch_.write_epochs.size() < kShadowEpochLimit) {
        block.write_epoch = static_cast<std::uint32_t>(launch_.write_epochs.size());
        launch_.write_epochs.push_back(WriteEpoch{block.linear, block.index, false});
      }
    }
    if (block.write_epoch == kNoEpoch) {  // fail() leaves the fiber: never with the lock held
      fail(FaultText() << "more than " << kShadowEpochLimit
                       << " write epochs (a block's stores between two __threadfence() calls) in one launch: the "
                          "write shadow cannot number them",
           SourceLocation{"", 0});
    }
  }
  const auto begin = reinterpret_cast<std::uintptr_t>(address);
  for (std::uintptr_t word = begin / kShadowWordBytes; word <= (begin + bytes - 1) / kShadowWordBytes; ++word) {
    std::uint64_t* entry = shadow_entry(word, true);
    if (entry == nullptr) continue;
    // Bytes this epoch stored before join the new ones; another epoch's entry is replaced.
    const std::uint32_t mask = word_byte_mask(word, begin, bytes);
    std::uint64_t old = __atomic_load_n(entry, __ATOMIC_RELAXED);
    std::uint64_t stamp = 0;
    do {
      const bool same = shadow_generation(old) == launch_.generation && shadow_epoch(old) == block.write_epoch;
      stamp = shadow_value(launch_.generation, block.write_epoch, same ? shadow_byte_mask(old) | mask : mask);
    } while (!__atomic_compare_exchange_n(entry, &old, stamp, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  }
}

void Worker::check_global_load(const void* address, std::size_t bytes, SourceLocation loc) {
  const Block& block = *current_->block;
  const auto begin = reinterpret_cast<std::uintptr_t>(address);
  for (std::uintptr_t word = begin / kShadowWordBytes; word <= (begin + bytes - 1) / kShadowWordBytes; ++word) {
    const std::uint64_t* entry = shadow_entry(word, false);
    if (entry == nullptr) continue;
    const std::uint64_t stamp = __atomic_load_n(entry, __ATOMIC_RELAXED);
    if (shadow_generation(stamp) != launch_.generation) continue;  // not stored to by this launch
    const std::uint32_t mask = shadow_byte_mask(stamp) & word_byte_mask(word, begin, bytes);
    if (mask == 0) continue;  // the store covered other bytes of the word
    const std::uint32_t epoch = shadow_epoch(stamp);
    if (epoch == block.write_epoch) continue;  // this block's own current stores
    WriteEpoch writer;
    {
      std::lock_guard<SpinLock> lock(launch_.epochs_lock);
      writer = launch_.write_epochs[epoch];
    }
    if (writer.published || writer.block == block.linear) continue;
    const unsigned first_byte = static_cast<unsigned>(__builtin_ctz(mask));
    fail(FaultText() << "global load of bytes that block " << Dim{writer.block_index}
                     << " stored and has not published: another block sees a store only after the writer's "
                        "__threadfence() (or a grid barrier, or the kernel's end); load at "
                     << Address{reinterpret_cast<const void*>(word * kShadowWordBytes + first_byte)},
         loc);
  }
}

void Worker::thread_fence() {
  Block& block = *current_->block;
  if (block.write_epoch == kNoEpoch) return;
  {
    std::lock_guard<SpinLock> lock(launch_.epochs_lock);
    launch_.write_epochs[block.write_epoch].published = true;
  }
  block.write_epoch = kNoEpoch;
}

void Worker::publish_all_writes() {
  {
    std::lock_guard<SpinLock> lock(launch_.epochs_lock);
    for (WriteEpoch& epoch : launch_.write_epochs) epoch.published = true;
  }
  for (auto& block : blocks_) block->write_epoch = kNoEpoch;
}

}  // namespace simt::detail
