// Internal state of the SIMT engine: a launch, the blocks resident on one worker thread, and
// the fibers (one per CUDA thread) that run them. A Worker owns an OS thread's share of the
// grid; every block runs entirely on one worker, so block-local state needs no locks.
#pragma once

#include <atomic>
#include <boost/context/detail/fcontext.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fault_text.hpp"
#include "fiber_stack.hpp"
#include "sector_log.hpp"
#include "simt/device.hpp"
#include "simt/launch.hpp"

namespace simt::detail {

namespace ctx = boost::context::detail;

struct Block;

enum class FiberState : std::uint8_t { kRunnable, kAtBarrier, kAtGridBarrier, kAtCollective, kDone };

struct Fiber {
  ThreadContext context{};  // what threadIdx and friends read while this fiber runs
  ctx::fcontext_t resume_point = nullptr;
  FiberStack* stack = nullptr;
  void* fake_stack = nullptr;  // AddressSanitizer's record of this fiber's frames
  void* tsan_fiber = nullptr;  // ThreadSanitizer's context for this fiber (TSan builds only)
  bool starting = false;       // not resumed yet since it was set up for its CUDA thread
  int engine_calls = 0;        // device API calls under way (TSan ignores this fiber's accesses in them)
  FiberState state = FiberState::kRunnable;
  Block* block = nullptr;
  unsigned linear = 0;  // thread index within the block
  unsigned lane = 0;
  unsigned warp = 0;
  // The barrier or collective this fiber waits at: its location, operands and, once every
  // participant arrived, its result.
  SourceLocation wait_loc{"", 0};
  std::uint64_t value = 0;
  int operand = 0;
  std::uint64_t result = 0;
};

struct PendingCollective {
  Collective kind;
  unsigned mask;
  int width;
  SourceLocation loc;
  unsigned arrived;
};

struct Warp {
  unsigned existing = 0;  // lanes present (the last warp of a block may be partial)
  unsigned exited = 0;
  std::vector<PendingCollective> pending;
  Fiber* lanes[32] = {};
};

// A block's global stores between two of its publishing points (__threadfence(), a grid barrier),
// numbered per launch; the write shadow (write_shadow.hpp) names the epoch of each word's last
// store, so a load can tell whether another block wrote that word and has not published it yet.
constexpr std::uint32_t kNoEpoch = 0xffffffffu;
struct WriteEpoch {
  std::uint64_t block = 0;  // linear id of the writing block
  uint3 block_index{};
  bool published = false;
};

struct StaticSharedAllocation {
  const void* key;
  std::size_t offset;
};

// Bytes after the dynamic part and after each static variable that kernels must not touch: they
// hold a canary checked when the block ends, so a write past a shared array is reported instead
// of silently landing in the next one.
constexpr std::size_t kSharedRedzone = 64;
constexpr unsigned char kSharedCanary = 0xcb;
constexpr int kMaxStaticSharedVariables = 32;

struct Block {
  uint3 index{};
  std::vector<Fiber*> threads;
  std::vector<Warp> warps;
  unsigned exited = 0;
  Fiber* first_exited = nullptr;
  // The barrier being gathered: how many arrived, at which call, with what predicate total.
  unsigned barrier_arrived = 0;
  BlockBarrier barrier_kind = BlockBarrier::kSync;
  SourceLocation barrier_loc{"", 0};
  Fiber* barrier_first = nullptr;
  int barrier_accumulator = 0;
  // Shared memory: dynamic at the start of the arena, static allocations after it.
  unsigned char* shared = nullptr;
  std::size_t shared_used = 0;
  std::size_t static_bytes = 0;
  std::vector<StaticSharedAllocation> static_allocations;
  std::vector<std::size_t> redzones;  // offsets of the kSharedRedzone-byte guards
  SectorLog sectors;                  // while a TrafficWatch is active
  std::uint64_t linear = 0;           // blockIdx flattened, x fastest
  // The launch's write epoch that this block's global stores go to until its next
  // __threadfence() (or grid barrier); kNoEpoch before its first store after one.
  std::uint32_t write_epoch = kNoEpoch;
};

// A lock for state that fibers share within a launch. Not a pthread mutex: ThreadSanitizer would
// take its lock and unlock for a happens-before edge between the fibers using it, and hide the
// kernels' races it is meant to find.
class SpinLock {
 public:
  void lock() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
    }
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

struct LaunchState {
  LaunchConfig config;
  char name[256] = {};  // the launch's text (its label's, or the config's name), for messages
  const Target* target = nullptr;
  Options options;
  KernelEntry entry = nullptr;
  const void* closure = nullptr;
  std::size_t dynamic_shared_limit = 0;  // the kernel's opt-in, or the 48 KiB default
  std::uint64_t total_blocks = 0;        // blocks this launch runs: the grid, or the block window's part of it
  std::uint64_t first_block = 0;         // linear id of the first block run (a block window's start)
  unsigned threads_per_block = 0;
  std::uint32_t generation = 0;  // this launch's stamp in the write shadow
  std::atomic<std::uint64_t> next_block{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;  // guards the fields below
  std::string error;
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
  std::size_t static_shared_bytes = 0;
  TrafficWatch* watch = nullptr;              // the host thread's watch at launch, if any
  std::vector<TrafficWatch::Buffer> watched;  // its buffers, read-only during the launch
  std::vector<BufferTraffic> traffic;         // per watched buffer, summed over workers
  SpinLock epochs_lock;                       // guards write_epochs
  std::vector<WriteEpoch> write_epochs;       // indexed by the epoch numbers in the write shadow

  void record_error(const std::string& message);
  // The linear id of the i-th block to run in this launch's order (i < total_blocks).
  std::uint64_t block_at(std::uint64_t i) const;
};

class Worker {
 public:
  explicit Worker(LaunchState& launch);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Takes blocks from the launch's queue one at a time until none is left or a fault occurred.
  void run_queue();
  // Runs every block of the grid resident at once (a cooperative launch).
  void run_grid();

  // Called from device code through the device API, on the running fiber.
  int block_barrier(BlockBarrier kind, int predicate, SourceLocation loc);
  void grid_barrier(SourceLocation loc);
  std::uint64_t warp_collective(Collective kind, unsigned mask, std::uint64_t value, int operand, int width,
                                SourceLocation loc);
  void* static_shared(const void* key, std::size_t bytes, std::size_t align, SourceLocation loc);
  void* dynamic_shared();
  void global_access(const void* address, std::size_t bytes, std::size_t align, bool write, SourceLocation loc);
  void thread_fence();
  // Brackets every device API call (device_api.cpp): what the engine does for the fiber is no
  // memory access of its CUDA thread, for ThreadSanitizer.
  void engine_call_begin();
  void engine_call_end();
  [[noreturn]] void fail(const FaultText& what, SourceLocation loc);
  const Options& options() const { return launch_.options; }

  // From the SIGSEGV handler, on this worker's thread: true if the fault is the running fiber
  // overflowing its stack, in which case the call does not return.
  bool handle_stack_fault(const void* address);

 private:
  friend void fiber_main(ctx::transfer_t transfer);

  // Scheduling (worker.cpp).
  void run_resident(std::uint64_t first, std::uint64_t count);
  bool prepare_blocks(std::uint64_t first, std::uint64_t count);
  void release_blocks();
  void resume(Fiber* fiber);
  void suspend();
  [[noreturn]] void leave_forever();
  void on_thread_exit();
  void report_deadlock();
  void record_fault(const FaultText& what, const Fiber* fiber, SourceLocation loc);
  // Shared memory (shared_memory.cpp): an arena per resident block, its canary redzones.
  bool reserve_shared_arenas(std::uint64_t count);
  void release_shared_arenas();
  void prepare_shared(Block& block, std::uint64_t b);
  void add_redzone(Block& block, std::size_t offset);
  bool check_redzones(std::uint64_t count);
  // Global memory (global_access.cpp, publication.cpp).
  void publish_traffic();
  void note_global_store(const void* address, std::size_t bytes);
  void check_global_load(const void* address, std::size_t bytes, SourceLocation loc);
  void publish_all_writes();
  // ThreadSanitizer's happens-before edges (sanitizer_hooks.cpp).
  void tsan_barrier_edges(Fiber* const* participants, std::size_t count);
  void tsan_collect_blocks();

  LaunchState& launch_;
  std::vector<std::unique_ptr<Block>> blocks_;
  std::vector<std::unique_ptr<Fiber>> fibers_;
  std::vector<Fiber*> order_;
  Fiber* current_ = nullptr;
  ctx::fcontext_t scheduler_ = nullptr;
  const void* scheduler_stack_bottom_ = nullptr;
  std::size_t scheduler_stack_size_ = 0;
  void* scheduler_fake_stack_ = nullptr;
  void* tsan_scheduler_ = nullptr;  // ThreadSanitizer's context of this worker's OS thread
  unsigned char* arena_ = nullptr;
  std::size_t arena_bytes_ = 0;
  std::size_t arena_per_block_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::uint64_t bytes_written_ = 0;
  std::vector<BufferTraffic> traffic_;  // per watched buffer
  std::uint64_t rng_state_ = 0;
  // The grid barrier of a cooperative launch.
  unsigned grid_arrived_ = 0;
  unsigned grid_threads_ = 0;
  unsigned grid_exited_ = 0;
  SourceLocation grid_loc_{"", 0};
};

extern thread_local Worker* tls_worker;

// The calling host thread's scoped settings (scopes.cpp, traffic_watch.cpp), nullptr when none.
LaunchRecorder* active_recorder();
ScopedBlockWindow* active_block_window();
TrafficWatch* active_traffic_watch();

// Installs the SIGSEGV handler (once per process) and an alternate signal stack for this thread.
void prepare_thread_for_fibers();

// Per-lane results of a completed shuffle with PTX shfl.sync semantics. Returns the lane whose
// source is outside the mask (the value would be undefined on a GPU), or -1 when all are valid.
int shuffle_results(Collective kind, unsigned mask, int width, const int operands[32], const std::uint64_t values[32],
                    std::uint64_t results[32]);

const char* collective_name(Collective kind);
const char* barrier_name(BlockBarrier kind);
// Appends "thread (x,y,z) of block (x,y,z)" for `fiber`.
void describe(FaultText& text, const Fiber* fiber);
bool same_location(SourceLocation a, SourceLocation b);

}  // namespace simt::detail
