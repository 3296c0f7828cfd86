// A block window (simt::ScopedBlockWindow) runs only a chosen range of a launch's blocks: the
// way tests check the blocks of grids too large to run whole on a CPU. Blocks outside the range
// must not run at all, the range must follow the grid's linear block order, be clipped to the
// grid, apply per launch, and a cooperative launch under a window must be refused.
#include <algorithm>
#include <cstring>
#include <vector>

#include "engine_test_util.hpp"

namespace {

void mark_block(int* marks) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  if (threadIdx.x == 0) marks[block] += 1;
}

std::vector<int> run_marking(dim3 grid, simt::Order order, const simt::ScopedBlockWindow::Selector& select,
                             simt::LaunchRecord* record) {
  std::vector<int> marks(grid.x * grid.y * grid.z, 0);
  simt::LaunchRecorder recorder;
  simt::ScopedBlockWindow window(select);
  EXPECT_TRUE(simt_test::run(order, grid, dim3(64), mark_block, marks.data()).ok);
  EXPECT_EQ(recorder.records().size(), 1u);
  if (!recorder.records().empty()) *record = recorder.records().front();
  return marks;
}

TEST(BlockWindow, RunsExactlyTheChosenLinearBlocks) {
  for (simt::Order order : simt_test::kAllOrders) {
    simt::LaunchRecord record;
    // A 3-D grid of 4 x 3 x 2 blocks: linear ids 5..13 cross both the y and the z boundary.
    const std::vector<int> marks =
        run_marking(dim3(4, 3, 2), order, [](const simt::LaunchConfig&) { return simt::BlockRange{5, 9}; }, &record);
    for (int b = 0; b < 24; ++b) EXPECT_EQ(marks[b], b >= 5 && b < 14 ? 1 : 0) << "block " << b;
    EXPECT_EQ(record.blocks_run, 9u);
  }
}

TEST(BlockWindow, RangeIsClippedToTheGrid) {
  simt::LaunchRecord record;
  std::vector<int> marks =
      run_marking(dim3(10), simt::Order::kRandom, [](const simt::LaunchConfig&) { return simt::BlockRange{8, 100}; },
                  &record);
  EXPECT_EQ(marks, (std::vector<int>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(record.blocks_run, 2u);
  marks = run_marking(dim3(10), simt::Order::kForward,
                      [](const simt::LaunchConfig&) { return simt::BlockRange{12, 3}; }, &record);
  EXPECT_EQ(marks, std::vector<int>(10, 0));
  EXPECT_EQ(record.blocks_run, 0u);
}

TEST(BlockWindow, SelectorSeesEachLaunchAndTheWindowEndsWithItsScope) {
  std::vector<int> marks(6, 0);
  simt::LaunchConfig config;
  config.grid = dim3(6);
  config.block = dim3(32);
  {
    simt::ScopedBlockWindow window([](const simt::LaunchConfig& launch) {
      return std::strcmp(launch.name, "second") == 0 ? simt::BlockRange{4, 1} : simt::BlockRange{0, 2};
    });
    config.name = "first";
    ASSERT_TRUE(simt::launch(config, mark_block, marks.data()).ok);
    config.name = "second";
    ASSERT_TRUE(simt::launch(config, mark_block, marks.data()).ok);
  }
  EXPECT_EQ(marks, (std::vector<int>{1, 1, 0, 0, 1, 0}));
  ASSERT_TRUE(simt::launch(config, mark_block, marks.data()).ok);  // no window: every block
  EXPECT_EQ(marks, (std::vector<int>{2, 2, 1, 1, 2, 1}));
}

TEST(BlockWindow, CooperativeLaunchIsRefused) {
  simt::ScopedBlockWindow window([](const simt::LaunchConfig&) { return simt::BlockRange{0, 1}; });
  std::vector<int> marks(4, 0);
  simt::LaunchConfig config;
  config.grid = dim3(4);
  config.block = dim3(32);
  config.cooperative = true;
  config.name = "test_kernel";
  const simt::LaunchResult result = simt::launch(config, mark_block, marks.data());
  simt_test::expect_fault(result, "launch refused", "cooperative");
  EXPECT_EQ(marks, std::vector<int>(4, 0));
}

}  // namespace
