// The engine executes kernels as a GPU would: built-in indices, per-block shared memory, block
// barriers, atomics across blocks running on different worker threads, cooperative grids, and
// the three execution orders.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine_test_util.hpp"

namespace {

using simt_test::run;

void write_indices(unsigned* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  out[block * blockDim.x * blockDim.y * blockDim.z + thread] = block * 100000u + thread;
}

TEST(Execution, EveryThreadOfA3DGridRunsOnceWithItsIndices) {
  const dim3 grid(3, 2, 2), block(5, 4, 3);
  std::vector<unsigned> out(12 * 60, 0xdeadbeefu);
  for (simt::Order order : simt_test::kAllOrders) {
    std::fill(out.begin(), out.end(), 0xdeadbeefu);
    ASSERT_TRUE(run(order, grid, block, write_indices, out.data()).ok);
    for (unsigned b = 0; b < 12; ++b) {
      for (unsigned t = 0; t < 60; ++t) ASSERT_EQ(out[b * 60 + t], b * 100000u + t);
    }
  }
}

// A block sum through shared memory: each block sees only its own shared array.
void block_sum(const int* in, int* out) {
  SIMT_SHARED(int[256], partial);
  partial[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

TEST(Execution, SharedMemoryIsPerBlockAndBarriersOrderIt) {
  const int blocks = 37;
  std::vector<int> in(blocks * 256), out(blocks, 0);
  std::iota(in.begin(), in.end(), 1);
  for (simt::Order order : simt_test::kAllOrders) {
    ASSERT_TRUE(run(order, dim3(blocks), dim3(256), block_sum, in.data(), out.data()).ok);
    for (int b = 0; b < blocks; ++b) {
      long expected = 0;
      for (int t = 0; t < 256; ++t) expected += in[b * 256 + t];
      ASSERT_EQ(out[b], expected) << "block " << b;
    }
  }
}

void read_fresh_shared(float* out) {
  SIMT_SHARED(float[64], fresh);
  out[threadIdx.x] = fresh[threadIdx.x];
  float* dynamic = simt_dynamic_shared<float>();
  out[64 + threadIdx.x] = dynamic[threadIdx.x];
}

TEST(Execution, SharedMemoryStartsAsNaN) {
  std::vector<float> out(128, 0.0f);
  simt::LaunchConfig config;
  config.block = dim3(64);
  config.dynamic_shared_bytes = 64 * sizeof(float);
  ASSERT_TRUE(simt::launch(config, read_fresh_shared, out.data()).ok);
  for (float v : out) EXPECT_TRUE(std::isnan(v));
}

void count_with_atomics(unsigned* counter, float* sum) {
  atomicAdd(counter, 1u);
  atomicAdd(sum, 1.0f);
}

TEST(Execution, AtomicsAreAtomicAcrossWorkerThreads) {
  simt::Options options = simt::current_options();
  options.workers = 4;
  simt::ScopedOptions scoped(options);
  unsigned counter = 0;
  float sum = 0.0f;
  simt::LaunchConfig config;
  config.grid = dim3(64);
  config.block = dim3(128);
  ASSERT_TRUE(simt::launch(config, count_with_atomics, &counter, &sum).ok);
  EXPECT_EQ(counter, 64u * 128u);
  EXPECT_EQ(sum, 64.0f * 128.0f);  // integers below 2^24 add exactly in any order
}

// Each thread keeps the four barrier results it got (all must agree).
void barrier_predicates(int* out) {
  const int even = threadIdx.x % 2 == 0;
  int* mine = out + 4 * threadIdx.x;
  mine[0] = __syncthreads_count(even);
  mine[1] = __syncthreads_and(threadIdx.x < 1000);
  mine[2] = __syncthreads_or(threadIdx.x == 17);
  mine[3] = __syncthreads_and(even);
}

TEST(Execution, SyncthreadsCountAndOr) {
  std::vector<int> out(4 * 96, -1);
  ASSERT_TRUE(run(simt::Order::kRandom, dim3(1), dim3(96), barrier_predicates, out.data()).ok);
  for (int t = 0; t < 96; ++t) {
    EXPECT_EQ(out[4 * t + 0], 48) << "thread " << t;
    EXPECT_EQ(out[4 * t + 1], 1) << "thread " << t;
    EXPECT_EQ(out[4 * t + 2], 1) << "thread " << t;
    EXPECT_EQ(out[4 * t + 3], 0) << "thread " << t;
  }
}

// Cooperative: every block resident, grid-wide barrier, each block with its own shared memory.
void cooperative_exchange(int* slots, int* out) {
  SIMT_SHARED(int, mine);
  if (threadIdx.x == 0) {
    mine = static_cast<int>(blockIdx.x) * 10;
    slots[blockIdx.x] = mine;
  }
  simt::grid_sync();
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = mine + slots[(blockIdx.x + 1) % gridDim.x];
}

TEST(Execution, CooperativeGridKeepsSharedMemoryPerBlock) {
  for (simt::Order order : simt_test::kAllOrders) {
    simt::ScopedOptions scoped(simt_test::with_order(order));
    std::vector<int> slots(8, -1), out(8, -1);
    simt::LaunchConfig config;
    config.grid = dim3(8);
    config.block = dim3(64);
    config.cooperative = true;
    ASSERT_TRUE(simt::launch(config, cooperative_exchange, slots.data(), out.data()).ok);
    for (int b = 0; b < 8; ++b) EXPECT_EQ(out[b], b * 10 + ((b + 1) % 8) * 10);
  }
}

// Which thread ran first: forward runs thread 0 first, reverse the last thread, random neither
// in general, the same permutation for the same seed.
void record_first_steps(std::atomic<int>* clock, int* when) { when[threadIdx.x] = clock->fetch_add(1); }

std::vector<int> first_steps(simt::Order order, std::uint64_t seed) {
  simt::ScopedOptions scoped(simt_test::with_order(order, seed));
  std::atomic<int> clock{0};
  std::vector<int> when(256, -1);
  simt::LaunchConfig config;
  config.block = dim3(256);
  EXPECT_TRUE(simt::launch(config, record_first_steps, &clock, when.data()).ok);
  return when;
}

TEST(Execution, OrdersAreForwardReverseAndSeededRandom) {
  const std::vector<int> forward = first_steps(simt::Order::kForward, 1);
  const std::vector<int> reverse = first_steps(simt::Order::kReverse, 1);
  const std::vector<int> random_a = first_steps(simt::Order::kRandom, 7);
  const std::vector<int> random_b = first_steps(simt::Order::kRandom, 7);
  const std::vector<int> random_c = first_steps(simt::Order::kRandom, 8);
  for (int t = 0; t < 256; ++t) {
    EXPECT_EQ(forward[t], t);
    EXPECT_EQ(reverse[t], 255 - t);
  }
  EXPECT_EQ(random_a, random_b);
  EXPECT_NE(random_a, random_c);
  EXPECT_NE(random_a, forward);
  std::vector<int> sorted = random_a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, forward);
}

void record_block_order(std::atomic<int>* clock, int* when) {
  if (threadIdx.x == 0) when[blockIdx.x] = clock->fetch_add(1);
}

TEST(Execution, RandomOrderPermutesBlocks) {
  simt::Options options = simt_test::with_order(simt::Order::kRandom, 3);
  options.workers = 1;
  simt::ScopedOptions scoped(options);
  std::atomic<int> clock{0};
  std::vector<int> when(1000, -1);
  simt::LaunchConfig config;
  config.grid = dim3(1000);
  config.block = dim3(32);
  ASSERT_TRUE(simt::launch(config, record_block_order, &clock, when.data()).ok);
  std::vector<int> sorted = when;
  std::sort(sorted.begin(), sorted.end());
  for (int b = 0; b < 1000; ++b) ASSERT_EQ(sorted[b], b);
  int in_place = 0;
  for (int b = 0; b < 1000; ++b) in_place += when[b] == b;
  EXPECT_LT(in_place, 100);
}

void call_rsqrt(const float* in, float* out) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  out[i] = rsqrtf(in[i]);
}

// Intrinsics are exact on the CPU; the random order perturbs them within CUDA's documented
// bound (rsqrtf: 2 ulp) so that tolerances chosen on SIMT hold on a GPU.
TEST(Execution, RandomOrderPerturbsIntrinsicsWithinTheirBound) {
  const int n = 4096;
  std::vector<float> in(n), exact_out(n), perturbed(n);
  for (int i = 0; i < n; ++i) in[i] = 0.001f + static_cast<float>(i) * 0.37f;
  ASSERT_TRUE(run(simt::Order::kForward, dim3(n / 128), dim3(128), call_rsqrt, in.data(), exact_out.data()).ok);
  ASSERT_TRUE(run(simt::Order::kRandom, dim3(n / 128), dim3(128), call_rsqrt, in.data(), perturbed.data()).ok);
  int changed = 0;
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(exact_out[i], 1.0f / std::sqrt(in[i]));
    float low = exact_out[i], high = exact_out[i];
    for (int step = 0; step < 2; ++step) {
      low = std::nextafter(low, 0.0f);
      high = std::nextafter(high, INFINITY);
    }
    EXPECT_GE(perturbed[i], low);
    EXPECT_LE(perturbed[i], high);
    changed += perturbed[i] != exact_out[i];
  }
  EXPECT_GT(changed, n / 2);
}

}  // namespace

namespace {

void read_two_buffers(const float* a, const float* b, float* out) {
  const unsigned i = threadIdx.x;
  simt::detail::global_access(a + i, sizeof(float), sizeof(float), false, simt::SourceLocation::here());
  simt::detail::global_access(b + 2 * i, 2 * sizeof(float), sizeof(float), false, simt::SourceLocation::here());
  simt::detail::global_access(out + i, sizeof(float), sizeof(float), true, simt::SourceLocation::here());
}

// Lane i reads 4 bytes every 32: each lane touches a sector of its own.
void strided_read(const float* a) {
  simt::detail::global_access(a + 8 * threadIdx.x, sizeof(float), sizeof(float), false, simt::SourceLocation::here());
}

// Traffic is attributed to the watched buffer that contains each access.
TEST(Execution, TrafficIsCountedPerWatchedBuffer) {
  alignas(64) float a[64] = {}, b[128] = {}, out[64] = {};
  simt::LaunchRecorder recorder;
  simt::TrafficWatch watch({{"a", a, sizeof a}, {"b", b, sizeof b}, {"out", out, sizeof out}});
  simt::LaunchConfig config;
  config.grid = dim3(1);
  config.block = dim3(64);
  ASSERT_TRUE(
      simt::launch(config, read_two_buffers, static_cast<const float*>(a), static_cast<const float*>(b), out).ok);
  const simt::LaunchRecord& r = recorder.records().at(0);
  ASSERT_EQ(r.buffers.size(), 3u);
  EXPECT_EQ(r.buffers[0].bytes_read, 256u);
  EXPECT_EQ(r.buffers[1].bytes_read, 512u);
  EXPECT_EQ(r.buffers[2].bytes_read, 0u);
  EXPECT_EQ(r.buffers[2].bytes_written, 256u);
  EXPECT_EQ(r.bytes_read, 768u);
  EXPECT_EQ(r.bytes_written, 256u);
  // Two warps of contiguous accesses: one request per warp and site, every sector full.
  EXPECT_EQ(r.buffers[0].requests, 2u);
  EXPECT_EQ(r.buffers[0].sectors, 8u);
  EXPECT_EQ(r.buffers[1].sectors, 16u);
  EXPECT_DOUBLE_EQ(r.buffers[1].sector_efficiency(), 1.0);
  alignas(64) float sparse[8 * 64] = {};
  simt::TrafficWatch strided({{"sparse", sparse, sizeof sparse}});
  ASSERT_TRUE(simt::launch(config, strided_read, static_cast<const float*>(sparse)).ok);
  const simt::BufferTraffic& t = recorder.records().at(1).buffers.at(0);
  EXPECT_EQ(t.requests, 2u);
  EXPECT_EQ(t.sectors, 64u);
  EXPECT_DOUBLE_EQ(t.sector_efficiency(), 0.125);
}

// Every thread of every block reads the same 8 floats (as blocks re-read a row of parameters),
// and thread i of block 0 alone writes 4 bytes of sector i of another buffer.
void shared_row_read(const float* row, float* marks) {
  for (int k = 0; k < 8; ++k) {
    simt::detail::global_access(row + k, sizeof(float), sizeof(float), false, simt::SourceLocation::here());
  }
  if (blockIdx.x == 0) {
    simt::detail::global_access(marks + 8 * threadIdx.x, sizeof(float), sizeof(float), true,
                                simt::SourceLocation::here());
  }
}

// One thread stores 32 bytes at `at` (16 bytes past a sector boundary: two sectors), then loads
// them and the 32 bytes after them.
void store_then_load(float* at) {
  if (threadIdx.x != 0) return;
  simt::detail::global_access(at, 32, 16, true, simt::SourceLocation::here());
  simt::detail::global_access(at, 32, 16, false, simt::SourceLocation::here());
  simt::detail::global_access(at + 8, 32, 16, false, simt::SourceLocation::here());
}

// The footprint counts each 32-byte sector once over all launches a watch sees, however often it
// was requested: as read if a load reached it before any store, and as written if stored to.
TEST(Execution, FootprintCountsDistinctSectorsOverLaunches) {
  alignas(256) float row[64] = {}, marks[8 * 32] = {};
  simt::LaunchRecorder recorder;
  simt::TrafficWatch watch({{"row", row + 8, 32 * sizeof(float)}, {"marks", marks, sizeof marks}});
  simt::LaunchConfig config;
  config.grid = dim3(4);
  config.block = dim3(32);
  for (int launch = 0; launch < 2; ++launch) {
    ASSERT_TRUE(simt::launch(config, shared_row_read, static_cast<const float*>(row + 8), marks).ok);
  }
  EXPECT_EQ(recorder.records().at(0).buffers.at(0).bytes_read, 4u * 32u * 8u * sizeof(float));
  EXPECT_EQ(watch.footprint(0).read, 32u);  // the 8 floats are one sector
  EXPECT_EQ(watch.footprint(0).written, 0u);
  EXPECT_EQ(watch.footprint(1).read, 0u);
  EXPECT_EQ(watch.footprint(1).written, 32u * 32u);  // 32 sectors of 4 bytes each
  // A fresh watch starts with nothing touched. A 32-byte access 16 bytes into a sector touches
  // two; a load of what the watch's launches stored is not a read from DRAM, the sector after is.
  simt::TrafficWatch straddling({{"row", row, sizeof row}});
  EXPECT_EQ(straddling.footprint(0).read + straddling.footprint(0).written, 0u);
  ASSERT_TRUE(simt::launch(config, store_then_load, row + 4).ok);
  EXPECT_EQ(straddling.footprint(0).written, 64u);  // sectors 0 and 1
  EXPECT_EQ(straddling.footprint(0).read, 32u);     // sector 2 (sector 1 was written first)
}

}  // namespace
