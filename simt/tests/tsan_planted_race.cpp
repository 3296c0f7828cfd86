// ThreadSanitizer build only (CUNORM_SANITIZE=thread): the engine's fiber and barrier annotations
// must let TSan see a missing barrier and nothing else. First correct kernels that share memory
// only across __syncthreads, __syncwarp, a grid barrier and atomics (one and two worker threads);
// then a marker line; then a kernel whose thread 0 writes a shared variable that the other
// threads read without a __syncthreads. check_tsan_report.cmake runs this program and requires
// no TSan report before the marker and a data race naming both planted lines after it.
#include <cstdio>
#include <vector>

#include "simt/device.hpp"
#include "simt/launch.hpp"

namespace {

// Block sum through shared memory with a barrier between every step; then the last block to
// finish (ticket from an atomic counter) adds the block sums, published by __threadfence().
void block_sums(const int* in, int* block_totals, unsigned* tickets, int* total) {
  SIMT_SHARED(int[128], partial);
  SIMT_SHARED(unsigned, ticket);
  partial[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    block_totals[blockIdx.x] = partial[0];
    __threadfence();
    ticket = atomicAdd(tickets, 1u);
  }
  __syncthreads();
  if (threadIdx.x == 0 && ticket == gridDim.x - 1) {
    int sum = 0;
    for (unsigned b = 0; b < gridDim.x; ++b) sum += block_totals[b];
    *total = sum;
  }
}

// Lanes exchange through shared memory across __syncwarp.
void warp_rotate(int* out) {
  SIMT_SHARED(int[64], slots);
  slots[threadIdx.x] = static_cast<int>(threadIdx.x);
  __syncwarp();
  out[blockIdx.x * blockDim.x + threadIdx.x] = slots[(threadIdx.x / 32) * 32 + (threadIdx.x + 1) % 32];
}

// Blocks exchange through global memory across a grid barrier.
void grid_exchange(int* slots, int* out) {
  if (threadIdx.x == 0) slots[blockIdx.x] = static_cast<int>(blockIdx.x);
  simt::grid_sync();
  if (threadIdx.x == 0) out[blockIdx.x] = slots[(blockIdx.x + 1) % gridDim.x];
}

constexpr int kPlantedWriteLine = __LINE__ + 4;
constexpr int kPlantedReadLine = __LINE__ + 4;
void missing_barrier(float* out) {
  SIMT_SHARED(float, value);
  if (threadIdx.x == 0) value = 42.0f;
  out[threadIdx.x] = value;  // BUG: no __syncthreads() between the write and the reads
}

bool run_correct_kernels(int workers) {
  simt::Options options = simt::current_options();
  options.workers = workers;
  simt::ScopedOptions scoped(options);
  bool ok = true;
  for (simt::Order order : {simt::Order::kForward, simt::Order::kReverse, simt::Order::kRandom}) {
    options.order = order;
    simt::ScopedOptions ordered(options);
    std::vector<int> in(8 * 128, 1), totals(8, 0), out(8 * 64, 0), slots(4, 0);
    unsigned tickets = 0;
    int total = 0;
    simt::LaunchConfig config;
    config.grid = dim3(8);
    config.block = dim3(128);
    ok = ok && simt::launch(config, block_sums, in.data(), totals.data(), &tickets, &total).ok && total == 8 * 128;
    config.block = dim3(64);
    ok = ok && simt::launch(config, warp_rotate, out.data()).ok && out[31] == 0;
    config.grid = dim3(4);
    config.cooperative = true;
    ok = ok && simt::launch(config, grid_exchange, slots.data(), out.data()).ok && out[3] == 0;
  }
  return ok;
}

}  // namespace

int main() {
  if (!run_correct_kernels(1) || !run_correct_kernels(2)) {
    std::fprintf(stderr, "a correct kernel failed or gave a wrong result\n");
    return 1;
  }
  std::fprintf(stderr, "== correct kernels done\n");
  simt::LaunchConfig config;
  config.block = dim3(64);
  std::vector<float> out(64);
  if (!simt::launch(config, missing_barrier, out.data()).ok) return 1;
  std::fprintf(stderr, "== planted race at %s:%d (write) and %s:%d (read)\n", __FILE__, kPlantedWriteLine, __FILE__,
               kPlantedReadLine);
  return 0;
}
