// Seeded fuzz of the handle, memory, workspace and error functions of the C API with random valid
// and invalid arguments: NULL and destroyed handles, unknown backends and statuses, NULL and
// misaligned pointers, sizes of 0 and too large to allocate, pointers cunormMalloc never returned,
// double frees. Each call must return the documented status with a message naming the argument,
// write nothing on failure (a poisoned device buffer and the out-arguments stay as they were), and
// do its job on success (copies round-trip, allocations are 256-byte aligned).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "support/fuzz_seed.hpp"

namespace cunorm_test {
namespace {

constexpr int kCases = 800;
constexpr std::size_t kBufferBytes = 4096;
// "Too large to allocate": from SIZE_MAX down past PTRDIFF_MAX, the largest object size.
constexpr int64_t kHugeSpread = std::numeric_limits<int64_t>::max();

int64_t uniform(std::mt19937_64& rng, int64_t low, int64_t high) {
  return std::uniform_int_distribution<int64_t>(low, high)(rng);
}

class ApiHandleFuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cunormCreate(&handle_, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormCreate(&dead_, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormDestroy(dead_), CUNORM_STATUS_SUCCESS);  // no handle is created after it
    ASSERT_EQ(cunormMalloc(handle_, &buffer_, kBufferBytes), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormMalloc(handle_, &freed_, 64), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormFree(handle_, freed_), CUNORM_STATUS_SUCCESS);
  }
  void TearDown() override {
    EXPECT_EQ(cunormFree(handle_, buffer_), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(cunormDestroy(handle_), CUNORM_STATUS_SUCCESS);
  }

  // NULL, the destroyed handle, or the live one.
  cunormHandle_t some_handle(std::mt19937_64& rng, std::string* fragment) {
    switch (uniform(rng, 0, 3)) {
      case 0: *fragment = "handle must not be NULL"; return nullptr;
      case 1: *fragment = "handle is not a live cunorm handle"; return dead_;
      default: fragment->clear(); return handle_;
    }
  }

  cunormHandle_t handle_ = nullptr, dead_ = nullptr;
  void* buffer_ = nullptr;
  void* freed_ = nullptr;  // returned by cunormMalloc, then freed
};

TEST_F(ApiHandleFuzz, HandleMemoryAndErrorFunctions) {
  const std::uint64_t seed = fuzz_seed(20261124);
  std::mt19937_64 rng(seed);
  std::vector<unsigned char> device_bytes(kBufferBytes), host(kBufferBytes);
  std::vector<int> per_function(10, 0);
  for (int index = 0; index < kCases; ++index) {
    for (unsigned char& b : device_bytes) b = static_cast<unsigned char>(rng());
    ASSERT_EQ(cunormMemcpyToDevice(handle_, buffer_, device_bytes.data(), kBufferBytes), CUNORM_STATUS_SUCCESS);
    std::string fragment;  // the message must contain it; empty: SUCCESS expected
    cunormStatus_t expected = CUNORM_STATUS_INVALID_VALUE, status = CUNORM_STATUS_SUCCESS;
    cunormHandle_t h = some_handle(rng, &fragment);
    bool device_written = false;
    std::string what, message;
    // The message of the call just made: the handle's, or this thread's when the handle was unusable.
    const auto last_message = [&](cunormHandle_t used) {
      return std::string(cunormGetLastErrorMessage(used == handle_ ? handle_ : nullptr));
    };
    const int function = static_cast<int>(uniform(rng, 0, 9));
    ++per_function[static_cast<std::size_t>(function)];
    switch (function) {
      case 0: {  // cunormCreate: NULL out-pointer or an unknown backend; the out-handle is untouched
        const int backend =
            static_cast<int>(uniform(rng, 0, 1)) == 0
                ? CUNORM_BACKEND_SIMT
                : std::vector<int>{3, -1, 100,
                                   std::numeric_limits<int>::min()}[static_cast<std::size_t>(uniform(rng, 0, 3))];
        cunormHandle_t out = dead_;
        const bool null_out = backend == CUNORM_BACKEND_SIMT || uniform(rng, 0, 1) == 0;
        status = cunormCreate(null_out ? nullptr : &out, static_cast<cunormBackend_t>(backend));
        message = last_message(nullptr);
        fragment = null_out ? "handle must not be NULL"
                            : "backend must be CUNORM_BACKEND_AUTO, CUNORM_BACKEND_CUDA or CUNORM_BACKEND_SIMT, got " +
                                  std::to_string(backend);
        h = nullptr;
        EXPECT_EQ(out, dead_);
        what = "cunormCreate backend " + std::to_string(backend) + (null_out ? " NULL handle pointer" : "");
        break;
      }
      case 1:  // cunormDestroy of NULL or the destroyed handle (the live one is destroyed in TearDown)
        if (h == handle_) {
          h = dead_;
          fragment = "handle is not a live cunorm handle";
        }
        status = cunormDestroy(h);
        message = last_message(h);
        what = "cunormDestroy";
        break;
      case 2: {  // cunormGetBackend: NULL or misaligned out-pointer
        alignas(8) unsigned char slot[8] = {0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};
        const int variant = static_cast<int>(uniform(rng, 0, 2));
        void* out = variant == 0 ? nullptr : slot + (variant == 1 ? 0 : uniform(rng, 1, 3));
        status = cunormGetBackend(h, static_cast<cunormBackend_t*>(out));
        message = last_message(h);
        if (fragment.empty() && variant == 0) fragment = "backend must not be NULL";
        if (fragment.empty() && variant == 2) fragment = "backend must be aligned";
        if (fragment.empty()) {
          cunormBackend_t got;
          std::memcpy(&got, slot, sizeof(got));
          EXPECT_EQ(got, CUNORM_BACKEND_SIMT);
        } else {
          for (unsigned char b : slot) EXPECT_EQ(b, 0x5a);
        }
        what = "cunormGetBackend variant " + std::to_string(variant);
        break;
      }
      case 3:  // cunormSetStream (SIMT accepts any stream) and cunormSynchronize
        status = uniform(rng, 0, 1) == 0 ? cunormSetStream(h, reinterpret_cast<cudaStream_t>(uniform(rng, 0, 1 << 20)))
                                         : cunormSynchronize(h);
        message = last_message(h);
        what = "cunormSetStream / cunormSynchronize";
        break;
      case 4: {  // cunormSetWorkspace: NULL with bytes, misaligned, or valid (then reset)
        const int variant = static_cast<int>(uniform(rng, 0, 2));
        const std::size_t bytes = static_cast<std::size_t>(uniform(rng, 1, kBufferBytes));
        void* ws = variant == 0 ? nullptr : static_cast<char*>(buffer_) + (variant == 1 ? 0 : uniform(rng, 1, 255));
        status = cunormSetWorkspace(h, ws, variant == 0 ? bytes : kBufferBytes - 256);
        message = last_message(h);
        if (fragment.empty() && variant == 0) {
          fragment = "workspace must not be NULL when bytes > 0, got bytes = " + std::to_string(bytes);
        }
        if (fragment.empty() && variant == 2) fragment = "workspace must be 256-byte aligned";
        EXPECT_EQ(cunormSetWorkspace(handle_, nullptr, 0), CUNORM_STATUS_SUCCESS);
        what = "cunormSetWorkspace variant " + std::to_string(variant);
        break;
      }
      case 5: {  // cunormMalloc: NULL out-pointer, too large, or valid (aligned, then freed)
        const int variant = static_cast<int>(uniform(rng, 0, 2));
        const std::size_t bytes =
            variant == 1 ? std::numeric_limits<std::size_t>::max() - static_cast<std::size_t>(uniform(rng, 0, kHugeSpread))
                         : static_cast<std::size_t>(uniform(rng, 0, 1 << 16));
        void* p = &host;
        status = cunormMalloc(h, variant == 0 ? nullptr : &p, bytes);
        message = last_message(h);
        if (fragment.empty() && variant == 0) fragment = "ptr must not be NULL";
        if (fragment.empty() && variant == 1) {
          expected = CUNORM_STATUS_ALLOC_FAILED;
          fragment = std::to_string(bytes) + " bytes";
          EXPECT_EQ(p, nullptr);
        }
        if (fragment.empty()) {
          EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 256, 0u);
          EXPECT_EQ(p == nullptr, bytes == 0);
          EXPECT_EQ(cunormFree(handle_, p), CUNORM_STATUS_SUCCESS);
        }
        what = "cunormMalloc variant " + std::to_string(variant) + " bytes " + std::to_string(bytes);
        break;
      }
      case 6: {  // cunormFree: a pointer cunormMalloc never returned, an interior one, a freed one, NULL
        const int variant = static_cast<int>(uniform(rng, 0, 3));
        void* p = variant == 0   ? static_cast<void*>(host.data())
                  : variant == 1 ? static_cast<char*>(buffer_) + uniform(rng, 1, kBufferBytes - 1)
                  : variant == 2 ? freed_
                                 : nullptr;
        status = cunormFree(h, p);
        message = last_message(h);
        if (fragment.empty() && variant != 3) {
          fragment = "ptr was not allocated by cunormMalloc on this handle (or was freed already)";
        }
        what = "cunormFree variant " + std::to_string(variant);
        break;
      }
      case 7:
      case 8: {  // copies: NULL source or destination (allowed when bytes == 0), or a valid round trip
        const bool to_device = function == 7;
        const int variant = static_cast<int>(uniform(rng, 0, 3));  // NULL device side, NULL host side, 0 bytes, valid
        const std::size_t offset = static_cast<std::size_t>(uniform(rng, 0, kBufferBytes - 1));
        const std::size_t bytes = variant == 2 ? 0 : static_cast<std::size_t>(uniform(rng, 1, kBufferBytes - offset));
        for (unsigned char& b : host) b = static_cast<unsigned char>(rng());
        const std::vector<unsigned char> host_before = host;
        void* device = variant == 0 || variant == 2 ? nullptr : static_cast<char*>(buffer_) + offset;
        void* host_side = variant == 1 || variant == 2 ? nullptr : host.data();
        status = to_device ? cunormMemcpyToDevice(h, device, host_side, bytes)
                           : cunormMemcpyToHost(h, host_side, device, bytes);
        message = last_message(h);
        if (fragment.empty() && variant == 0) fragment = to_device ? "dst must not be NULL" : "src must not be NULL";
        if (fragment.empty() && variant == 1) {
          fragment = to_device ? "host_src must not be NULL" : "host_dst must not be NULL";
        }
        if (fragment.empty() && variant == 3) {
          if (to_device) {
            std::memcpy(device_bytes.data() + offset, host_before.data(), bytes);
            device_written = true;
          } else {
            EXPECT_EQ(std::memcmp(host.data(), device_bytes.data() + offset, bytes), 0) << "copy to host";
          }
        } else {
          EXPECT_EQ(host, host_before) << "a failed or empty copy wrote host memory";
        }
        what = std::string(to_device ? "cunormMemcpyToDevice" : "cunormMemcpyToHost") + " variant " +
               std::to_string(variant) + " offset " + std::to_string(offset) + " bytes " + std::to_string(bytes);
        break;
      }
      case 9: {  // cunormGetStatusString and cunormGetLastErrorMessage of a destroyed handle
        const int value = static_cast<int>(uniform(rng, -3, 10));
        const std::string text = cunormGetStatusString(static_cast<cunormStatus_t>(value));
        EXPECT_EQ(text.rfind(value >= 0 && value <= 7 ? "CUNORM_STATUS_" : "unknown cunormStatus_t", 0), 0u) << text;
        EXPECT_NE(std::string(cunormGetLastErrorMessage(dead_)).find("not a live cunorm handle"), std::string::npos);
        fragment.clear();
        what = "cunormGetStatusString " + std::to_string(value);
        break;
      }
    }
    SCOPED_TRACE(fuzz_trace(seed, index, what));
    if (fragment.empty()) {
      EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << message;
      EXPECT_EQ(message, "");
    } else {
      EXPECT_EQ(status, expected);
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message \"" << message << "\" lacks \"" << fragment << "\"";
    }
    ASSERT_EQ(cunormMemcpyToHost(handle_, host.data(), buffer_, kBufferBytes), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(host, device_bytes) << (device_written ? "the copy did not land" : "device memory changed");
    if (HasFailure()) return;
  }
  for (int f = 0; f < 10; ++f) EXPECT_GT(per_function[static_cast<std::size_t>(f)], 0) << "function " << f;
  std::printf("%d cases\n", kCases);
}

}  // namespace
}  // namespace cunorm_test
