// Host memory exhaustion: this program replaces the global operator new so that the k-th
// allocation made by the calling thread from now on throws std::bad_alloc (the library's shared
// object calls the program's operator new, as any replacement of it works). For k = 1, 2, ...
// until the call no longer fails, cunormCreate and a LayerNorm forward on a SIMT handle must
// return CUNORM_STATUS_ALLOC_FAILED saying "out of host memory" (never throw across the C API)
// and write no output, or, when the allocation is the SIMT engine's during the launch,
// EXECUTION_FAILED saying the same; the handle stays usable. Allocations of the engine's worker threads are
// not counted: the failing allocation is always one of the calling thread's. Creating a calibration
// fails the same way, or names c when its accumulators are what cannot be allocated. And a call
// that succeeds allocates nothing itself (issue 16's per-call host work): under a record-only
// launch recorder, its host allocations are exactly those of the recorder's launch records.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "simt/launch.hpp"
#include "support/api_calls.hpp"

namespace {

thread_local long allocations_until_failure = 0;  // 0: never fail
thread_local long allocations_made = 0;

void* allocate(std::size_t bytes) {
  ++allocations_made;
  if (allocations_until_failure > 0 && --allocations_until_failure == 0) throw std::bad_alloc();
  void* p = std::malloc(bytes == 0 ? 1 : bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// Not inlined: where GCC inlines a replacement operator delete next to its matching operator new
// (at -O1 under ThreadSanitizer), it sees malloc'd memory from `new` reach free() and warns
// (-Wmismatched-new-delete), although both replacements agree.
[[gnu::noinline]] void deallocate(void* p) noexcept { std::free(p); }

// The k-th allocation of this thread from now fails; disarmed when this object goes.
struct FailingAllocation {
  explicit FailingAllocation(long k) { allocations_until_failure = k; }
  ~FailingAllocation() { allocations_until_failure = 0; }
  bool fired() const { return allocations_until_failure == 0; }
};

}  // namespace

void* operator new(std::size_t bytes) { return allocate(bytes); }
void* operator new[](std::size_t bytes) { return allocate(bytes); }
void operator delete(void* p) noexcept { deallocate(p); }
void operator delete[](void* p) noexcept { deallocate(p); }
void operator delete(void* p, std::size_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::size_t) noexcept { deallocate(p); }

namespace {

constexpr long kMaxAllocations = 10000;  // more than any call here makes

void expect_out_of_host_memory(cunormStatus_t status, cunormHandle_t handle) {
  EXPECT_EQ(status, CUNORM_STATUS_ALLOC_FAILED);
  EXPECT_NE(std::string(cunormGetLastErrorMessage(handle)).find("out of host memory"), std::string::npos)
      << cunormGetLastErrorMessage(handle);
}

// Makes `call` with its k-th host allocation failing, for k = 1, 2, ... until a call makes fewer
// than k allocations: `failed(status)` checks each failed call (under a trace naming k),
// `succeeded(status)` the first call that no allocation failed. Returns how many calls failed.
template <class Call, class Failed, class Succeeded>
long fail_each_allocation(Call call, Failed failed, Succeeded succeeded) {
  long k = 1;
  for (; k < kMaxAllocations; ++k) {
    cunormStatus_t status;
    bool fired;
    {
      FailingAllocation fault(k);
      status = call();
      fired = fault.fired();
    }
    if (!fired) {
      succeeded(status);
      break;
    }
    SCOPED_TRACE("allocation " + std::to_string(k));
    failed(status);
  }
  return k - 1;
}

TEST(HostMemory, CreateFailsCleanlyAtEveryAllocation) {
  cunormHandle_t handle = nullptr;
  const long failures = fail_each_allocation(
      [&] {
        handle = nullptr;
        return cunormCreate(&handle, CUNORM_BACKEND_SIMT);
      },
      [&](cunormStatus_t status) {
        expect_out_of_host_memory(status, nullptr);
        EXPECT_EQ(handle, nullptr);
      },
      [&](cunormStatus_t status) {
        ASSERT_EQ(status, CUNORM_STATUS_SUCCESS);
        EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
      });
  EXPECT_GT(failures, 0) << "cunormCreate allocated nothing: the test tested nothing";
}

TEST(HostMemory, ForwardFailsCleanlyAtEveryAllocationAndTheHandleRecovers) {
  constexpr int64_t rows = 4, cols = 40;
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  float *x = nullptr, *y = nullptr;
  ASSERT_EQ(cunormMalloc(handle, reinterpret_cast<void**>(&x), rows * cols * sizeof(float)), CUNORM_STATUS_SUCCESS);
  ASSERT_EQ(cunormMalloc(handle, reinterpret_cast<void**>(&y), rows * cols * sizeof(float)), CUNORM_STATUS_SUCCESS);
  for (int64_t i = 0; i < rows * cols; ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
  const std::vector<float> untouched(rows * cols, 123.0f);
  const auto y_untouched = [&] { return std::memcmp(y, untouched.data(), untouched.size() * sizeof(float)) == 0; };
  const long failures = fail_each_allocation(
      [&] {
        std::memcpy(y, untouched.data(), untouched.size() * sizeof(float));
        return cunormLayerNormForward(handle, rows, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, x, nullptr, nullptr, 1e-5f, y,
                                      nullptr, nullptr);
      },
      [&](cunormStatus_t status) {
        // An allocation of the SIMT engine while the kernel runs (its bookkeeping of the kernel's
        // accesses) fails the launch: EXECUTION_FAILED, which api.md allows to have written.
        if (status == CUNORM_STATUS_EXECUTION_FAILED) {
          EXPECT_NE(std::string(cunormGetLastErrorMessage(handle)).find("out of host memory"), std::string::npos)
              << cunormGetLastErrorMessage(handle);
          return;
        }
        expect_out_of_host_memory(status, handle);
        EXPECT_TRUE(y_untouched());
      },
      [&](cunormStatus_t status) {
        ASSERT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
        EXPECT_EQ(cunormSynchronize(handle), CUNORM_STATUS_SUCCESS);
        EXPECT_FALSE(y_untouched());
      });
  EXPECT_GT(failures, 0) << "the forward allocated nothing on the host: the test tested nothing";
  EXPECT_EQ(cunormFree(handle, x), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormFree(handle, y), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

// A calibration's float64 accumulators (c values each) and its float copy of a batch's statistics
// (2c) are the host allocations the library names: ALLOC_FAILED naming c when they cannot be allocated, "out of host
// memory" for the others; *calib stays as it was and the handle has no calibration more.
TEST(HostMemory, CalibrationCreateFailsCleanlyAtEveryAllocation) {
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  int accumulator_failures = 0;
  cunormBatchNormCalibration_t calib = nullptr;
  fail_each_allocation(
      [&] {
        calib = nullptr;
        return cunormBatchNormCalibrationCreate(handle, 4, &calib);
      },
      [&](cunormStatus_t status) {
        EXPECT_EQ(status, CUNORM_STATUS_ALLOC_FAILED);
        EXPECT_EQ(calib, nullptr);
        const std::string message = cunormGetLastErrorMessage(handle);
        if (message ==
            "c = 4 channels: cannot allocate the calibration's float64 accumulators and its float copy of a batch's "
            "statistics") {
          ++accumulator_failures;
        } else {
          EXPECT_EQ(message, "out of host memory");
        }
      },
      [&](cunormStatus_t status) {
        ASSERT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
        EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle, calib), CUNORM_STATUS_SUCCESS);
      });
  EXPECT_EQ(accumulator_failures, 3) << "the mean and M2 accumulators and the batch's copy are three allocations";
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

void recorded_kernel(int) {}

// The host allocations of one record-only launch as the engine records it (its record's name is
// the label's text), measured on a kernel of this test with a label as long as the library's.
long allocations_per_launch_record(simt::LaunchRecorder& recorder) {
  simt::LaunchLabel label;
  label.family = "host_memory_test_kernel";
  label.variant = "record_only";
  simt::LaunchConfig config;
  config.label = &label;
  simt::launch(config, recorded_kernel, 0);  // the recorder's vector has room from now on
  recorder.clear();
  const long before = allocations_made;
  simt::launch(config, recorded_kernel, 0);
  return allocations_made - before;
}

// Every entry point of the C API that launches kernels (support/api_calls.hpp), called twice on
// the same shapes (the first call grows the handle's workspace): the second one's host allocations
// are its launches' records, nothing else (no argument list, string or plan on the heap).
TEST(HostMemory, SuccessfulCallsAllocateNothingButTheEngineRecords) {
  using cunorm_test::Entry;
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  cunorm_test::Args args;
  args.handle = handle;
  args.rows = 64, args.cols = 1024;
  args.layout = CUNORM_LAYOUT_NCHW, args.n = 4, args.c = 32, args.s = 512;
  args.dtype = CUNORM_FLOAT32, args.param = CUNORM_FLOAT32, args.mode = CUNORM_RUNNING_VAR_UNBIASED;
  args.eps = 1e-5f, args.momentum = 0.1f;
  ASSERT_EQ(cunormBatchNormCalibrationCreate(handle, args.c, &args.calib), CUNORM_STATUS_SUCCESS);
  simt::LaunchRecorder recorder(simt::LaunchRecorder::Mode::kRecordOnly);
  const long per_record = allocations_per_launch_record(recorder);
  for (int e = 0; e < cunorm_test::kEntryCount; ++e) {
    const Entry entry = static_cast<Entry>(e);
    if (!cunorm_test::launches_kernels(entry)) continue;
    SCOPED_TRACE(cunorm_test::entry_name(entry));
    cunorm_test::Args call = args;
    std::vector<void*> buffers;  // record-only launches read none of them: their contents do not matter
    for (const cunorm_test::PointerArg& p : cunorm_test::pointer_args(entry, call, args.c)) {
      void* buffer = nullptr;
      ASSERT_EQ(cunormMalloc(handle, &buffer, p.bytes()), CUNORM_STATUS_SUCCESS);
      buffers.push_back(buffer);
      call.*(p.member) = buffer;
    }
    ASSERT_EQ(cunorm_test::call(entry, call), CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
    recorder.clear();
    const long before = allocations_made;
    ASSERT_EQ(cunorm_test::call(entry, call), CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
    const long made = allocations_made - before;
    ASSERT_FALSE(recorder.records().empty());
    EXPECT_EQ(made, per_record * static_cast<long>(recorder.records().size()))
        << recorder.records().size() << " launches of " << per_record << " allocations each";
    for (void* buffer : buffers) EXPECT_EQ(cunormFree(handle, buffer), CUNORM_STATUS_SUCCESS);
  }
  EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle, args.calib), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

}  // namespace
