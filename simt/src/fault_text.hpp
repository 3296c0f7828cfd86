// Fault messages built on the fiber's stack without the heap. A fiber that faults never
// returns, and the frames of fibers abandoned with it are never unwound, so a std::string in
// any of them would leak; a fixed buffer of characters leaks nothing.
#pragma once

#include <cstdio>
#include <cstring>

#include "simt/device.hpp"

namespace simt::detail {

struct Mask {
  unsigned bits;
};
struct Dim {
  uint3 value;
};
struct Address {
  const void* pointer;
};

class FaultText {
 public:
  FaultText() { text_[0] = '\0'; }
  explicit FaultText(const char* text) : FaultText() { *this << text; }
  FaultText& operator<<(const char* text) {
    append("%s", text);
    return *this;
  }
  FaultText& operator<<(unsigned long long value) {
    append("%llu", value);
    return *this;
  }
  FaultText& operator<<(unsigned value) { return *this << static_cast<unsigned long long>(value); }
  FaultText& operator<<(std::size_t value) { return *this << static_cast<unsigned long long>(value); }
  FaultText& operator<<(int value) {
    append("%d", value);
    return *this;
  }
  FaultText& operator<<(Mask mask) {
    append("0x%08x", mask.bits);
    return *this;
  }
  FaultText& operator<<(Dim dim) {
    append("(%u,%u,%u)", dim.value.x, dim.value.y, dim.value.z);
    return *this;
  }
  FaultText& operator<<(Address address) {
    append("%p", address.pointer);
    return *this;
  }
  FaultText& operator<<(SourceLocation loc) {
    append("%s:%d", loc.file, loc.line);
    return *this;
  }
  const char* c_str() const { return text_; }

 private:
  template <class... Args>
  void append(const char* format, Args... args) {
    const std::size_t used = std::strlen(text_);
    if (used + 1 < sizeof text_) std::snprintf(text_ + used, sizeof text_ - used, format, args...);
  }
  char text_[768];
};

}  // namespace simt::detail
