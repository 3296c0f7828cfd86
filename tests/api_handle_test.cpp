// The handle, memory, workspace and error functions of the C API, exactly as api.md states
// them: backend choice (AUTO, CUNORM_BACKEND, NO_DEVICE), memory alignment and copies, the
// workspace rules, status strings, and last-error messages per handle and per host thread.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cunorm/cunorm.h"

#if defined(CUNORM_TEST_CUDA_BACKEND)
#include <cuda_runtime_api.h>
#endif

namespace {

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value != nullptr)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_.c_str(), old_.c_str(), 1);
    else
      unsetenv(name_.c_str());
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

bool gpu_usable() {
  cunormHandle_t handle = nullptr;
  if (cunormCreate(&handle, CUNORM_BACKEND_CUDA) != CUNORM_STATUS_SUCCESS) return false;
  cunormDestroy(handle);
  return true;
}

TEST(Handle, SimtHandleReportsItsBackend) {
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  cunormBackend_t backend = CUNORM_BACKEND_AUTO;
  EXPECT_EQ(cunormGetBackend(handle, &backend), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(backend, CUNORM_BACKEND_SIMT);
  EXPECT_EQ(cunormSetStream(handle, nullptr), CUNORM_STATUS_SUCCESS);  // accepted, unused
  EXPECT_EQ(cunormSynchronize(handle), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormGetBackend(handle, nullptr), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle), "backend must not be NULL");
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

TEST(Handle, AutoFollowsTheEnvironmentAndTheDevice) {
  {
    ScopedEnv env("CUNORM_BACKEND", nullptr);
    cunormHandle_t handle = nullptr;
    ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_AUTO), CUNORM_STATUS_SUCCESS);
    cunormBackend_t backend = CUNORM_BACKEND_AUTO;
    ASSERT_EQ(cunormGetBackend(handle, &backend), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(backend, gpu_usable() ? CUNORM_BACKEND_CUDA : CUNORM_BACKEND_SIMT);  // never AUTO
    cunormDestroy(handle);
  }
  {
    ScopedEnv env("CUNORM_BACKEND", "simt");
    cunormHandle_t handle = nullptr;
    ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_AUTO), CUNORM_STATUS_SUCCESS);
    cunormBackend_t backend = CUNORM_BACKEND_AUTO;
    ASSERT_EQ(cunormGetBackend(handle, &backend), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(backend, CUNORM_BACKEND_SIMT);
    cunormDestroy(handle);
  }
  {
    ScopedEnv env("CUNORM_BACKEND", "opencl");
    cunormHandle_t handle = nullptr;
    EXPECT_EQ(cunormCreate(&handle, CUNORM_BACKEND_AUTO), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_STREQ(cunormGetLastErrorMessage(nullptr), "CUNORM_BACKEND must be \"cuda\" or \"simt\", got \"opencl\"");
  }
  if (!gpu_usable()) {
    ScopedEnv env("CUNORM_BACKEND", "cuda");
    cunormHandle_t handle = nullptr;
    const cunormStatus_t status = cunormCreate(&handle, CUNORM_BACKEND_AUTO);
    EXPECT_TRUE(status == CUNORM_STATUS_NO_DEVICE || status == CUNORM_STATUS_NOT_SUPPORTED) << status;
  }
}

TEST(Handle, CudaWithoutAGpuIsNoDevice) {
  if (gpu_usable()) {
    cunormHandle_t handle = nullptr;
    ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_CUDA), CUNORM_STATUS_SUCCESS);
    cunormBackend_t backend = CUNORM_BACKEND_AUTO;
    EXPECT_EQ(cunormGetBackend(handle, &backend), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(backend, CUNORM_BACKEND_CUDA);
    EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
    return;
  }
  cunormHandle_t handle = nullptr;
  const cunormStatus_t status = cunormCreate(&handle, CUNORM_BACKEND_CUDA);
  const std::string message = cunormGetLastErrorMessage(nullptr);
  EXPECT_EQ(handle, nullptr);
#if defined(CUNORM_TEST_CUDA_BACKEND)
  EXPECT_EQ(status, CUNORM_STATUS_NO_DEVICE);
  // The CUDA runtime reports a missing driver as one too old for it; the library tells them apart.
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver == nullptr) {
    EXPECT_EQ(message, "no usable CUDA device: no NVIDIA driver found (libcuda.so missing)");
  } else {
    dlclose(driver);
    EXPECT_EQ(message.rfind("no usable CUDA device: ", 0), 0u) << message;
    EXPECT_EQ(message.find("libcuda.so missing"), std::string::npos) << message;
  }
#else
  EXPECT_EQ(status, CUNORM_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(message, "this build of cunorm has no CUDA backend (configured with CUNORM_CUDA_BACKEND=OFF)");
#endif
}

#if defined(CUNORM_TEST_CUDA_BACKEND)
// A CUDA handle works on the device current when it was created, whatever device the thread has
// made current since, and leaves the current device as it found it.
TEST(Handle, CudaHandleStaysOnItsDevice) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count < 2) {
    cudaGetLastError();
    GTEST_SKIP() << "needs two CUDA devices, this machine has " << count;
  }
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_CUDA), CUNORM_STATUS_SUCCESS);
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  const int64_t rows = 4, cols = 256;
  const std::size_t bytes = sizeof(float) * rows * cols;
  void* x = nullptr;
  void* y = nullptr;
  ASSERT_EQ(cunormMalloc(handle, &x, bytes), CUNORM_STATUS_SUCCESS);
  ASSERT_EQ(cunormMalloc(handle, &y, bytes), CUNORM_STATUS_SUCCESS);
  cudaPointerAttributes attributes{};
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, x), cudaSuccess);
  EXPECT_EQ(attributes.device, 0);
  std::vector<float> in(rows * cols), out(rows * cols);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 17) - 8.0f;
  ASSERT_EQ(cunormMemcpyToDevice(handle, x, in.data(), bytes), CUNORM_STATUS_SUCCESS);
  ASSERT_EQ(cunormLayerNormForward(handle, rows, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, x, nullptr, nullptr, 1e-5f, y,
                                   nullptr, nullptr),
            CUNORM_STATUS_SUCCESS)
      << cunormGetLastErrorMessage(handle);
  ASSERT_EQ(cunormMemcpyToHost(handle, out.data(), y, bytes), CUNORM_STATUS_SUCCESS);
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, m2 = 0;
    for (int64_t c = 0; c < cols; ++c) mean += in[r * cols + c] / static_cast<double>(cols);
    for (int64_t c = 0; c < cols; ++c) m2 += (in[r * cols + c] - mean) * (in[r * cols + c] - mean);
    const double rstd = 1 / std::sqrt(m2 / static_cast<double>(cols) + 1e-5);
    for (int64_t c = 0; c < cols; ++c) EXPECT_NEAR(out[r * cols + c], (in[r * cols + c] - mean) * rstd, 1e-5);
  }
  int current = -1;
  ASSERT_EQ(cudaGetDevice(&current), cudaSuccess);
  EXPECT_EQ(current, 1);
  EXPECT_EQ(cunormFree(handle, x), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormFree(handle, y), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
  ASSERT_EQ(cudaGetDevice(&current), cudaSuccess);
  EXPECT_EQ(current, 1);
  EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
}
#endif

TEST(Handle, InvalidArgumentsAndDeadHandles) {
  EXPECT_EQ(cunormCreate(nullptr, CUNORM_BACKEND_SIMT), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(nullptr), "handle must not be NULL");
  // A misaligned output is rejected and left as it was, as every output argument is (it was a
  // misaligned store; found by the libFuzzer harness, tests/fuzz/).
  alignas(cunormHandle_t) unsigned char storage[2 * sizeof(cunormHandle_t)] = {};
  EXPECT_EQ(cunormCreate(reinterpret_cast<cunormHandle_t*>(storage + 1), CUNORM_BACKEND_SIMT),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(nullptr), "handle must be aligned to its 8-byte elements");
  for (unsigned char byte : storage) EXPECT_EQ(byte, 0);
  cunormHandle_t handle = nullptr;
  EXPECT_EQ(cunormCreate(&handle, static_cast<cunormBackend_t>(7)), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cunormGetLastErrorMessage(nullptr)).find("got 7"), std::string::npos);
  EXPECT_EQ(cunormDestroy(nullptr), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_EQ(cunormSynchronize(nullptr), CUNORM_STATUS_INVALID_VALUE);

  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  EXPECT_STREQ(cunormGetLastErrorMessage(nullptr), "");  // the last handle-less call succeeded
  ASSERT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormSynchronize(handle), CUNORM_STATUS_INVALID_VALUE);  // destroyed: an error, not a crash
  EXPECT_NE(std::string(cunormGetLastErrorMessage(nullptr)).find("not a live cunorm handle"), std::string::npos);
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_INVALID_VALUE);
}

TEST(Handle, SimtEnvironmentSettingsAreValidated) {
  {
    ScopedEnv env("CUNORM_SIMT_TARGET", "sm_99");
    cunormHandle_t handle = nullptr;
    EXPECT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_NE(std::string(cunormGetLastErrorMessage(nullptr)).find("CUNORM_SIMT_TARGET must be one of sm_75"),
              std::string::npos);
  }
  {
    ScopedEnv env("CUNORM_SIMT_ORDER", "sideways");
    cunormHandle_t handle = nullptr;
    EXPECT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_STREQ(cunormGetLastErrorMessage(nullptr),
                 "CUNORM_SIMT_ORDER must be forward, reverse or random, got \"sideways\"");
  }
}

class Memory : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(cunormCreate(&handle_, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS); }
  void TearDown() override { EXPECT_EQ(cunormDestroy(handle_), CUNORM_STATUS_SUCCESS); }
  cunormHandle_t handle_ = nullptr;
};

TEST_F(Memory, MallocIs256ByteAlignedAndCopiesRoundTrip) {
  for (std::size_t bytes : {1u, 7u, 256u, 1000u, 1u << 20}) {
    void* p = nullptr;
    ASSERT_EQ(cunormMalloc(handle_, &p, bytes), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 256, 0u);
    std::vector<unsigned char> in(bytes), out(bytes, 0);
    for (std::size_t i = 0; i < bytes; ++i) in[i] = static_cast<unsigned char>(i * 31 + 7);
    EXPECT_EQ(cunormMemcpyToDevice(handle_, p, in.data(), bytes), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(cunormMemcpyToHost(handle_, out.data(), p, bytes), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(in, out);
    EXPECT_EQ(cunormFree(handle_, p), CUNORM_STATUS_SUCCESS);
  }
  void* zero = reinterpret_cast<void*>(1);
  EXPECT_EQ(cunormMalloc(handle_, &zero, 0), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(zero, nullptr);
  EXPECT_EQ(cunormFree(handle_, nullptr), CUNORM_STATUS_SUCCESS);  // NULL: no-op
}

TEST_F(Memory, BadMemoryCallsAreErrors) {
  EXPECT_EQ(cunormMalloc(handle_, nullptr, 16), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "ptr must not be NULL");
  int local = 0;
  EXPECT_EQ(cunormFree(handle_, &local), CUNORM_STATUS_INVALID_VALUE);  // not from cunormMalloc
  EXPECT_NE(std::string(cunormGetLastErrorMessage(handle_)).find("not allocated by cunormMalloc"), std::string::npos);
  void* p = nullptr;
  ASSERT_EQ(cunormMalloc(handle_, &p, 64), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormFree(handle_, p), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormFree(handle_, p), CUNORM_STATUS_INVALID_VALUE);  // double free
  char buffer[8] = {};
  EXPECT_EQ(cunormMemcpyToDevice(handle_, nullptr, buffer, 8), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "dst must not be NULL");
  EXPECT_EQ(cunormMemcpyToHost(handle_, buffer, nullptr, 8), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "src must not be NULL");
  EXPECT_EQ(cunormMemcpyToHost(handle_, nullptr, nullptr, 0), CUNORM_STATUS_SUCCESS);  // nothing to copy
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "");
}

TEST_F(Memory, WorkspaceRulesAndQueries) {
  void* ws = nullptr;
  ASSERT_EQ(cunormMalloc(handle_, &ws, 4096), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormSetWorkspace(handle_, ws, 4096), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormSetWorkspace(handle_, nullptr, 0), CUNORM_STATUS_SUCCESS);  // handle-owned again
  EXPECT_EQ(cunormSetWorkspace(handle_, nullptr, 16), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_EQ(cunormSetWorkspace(handle_, static_cast<char*>(ws) + 16, 1024), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cunormGetLastErrorMessage(handle_)).find("256-byte aligned"), std::string::npos);
  size_t bytes = 12345;
  EXPECT_EQ(cunormLayerNormWorkspaceSize(handle_, 1000, 768, CUNORM_FLOAT16, CUNORM_FLOAT32, &bytes),
            CUNORM_STATUS_SUCCESS);
  EXPECT_GT(bytes, 768u * 4u);  // at least one row of partial dgamma for the backward
  size_t empty_batch = 1;
  EXPECT_EQ(cunormLayerNormWorkspaceSize(handle_, 0, 768, CUNORM_FLOAT16, CUNORM_FLOAT32, &empty_batch),
            CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(empty_batch, 0u);
  EXPECT_EQ(cunormLayerNormWorkspaceSize(handle_, 1000, 0, CUNORM_FLOAT16, CUNORM_FLOAT32, &bytes),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "cols must be > 0, got 0");
  EXPECT_EQ(cunormLayerNormWorkspaceSize(handle_, 1, 1, CUNORM_FLOAT16, CUNORM_FLOAT32, nullptr),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "bytes must not be NULL");
  EXPECT_EQ(cunormFree(handle_, ws), CUNORM_STATUS_SUCCESS);
}

// The library a program runs with is the one its header describes (the test links the build's).
TEST(Version, LibraryIsTheHeadersVersion) {
  EXPECT_EQ(cunormGetVersion(), CUNORM_VERSION);
  EXPECT_EQ(cunormGetVersion() / 10000, CUNORM_VERSION_MAJOR);
  EXPECT_EQ(cunormGetVersion() / 100 % 100, CUNORM_VERSION_MINOR);
  EXPECT_EQ(cunormGetVersion() % 100, CUNORM_VERSION_PATCH);
}

TEST(Status, EveryStatusHasItsName) {
  EXPECT_STREQ(cunormGetStatusString(CUNORM_STATUS_SUCCESS), "CUNORM_STATUS_SUCCESS");
  EXPECT_STREQ(cunormGetStatusString(CUNORM_STATUS_INVALID_VALUE), "CUNORM_STATUS_INVALID_VALUE");
  EXPECT_STREQ(cunormGetStatusString(CUNORM_STATUS_NOT_SUPPORTED), "CUNORM_STATUS_NOT_SUPPORTED");
  EXPECT_STREQ(cunormGetStatusString(CUNORM_STATUS_WORKSPACE_TOO_SMALL), "CUNORM_STATUS_WORKSPACE_TOO_SMALL");
  EXPECT_STREQ(cunormGetStatusString(CUNORM_STATUS_ALLOC_FAILED), "CUNORM_STATUS_ALLOC_FAILED");
  EXPECT_STREQ(cunormGetStatusString(CUNORM_STATUS_NO_DEVICE), "CUNORM_STATUS_NO_DEVICE");
  EXPECT_STREQ(cunormGetStatusString(CUNORM_STATUS_EXECUTION_FAILED), "CUNORM_STATUS_EXECUTION_FAILED");
  EXPECT_STREQ(cunormGetStatusString(CUNORM_STATUS_INTERNAL_ERROR), "CUNORM_STATUS_INTERNAL_ERROR");
  EXPECT_STREQ(cunormGetStatusString(static_cast<cunormStatus_t>(99)), "unknown cunormStatus_t");
}

// Two threads sharing one handle each read their own last failure; a thread's handle-less
// failure is separate from both.
TEST(LastError, PerHandleAndPerThread) {
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  std::string seen_a, seen_b;
  std::thread a([&] {
    cunormLayerNormWorkspaceSize(handle, -3, 4, CUNORM_FLOAT32, CUNORM_FLOAT32, nullptr);
    for (int i = 0; i < 1000; ++i) std::this_thread::yield();
    seen_a = cunormGetLastErrorMessage(handle);
  });
  std::thread b([&] {
    cunormLayerNormWorkspaceSize(handle, 3, -4, CUNORM_FLOAT32, CUNORM_FLOAT32, nullptr);
    for (int i = 0; i < 1000; ++i) std::this_thread::yield();
    seen_b = cunormGetLastErrorMessage(handle);
  });
  a.join();
  b.join();
  EXPECT_EQ(seen_a, "rows must be >= 0, got -3");
  EXPECT_EQ(seen_b, "cols must be > 0, got -4");
  EXPECT_EQ(cunormSynchronize(nullptr), CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(nullptr), "handle must not be NULL");
  EXPECT_STREQ(cunormGetLastErrorMessage(handle), "");  // this thread made no failing call on it
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

}  // namespace
