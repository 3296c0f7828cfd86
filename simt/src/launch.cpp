// Launching on the SIMT engine: CUDA's launch rules checked up front (a launch a GPU would refuse
// is refused here), blocks spread over the pool's worker threads (worker_pool.hpp) in the chosen
// order, results and records; also the kernels' dynamic shared memory opt-ins.
#include "simt/launch.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

#include "engine.hpp"
#include "sanitizer_hooks.hpp"
#include "simt/fault_injection.hpp"
#include "worker_pool.hpp"
#include "write_shadow.hpp"

namespace simt {
namespace {

std::mutex attribute_mutex;
std::map<const void*, std::size_t>& dynamic_shared_opt_ins() {
  static auto* opt_ins = new std::map<const void*, std::size_t>();  // lives until exit
  return *opt_ins;
}

std::string dim_text(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

// Why CUDA would refuse this launch, or "" if it would accept it.
std::string launch_refusal(const LaunchConfig& config, const Target& target, std::size_t dynamic_limit) {
  const unsigned long long all_threads =
      1ULL * config.grid.x * config.grid.y * config.grid.z * config.block.x * config.block.y * config.block.z;
  const unsigned block[3] = {config.block.x, config.block.y, config.block.z};
  const unsigned grid[3] = {config.grid.x, config.grid.y, config.grid.z};
  for (int d = 0; d < 3; ++d) {
    if (block[d] == 0 || block[d] > static_cast<unsigned>(target.max_block_dim[d])) {
      return "block " + dim_text(config.block) + " is outside the limits (1024,1024,64)";
    }
    if (grid[d] == 0 || grid[d] > static_cast<unsigned long long>(target.max_grid_dim[d])) {
      return "grid " + dim_text(config.grid) + " is outside the limits (2147483647,65535,65535)";
    }
  }
  const unsigned long long threads = 1ULL * config.block.x * config.block.y * config.block.z;
  if (threads > static_cast<unsigned long long>(target.max_threads_per_block)) {
    return "block of " + std::to_string(threads) + " threads exceeds " + std::to_string(target.max_threads_per_block);
  }
  if (config.dynamic_shared_bytes > dynamic_limit) {
    return std::to_string(config.dynamic_shared_bytes) +
           " bytes of dynamic shared memory exceed the kernel's limit of " + std::to_string(dynamic_limit) +
           " (raise it with set_max_dynamic_shared_memory, as cudaFuncSetAttribute)";
  }
  if (config.cooperative) {
    // The blocks one SM can hold at once, by threads, block slots and shared memory.
    const std::size_t per_block_shared = std::max<std::size_t>(config.dynamic_shared_bytes, 1);
    const unsigned long long per_sm =
        std::min({static_cast<unsigned long long>(target.max_blocks_per_sm),
                  static_cast<unsigned long long>(target.max_threads_per_sm) / threads,
                  static_cast<unsigned long long>(target.shared_per_sm / per_block_shared)});
    const unsigned long long resident = per_sm * static_cast<unsigned long long>(target.sm_count);
    const unsigned long long blocks = 1ULL * config.grid.x * config.grid.y * config.grid.z;
    if (blocks > resident) {
      return "cooperative grid of " + std::to_string(blocks) + " blocks exceeds the " + std::to_string(resident) +
             " that " + target.name + " can keep resident";
    }
    if (launches_run() && all_threads > max_cooperative_threads()) {
      return "cooperative grid of " + std::to_string(all_threads) + " threads exceeds the " +
             std::to_string(max_cooperative_threads()) + " fibers the engine can keep alive (vm.max_map_count)";
    }
  }
  return "";
}

// A bijection on [0, 2^bits) used to visit blocks in a seeded random order without storing it.
std::uint64_t scramble(std::uint64_t x, std::uint64_t seed, int bits) {
  const std::uint64_t mask = bits >= 64 ? ~0ULL : (1ULL << bits) - 1;
  for (int round = 0; round < 4; ++round) {
    x = (x * 0x9e3779b97f4a7c15ULL + seed + static_cast<std::uint64_t>(round)) & mask;  // odd multiplier: bijective
    x ^= x >> (bits / 2 + 1);
  }
  return x & mask;
}

}  // namespace

std::size_t max_cooperative_threads() {
  static const std::size_t capacity = [] {
    std::size_t maps = 65530;  // Linux's default
    if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
      unsigned long long value = 0;
      if (std::fscanf(f, "%llu", &value) == 1) maps = static_cast<std::size_t>(value);
      std::fclose(f);
    }
    // Two mappings per guarded stack, and room for everything else the process maps.
    const std::size_t fibers = maps > 16384 ? (maps - 8192) / 2 : std::size_t{4096};
    // ThreadSanitizer keeps at most 8128 threads, fibers included: leave room for the workers'.
    return detail::kThreadSanitizer ? std::min<std::size_t>(fibers, 4096) : fibers;
  }();
  return capacity;
}
bool set_max_dynamic_shared_memory(const void* kernel_id, std::size_t bytes, const Target* target, std::string* error) {
  const Target& t = target != nullptr ? *target : *find_target("sm_90");
  if (bytes > t.shared_per_block_optin) {
    if (error != nullptr) {
      *error = std::to_string(bytes) + " bytes of dynamic shared memory exceed the " +
               std::to_string(t.shared_per_block_optin) + " a block may opt into on " + t.name;
    }
    return false;
  }
  std::lock_guard<std::mutex> lock(attribute_mutex);
  dynamic_shared_opt_ins()[kernel_id] = bytes;
  return true;
}

namespace detail {

void LaunchState::record_error(const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex);
  if (!failed.load()) {
    error = message;
    failed.store(true);
  }
}

std::uint64_t LaunchState::block_at(std::uint64_t i) const {
  switch (options.order) {
    case Order::kForward: return first_block + i;
    case Order::kReverse: return first_block + total_blocks - 1 - i;
    case Order::kRandom: break;
  }
  int bits = 1;
  while (bits < 64 && (1ULL << bits) < total_blocks) ++bits;
  std::uint64_t x = i;
  do {  // cycle-walk until the image lands inside the range
    x = scramble(x, options.seed, bits);
  } while (x >= total_blocks);
  return first_block + x;
}

LaunchResult launch_erased(const LaunchConfig& config, const void* kernel_id, KernelEntry entry, const void* closure) {
  LaunchState state;
  state.config = config;
  if (config.label != nullptr) {
    config.label->format(state.name, sizeof state.name);
  } else {
    std::snprintf(state.name, sizeof state.name, "%s", config.name);
  }
  state.target = config.target != nullptr ? config.target : find_target("sm_90");
  state.options = current_options();
  state.entry = entry;
  state.closure = closure;
  if (TrafficWatch* watch = active_traffic_watch()) {
    state.watch = watch;
    state.watched = watch->buffers();
    for (const TrafficWatch::Buffer& b : state.watched) {
      BufferTraffic t;
      t.name = b.name;
      state.traffic.push_back(t);
    }
  }
  state.dynamic_shared_limit = state.target->shared_per_block;
  {
    std::lock_guard<std::mutex> lock(attribute_mutex);
    auto it = dynamic_shared_opt_ins().find(kernel_id);
    if (it != dynamic_shared_opt_ins().end())
      state.dynamic_shared_limit = std::max(state.dynamic_shared_limit, it->second);
  }
  LaunchResult result;
  std::string refusal = launch_refusal(config, *state.target, state.dynamic_shared_limit);
  state.total_blocks = 1ULL * config.grid.x * config.grid.y * config.grid.z;
  const ScopedBlockWindow* window = active_block_window();
  if (refusal.empty() && window != nullptr) {
    if (config.cooperative) {
      refusal = "a block window cannot apply to a cooperative launch (its grid barrier needs every block)";
    } else {
      const BlockRange range = window->range_for(config);
      state.first_block = std::min(range.first, state.total_blocks);
      state.total_blocks = std::min(range.count, state.total_blocks - state.first_block);
    }
  }
  if (!refusal.empty()) {
    result.ok = false;
    result.message = std::string(state.name) + ": launch refused: " + refusal;
    state.total_blocks = 0;
  } else if (!launches_run()) {
    state.total_blocks = 0;  // recorded, not run
  } else if (take_injected_fault(FaultSite::kLaunch)) {
    result.ok = false;  // nothing ran, as when a GPU refuses a launch
    result.message = std::string(state.name) + ": launch failed: injected fault (simt::inject_fault)";
    state.total_blocks = 0;
  } else {
    state.generation = next_shadow_generation();
    state.threads_per_block = config.block.x * config.block.y * config.block.z;
    if (config.cooperative) {
      Worker worker(state);
      worker.run_grid();
    } else {
      const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      // ThreadSanitizer's 8128 threads hold 4 workers' fibers of 1024-thread blocks, and more.
      const int most = detail::kThreadSanitizer ? 4 : 8;
      const int wanted = state.options.workers > 0 ? state.options.workers : std::min(hardware, most);
      const int workers =
          static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(wanted), state.total_blocks));
      run_on_workers(workers, [&state] {
        Worker worker(state);
        worker.run_queue();
      });
    }
    result.ok = !state.failed.load();
    result.message = state.error;
    result.bytes_read = state.bytes_read;
    result.bytes_written = state.bytes_written;
  }
  if (LaunchRecorder* recorder = active_recorder()) {
    LaunchRecord record;
    record.name = state.name;
    record.kernel = kernel_id;
    if (config.label != nullptr) {
      record.label = *config.label;
    } else {
      record.label.family = config.name;
    }
    record.grid = config.grid;
    record.block = config.block;
    record.blocks_run = state.total_blocks;
    record.dynamic_shared_bytes = config.dynamic_shared_bytes;
    record.static_shared_bytes = state.static_shared_bytes;
    record.cooperative = config.cooperative;
    record.ok = result.ok;
    record.bytes_read = result.bytes_read;
    record.bytes_written = result.bytes_written;
    record.buffers = state.traffic;
    recorder->add(std::move(record));
  }
  return result;
}

}  // namespace detail
}  // namespace simt
