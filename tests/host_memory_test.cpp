// Host memory exhaustion: this program replaces the global operator new so that the k-th
// allocation made by the calling thread from now on throws std::bad_alloc (the library's shared
// object calls the program's operator new, as any replacement of it works). For k = 1, 2, ...
// until the call no longer fails, cunormCreate and a LayerNorm forward on a SIMT handle must
// return CUNORM_STATUS_ALLOC_FAILED saying "out of host memory" (never throw across the C API)
// and write no output, or, when the allocation is the SIMT engine's during the launch,
// EXECUTION_FAILED saying the same; the handle stays usable. Allocations of the engine's worker threads are
// not counted: the failing allocation is always one of the calling thread's. Creating a calibration
// fails the same way, or names c when its accumulators are what cannot be allocated.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"

namespace {

thread_local long allocations_until_failure = 0;  // 0: never fail

void* allocate(std::size_t bytes) {
  if (allocations_until_failure > 0 && --allocations_until_failure == 0) throw std::bad_alloc();
  void* p = std::malloc(bytes == 0 ? 1 : bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// The k-th allocation of this thread from now fails; disarmed when this object goes.
struct FailingAllocation {
  explicit FailingAllocation(long k) { allocations_until_failure = k; }
  ~FailingAllocation() { allocations_until_failure = 0; }
  bool fired() const { return allocations_until_failure == 0; }
};

}  // namespace

void* operator new(std::size_t bytes) { return allocate(bytes); }
void* operator new[](std::size_t bytes) { return allocate(bytes); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

constexpr long kMaxAllocations = 10000;  // more than any call here makes

void expect_out_of_host_memory(cunormStatus_t status, cunormHandle_t handle) {
  EXPECT_EQ(status, CUNORM_STATUS_ALLOC_FAILED);
  EXPECT_NE(std::string(cunormGetLastErrorMessage(handle)).find("out of host memory"), std::string::npos)
      << cunormGetLastErrorMessage(handle);
}

TEST(HostMemory, CreateFailsCleanlyAtEveryAllocation) {
  long k = 1;
  for (; k < kMaxAllocations; ++k) {
    cunormHandle_t handle = nullptr;
    cunormStatus_t status;
    bool fired;
    {
      FailingAllocation fault(k);
      status = cunormCreate(&handle, CUNORM_BACKEND_SIMT);
      fired = fault.fired();
    }
    if (!fired) {
      ASSERT_EQ(status, CUNORM_STATUS_SUCCESS);
      EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
      break;
    }
    SCOPED_TRACE("allocation " + std::to_string(k));
    expect_out_of_host_memory(status, nullptr);
    EXPECT_EQ(handle, nullptr);
  }
  EXPECT_GT(k, 1) << "cunormCreate allocated nothing: the test tested nothing";
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
  long k = 1;
  for (; k < kMaxAllocations; ++k) {
    std::memcpy(y, untouched.data(), untouched.size() * sizeof(float));
    cunormStatus_t status;
    bool fired;
    {
      FailingAllocation fault(k);
      status = cunormLayerNormForward(handle, rows, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, x, nullptr, nullptr, 1e-5f, y,
                                      nullptr, nullptr);
      fired = fault.fired();
    }
    if (!fired) {
      ASSERT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
      EXPECT_EQ(cunormSynchronize(handle), CUNORM_STATUS_SUCCESS);
      EXPECT_NE(std::memcmp(y, untouched.data(), untouched.size() * sizeof(float)), 0);
      break;
    }
    SCOPED_TRACE("allocation " + std::to_string(k));
    // An allocation of the SIMT engine while the kernel runs (its bookkeeping of the kernel's
    // accesses) fails the launch: EXECUTION_FAILED, which api.md allows to have written.
    if (status == CUNORM_STATUS_EXECUTION_FAILED) {
      EXPECT_NE(std::string(cunormGetLastErrorMessage(handle)).find("out of host memory"), std::string::npos)
          << cunormGetLastErrorMessage(handle);
      continue;
    }
    expect_out_of_host_memory(status, handle);
    EXPECT_EQ(std::memcmp(y, untouched.data(), untouched.size() * sizeof(float)), 0);
  }
  EXPECT_GT(k, 1) << "the forward allocated nothing on the host: the test tested nothing";
  EXPECT_EQ(cunormFree(handle, x), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormFree(handle, y), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

// A calibration's float64 accumulators (c values each) are the one host allocation the library
// names: ALLOC_FAILED naming c when they cannot be allocated, "out of host memory" for the others;
// *calib stays as it was and the handle has no calibration more.
TEST(HostMemory, CalibrationCreateFailsCleanlyAtEveryAllocation) {
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  int accumulator_failures = 0;
  long k = 1;
  for (; k < kMaxAllocations; ++k) {
    cunormBatchNormCalibration_t calib = nullptr;
    cunormStatus_t status;
    bool fired;
    {
      FailingAllocation fault(k);
      status = cunormBatchNormCalibrationCreate(handle, 4, &calib);
      fired = fault.fired();
    }
    if (!fired) {
      ASSERT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
      EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle, calib), CUNORM_STATUS_SUCCESS);
      break;
    }
    SCOPED_TRACE("allocation " + std::to_string(k));
    EXPECT_EQ(status, CUNORM_STATUS_ALLOC_FAILED);
    EXPECT_EQ(calib, nullptr);
    const std::string message = cunormGetLastErrorMessage(handle);
    if (message == "c = 4 channels: cannot allocate the calibration's float64 accumulators") {
      ++accumulator_failures;
    } else {
      EXPECT_EQ(message, "out of host memory");
    }
  }
  EXPECT_EQ(accumulator_failures, 2) << "the mean and M2 accumulators are two allocations";
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

}  // namespace
