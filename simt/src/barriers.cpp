// Block barriers (__syncthreads and its count/and/or forms) and the grid barrier of a
// cooperative launch: every participant must arrive at the same call, none may have exited; the
// last to arrive computes the result and releases the others.
#include "engine.hpp"
#include "fault_text.hpp"

namespace simt::detail {

const char* barrier_name(BlockBarrier kind) {
  switch (kind) {
    case BlockBarrier::kSync: return "__syncthreads";
    case BlockBarrier::kCount: return "__syncthreads_count";
    case BlockBarrier::kAnd: return "__syncthreads_and";
    case BlockBarrier::kOr: return "__syncthreads_or";
  }
  return "barrier";
}

int Worker::block_barrier(BlockBarrier kind, int predicate, SourceLocation loc) {
  Fiber* fiber = current_;
  Block& block = *fiber->block;
  if (block.exited > 0) {
    FaultText what;
    what << barrier_name(kind) << " reached after ";
    describe(what, block.first_exited);
    fail(what << " exited; every thread of a block must reach each barrier", loc);
  }
  if (block.barrier_arrived == 0) {
    block.barrier_kind = kind;
    block.barrier_loc = loc;
    block.barrier_first = fiber;
    block.barrier_accumulator = kind == BlockBarrier::kAnd ? 1 : 0;
  } else if (kind != block.barrier_kind || !same_location(loc, block.barrier_loc)) {
    FaultText what;
    what << "divergent barrier: this thread waits at " << barrier_name(kind) << " while ";
    describe(what, block.barrier_first);
    fail(what << " waits at " << barrier_name(block.barrier_kind) << " (" << block.barrier_loc << ")", loc);
  }
  const int p = predicate != 0;
  switch (kind) {
    case BlockBarrier::kSync: break;
    case BlockBarrier::kCount: block.barrier_accumulator += p; break;
    case BlockBarrier::kAnd: block.barrier_accumulator &= p; break;
    case BlockBarrier::kOr: block.barrier_accumulator |= p; break;
  }
  fiber->wait_loc = loc;
  if (++block.barrier_arrived == block.threads.size()) {
    tsan_barrier_edges(block.threads.data(), block.threads.size());
    const int result = block.barrier_accumulator;
    for (Fiber* other : block.threads) {
      if (other->state == FiberState::kAtBarrier) {
        other->state = FiberState::kRunnable;
        other->result = static_cast<std::uint64_t>(result);
      }
    }
    block.barrier_arrived = 0;
    return result;
  }
  fiber->state = FiberState::kAtBarrier;
  suspend();
  return static_cast<int>(fiber->result);
}

void Worker::grid_barrier(SourceLocation loc) {
  if (!launch_.config.cooperative) {
    fail(FaultText("simt::grid_sync in a kernel that was not launched cooperatively"), loc);
  }
  if (grid_exited_ > 0) fail(FaultText("simt::grid_sync reached after a thread of the grid exited"), loc);
  Fiber* fiber = current_;
  if (grid_arrived_ == 0) {
    grid_loc_ = loc;
  } else if (!same_location(loc, grid_loc_)) {
    fail(FaultText() << "divergent grid barrier: this thread waits here while others wait at " << grid_loc_, loc);
  }
  fiber->wait_loc = loc;
  if (++grid_arrived_ == grid_threads_) {
    publish_all_writes();  // grid.sync() orders every thread's earlier writes before everyone's later ones
    tsan_barrier_edges(order_.data(), order_.size());
    for (Fiber* other : order_) {
      if (other->state == FiberState::kAtGridBarrier) other->state = FiberState::kRunnable;
    }
    grid_arrived_ = 0;
    return;
  }
  fiber->state = FiberState::kAtGridBarrier;
  suspend();
}
}  // namespace simt::detail
