// The engine's worker threads, created on first need and kept for later launches instead of
// started and joined by every launch, and recreated in a child process after fork() (a PyTorch
// DataLoader worker forks), where the parent's threads do not exist.
#pragma once

#include <functional>

namespace simt::detail {

// Runs `job` on `copies` threads at once, the calling thread's and copies - 1 of the pool's, and
// returns when every copy that started has returned. The copies not yet started when the caller's
// own returned are withdrawn: `job` must be one that any copy completes alone (a launch's workers
// take blocks from one queue until it is empty), so a launch never waits for threads busy with
// another host thread's launch. Fewer threads run it when the system refuses to create more.
void run_on_workers(int copies, const std::function<void()>& job);

}  // namespace simt::detail
