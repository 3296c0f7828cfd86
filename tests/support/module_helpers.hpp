// What the tests of the C++ layer (cunorm.hpp) share: seeded inputs, the module buffers (raw
// device pointers) read and written through the C API, and the check of a thrown cunorm::Error.
// Public headers only.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cunorm/cunorm.hpp"

namespace cunorm_test {

inline const float* const kNoParam = nullptr;  // the reference's typed "absent gamma/beta"

inline std::vector<float> random_floats(std::size_t count, double low, double high, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<float> out(count);
  for (float& v : out) v = static_cast<float>(dist(rng));
  return out;
}

template <class T>
std::vector<T> download(cunorm::Handle& handle, const void* device, std::size_t count) {
  std::vector<T> host(count);
  cunorm::check(cunormMemcpyToHost(handle.get(), host.data(), device, count * sizeof(T)), handle.get());
  return host;
}

inline void upload(cunorm::Handle& handle, void* device, const std::vector<float>& host) {
  cunorm::check(cunormMemcpyToDevice(handle.get(), device, host.data(), host.size() * sizeof(float)), handle.get());
}

// A device copy of `host`.
inline cunorm::DeviceBuffer device_copy(cunorm::Handle& handle, const std::vector<float>& host) {
  cunorm::DeviceBuffer buffer(handle, host.size() * sizeof(float));
  buffer.upload(host);
  return buffer;
}

// Runs `f`, which must throw cunorm::Error with `status` and a message containing `needle`.
template <class F>
void expect_error(F&& f, cunormStatus_t status, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no cunorm::Error thrown; expected one naming \"" << needle << "\"";
  } catch (const cunorm::Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(e.message().find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()), std::string(cunormGetStatusString(status)) + ": " + e.message());
  }
}

}  // namespace cunorm_test
