// Publication of global stores across blocks: on a GPU another block may not see a store until
// the writer's __threadfence() (or a grid barrier, or the kernel's end), so the engine reports a
// load of a word that another block of the same launch stored to and has not published. The
// classic victim is the last-block-done reduction: every block leaves a partial, takes a ticket
// from an atomic counter, and the block that takes the last ticket adds the partials. Without
// the fence between the partial's store and the ticket, the last block may read stale partials.
#include <cstdint>
#include <vector>

#include "engine_test_util.hpp"

namespace {

using simt_test::expect_fault;

const std::string kThisFile = __FILE__;

// Kernels here touch global memory through the engine's checked-access hook, as the library's
// load/store helpers (kernels/global_memory.cuh) do.
int load(const int* p, simt::SourceLocation loc = simt::SourceLocation::here()) {
  simt::detail::global_access(p, sizeof(int), sizeof(int), false, loc);
  return *p;
}
void store(int* p, int value, simt::SourceLocation loc = simt::SourceLocation::here()) {
  simt::detail::global_access(p, sizeof(int), sizeof(int), true, loc);
  *p = value;
}

enum class Publish { kThreadFence, kBlockFenceOnly, kNothing };

// Each block stores one partial per thread, then its thread 0 publishes (or not) and takes a
// ticket; the block with the last ticket sums every partial into *total.
void last_block_done_sum(const int* values, int* partials, unsigned* tickets, int* total, Publish publish) {
  SIMT_SHARED(unsigned, ticket);
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  store(partials + i, 2 * load(values + i));
  __syncthreads();  // every partial of the block stored before thread 0 publishes them
  if (threadIdx.x == 0) {
    if (publish == Publish::kThreadFence) __threadfence();
    if (publish == Publish::kBlockFenceOnly) __threadfence_block();  // BUG when chosen: block scope
    ticket = atomicAdd(tickets, 1u);
  }
  __syncthreads();
  if (ticket != gridDim.x - 1 || threadIdx.x != 0) return;
  int sum = 0;
  for (unsigned j = 0; j < gridDim.x * blockDim.x; ++j) sum += load(partials + j);  // the last block's reads
  store(total, sum);
}

struct Sum {
  std::vector<int> values, partials;
  unsigned tickets = 0;
  int total = -1;
  explicit Sum(int n) : values(n), partials(n, -1) {
    for (int i = 0; i < n; ++i) values[i] = i + 1;
  }
  simt::LaunchResult run(simt::Order order, int workers, Publish publish) {
    simt::Options options = simt_test::with_order(order);
    options.workers = workers;
    simt::ScopedOptions scoped(options);
    simt::LaunchConfig config;
    config.grid = dim3(static_cast<unsigned>(values.size() / 32));
    config.block = dim3(32);
    config.name = "test_kernel";
    return simt::launch(config, last_block_done_sum, values.data(), partials.data(), &tickets, &total, publish);
  }
};

TEST(Publication, LastBlockDoneWithItsFenceRunsClean) {
  for (simt::Order order : simt_test::kAllOrders) {
    for (int workers : {1, 2}) {
      Sum sum(8 * 32);
      ASSERT_TRUE(sum.run(order, workers, Publish::kThreadFence).ok);
      EXPECT_EQ(sum.total, 256 * 257);  // 2 * (1 + ... + 256)
    }
  }
}

TEST(Publication, LastBlockDoneWithoutItsFenceIsReported) {
  for (simt::Order order : simt_test::kAllOrders) {
    for (int workers : {1, 2}) {
      Sum sum(8 * 32);
      const simt::LaunchResult result = sum.run(order, workers, Publish::kNothing);
      expect_fault(result, "stored and has not published", kThisFile);
      EXPECT_NE(result.message.find("__threadfence()"), std::string::npos) << result.message;
    }
  }
}

TEST(Publication, BlockScopeFenceDoesNotPublishToOtherBlocks) {
  Sum sum(4 * 32);
  expect_fault(sum.run(simt::Order::kForward, 1, Publish::kBlockFenceOnly), "has not published", kThisFile);
}

// A block reading back its own unfenced stores is fine (its barriers order them), and so is a
// later launch reading what an earlier one stored: the kernel's end publishes everything.
void store_then_read_own(int* data, int* out) {
  store(data + blockIdx.x, static_cast<int>(blockIdx.x) + 10);
  out[blockIdx.x] = load(data + blockIdx.x);
}
void read_neighbour(int* data, int* out) { out[blockIdx.x] = load(data + (blockIdx.x + 1) % gridDim.x); }

TEST(Publication, OwnStoresAndEarlierLaunchesNeedNoFence) {
  std::vector<int> data(16, 0), out(16, 0);
  for (simt::Order order : simt_test::kAllOrders) {
    ASSERT_TRUE(simt_test::run(order, dim3(16), dim3(1), store_then_read_own, data.data(), out.data()).ok);
    ASSERT_TRUE(simt_test::run(order, dim3(16), dim3(1), read_neighbour, data.data(), out.data()).ok);
    for (int b = 0; b < 16; ++b) EXPECT_EQ(out[b], (b + 1) % 16 + 10);
  }
}

// A grid barrier publishes: blocks exchange through global memory across simt::grid_sync.
void exchange_across_grid_barrier(int* slots, int* out, bool barrier) {
  store(slots + blockIdx.x, static_cast<int>(blockIdx.x) * 3);
  if (barrier) simt::grid_sync();
  out[blockIdx.x] = load(slots + (blockIdx.x + 1) % gridDim.x);  // BUG without the barrier
}

TEST(Publication, GridBarrierPublishesAndItsAbsenceIsReported) {
  simt::LaunchConfig config;
  config.grid = dim3(6);
  config.block = dim3(1);
  config.cooperative = true;
  config.name = "test_kernel";
  std::vector<int> slots(6, -1), out(6, -1);
  ASSERT_TRUE(simt::launch(config, exchange_across_grid_barrier, slots.data(), out.data(), true).ok);
  for (int b = 0; b < 6; ++b) EXPECT_EQ(out[b], (b + 1) % 6 * 3);
  // In forward order block 0 loads slot 1 before block 1 stores it (an old value: no fault, but no
  // order on a GPU either); block 5 then loads slot 0, which block 0 stored: reported.
  expect_fault(simt::launch(config, exchange_across_grid_barrier, slots.data(), out.data(), false),
               "has not published", kThisFile);
}

// Bytes, not words: a block that loads a 2-byte element while another block stores the other
// element of the same 4-byte word (a half-precision tensor of odd row length split between
// blocks) touches different memory and needs no fence; loading the very bytes another block
// stored still needs one. Even blocks store their element, odd blocks load element b - back.
void store_even_load_odd(std::uint16_t* halves, std::uint16_t* out, unsigned back) {
  const simt::SourceLocation loc = simt::SourceLocation::here();
  if (blockIdx.x % 2 == 0) {
    simt::detail::global_access(halves + blockIdx.x, sizeof(std::uint16_t), sizeof(std::uint16_t), true, loc);
    halves[blockIdx.x] = static_cast<std::uint16_t>(blockIdx.x + 1);
  } else {
    const std::uint16_t* element = halves + blockIdx.x - back;
    simt::detail::global_access(element, sizeof(std::uint16_t), sizeof(std::uint16_t), false, loc);
    out[blockIdx.x] = *element;
  }
}

TEST(Publication, OtherBytesOfAStoredWordNeedNoFence) {
  for (simt::Order order : simt_test::kAllOrders) {
    std::vector<std::uint16_t> halves(8, 0), out(8, 7);
    ASSERT_TRUE(simt_test::run(order, dim3(8), dim3(1), store_even_load_odd, halves.data(), out.data(), 0u).ok);
    for (int b = 1; b < 8; b += 2) EXPECT_EQ(out[b], 0);
  }
  // In forward order on one worker block 1 loads element 0 after block 0 stored it without a fence.
  simt::Options one_worker = simt::current_options();
  one_worker.workers = 1;
  simt::ScopedOptions scoped(one_worker);
  std::vector<std::uint16_t> halves(8, 0), out(8, 7);
  expect_fault(simt_test::run(simt::Order::kForward, dim3(8), dim3(1), store_even_load_odd, halves.data(),
                              out.data(), 1u),
               "has not published", kThisFile);
}

}  // namespace
