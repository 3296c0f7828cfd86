// The fault injection hook (simt/fault_injection.hpp): an armed launch countdown makes exactly the
// k-th launch from now fail without running any thread, counts only on the thread that armed it,
// and an allocation countdown fires on its k-th take.
#include "simt/fault_injection.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "engine_test_util.hpp"

namespace {

void add_one(int* counter) {
  if (threadIdx.x == 0) *counter += 1;
}

TEST(FaultInjection, TheKthLaunchFailsAndRunsNothing) {
  int counter = 0;
  simt::inject_fault(simt::FaultSite::kLaunch, 3);
  EXPECT_TRUE(simt_test::run(simt::Order::kForward, dim3(1), dim3(32), add_one, &counter).ok);
  EXPECT_TRUE(simt_test::run(simt::Order::kForward, dim3(1), dim3(32), add_one, &counter).ok);
  EXPECT_TRUE(simt::injected_fault_pending(simt::FaultSite::kLaunch));
  const simt::LaunchResult failed = simt_test::run(simt::Order::kForward, dim3(1), dim3(32), add_one, &counter);
  simt_test::expect_fault(failed, "injected fault", "test_kernel");
  EXPECT_EQ(counter, 2);  // the failed launch ran no thread
  EXPECT_FALSE(simt::injected_fault_pending(simt::FaultSite::kLaunch));
  EXPECT_TRUE(simt_test::run(simt::Order::kForward, dim3(1), dim3(32), add_one, &counter).ok);
  EXPECT_EQ(counter, 3);
}

TEST(FaultInjection, CountsOnlyTheArmingThread) {
  int counter = 0;
  simt::inject_fault(simt::FaultSite::kLaunch, 1);
  std::thread other([&counter] {
    EXPECT_FALSE(simt::injected_fault_pending(simt::FaultSite::kLaunch));
    EXPECT_TRUE(simt_test::run(simt::Order::kForward, dim3(1), dim3(1), add_one, &counter).ok);
  });
  other.join();
  EXPECT_EQ(counter, 1);
  EXPECT_FALSE(simt_test::run(simt::Order::kForward, dim3(1), dim3(1), add_one, &counter).ok);
  EXPECT_EQ(counter, 1);
}

TEST(FaultInjection, AllocationCountdownAndDisarm) {
  simt::inject_fault(simt::FaultSite::kAllocation, 2);
  EXPECT_FALSE(simt::take_injected_fault(simt::FaultSite::kAllocation));
  EXPECT_TRUE(simt::take_injected_fault(simt::FaultSite::kAllocation));
  EXPECT_FALSE(simt::take_injected_fault(simt::FaultSite::kAllocation));
  simt::inject_fault(simt::FaultSite::kAllocation, 1);
  simt::inject_fault(simt::FaultSite::kAllocation, 0);
  EXPECT_FALSE(simt::injected_fault_pending(simt::FaultSite::kAllocation));
  EXPECT_FALSE(simt::take_injected_fault(simt::FaultSite::kAllocation));
}

}  // namespace
