// Host side of the SIMT engine: launch a kernel (an ordinary C++ function compiled from the same
// source as the CUDA kernel) on the CPU, one fiber per CUDA thread, and get back a status that
// names the block, thread and source line of the first fault. Also: the execution order
// (forward / reverse / seeded random) that makes races visible, kernel attributes, and the launch
// records that tests read to see which kernels ran.
#pragma once

#include <vector_types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "simt/launch_label.hpp"
#include "simt/target.hpp"

namespace simt {

// Forward: blocks and threads in increasing index order; reverse: decreasing; random: blocks in
// a seeded random order and the runnable threads shuffled at every scheduling round, with
// intrinsic results (rsqrtf and the like) perturbed within their documented GPU error bounds.
enum class Order { kForward, kReverse, kRandom };

struct Options {
  Order order = Order::kForward;
  std::uint64_t seed = 1;
  int workers = 0;              // OS threads running blocks; 0: one per hardware thread (at most 8)
  std::size_t stack_bytes = 0;  // usable bytes per fiber stack; 0: the engine's default
};

// Options from CUNORM_SIMT_ORDER (forward|reverse|random), CUNORM_SIMT_SEED (decimal) and
// CUNORM_SIMT_WORKERS. A malformed value leaves the default in place and is described in *error.
Options environment_options(std::string* error);

// The options launches from this host thread use: the innermost ScopedOptions, else the
// environment's.
Options current_options();

// Overrides the options of launches made by this host thread while it lives.
class ScopedOptions {
 public:
  explicit ScopedOptions(const Options& options);
  ~ScopedOptions();
  ScopedOptions(const ScopedOptions&) = delete;
  ScopedOptions& operator=(const ScopedOptions&) = delete;

 private:
  Options options_;
  const Options* previous_;
};

const char* order_name(Order order);

struct LaunchConfig {
  dim3 grid{1, 1, 1};
  dim3 block{1, 1, 1};
  std::size_t dynamic_shared_bytes = 0;
  bool cooperative = false;            // every block resident at once; enables simt::grid_sync()
  const Target* target = nullptr;      // nullptr: sm_90
  const char* name = "kernel";         // shown in errors and launch records
  const LaunchLabel* label = nullptr;  // when set, names the launch instead of `name` (fields in records)
};

struct LaunchResult {
  bool ok = true;
  std::string message;           // the first fault, with block, thread and source line
  std::uint64_t bytes_read = 0;  // through the checked global-memory accessors
  std::uint64_t bytes_written = 0;
};

// What a launch moved through the checked accessors within one watched buffer: bytes read and
// written, and the warp-wide requests they formed, in 32-byte sectors (coalescing: a request's
// sector efficiency is its bytes over 32 x its sectors).
struct BufferTraffic {
  std::string name;
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t requests = 0;
  std::uint64_t sectors = 0;
  std::uint64_t request_bytes = 0;
  double sector_efficiency() const {
    return sectors == 0 ? 1.0 : static_cast<double>(request_bytes) / (32.0 * static_cast<double>(sectors));
  }
};

struct LaunchRecord {
  std::string name;              // the label's text, or the config's name
  LaunchLabel label;             // the config's label, or one whose family is the config's name
  const void* kernel = nullptr;  // the kernel's entry (kernel_id): dladdr() finds its object and offset
  dim3 grid;
  dim3 block;
  // The grid's blocks, or those of the ScopedBlockWindow's range; 0 when none ran (record-only, or
  // a launch refused).
  std::uint64_t blocks_run = 0;
  std::size_t dynamic_shared_bytes = 0;
  std::size_t static_shared_bytes = 0;  // the most any block allocated (0 when none ran)
  bool cooperative = false;
  bool ok = true;
  std::uint64_t bytes_read = 0;  // the traffic fields are 0 when none ran
  std::uint64_t bytes_written = 0;
  std::vector<BufferTraffic> buffers;  // one per buffer of the TrafficWatch active at launch
};

// Collects the launches made by this host thread while it lives (innermost recorder wins). A
// record-only recorder checks each launch against CUDA's rules and records it without running it
// (nothing is read or written, and record.ok says only whether a GPU would accept the launch): the
// launch plans of shapes too large to execute on a CPU, for the performance model. Without fibers
// to keep alive, a record-only launch is not held to max_cooperative_threads().
class LaunchRecorder {
 public:
  enum class Mode { kRun, kRecordOnly };
  explicit LaunchRecorder(Mode mode = Mode::kRun);
  ~LaunchRecorder();
  LaunchRecorder(const LaunchRecorder&) = delete;
  LaunchRecorder& operator=(const LaunchRecorder&) = delete;
  const std::vector<LaunchRecord>& records() const { return records_; }
  void clear() { records_.clear(); }
  void add(LaunchRecord record) { records_.push_back(std::move(record)); }
  Mode mode() const { return mode_; }

 private:
  std::vector<LaunchRecord> records_;
  Mode mode_;
  LaunchRecorder* previous_;
};

// False while the innermost recorder of this host thread is record-only: its launches do not run.
bool launches_run();

// The most threads a cooperative launch may have: all of them are fibers alive at once, and each
// guarded stack costs two memory mappings of the process's vm.max_map_count (and ThreadSanitizer
// builds allow at most 4096, TSan counting fibers as threads). Larger cooperative
// grids are refused with that reason.
std::size_t max_cooperative_threads();

namespace detail {
class Worker;
}  // namespace detail

// While it lives, launches from this host thread count their global traffic per buffer: each
// access is attributed to the watched buffer containing its address (LaunchRecord::buffers).
// The watch also keeps each buffer's DRAM footprint over all those launches, in 32-byte sectors
// (aligned in the address space, as DRAM moves them), so that a buffer read by every block
// counts once however often it was requested.
class TrafficWatch {
 public:
  struct Buffer {
    std::string name;
    const void* begin;
    std::size_t bytes;
  };
  // Bytes of distinct sectors: `read` those read before any launch of the watch wrote them (data
  // that must come from DRAM), `written` every sector written (each goes back to DRAM once). A
  // sector the launches wrote and then read again is in `written` only: a GPU reads it back from
  // L2 as long as it fits there.
  struct Footprint {
    std::uint64_t read = 0;
    std::uint64_t written = 0;
  };
  explicit TrafficWatch(std::vector<Buffer> buffers);
  ~TrafficWatch();
  TrafficWatch(const TrafficWatch&) = delete;
  TrafficWatch& operator=(const TrafficWatch&) = delete;
  const std::vector<Buffer>& buffers() const { return buffers_; }
  Footprint footprint(std::size_t index) const;

 private:
  friend class detail::Worker;
  struct Sectors;  // two bits per sector of one buffer: read first, written
  // Marks the sectors of [address, address + bytes) within buffers()[index]; called by the
  // engine's workers, several at once.
  void touch(std::size_t index, const void* address, std::size_t bytes, bool write);

  std::vector<Buffer> buffers_;
  std::vector<std::unique_ptr<Sectors>> sectors_;
  TrafficWatch* previous_;
};

// Blocks of a launch by linear id (blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z)):
// [first, first + count).
struct BlockRange {
  std::uint64_t first = 0;
  std::uint64_t count = 0;
};

// While it lives, launches from this host thread run only some of their blocks: those of the range
// `select` returns for the launch (clipped to the grid; count 0 runs none), in the launch's order.
// The others do not run at all, so whatever they would have written keeps its old contents. For
// tests that check the blocks of a grid too large to run whole on a CPU (tensors of more than
// 2^31 elements), the caller knowing which blocks touch the part it checks. A cooperative launch
// under a window is refused: its grid barrier needs every block.
class ScopedBlockWindow {
 public:
  using Selector = std::function<BlockRange(const LaunchConfig& launch)>;
  explicit ScopedBlockWindow(Selector select);
  ~ScopedBlockWindow();
  ScopedBlockWindow(const ScopedBlockWindow&) = delete;
  ScopedBlockWindow& operator=(const ScopedBlockWindow&) = delete;
  BlockRange range_for(const LaunchConfig& launch) const { return select_(launch); }

 private:
  Selector select_;
  ScopedBlockWindow* previous_;
};

// As cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes): a launch
// may ask for more than 48 KiB of dynamic shared memory only up to what was set here. Fails with a
// message when bytes exceed the target's opt-in limit.
bool set_max_dynamic_shared_memory(const void* kernel_id, std::size_t bytes, const Target* target, std::string* error);

namespace detail {

using KernelEntry = void (*)(const void* closure);
LaunchResult launch_erased(const LaunchConfig& config, const void* kernel_id, KernelEntry entry, const void* closure);

template <class... Params>
struct KernelClosure {
  void (*kernel)(Params...);
  std::tuple<std::decay_t<Params>...> args;
  static void invoke(const void* self) {
    const auto* closure = static_cast<const KernelClosure*>(self);
    std::apply(closure->kernel, closure->args);
  }
};

}  // namespace detail

template <class F>
const void* kernel_id(F* kernel) {
  return reinterpret_cast<const void*>(kernel);
}

// Runs kernel(args...) on every thread of the grid and returns when all have finished. The
// arguments are converted to the kernel's parameter types once, as CUDA copies them to the
// parameter space, and every thread reads that copy.
template <class... Params, class... Args>
LaunchResult launch(const LaunchConfig& config, void (*kernel)(Params...), Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
  detail::KernelClosure<Params...> closure{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
  return detail::launch_erased(config, kernel_id(kernel), &detail::KernelClosure<Params...>::invoke, &closure);
}

}  // namespace simt
