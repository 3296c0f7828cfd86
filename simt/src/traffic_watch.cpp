// TrafficWatch: the DRAM footprint of the launches a host thread makes while a watch lives, as
// two bits per 32-byte sector of each watched buffer (read before any write of the watch, and
// written), set by the workers' global accesses (global_access.cpp), several at once.
#include <algorithm>

#include "engine.hpp"

namespace simt {
namespace {

thread_local TrafficWatch* tls_watch = nullptr;

}  // namespace

struct TrafficWatch::Sectors {
  std::uintptr_t first = 0;                      // the sector number (address / 32) of byte 0
  std::vector<std::atomic<std::uint64_t>> read;  // read before any write of the watch
  std::vector<std::atomic<std::uint64_t>> written;
};

namespace {

// Sets bit i of `bits` unless it is set (the load spares most accesses the atomic write).
void set_bit(std::vector<std::atomic<std::uint64_t>>& bits, std::uintptr_t i) {
  const std::uint64_t mask = std::uint64_t{1} << (i % 64);
  if ((bits[i / 64].load(std::memory_order_relaxed) & mask) == 0)
    bits[i / 64].fetch_or(mask, std::memory_order_relaxed);
}
bool bit(const std::vector<std::atomic<std::uint64_t>>& bits, std::uintptr_t i) {
  return (bits[i / 64].load(std::memory_order_relaxed) >> (i % 64) & 1) != 0;
}
std::uint64_t sector_bytes(const std::vector<std::atomic<std::uint64_t>>& bits) {
  std::uint64_t sectors = 0;
  for (const std::atomic<std::uint64_t>& word : bits) {
    sectors += static_cast<std::uint64_t>(__builtin_popcountll(word.load(std::memory_order_relaxed)));
  }
  return 32 * sectors;
}

}  // namespace

TrafficWatch::TrafficWatch(std::vector<Buffer> buffers) : buffers_(std::move(buffers)), previous_(tls_watch) {
  for (const Buffer& b : buffers_) {
    auto sectors = std::make_unique<Sectors>();
    const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(b.begin);
    sectors->first = begin / 32;
    const std::uintptr_t count = b.bytes == 0 ? 0 : (begin + b.bytes - 1) / 32 - sectors->first + 1;
    sectors->read = std::vector<std::atomic<std::uint64_t>>((count + 63) / 64);
    sectors->written = std::vector<std::atomic<std::uint64_t>>((count + 63) / 64);
    sectors_.push_back(std::move(sectors));
  }
  tls_watch = this;
}
TrafficWatch::~TrafficWatch() { tls_watch = previous_; }

void TrafficWatch::touch(std::size_t index, const void* address, std::size_t bytes, bool write) {
  Sectors& s = *sectors_[index];
  const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(address);
  // Only the part within the buffer (an access may run past its end into another).
  const std::uintptr_t end = std::min<std::uintptr_t>(
      at + bytes, reinterpret_cast<std::uintptr_t>(buffers_[index].begin) + buffers_[index].bytes);
  for (std::uintptr_t sector = at / 32; at < end && sector <= (end - 1) / 32; ++sector) {
    const std::uintptr_t i = sector - s.first;
    if (write) {
      set_bit(s.written, i);
    } else if (!bit(s.written, i)) {
      set_bit(s.read, i);
    }
  }
}

TrafficWatch::Footprint TrafficWatch::footprint(std::size_t index) const {
  Footprint f;
  f.read = sector_bytes(sectors_[index]->read);
  f.written = sector_bytes(sectors_[index]->written);
  return f;
}

namespace detail {

TrafficWatch* active_traffic_watch() { return tls_watch; }

}  // namespace detail
}  // namespace simt
