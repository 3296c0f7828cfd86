// Coalescing as a GPU sees it: the global accesses of a block's warps, grouped into warp-wide
// requests and counted in 32-byte sectors. The k-th execution of one load/store call site by the
// lanes of a warp is one request (what the warp issues when it runs that access converged); its
// sectors are the distinct 32-byte segments its lanes touch. Recorded only while a TrafficWatch
// is active, and attributed to the watched buffer of each access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "simt/device.hpp"
#include "simt/launch.hpp"

namespace simt::detail {

class SectorLog {
 public:
  void reset(unsigned warps);
  void record(unsigned warp, unsigned lane, SourceLocation site, const void* address, std::size_t bytes, int buffer);
  // Adds this block's requests, sectors and bytes into `traffic` (indexed by buffer), and clears.
  void flush(std::vector<BufferTraffic>& traffic);

 private:
  struct Access {
    std::uintptr_t address;
    std::uint32_t bytes;
    std::int32_t buffer;
  };
  struct Site {
    SourceLocation location;
    std::vector<Access> lanes[32];
  };
  std::vector<std::vector<Site>> warps_;
};

}  // namespace simt::detail
