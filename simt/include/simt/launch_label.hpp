// A launch's name as fields: the kernel family and variant, the element types, named integer
// parameters and a closing word, all static strings and integers, so that naming a launch
// allocates nothing (the strings must outlive every record made of the launch: cunorm's are
// literals). Launch records carry the fields (tests read record.label.variant and
// record.label.parameter("vec")); the text form, for fault messages and records,
//   family.variant<type0,type1> key=value ... suffix
// is written into a caller's buffer only when one is wanted. The engine and cunorm's launchers
// (host/launch_shape.hpp) share this type; it depends on nothing else of either.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace simt {

struct LaunchLabel {
  static constexpr int kMaxParameters = 6;
  struct Parameter {
    const char* key;
    std::int64_t value;
  };

  const char* family = "kernel";              // e.g. "layer_norm_forward", "batch_norm_training"
  const char* variant = "";                   // e.g. "warp_rows", "channels_last", "reduce_dgamma"
  const char* types[2] = {nullptr, nullptr};  // activation and parameter types: "<f32,f32>"
  Parameter parameters[kMaxParameters] = {};
  int parameter_count = 0;
  const char* suffix = "";  // e.g. "tail", "finalize"

  // Appends a parameter; past kMaxParameters the rest are dropped (cunorm's labels use at most 5).
  LaunchLabel& with(const char* key, std::int64_t value) {
    if (parameter_count < kMaxParameters) parameters[parameter_count++] = Parameter{key, value};
    return *this;
  }
  // The value of a parameter, or `absent` when the label has none of that key.
  std::int64_t parameter(const char* key, std::int64_t absent = -1) const {
    for (int i = 0; i < parameter_count; ++i) {
      if (std::strcmp(parameters[i].key, key) == 0) return parameters[i].value;
    }
    return absent;
  }
  // The text form into buffer[0, size), truncated if it does not fit; no heap.
  void format(char* buffer, std::size_t size) const {
    if (size == 0) return;
    buffer[0] = '\0';
    std::size_t used = 0;
    auto append = [&](const char* fmt, auto... args) {
      if (used + 1 >= size) return;
      const int n = std::snprintf(buffer + used, size - used, fmt, args...);
      if (n > 0) used = std::min(size - 1, used + static_cast<std::size_t>(n));
    };
    append("%s", family);
    if (*variant != '\0') append(".%s", variant);
    if (types[0] != nullptr) append("<%s,%s>", types[0], types[1] != nullptr ? types[1] : "");
    for (int i = 0; i < parameter_count; ++i)
      append(" %s=%lld", parameters[i].key, static_cast<long long>(parameters[i].value));
    if (*suffix != '\0') append(" %s", suffix);
  }
  std::string text() const {
    char buffer[256];
    format(buffer, sizeof buffer);
    return buffer;
  }
};

}  // namespace simt
