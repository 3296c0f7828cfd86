// Fault injection for tests: make the k-th device allocation or kernel launch from now fail, as a
// cudaMalloc or a launch can fail on a GPU, so that tests can check how the library handles each
// failure point of an op (the status it returns, what it leaves written, whether the handle stays
// usable). Counted per host thread: injections armed on one thread never hit another's calls.
// Off unless a test arms it; an unarmed check is one thread-local read.
#pragma once

#include <cstdint>

namespace simt {

enum class FaultSite { kAllocation, kLaunch };

// The k-th event at `site` on this host thread from now fails (k = 1: the next one); k = 0
// disarms. Re-arming replaces the previous countdown.
void inject_fault(FaultSite site, std::uint64_t k);

// Whether an injection at `site` is armed and has not fired yet (an op that made fewer than k
// events leaves it pending).
bool injected_fault_pending(FaultSite site);

// Called at each event by whoever performs it (simt::launch for kLaunch, the SIMT backend's device
// allocation for kAllocation): counts the event and returns true when it is the one to fail.
bool take_injected_fault(FaultSite site);

}  // namespace simt
