// Per-thread countdowns of the fault injection hook (see simt/fault_injection.hpp).
#include "simt/fault_injection.hpp"

namespace simt {
namespace {

// Remaining events before the failing one, per site; 0: disarmed.
thread_local std::uint64_t tls_countdown[2] = {0, 0};

std::uint64_t& countdown(FaultSite site) { return tls_countdown[site == FaultSite::kLaunch ? 1 : 0]; }

}  // namespace

void inject_fault(FaultSite site, std::uint64_t k) { countdown(site) = k; }

bool injected_fault_pending(FaultSite site) { return countdown(site) != 0; }

bool take_injected_fault(FaultSite site) {
  std::uint64_t& left = countdown(site);
  if (left == 0) return false;
  return --left == 0;
}

}  // namespace simt
