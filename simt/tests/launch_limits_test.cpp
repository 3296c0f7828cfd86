// CUDA's launch rules hold on the engine: a launch a GPU would refuse is refused here, with the
// reason, before any thread runs.
#include "engine_test_util.hpp"

namespace {

void touch(int* out) {
  if (out != nullptr) out[0] = 1;
}

simt::LaunchResult launch_with(simt::LaunchConfig config) {
  config.name = "touch";
  return simt::launch(config, touch, static_cast<int*>(nullptr));
}

TEST(LaunchLimits, BlockAndGridDimensions) {
  simt::LaunchConfig config;
  config.block = dim3(1025);
  EXPECT_NE(launch_with(config).message.find("outside the limits"), std::string::npos);
  config.block = dim3(32, 32, 2);
  EXPECT_NE(launch_with(config).message.find("2048 threads exceeds 1024"), std::string::npos);
  config.block = dim3(1, 1, 65);
  EXPECT_FALSE(launch_with(config).ok);
  config.block = dim3(32);
  config.grid = dim3(1, 65536);
  EXPECT_FALSE(launch_with(config).ok);
  config.grid = dim3(0);
  EXPECT_FALSE(launch_with(config).ok);
  config.grid = dim3(2, 3, 4);
  config.block = dim3(8, 8, 16);
  EXPECT_TRUE(launch_with(config).ok);
}

void dynamic_user(int* out) {
  unsigned char* smem = simt_dynamic_shared<unsigned char>();
  smem[0] = 1;
  if (out != nullptr) out[0] = smem[0];
}

TEST(LaunchLimits, DynamicSharedMemoryNeedsTheOptIn) {
  const simt::Target* h100 = simt::find_target("sm_90");
  const simt::Target* t4 = simt::find_target("sm_75");
  simt::LaunchConfig config;
  config.target = h100;
  config.dynamic_shared_bytes = 48 * 1024;
  EXPECT_TRUE(simt::launch(config, dynamic_user, static_cast<int*>(nullptr)).ok);
  config.dynamic_shared_bytes = 48 * 1024 + 16;
  const simt::LaunchResult refused = simt::launch(config, dynamic_user, static_cast<int*>(nullptr));
  EXPECT_NE(refused.message.find("cudaFuncSetAttribute"), std::string::npos) << refused.message;
  std::string error;
  EXPECT_FALSE(simt::set_max_dynamic_shared_memory(simt::kernel_id(dynamic_user), 100 * 1024, t4, &error));
  EXPECT_NE(error.find("sm_75"), std::string::npos);
  ASSERT_TRUE(simt::set_max_dynamic_shared_memory(simt::kernel_id(dynamic_user), 200 * 1024, h100, &error));
  config.dynamic_shared_bytes = 200 * 1024;
  int out = 0;
  EXPECT_TRUE(simt::launch(config, dynamic_user, &out).ok);
  EXPECT_EQ(out, 1);
}

void too_much_static(int* out) {
  SIMT_SHARED(char[49 * 1024], big);
  big[0] = 1;
  out[0] = big[0];
}

TEST(LaunchLimits, StaticSharedMemoryOver48KiB) {
  int out = 0;
  simt_test::expect_fault(simt_test::run(simt::Order::kForward, dim3(1), dim3(32), too_much_static, &out),
                          "exceeds the 49152 bytes a block may declare", __FILE__);
}

void cooperative_touch(int*) { simt::grid_sync(); }

TEST(LaunchLimits, CooperativeGridMustFitOnTheGpu) {
  simt::LaunchConfig config;
  config.target = simt::find_target("sm_75");  // 40 SMs x 1 block of 1024 threads
  config.cooperative = true;
  config.block = dim3(1024);
  config.grid = dim3(41);
  const simt::LaunchResult refused = simt::launch(config, cooperative_touch, static_cast<int*>(nullptr));
  EXPECT_NE(refused.message.find("exceeds the 40 that sm_75 can keep resident"), std::string::npos) << refused.message;
  config.grid = dim3(4);
  config.block = dim3(128);
  EXPECT_TRUE(simt::launch(config, cooperative_touch, static_cast<int*>(nullptr)).ok);
}

TEST(LaunchLimits, RecordsNameTheKernelAndItsShape) {
  simt::LaunchRecorder recorder;
  simt::LaunchConfig config;
  config.grid = dim3(3);
  config.block = dim3(64);
  config.name = "recorded";
  int out = 0;
  ASSERT_TRUE(simt::launch(config, too_much_static, &out).ok == false);
  ASSERT_EQ(recorder.records().size(), 1u);
  EXPECT_EQ(recorder.records()[0].name, "recorded");
  EXPECT_EQ(recorder.records()[0].grid.x, 3u);
  EXPECT_FALSE(recorder.records()[0].ok);
}

void count_threads(int* out) { atomicAdd(out, 1); }

// A record-only recorder records a launch with its kernel and shape and runs nothing; the launch
// rules still apply, except the engine's own fiber limit on cooperative grids.
TEST(LaunchLimits, RecordOnlyLaunchesAreCheckedAndRecordedNotRun) {
  int out = 0;
  simt::LaunchConfig config;
  config.grid = dim3(2);
  config.block = dim3(64);
  {
    simt::LaunchRecorder recorder(simt::LaunchRecorder::Mode::kRecordOnly);
    EXPECT_FALSE(simt::launches_run());
    ASSERT_TRUE(simt::launch(config, count_threads, &out).ok);
    EXPECT_TRUE(simt::launch(config, too_much_static, &out).ok);  // not run: its fault is not reached
    config.block = dim3(2048);
    EXPECT_FALSE(simt::launch(config, count_threads, &out).ok);  // refused as on a GPU
    config.block = dim3(1024);
    config.grid = dim3(132 * 2);  // sm_90 keeps two 1024-thread blocks per SM: 270336 threads
    config.cooperative = true;
    EXPECT_TRUE(simt::launch(config, cooperative_touch, &out).ok);  // held to residency alone
    config.grid = dim3(132 * 2 + 1);
    EXPECT_FALSE(simt::launch(config, cooperative_touch, &out).ok);
    ASSERT_EQ(recorder.records().size(), 5u);
    EXPECT_EQ(recorder.records()[0].kernel, simt::kernel_id(count_threads));
    EXPECT_EQ(recorder.records()[0].blocks_run, 0u);
    EXPECT_EQ(recorder.records()[3].grid.x, 264u);
    EXPECT_TRUE(recorder.records()[3].cooperative);
  }
  EXPECT_EQ(out, 0);
  EXPECT_TRUE(simt::launches_run());
  // Where this host's fibers (vm.max_map_count) cannot hold those 270336 threads, the same launch,
  // run, is refused: only the record-only mode lifts the fiber limit. (Where they can, running it
  // would take minutes: not tried.)
  config.grid = dim3(132 * 2);
  if (132u * 2 * 1024 > simt::max_cooperative_threads()) {
    const simt::LaunchResult refused = simt::launch(config, cooperative_touch, &out);
    EXPECT_FALSE(refused.ok);
    EXPECT_NE(refused.message.find("fibers the engine can keep alive"), std::string::npos) << refused.message;
    EXPECT_EQ(out, 0);
  }
  config.grid = dim3(2);
  config.block = dim3(64);
  config.cooperative = false;
  ASSERT_TRUE(simt::launch(config, count_threads, &out).ok);
  EXPECT_EQ(out, 128);
}

}  // namespace
