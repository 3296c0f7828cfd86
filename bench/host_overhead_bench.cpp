// The host work of one call: argument checks, plan and launch, with the kernels' execution left
// out. Each C API entry point that launches kernels is called repeatedly on a SIMT handle under a
// record-only launch recorder (simt/launch.hpp: each launch is checked against CUDA's rules and
// recorded, not run), at shapes of real workloads (bfloat16 activations, float32 parameters:
// rows x cols = 4096 x 4096, BatchNorm NCHW n, c, s = 32, 256, 56 x 56). Prints per entry its
// launches per call and the median over 7 repetitions of microseconds per call; the goal is
// under 2 us (issue 16). The recording itself (a few hundred bytes per launch) is included; a
// call's own host allocations are none (tests/host_memory_test.cpp asserts it).
//
// Usage: cunorm_host_bench [calls per repetition, default 20000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cunorm/cunorm.h"
#include "simt/launch.hpp"
#include "support/api_calls.hpp"

namespace {

using cunorm_test::Entry;

bool succeeded(cunormStatus_t status, cunormHandle_t handle, const char* what) {
  if (status == CUNORM_STATUS_SUCCESS) return true;
  std::fprintf(stderr, "%s failed: %s\n", what, cunormGetLastErrorMessage(handle));
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const long calls = argc > 1 ? std::atol(argv[1]) : 20000;
  if (calls <= 0) {
    std::fprintf(stderr, "usage: cunorm_host_bench [calls per repetition > 0]\n");
    return 2;
  }
  cunormHandle_t handle = nullptr;
  if (!succeeded(cunormCreate(&handle, CUNORM_BACKEND_SIMT), nullptr, "cunormCreate")) return 1;
  cunorm_test::Args args;
  args.handle = handle;
  args.rows = 4096, args.cols = 4096;
  args.layout = CUNORM_LAYOUT_NCHW, args.n = 32, args.c = 256, args.s = 56 * 56;
  args.dtype = CUNORM_BFLOAT16, args.param = CUNORM_FLOAT32, args.mode = CUNORM_RUNNING_VAR_UNBIASED;
  args.eps = 1e-5f, args.momentum = 0.1f;
  if (!succeeded(cunormBatchNormCalibrationCreate(handle, args.c, &args.calib), handle, "calibration")) return 1;
  simt::LaunchRecorder recorder(simt::LaunchRecorder::Mode::kRecordOnly);
  std::printf("Host work per call (checks, plan, launch record; SIMT record-only, kernels not run)\n");
  std::printf("%-40s %9s %11s\n", "entry", "launches", "us/call");
  int status = 0;
  for (int e = 0; e < cunorm_test::kEntryCount; ++e) {
    const Entry entry = static_cast<Entry>(e);
    if (!cunorm_test::launches_kernels(entry)) continue;
    cunorm_test::Args call = args;
    std::vector<void*> buffers;
    for (const cunorm_test::PointerArg& p : cunorm_test::pointer_args(entry, call, args.c)) {
      void* buffer = nullptr;
      if (!succeeded(cunormMalloc(handle, &buffer, p.bytes()), handle, p.name)) return 1;
      buffers.push_back(buffer);
      call.*(p.member) = buffer;
    }
    const char* name = cunorm_test::entry_name(entry);
    if (!succeeded(cunorm_test::call(entry, call), handle, name)) return 1;  // grows the workspace
    const std::size_t launches = recorder.records().size();
    std::vector<double> us;
    for (int repetition = 0; repetition < 7; ++repetition) {
      const auto start = std::chrono::steady_clock::now();
      for (long i = 0; i < calls; ++i) {
        if (i % 256 == 0) recorder.clear();
        if (cunorm_test::call(entry, call) != CUNORM_STATUS_SUCCESS) status = 1;
      }
      const auto stop = std::chrono::steady_clock::now();
      us.push_back(std::chrono::duration<double, std::micro>(stop - start).count() / static_cast<double>(calls));
    }
    recorder.clear();
    std::nth_element(us.begin(), us.begin() + 3, us.end());
    std::printf("%-40s %9zu %11.3f\n", name, launches, us[3]);
    for (void* buffer : buffers) cunormFree(handle, buffer);
  }
  cunormBatchNormCalibrationDestroy(handle, args.calib);
  cunormDestroy(handle);
  if (status != 0) std::fprintf(stderr, "a timed call failed\n");
  return status;
}
