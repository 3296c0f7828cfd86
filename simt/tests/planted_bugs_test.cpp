// One planted bug per fault class the engine promises to catch. Each must come back as a failed
// launch whose message names the fault, the block and thread, and the kernel's source line; none
// may crash, hang or throw.
#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine_test_util.hpp"

namespace {

using simt_test::expect_fault;
using simt_test::run;

const std::string kThisFile = __FILE__;

// Missing barrier: thread 0 publishes a value that the others read without __syncthreads. The
// forward order hides it (thread 0 runs first); the reverse order reads the NaN poison.
void missing_barrier(float* out) {
  SIMT_SHARED(float, value);
  if (threadIdx.x == 0) value = 42.0f;
  out[threadIdx.x] = value;  // BUG: no __syncthreads() between the write and the reads
}

TEST(PlantedBugs, MissingBarrierShowsAsOrderDependentResult) {
  std::vector<float> forward(64), reverse(64);
  ASSERT_TRUE(run(simt::Order::kForward, dim3(1), dim3(64), missing_barrier, forward.data()).ok);
  ASSERT_TRUE(run(simt::Order::kReverse, dim3(1), dim3(64), missing_barrier, reverse.data()).ok);
  EXPECT_EQ(forward[63], 42.0f);
  EXPECT_TRUE(std::isnan(reverse[63]));  // the results differ across orders: the test harness's race signal
}

// Lockstep assumption: lanes exchange through shared memory without __syncwarp, assuming the
// warp executes together as before Volta.
void missing_syncwarp(int* out) {
  SIMT_SHARED(int[32], slots);
  slots[threadIdx.x] = static_cast<int>(threadIdx.x);
  out[threadIdx.x] = slots[(threadIdx.x + 1) % 32];  // BUG: needs __syncwarp() before the read
}

TEST(PlantedBugs, LockstepAssumptionShowsAsOrderDependentResult) {
  std::vector<int> forward(32), reverse(32);
  ASSERT_TRUE(run(simt::Order::kForward, dim3(1), dim3(32), missing_syncwarp, forward.data()).ok);
  ASSERT_TRUE(run(simt::Order::kReverse, dim3(1), dim3(32), missing_syncwarp, reverse.data()).ok);
  EXPECT_NE(forward, reverse);
}

void divergent_barrier(int*) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();  // BUG: a different barrier than the first half's
  }
}

TEST(PlantedBugs, DivergentBarrier) {
  for (simt::Order order : simt_test::kAllOrders) {
    expect_fault(run(order, dim3(2), dim3(64), divergent_barrier, nullptr), "divergent barrier", kThisFile);
  }
}

void exit_before_barrier(unsigned leaver) {
  if (threadIdx.x == leaver) return;  // BUG: this thread never reaches the barrier
  __syncthreads();
}

TEST(PlantedBugs, ThreadExitsWhileOthersWaitAtABarrier) {
  // Threads 0..4 already wait when thread 5 leaves.
  expect_fault(run(simt::Order::kForward, dim3(1), dim3(64), exit_before_barrier, 5u), "exited while 5 threads",
               "thread (5,0,0) of block (0,0,0)");
  // Thread 0 leaves before anyone waits: the barrier then finds it gone.
  expect_fault(run(simt::Order::kForward, dim3(1), dim3(64), exit_before_barrier, 0u),
               "reached after thread (0,0,0) of block (0,0,0) exited", kThisFile);
  for (unsigned leaver : {0u, 31u, 63u}) {
    for (simt::Order order : simt_test::kAllOrders) {
      EXPECT_FALSE(run(order, dim3(1), dim3(64), exit_before_barrier, leaver).ok);
    }
  }
}

void mask_excludes_caller(int* out) {
  // BUG: each lane names only its neighbour.
  out[threadIdx.x] = __shfl_xor_sync(1u << ((threadIdx.x + 1) % 32), 1, 1);
}

TEST(PlantedBugs, ShuffleMaskExcludingTheCaller) {
  expect_fault(run(simt::Order::kForward, dim3(1), dim3(32), mask_excludes_caller, std::vector<int>(32).data()),
               "mask 0x00000002 that excludes the calling lane 0", kThisFile);
}

void mask_names_missing_lanes(int* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 1);  // BUG: the block has only 20 threads
}

TEST(PlantedBugs, ShuffleMaskNamingLanesThatDoNotExist) {
  expect_fault(run(simt::Order::kForward, dim3(1), dim3(20), mask_names_missing_lanes, std::vector<int>(20).data()),
               "do not exist", kThisFile);
}

void lanes_disagree(int* out) {
  if (threadIdx.x < 16) {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 1);
  } else {
    out[threadIdx.x] = static_cast<int>(__ballot_sync(0xffffffffu, 1));  // BUG: a different collective
  }
}

TEST(PlantedBugs, LanesCallingDifferentCollectives) {
  expect_fault(run(simt::Order::kForward, dim3(1), dim3(32), lanes_disagree, std::vector<int>(32).data()),
               "lanes disagree", kThisFile);
}

void read_outside_mask(int* out) {
  // BUG: lane 0 reads lane 31, which is not in the mask.
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, 7, 31, 32);
}

TEST(PlantedBugs, ShuffleReadingALaneOutsideTheMask) {
  expect_fault(run(simt::Order::kForward, dim3(1), dim3(32), read_outside_mask, std::vector<int>(32).data()),
               "outside the mask", kThisFile);
}

void shuffle_then_exit(int* out) {
  if (threadIdx.x == 3) return;  // BUG: lane 3 is in the mask of the shuffle below
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1, 1);
}

TEST(PlantedBugs, LaneExitsBeforeACollectiveNamingIt) {
  for (simt::Order order : simt_test::kAllOrders) {
    const simt::LaunchResult result = run(order, dim3(1), dim3(32), shuffle_then_exit, std::vector<int>(32).data());
    EXPECT_FALSE(result.ok);
    EXPECT_NE(result.message.find("exited"), std::string::npos) << result.message;
  }
}

void deadlock(int* out) {
  if (threadIdx.x == 0) {
    out[0] = __shfl_sync(0xffffffffu, 1, 0);  // BUG: lane 0 waits for its warp...
  }
  __syncthreads();  // ...which waits here for lane 0
}

TEST(PlantedBugs, DeadlockBetweenABarrierAndACollective) {
  const simt::LaunchResult result = run(simt::Order::kForward, dim3(1), dim3(32), deadlock, std::vector<int>(1).data());
  expect_fault(result, "deadlock", "__shfl_sync (" + kThisFile);
  EXPECT_NE(result.message.find("__syncthreads (" + kThisFile), std::string::npos) << result.message;
}

void bad_width(int* out) { out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 1, 12); }  // BUG: width 12

TEST(PlantedBugs, ShuffleWidthNotAPowerOfTwo) {
  expect_fault(run(simt::Order::kForward, dim3(1), dim3(32), bad_width, std::vector<int>(32).data()), "width 12",
               kThisFile);
}

void misaligned_vector_load(const float* data) {
  // BUG: a 16-byte access one float past an aligned address (the library's load helpers report
  // every global access through this hook).
  simt::detail::global_access(data + 1, 16, 16, false, simt::SourceLocation::here());
}

TEST(PlantedBugs, MisalignedVectorAccess) {
  alignas(16) float data[8] = {};
  expect_fault(run(simt::Order::kForward, dim3(1), dim3(1), misaligned_vector_load, static_cast<const float*>(data)),
               "misaligned 16-byte global load", kThisFile);
}

int deep_recursion(int depth) {
  volatile char frame[4096];
  frame[0] = static_cast<char>(depth);
  return depth > 100000 ? frame[0] : deep_recursion(depth + 1) + frame[0];  // BUG: unbounded depth
}

void overflow_stack(int* out) { out[threadIdx.x] = deep_recursion(0); }

TEST(PlantedBugs, StackOverflowHitsTheGuardPage) {
  const simt::LaunchResult result =
      run(simt::Order::kForward, dim3(2), dim3(32), overflow_stack, std::vector<int>(64).data());
  expect_fault(result, "stack overflow", "thread (");
  // The engine is still usable afterwards.
  std::vector<float> out(64);
  EXPECT_TRUE(run(simt::Order::kForward, dim3(1), dim3(64), missing_barrier, out.data()).ok);
}

void throws(int*) {
  if (threadIdx.x == 7) throw std::runtime_error("planted");  // BUG: exceptions do not exist on a GPU
  __syncwarp();
}

TEST(PlantedBugs, ExceptionDoesNotCrossTheFiber) {
  expect_fault(run(simt::Order::kForward, dim3(1), dim3(32), throws, nullptr), "threw planted", "thread (7,0,0)");
}

void grid_sync_without_cooperative_launch(int*) { simt::grid_sync(); }  // BUG: needs a cooperative launch

TEST(PlantedBugs, GridSyncInANormalLaunch) {
  expect_fault(run(simt::Order::kForward, dim3(2), dim3(32), grid_sync_without_cooperative_launch, nullptr),
               "not launched cooperatively", kThisFile);
}

void trap_kernel(int*) {
  if (blockIdx.x == 1 && threadIdx.x == 2) __trap();
}

TEST(PlantedBugs, TrapIsReportedWithItsThread) {
  expect_fault(run(simt::Order::kForward, dim3(3), dim3(32), trap_kernel, nullptr), "__trap()",
               "thread (2,0,0) of block (1,0,0)");
}

}  // namespace

namespace {

void write_past_dynamic_shared(int*) {
  float* smem = simt_dynamic_shared<float>();
  smem[threadIdx.x] = 1.0f;  // BUG: 65 threads write into 64 floats
}

TEST(PlantedBugs, SharedMemoryWrittenOutOfBounds) {
  simt::LaunchConfig config;
  config.block = dim3(65);
  config.dynamic_shared_bytes = 64 * sizeof(float);
  config.name = "test_kernel";
  simt_test::expect_fault(simt::launch(config, write_past_dynamic_shared, static_cast<int*>(nullptr)),
                          "shared memory written out of bounds: byte 256",
                          "past the 256 bytes of dynamic shared memory");
}

}  // namespace
