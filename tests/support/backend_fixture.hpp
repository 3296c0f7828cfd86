// Runs a test on one backend: a handle for SIMT (always) or CUDA (skipped, with the runtime's
// reason, when no GPU is usable: the only skip the project allows), and device buffers that
// live as long as the test and can be placed at any element offset from a 256-byte boundary.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "host_array.hpp"

namespace cunorm_test {

inline const char* backend_label(cunormBackend_t backend) { return backend == CUNORM_BACKEND_CUDA ? "CUDA" : "SIMT"; }

// Device memory holding a HostArray's bytes at `offset_elements` past a 256-byte boundary.
class DeviceArray {
 public:
  DeviceArray(cunormHandle_t handle, const HostArray& host, std::size_t offset_elements = 0)
      : handle_(handle), dtype_(host.dtype()), count_(host.count()) {
    const std::size_t offset_bytes = offset_elements * element_size(dtype_);
    EXPECT_EQ(cunormMalloc(handle_, &base_, host.byte_size() + offset_bytes + 1), CUNORM_STATUS_SUCCESS);
    data_ = static_cast<char*>(base_) + offset_bytes;
    upload(host);
  }
  ~DeviceArray() { cunormFree(handle_, base_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  void* data() const { return data_; }
  float* as_floats() const { return static_cast<float*>(data_); }
  void upload(const HostArray& host) {
    ASSERT_EQ(cunormMemcpyToDevice(handle_, data_, host.data(), host.byte_size()), CUNORM_STATUS_SUCCESS);
  }
  HostArray download() const {
    HostArray host(dtype_, count_);
    EXPECT_EQ(cunormMemcpyToHost(handle_, host.data(), data_, host.byte_size()), CUNORM_STATUS_SUCCESS);
    return host;
  }

 private:
  cunormHandle_t handle_;
  cunormDataType_t dtype_;
  std::size_t count_;
  void* base_ = nullptr;
  void* data_ = nullptr;
};

// A handle on one backend: open() creates it (false, with skip_reason_ set, where the CUDA backend
// cannot run), close() destroys it.
class BackendTest {
 protected:
  // Returns false (after GTEST_SKIP or a failure) when the test cannot run.
  bool open(cunormBackend_t backend) {
    const cunormStatus_t status = cunormCreate(&handle_, backend);
    // No GPU, or a build without the CUDA backend (sanitizer builds): the CUDA case cannot run.
    if (backend == CUNORM_BACKEND_CUDA &&
        (status == CUNORM_STATUS_NO_DEVICE || status == CUNORM_STATUS_NOT_SUPPORTED)) {
      skip_reason_ = std::string("CUDA case skipped: ") + cunormGetLastErrorMessage(nullptr);
      return false;
    }
    EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(nullptr);
    return status == CUNORM_STATUS_SUCCESS;
  }
  void close() {
    if (handle_ != nullptr) {
      EXPECT_EQ(cunormDestroy(handle_), CUNORM_STATUS_SUCCESS);
    }
    handle_ = nullptr;
  }
  cunormHandle_t handle_ = nullptr;
  std::string skip_reason_;
};

// A value-parameterized test that opens a handle with CUNORM_OPEN_BACKEND_OR_SKIP; the handle is
// closed after each test.
template <class Param>
class BackendParamTest : public ::testing::TestWithParam<Param>, protected BackendTest {
 protected:
  void TearDown() override { close(); }
};

// Opens the handle for the test's backend or skips the test with the reason.
#define CUNORM_OPEN_BACKEND_OR_SKIP(backend)                   \
  do {                                                         \
    if (!open(backend)) {                                      \
      if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_; \
      return;                                                  \
    }                                                          \
  } while (false)

}  // namespace cunorm_test
