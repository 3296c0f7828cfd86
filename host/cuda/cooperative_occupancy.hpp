// The resident blocks per SM of the cooperative kernels one CUDA handle has launched, by (kernel,
// threads per block, dynamic shared bytes): each configuration is queried from the runtime once
// (cudaOccupancyMaxActiveBlocksPerMultiprocessor), so that repeated calls make no occupancy query
// on their success path. Held in place (no heap); a handle's calls never overlap (docs/api.md,
// thread safety), so it needs no lock; a handle has one device, so the device is not a key.
#pragma once

#include <array>
#include <cstddef>

namespace cunorm {

class CooperativeOccupancy {
 public:
  // The blocks per SM recorded for the configuration, or -1 when it was never queried.
  int find(const void* kernel, int threads, std::size_t shared_bytes) const {
    for (int i = 0; i < count_; ++i) {
      const Entry& e = entries_[i];
      if (e.kernel == kernel && e.threads == threads && e.shared_bytes == shared_bytes) return e.per_sm;
    }
    return -1;
  }
  // Records a queried configuration; past kCapacity it replaces the oldest.
  void add(const void* kernel, int threads, std::size_t shared_bytes, int per_sm) {
    entries_[next_] = Entry{kernel, threads, shared_bytes, per_sm};
    next_ = (next_ + 1) % kCapacity;
    if (count_ < kCapacity) ++count_;
  }

 private:
  struct Entry {
    const void* kernel;
    int threads;
    std::size_t shared_bytes;
    int per_sm;
  };
  static constexpr int kCapacity = 32;  // more than the cooperative kernels one handle launches
  std::array<Entry, kCapacity> entries_{};
  int count_ = 0;
  int next_ = 0;
};

}  // namespace cunorm
