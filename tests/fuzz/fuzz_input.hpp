// How the API fuzzer (api_fuzzer.cpp) reads its input: bytes from the front, little-endian, zeros
// once the input is used up, so that every input is a valid program and a short one is a short
// program. Each decoder spends few bytes on the common case and leaves room for the extreme ones:
// sizes are mostly small, sometimes a power of two give or take a little, a value near the
// int64_t limits or 8 raw bytes; enums are mostly a valid value, sometimes any int; scalars are
// mostly ordinary, sometimes raw float bits (NaN, infinities, negatives). The seed corpus
// (make_seed_corpus.py) writes inputs in this format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

namespace cunorm_fuzz {

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  bool used_up() const { return offset_ >= size_; }

  std::uint8_t byte() { return offset_ < size_ ? data_[offset_++] : 0; }

  std::uint64_t little_endian(int bytes) {
    std::uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value |= static_cast<std::uint64_t>(byte()) << (8 * i);
    return value;
  }

  // A size argument (int64_t): one selector byte, then what it selects.
  std::int64_t size() {
    static constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    static constexpr std::int64_t kSpecial[] = {0,
                                                1,
                                                2,
                                                3,
                                                7,
                                                8,
                                                31,
                                                32,
                                                33,
                                                64,
                                                512,
                                                513,
                                                1024,
                                                1025,
                                                8192,
                                                8193,
                                                std::int64_t{1} << 31,
                                                std::int64_t{1} << 32,
                                                std::int64_t{1} << 40,
                                                (std::int64_t{1} << 59) + 1,
                                                std::int64_t{1} << 60,
                                                (std::int64_t{1} << 61) - 1,
                                                std::int64_t{1} << 61,
                                                (std::int64_t{1} << 62) - 1,
                                                std::int64_t{1} << 62,
                                                kMax / 3,
                                                kMax / 2,
                                                kMax - 1,
                                                kMax,
                                                -1,
                                                std::numeric_limits<std::int64_t>::min()};
    switch (byte() % 8) {
      case 0: return byte();
      case 1: return static_cast<std::int64_t>(little_endian(2));
      case 2: return kSpecial[byte() % (sizeof(kSpecial) / sizeof(kSpecial[0]))];
      case 3: return static_cast<std::int64_t>(little_endian(8));
      case 4: return -static_cast<std::int64_t>(byte()) - 1;
      case 5: {  // 2^k + d, d in [-128, 127]
        const int k = byte() % 63;
        return (std::int64_t{1} << k) + static_cast<std::int8_t>(byte());
      }
      case 6: return kMax - byte();
      default: return byte() + 256 * (byte() % 16);
    }
  }

  // An enum argument: a valid value (of `valid` values, 0 ... valid - 1) unless the byte is 0xF0 or
  // more, then any int.
  int enumerator(int valid) {
    const std::uint8_t b = byte();
    if (b < 0xF0) return b % valid;
    return static_cast<int>(static_cast<std::uint32_t>(little_endian(4)));
  }

  // eps or momentum: `usual` by default.
  float scalar(float usual) {
    switch (byte() % 8) {
      case 0: return usual;
      case 1: return 0.0f;
      case 2: return 1e-3f;
      case 3: return 0.5f;
      case 4: return 1.0f;
      case 5: {
        const std::uint32_t bits = static_cast<std::uint32_t>(little_endian(4));
        float value;
        std::memcpy(&value, &bits, sizeof(value));
        return value;
      }
      case 6: return -usual;
      default: return std::numeric_limits<float>::quiet_NaN();
    }
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t offset_ = 0;
};

}  // namespace cunorm_fuzz
