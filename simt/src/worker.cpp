// The scheduler of the SIMT engine: runs the fibers of the resident blocks round by round in
// the launch's order, gathers block barriers and warp collectives, and turns every misuse
// (divergent barriers, exits while others wait, bad masks, deadlock, faults) into the launch's
// error instead of a crash or a hang.
//
// A fiber runs until it waits (barrier, collective) or exits, then switches back here. A
// barrier or collective completes when its last participant arrives: that fiber computes every
// participant's result, marks the others runnable and goes on. A round in which no fiber is
// runnable while some have not exited is a deadlock.
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

#include "engine.hpp"
#include "fault_text.hpp"
#include "sanitizer_hooks.hpp"
#include "write_shadow.hpp"

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

const char* barrier_name(BlockBarrier kind) {
  switch (kind) {
    case BlockBarrier::kSync: return "__syncthreads";
    case BlockBarrier::kCount: return "__syncthreads_count";
    case BlockBarrier::kAnd: return "__syncthreads_and";
    case BlockBarrier::kOr: return "__syncthreads_or";
  }
  return "barrier";
}

std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

}  // namespace

bool same_location(SourceLocation a, SourceLocation b) { return a.line == b.line && std::strcmp(a.file, b.file) == 0; }

const char* collective_name(Collective kind) {
  switch (kind) {
    case Collective::kShflIdx: return "__shfl_sync";
    case Collective::kShflUp: return "__shfl_up_sync";
    case Collective::kShflDown: return "__shfl_down_sync";
    case Collective::kShflXor: return "__shfl_xor_sync";
    case Collective::kBallot: return "__ballot_sync";
    case Collective::kAny: return "__any_sync";
    case Collective::kAll: return "__all_sync";
    case Collective::kSyncWarp: return "__syncwarp";
  }
  return "collective";
}

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
  message << launch_.config.name << ": " << what.c_str();
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

void Worker::publish_traffic() {
  std::lock_guard<std::mutex> lock(launch_.mutex);
  launch_.bytes_read += bytes_read_;
  launch_.bytes_written += bytes_written_;
  for (std::size_t i = 0; i < traffic_.size(); ++i) {
    launch_.traffic[i].bytes_read += traffic_[i].bytes_read;
    launch_.traffic[i].bytes_written += traffic_[i].bytes_written;
    launch_.traffic[i].requests += traffic_[i].requests;
    launch_.traffic[i].sectors += traffic_[i].sectors;
    launch_.traffic[i].request_bytes += traffic_[i].request_bytes;
  }
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
  if (arena_ != nullptr) munmap(arena_, arena_bytes_);
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
  // Each block's shared arena holds its dynamic part and up to 48 KiB of static allocations;
  // reserved without backing, so untouched bytes cost nothing.
  arena_per_block_ = round_up(config.dynamic_shared_bytes + launch_.target->shared_per_block +
                                  (kMaxStaticSharedVariables + 1) * (kSharedRedzone + 16),
                              4096);
  const std::size_t arena_needed = arena_per_block_ * count;
  if (arena_needed > arena_bytes_) {
    if (arena_ != nullptr) munmap(arena_, arena_bytes_);
    void* arena =
        mmap(nullptr, arena_needed, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED) {
      arena_ = nullptr;
      arena_bytes_ = 0;
      record_fault(FaultText("could not reserve shared memory for the blocks"), nullptr, SourceLocation{"", 0});
      return false;
    }
    arena_ = static_cast<unsigned char*>(arena);
    arena_bytes_ = arena_needed;
  }
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
    block.shared = arena_ + arena_per_block_ * b;
    unpoison_memory(block.shared, arena_per_block_);
    std::memset(block.shared, 0xff, config.dynamic_shared_bytes);  // NaN in every float type
    add_redzone(block, config.dynamic_shared_bytes);
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

void Worker::add_redzone(Block& block, std::size_t offset) {
  std::memset(block.shared + offset, kSharedCanary, kSharedRedzone);
  block.redzones.push_back(offset);
  block.shared_used = offset + kSharedRedzone;
}

// After the blocks ran: a changed canary means a kernel wrote past a shared allocation.
bool Worker::check_redzones(std::uint64_t count) {
  for (std::uint64_t b = 0; b < count; ++b) {
    Block& block = *blocks_[b];
    for (std::size_t offset : block.redzones) {
      for (std::size_t i = 0; i < kSharedRedzone; ++i) {
        if (block.shared[offset + i] == kSharedCanary) continue;
        FaultText what;
        what << "shared memory written out of bounds: byte " << (offset + i) << " of block " << Dim{block.index}
             << ", past ";
        if (offset == launch_.config.dynamic_shared_bytes) {
          what << "the " << launch_.config.dynamic_shared_bytes << " bytes of dynamic shared memory";
        } else {
          what << "a static shared variable";
        }
        record_fault(what, nullptr, SourceLocation{"", 0});
        return false;
      }
    }
  }
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

// ---- Barriers -------------------------------------------------------------------------------

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

std::uint64_t Worker::warp_collective(Collective kind, unsigned mask, std::uint64_t value, int operand, int width,
                                      SourceLocation loc) {
  Fiber* fiber = current_;
  Warp& warp = fiber->block->warps[fiber->warp];
  const unsigned bit = 1u << fiber->lane;
  const char* name = collective_name(kind);
  if ((mask & bit) == 0) {
    fail(FaultText() << name << " with mask " << Mask{mask} << " that excludes the calling lane " << fiber->lane, loc);
  }
  if (mask & ~warp.existing) {
    fail(FaultText() << name << " with mask " << Mask{mask} << " naming lanes " << Mask{mask & ~warp.existing}
                     << " that do not exist in this block",
         loc);
  }
  if (mask & warp.exited) {
    fail(FaultText() << name << " with mask " << Mask{mask} << " naming lanes " << Mask{mask & warp.exited}
                     << " that have exited",
         loc);
  }
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    fail(FaultText() << name << " with width " << width << ", which is not a power of two from 1 to 32", loc);
  }
  // Lanes meet at the pending collective with the same mask; collectives with other masks may
  // be pending at the same time (independent thread scheduling), and a set of them that can
  // never complete is reported as a deadlock.
  PendingCollective* pending = nullptr;
  for (PendingCollective& p : warp.pending) {
    if (p.mask != mask) continue;
    if (p.kind != kind || p.width != width) {
      FaultText what;
      what << "lanes disagree: this lane calls " << name << " with mask " << Mask{mask} << " while lanes "
           << Mask{p.arrived} << " wait at " << collective_name(p.kind) << " (" << p.loc << ") with the same mask";
      if (p.width != width) what << " and width " << p.width;
      fail(what, loc);
    }
    pending = &p;
  }
  if (pending == nullptr) {
    warp.pending.push_back(PendingCollective{kind, mask, width, loc, 0});
    pending = &warp.pending.back();
  }
  pending->arrived |= bit;
  fiber->value = value;
  fiber->operand = operand;
  fiber->wait_loc = loc;
  if (pending->arrived != mask) {
    fiber->state = FiberState::kAtCollective;
    suspend();
    return fiber->result;
  }
  // Last to arrive: compute every participant's result.
  int operands[32] = {};
  std::uint64_t values[32] = {};
  std::uint64_t results[32] = {};
  for (unsigned lane = 0; lane < 32; ++lane) {
    if (mask & (1u << lane)) {
      operands[lane] = warp.lanes[lane]->operand;
      values[lane] = warp.lanes[lane]->value;
    }
  }
  const int bad_lane = shuffle_results(kind, mask, width, operands, values, results);
  if (kThreadSanitizer && kind == Collective::kSyncWarp) {  // orders memory among its lanes; shuffles do not
    Fiber* lanes[32];
    std::size_t n = 0;
    for (unsigned lane = 0; lane < 32; ++lane) {
      if (mask & (1u << lane)) lanes[n++] = warp.lanes[lane];
    }
    tsan_barrier_edges(lanes, n);
  }
  warp.pending.erase(warp.pending.begin() + (pending - warp.pending.data()));
  if (bad_lane >= 0) {
    fail(FaultText() << name << ": lane " << bad_lane << " reads a lane outside the mask " << Mask{mask}
                     << " (undefined on a GPU)",
         loc);
  }
  for (unsigned lane = 0; lane < 32; ++lane) {
    if ((mask & (1u << lane)) == 0) continue;
    Fiber* participant = warp.lanes[lane];
    participant->result = results[lane];
    if (participant != fiber) participant->state = FiberState::kRunnable;
  }
  return fiber->result;
}

// ---- Memory ---------------------------------------------------------------------------------

void* Worker::static_shared(const void* key, std::size_t bytes, std::size_t align, SourceLocation loc) {
  Block& block = *current_->block;
  for (const StaticSharedAllocation& a : block.static_allocations) {
    if (a.key == key) return block.shared + a.offset;
  }
  const std::size_t static_bytes = block.static_bytes + bytes;
  if (static_bytes > launch_.target->shared_per_block) {
    fail(FaultText() << "static shared memory of " << static_bytes << " bytes exceeds the "
                     << launch_.target->shared_per_block << " bytes a block may declare",
         loc);
  }
  if (launch_.config.dynamic_shared_bytes + static_bytes > launch_.target->shared_per_block_optin) {
    fail(FaultText() << "static shared memory of " << static_bytes << " bytes plus "
                     << launch_.config.dynamic_shared_bytes << " dynamic bytes exceed the "
                     << launch_.target->shared_per_block_optin << " bytes per block of "
                     << launch_.target->name.c_str(),
         loc);
  }
  if (block.static_allocations.size() == kMaxStaticSharedVariables) {
    fail(FaultText() << "more than " << kMaxStaticSharedVariables << " static shared variables in one kernel", loc);
  }
  const std::size_t offset = round_up(block.shared_used, align);
  std::memset(block.shared + offset, 0xff, bytes);
  add_redzone(block, offset + bytes);
  block.static_bytes = static_bytes;
  block.static_allocations.push_back(StaticSharedAllocation{key, offset});
  return block.shared + offset;
}

void* Worker::dynamic_shared() { return current_->block->shared; }

void Worker::global_access(const void* address, std::size_t bytes, std::size_t align, bool write, SourceLocation loc) {
  const char* what = write ? "store" : "load";
  if (address == nullptr) fail(FaultText() << "global " << what << " through a null pointer", loc);
  if (reinterpret_cast<std::uintptr_t>(address) % align != 0) {
    fail(FaultText() << "misaligned " << bytes << "-byte global " << what << " at " << Address{address} << " (needs "
                     << align << "-byte alignment; a GPU faults)",
         loc);
  }
  (write ? bytes_written_ : bytes_read_) += bytes;
  if (write) {
    note_global_store(address, bytes);
  } else {
    check_global_load(address, bytes, loc);
  }
  const char* at = static_cast<const char*>(address);
  for (std::size_t i = 0; i < launch_.watched.size(); ++i) {
    const char* begin = static_cast<const char*>(launch_.watched[i].begin);
    if (at >= begin && at < begin + launch_.watched[i].bytes) {
      (write ? traffic_[i].bytes_written : traffic_[i].bytes_read) += bytes;
      current_->block->sectors.record(current_->warp, current_->lane, loc, address, bytes, static_cast<int>(i));
      launch_.watch->touch(i, address, bytes, write);
      break;
    }
  }
}

}  // namespace simt::detail

// ---- ThreadSanitizer's happens-before edges (sanitizer_hooks.hpp) ---------------------------------

namespace simt::detail {

// Every participant of a completed barrier acquires what every other did before arriving: a chain
// of synchronizing TSan switches through all of them and round again. The switches only tell TSan
// whose context is current; no code runs on the other fibers. Called by the last to arrive.
void Worker::tsan_barrier_edges(Fiber* const* participants, std::size_t count) {
  if (!kThreadSanitizer) return;
  for (std::size_t i = 0; i < count; ++i) tsan_switch(participants[i]->tsan_fiber, true);
  for (std::size_t i = 0; i + 1 < count; ++i) tsan_switch(participants[i]->tsan_fiber, true);
  tsan_switch(current_->tsan_fiber, false);
}

// After the resident blocks ran (or were abandoned at a fault): the scheduler, and through it
// the host and the next blocks of this worker, follows everything their fibers did.
void Worker::engine_call_begin() {
  if (!kThreadSanitizer) return;
  tsan_ignore_begin();
  ++current_->engine_calls;
}

void Worker::engine_call_end() {
  if (!kThreadSanitizer) return;
  --current_->engine_calls;
  tsan_ignore_end();
}

void Worker::tsan_collect_blocks() {
  if (!kThreadSanitizer) return;
  for (Fiber* f : order_) {
    tsan_switch(f->tsan_fiber, false);
    tsan_switch(tsan_scheduler_, true);
  }
}

}  // namespace simt::detail

// ---- Publication of global writes ------------------------------------------------------------
// What the engine models of CUDA's memory model across blocks: a block's global store becomes
// visible to other blocks at the block's next __threadfence() (by any of its threads), at a grid
// barrier, or at the kernel's end; a load by another block before that is reported. Stores
// within a block need no fence (the block's own barriers order them, and races within a block
// are the thread orders' and ThreadSanitizer's business).

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
