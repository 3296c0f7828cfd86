// How BatchNorm's passes (batch_norm_passes.cuh) cut the tensor into blocks: plain data, no device
// code, so that the host's plan (ops/batch_norm/batch_norm.hpp) holds it without including kernel code.
#pragma once

#include <cstdint>

namespace cunorm::kernels {

constexpr int kBatchNormThreads = 256;

struct ChannelsFirstTiling {
  int64_t n, c, s;         // sizes; s in elements
  int64_t packs_per_tile;  // of VEC elements along S
  int64_t tiles;           // tiles per plane
  int64_t n_per_group;     // a multiple of blockDim.y
  int64_t chunks;          // chunks per channel = groups * tiles
};

struct ChannelsLastTiling {
  int64_t rows;  // N*S
  int64_t c;
  int64_t chunks;  // of rows, split as evenly as integers allow (channels_last_rows)
};

}  // namespace cunorm::kernels
