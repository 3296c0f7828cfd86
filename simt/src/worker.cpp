// The scheduler of the SIMT engine: sets up the fibers (one per CUDA thread) of the blocks a
// worker keeps resident, runs them round by round in the launch's order, and turns a thread's
// exit while others wait, a deadlock or a stack overflow into the launch's error instead of a
// crash or a hang. Barriers, warp collectives, shared and global memory are in their own files.
//
// A fiber runs until it waits (barrier, collective) or exits, then switches back here. A
// barrier or collective completes when its last participant arrives: that fiber computes every
// participant's result, marks the others runnable and goes on. A round in which no fiber is
// runnable while some have not exited is a deadlock.
#include <algorithm>
#include <cstring>
#include <new>

#include "engine.hpp"
#include "fault_text.hpp"
#include "sanitizer_hooks.hpp"

namespace simt::detail {

thread_local Worker* tls_worker = nullptr;
thread_local ThreadContext* tls_thread = nullptr;

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint3 unflatten(std::uint64_t linear, dim3 extent) {
  uint3 index;
  index.x = static_cast<unsigned>(linear % extent.x);
  index.y = static_cast<unsigned>(linear / extent.x % extent.y);
  index.z = static_cast<unsigned>(linear / extent.x / extent.y);
  return index;
}

}  // namespace

bool same_location(SourceLocation a, SourceLocation b) { return a.line == b.line && std::strcmp(a.file, b.file) == 0; }

// ---- Fiber switching ------------------------------------------------------------------------

void fiber_main(ctx::transfer_t transfer) {
  Worker* worker = tls_worker;
  worker->scheduler_ = transfer.fctx;
  finish_switch(nullptr, &worker->scheduler_stack_bottom_, &worker->scheduler_stack_size_);
  // An exception must not unwind across the fiber boundary, and the fiber must not switch away
  // while a catch block holds the thread's exception state: catch, leave the handler, then fail.
  FaultText thrown;
  bool threw = false;
  try {
    worker->launch_.entry(worker->launch_.closure);
  } catch (const std::bad_alloc&) {  // the kernel's own or the engine's bookkeeping for its accesses
    thrown << "out of host memory while running the kernel (std::bad_alloc)";
    threw = true;
  } catch (const std::exception& e) {
    thrown << "the kernel threw " << e.what();
    threw = true;
  } catch (...) {
    thrown << "the kernel threw an exception of unknown type";
    threw = true;
  }
  if (threw) worker->fail(thrown, SourceLocation{"", 0});
  worker->on_thread_exit();
  worker->leave_forever();
}

void Worker::resume(Fiber* fiber) {
  current_ = fiber;
  tls_thread = &fiber->context;
  tsan_switch(fiber->tsan_fiber, fiber->starting);  // a start follows the block's setup
  fiber->starting = false;
  start_switch(&scheduler_fake_stack_, fiber->stack->usable, fiber->stack->usable_bytes);
  ctx::transfer_t back = ctx::jump_fcontext(fiber->resume_point, fiber);
  finish_switch(scheduler_fake_stack_, nullptr, nullptr);
  fiber->resume_point = back.fctx;
  current_ = nullptr;
  tls_thread = nullptr;
}

void Worker::suspend() {
  Fiber* fiber = current_;
  tsan_switch(tsan_scheduler_, false);
  start_switch(&fiber->fake_stack, scheduler_stack_bottom_, scheduler_stack_size_);
  ctx::transfer_t back = ctx::jump_fcontext(scheduler_, nullptr);
  finish_switch(fiber->fake_stack, &scheduler_stack_bottom_, &scheduler_stack_size_);
  scheduler_ = back.fctx;
}

void Worker::leave_forever() {
  current_->state = FiberState::kDone;
  tsan_switch(tsan_scheduler_, false);
  start_switch(nullptr, scheduler_stack_bottom_, scheduler_stack_size_);
  ctx::jump_fcontext(scheduler_, nullptr);
  __builtin_unreachable();
}

// ---- Errors ---------------------------------------------------------------------------------

void describe(FaultText& text, const Fiber* fiber) {
  text << "thread " << Dim{fiber->context.thread_idx} << " of block " << Dim{fiber->context.block_idx};
}

void Worker::record_fault(const FaultText& what, const Fiber* fiber, SourceLocation loc) {
  FaultText message;
  message << launch_.name << ": " << what.c_str();
  if (loc.line > 0) message << " at " << loc;
  if (fiber != nullptr) {
    message << " (";
    describe(message, fiber);
    message << ")";
  }
  launch_.record_error(message.c_str());
}

void Worker::fail(const FaultText& what, SourceLocation loc) {
  record_fault(what, current_, loc);
  leave_forever();
}

bool Worker::handle_stack_fault(const void* address) {
  if (current_ == nullptr || !current_->stack->guard_contains(address)) return false;
  fail(FaultText() << "stack overflow: the thread used more than " << current_->stack->usable_bytes
                   << " bytes of fiber stack (CUNORM_SIMT_STACK_KB raises it)",
       SourceLocation{"", 0});
}

void Worker::report_deadlock() {
  FaultText what("deadlock: no thread can proceed;");
  int listed = 0;
  const Fiber* first = nullptr;
  for (const Fiber* f : order_) {
    if (f->state == FiberState::kDone) continue;
    if (first == nullptr) first = f;
    if (listed == 4) {
      what << " ...";
      break;
    }
    what << (listed++ == 0 ? " " : ", ");
    describe(what, f);
    what << " waits at ";
    if (f->state == FiberState::kAtBarrier) {
      what << barrier_name(f->block->barrier_kind) << " (" << f->wait_loc << ")";
    } else if (f->state == FiberState::kAtGridBarrier) {
      what << "simt::grid_sync (" << f->wait_loc << ")";
    } else {
      const Warp& warp = f->block->warps[f->warp];
      for (const PendingCollective& p : warp.pending) {
        if (p.arrived & (1u << f->lane)) {
          what << collective_name(p.kind) << " (" << p.loc << ") with mask " << Mask{p.mask} << ", lanes "
               << Mask{p.mask & ~p.arrived} << " missing";
        }
      }
    }
  }
  record_fault(what, first, SourceLocation{"", 0});
}

// ---- Blocks ---------------------------------------------------------------------------------

Worker::Worker(LaunchState& launch)
    : launch_(launch), tsan_scheduler_(tsan_current_fiber()), traffic_(launch.watched.size()) {
  prepare_thread_for_fibers();
}

Worker::~Worker() {
  release_blocks();
  for (auto& fiber : fibers_) {
    if (fiber->engine_calls > 0) {  // abandoned in a device API call by a fault: TSan wants it closed
      tsan_switch(fiber->tsan_fiber, false);
      for (; fiber->engine_calls > 0; --fiber->engine_calls) tsan_ignore_end();
      tsan_switch(tsan_scheduler_, false);
    }
    tsan_destroy_fiber(fiber->tsan_fiber);
  }
  release_shared_arenas();
}

void Worker::release_blocks() {
  for (auto& fiber : fibers_) {
    if (fiber->stack != nullptr) release_stack(fiber->stack);
    fiber->stack = nullptr;
  }
}

bool Worker::prepare_blocks(std::uint64_t first, std::uint64_t count) {
  const LaunchConfig& config = launch_.config;
  const unsigned threads = launch_.threads_per_block;
  if (!reserve_shared_arenas(count)) return false;
  const std::size_t stack_bytes =
      launch_.options.stack_bytes != 0 ? launch_.options.stack_bytes : default_stack_bytes();
  const std::size_t needed_fibers = static_cast<std::size_t>(threads) * count;
  while (fibers_.size() < needed_fibers) {
    fibers_.push_back(std::make_unique<Fiber>());
    fibers_.back()->tsan_fiber = tsan_create_fiber();
  }
  while (blocks_.size() < count) blocks_.push_back(std::make_unique<Block>());
  order_.clear();
  for (std::uint64_t b = 0; b < count; ++b) {
    Block& block = *blocks_[b];
    block = Block{};
    block.linear = launch_.block_at(first + b);
    block.index = unflatten(block.linear, config.grid);
    prepare_shared(block, b);
    block.warps.resize((threads + 31) / 32);
    if (!launch_.watched.empty()) block.sectors.reset((threads + 31) / 32);
    for (Warp& warp : block.warps) warp.pending.reserve(32);
    for (unsigned t = 0; t < threads; ++t) {
      Fiber& fiber = *fibers_[b * threads + t];
      if (fiber.stack == nullptr) fiber.stack = acquire_stack(stack_bytes);
      if (fiber.stack == nullptr) {
        record_fault(FaultText("could not map a fiber stack"), nullptr, SourceLocation{"", 0});
        return false;
      }
      fiber.context.thread_idx = unflatten(t, config.block);
      fiber.context.block_idx = block.index;
      fiber.context.block_dim = config.block;
      fiber.context.grid_dim = config.grid;
      fiber.resume_point = ctx::make_fcontext(fiber.stack->top(), fiber.stack->usable_bytes, fiber_main);
      fiber.fake_stack = nullptr;
      fiber.starting = true;
      fiber.state = FiberState::kRunnable;
      fiber.block = &block;
      fiber.linear = t;
      fiber.lane = t % 32;
      fiber.warp = t / 32;
      block.threads.push_back(&fiber);
      block.warps[fiber.warp].existing |= 1u << fiber.lane;
      block.warps[fiber.warp].lanes[fiber.lane] = &fiber;
      order_.push_back(&fiber);
    }
  }
  grid_arrived_ = 0;
  grid_exited_ = 0;
  grid_threads_ = static_cast<unsigned>(needed_fibers);
  return true;
}
void Worker::run_resident(std::uint64_t first, std::uint64_t count) {
  if (!prepare_blocks(first, count)) return;
  if (launch_.options.order == Order::kReverse) std::reverse(order_.begin(), order_.end());
  rng_state_ = launch_.options.seed * 0x2545f4914f6cdd1dULL + launch_.block_at(first);
  std::size_t unfinished = order_.size();
  while (unfinished > 0 && !launch_.failed.load(std::memory_order_relaxed)) {
    if (launch_.options.order == Order::kRandom) {
      for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[splitmix64(rng_state_) % i]);
    }
    bool ran = false;
    for (Fiber* fiber : order_) {
      if (fiber->state != FiberState::kRunnable) continue;
      ran = true;
      resume(fiber);
      if (fiber->state == FiberState::kDone) --unfinished;
      if (launch_.failed.load(std::memory_order_relaxed)) break;
    }
    if (!ran && unfinished > 0) {
      report_deadlock();
      break;
    }
  }
  tsan_collect_blocks();
  if (!launch_.failed.load(std::memory_order_relaxed)) check_redzones(count);
  if (!launch_.watched.empty()) {
    for (std::uint64_t b = 0; b < count; ++b) blocks_[b]->sectors.flush(traffic_);
  }
  std::lock_guard<std::mutex> lock(launch_.mutex);
  for (std::uint64_t b = 0; b < count; ++b) {
    launch_.static_shared_bytes = std::max(launch_.static_shared_bytes, blocks_[b]->static_bytes);
  }
}

void Worker::run_queue() {
  tls_worker = this;
  while (!launch_.failed.load(std::memory_order_relaxed)) {
    const std::uint64_t i = launch_.next_block.fetch_add(1);
    if (i >= launch_.total_blocks) break;
    run_resident(i, 1);
  }
  tls_worker = nullptr;
  publish_traffic();
}

void Worker::run_grid() {
  tls_worker = this;
  run_resident(0, launch_.total_blocks);
  tls_worker = nullptr;
  publish_traffic();
}

void Worker::on_thread_exit() {
  Fiber* fiber = current_;
  Block& block = *fiber->block;
  if (block.barrier_arrived > 0) {
    fail(FaultText() << "thread exited while " << block.barrier_arrived << " threads of its block wait at "
                     << barrier_name(block.barrier_kind) << " (" << block.barrier_loc << ")",
         SourceLocation{"", 0});
  }
  if (grid_arrived_ > 0) {
    fail(FaultText() << "thread exited while " << grid_arrived_ << " threads wait at simt::grid_sync (" << grid_loc_
                     << ")",
         SourceLocation{"", 0});
  }
  Warp& warp = block.warps[fiber->warp];
  const unsigned bit = 1u << fiber->lane;
  for (const PendingCollective& p : warp.pending) {
    if (p.mask & bit) {
      fail(FaultText() << "thread exited while lanes " << Mask{p.arrived} << " of its warp wait for it at "
                       << collective_name(p.kind) << " (" << p.loc << ")",
           SourceLocation{"", 0});
    }
  }
  warp.exited |= bit;
  if (block.exited++ == 0) block.first_exited = fiber;
  ++grid_exited_;
}

}  // namespace simt::detail
