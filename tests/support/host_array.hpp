// Host-side tensors of a runtime dtype for the tests: values stored exactly as the library
// sees them (float, __half or __nv_bfloat16 bits), read back as the doubles the float64
// reference takes, and compared bit for bit.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cunorm/cunorm.h"

namespace cunorm_test {

inline std::size_t element_size(cunormDataType_t dtype) { return dtype == CUNORM_FLOAT32 ? 4 : 2; }

class HostArray {
 public:
  HostArray() = default;
  HostArray(cunormDataType_t dtype, std::size_t count)
      : dtype_(dtype), count_(count), bytes_(count * element_size(dtype)) {}

  cunormDataType_t dtype() const { return dtype_; }
  std::size_t count() const { return count_; }
  std::size_t byte_size() const { return bytes_.size(); }
  void* data() { return bytes_.data(); }
  const void* data() const { return bytes_.data(); }

  // Rounds to the nearest value of the dtype (ties to even), as the library's conversions do.
  void set(std::size_t i, double value) {
    const float f = static_cast<float>(value);
    if (dtype_ == CUNORM_FLOAT16) {
      const __half h = __float2half_rn(f);
      std::memcpy(&bytes_[i * 2], &h, 2);
    } else if (dtype_ == CUNORM_BFLOAT16) {
      const __nv_bfloat16 b = __float2bfloat16_rn(f);
      std::memcpy(&bytes_[i * 2], &b, 2);
    } else {
      std::memcpy(&bytes_[i * 4], &f, 4);
    }
  }
  double get(std::size_t i) const {
    switch (dtype_) {
      case CUNORM_FLOAT16: {
        __half h;
        std::memcpy(&h, &bytes_[i * 2], 2);
        return __half2float(h);
      }
      case CUNORM_BFLOAT16: {
        __nv_bfloat16 b;
        std::memcpy(&b, &bytes_[i * 2], 2);
        return __bfloat162float(b);
      }
      default: {
        float f;
        std::memcpy(&f, &bytes_[i * 4], 4);
        return f;
      }
    }
  }
  std::vector<double> to_doubles() const {
    std::vector<double> out(count_);
    for (std::size_t i = 0; i < count_; ++i) out[i] = get(i);
    return out;
  }
  void fill_uniform(std::mt19937_64& rng, double low, double high) {
    std::uniform_real_distribution<double> dist(low, high);
    for (std::size_t i = 0; i < count_; ++i) set(i, dist(rng));
  }
  // Every byte set to `byte`: a poison that a test can tell from any result.
  void fill_bytes(unsigned char byte) { std::fill(bytes_.begin(), bytes_.end(), byte); }
  bool bitwise_equal(const HostArray& other) const { return dtype_ == other.dtype_ && bytes_ == other.bytes_; }

 private:
  cunormDataType_t dtype_ = CUNORM_FLOAT32;
  std::size_t count_ = 0;
  std::vector<unsigned char> bytes_;
};

}  // namespace cunorm_test
