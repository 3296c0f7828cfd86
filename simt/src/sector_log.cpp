// Warp-wide requests and their sectors (see sector_log.hpp).
#include "sector_log.hpp"

#include <algorithm>
#include <cstring>

namespace simt::detail {

void SectorLog::reset(unsigned warps) {
  warps_.clear();
  warps_.resize(warps);
}

void SectorLog::record(unsigned warp, unsigned lane, SourceLocation site, const void* address, std::size_t bytes,
                       int buffer) {
  std::vector<Site>& sites = warps_[warp];
  Site* found = nullptr;
  for (Site& s : sites) {
    if (s.location.line == site.line && std::strcmp(s.location.file, site.file) == 0) {
      found = &s;
      break;
    }
  }
  if (found == nullptr) {
    sites.push_back(Site{site, {}});
    found = &sites.back();
  }
  found->lanes[lane].push_back(
      Access{reinterpret_cast<std::uintptr_t>(address), static_cast<std::uint32_t>(bytes), buffer});
}

void SectorLog::flush(std::vector<BufferTraffic>& traffic) {
  std::vector<std::uintptr_t> segments;
  for (std::vector<Site>& sites : warps_) {
    for (Site& site : sites) {
      std::size_t requests = 0;
      for (const std::vector<Access>& lane : site.lanes) requests = std::max(requests, lane.size());
      for (std::size_t k = 0; k < requests; ++k) {
        segments.clear();
        std::uint64_t bytes = 0;
        int buffer = -1;
        for (const std::vector<Access>& lane : site.lanes) {
          if (k >= lane.size()) continue;
          const Access& a = lane[k];
          for (std::uintptr_t s = a.address / 32; s <= (a.address + a.bytes - 1) / 32; ++s) segments.push_back(s);
          bytes += a.bytes;
          if (buffer < 0) buffer = a.buffer;
        }
        if (buffer < 0) continue;  // an access outside every watched buffer
        std::sort(segments.begin(), segments.end());
        const std::size_t sectors = static_cast<std::size_t>(std::unique(segments.begin(), segments.end()) - segments.begin());
        BufferTraffic& t = traffic[static_cast<std::size_t>(buffer)];
        t.requests += 1;
        t.sectors += sectors;
        t.request_bytes += bytes;
      }
    }
    sites.clear();
  }
}

}  // namespace simt::detail
