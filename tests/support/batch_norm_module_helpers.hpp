// What the tests of the C++ layer's BatchNorm module share: the layouts, and batches whose
// channels each have their own statistics. Public headers only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"

namespace cunorm_test {

constexpr cunormLayout_t kLayouts[] = {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC};

inline std::string layout_label(cunormLayout_t layout) { return layout == CUNORM_LAYOUT_NCHW ? "NCHW" : "NHWC"; }

// Channel of the element at flat offset i of an (n, c, s) tensor.
inline std::size_t channel_of(cunormLayout_t layout, std::size_t i, int64_t c, int64_t s) {
  const auto cs = static_cast<std::size_t>(c), ss = static_cast<std::size_t>(s);
  return layout == CUNORM_LAYOUT_NCHW ? (i / ss) % cs : i % cs;
}

// An (n, c, s) batch whose channels have their own centre and spread, so that every channel's
// statistics differ; offset shifts all of them.
inline std::vector<float> channel_batch(cunormLayout_t layout, int64_t n, int64_t c, int64_t s, uint64_t seed,
                                        double offset = 0.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> centre(-2.0, 2.0), spread(0.5, 1.5), unit(-1.0, 1.0);
  std::vector<double> centres(static_cast<std::size_t>(c)), spreads(static_cast<std::size_t>(c));
  for (std::size_t ci = 0; ci < centres.size(); ++ci) {
    centres[ci] = centre(rng);
    spreads[ci] = spread(rng);
  }
  std::vector<float> x(static_cast<std::size_t>(n * c * s));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t ci = channel_of(layout, i, c, s);
    x[i] = static_cast<float>(offset + centres[ci] + spreads[ci] * unit(rng));
  }
  return x;
}

}  // namespace cunorm_test
