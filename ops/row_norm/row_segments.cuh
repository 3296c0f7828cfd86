// The segments variant's split of rows over blocks, shared by the forward and backward kernels:
// which segment of which row a block serves, and the exchange through which the blocks of a row
// merge their partial states across a grid barrier.
#pragma once

#include <cstdint>

#include "../../kernels/global_memory.cuh"
#include "../../kernels/platform.cuh"

namespace cunorm::kernels {

// How the segments variant splits rows: `count` blocks per row, `slots` rows in flight, `waves`
// rounds of slots; `exchange` holds 2 x slots x count partial states (double-buffered by wave).
struct RowSegments {
  int count;
  int packs_per_segment;
  int slots;
  int64_t waves;
  Global<float> exchange;
};

// This block's segment and row slot, its first pack of VEC columns and how many packs it holds
// (the last segment of a row may be short).
struct SegmentPosition {
  int segment;
  int slot;
  int first_pack;
  int packs;
};

template <int VEC>
CUNORM_DEVICE SegmentPosition segment_position(const RowSegments& seg, int64_t cols) {
  SegmentPosition at;
  at.segment = static_cast<int>(blockIdx.x) % seg.count;
  at.slot = static_cast<int>(blockIdx.x) / seg.count;
  at.first_pack = at.segment * seg.packs_per_segment;
  const int left = static_cast<int>(cols / VEC) - at.first_pack;
  at.packs = left < seg.packs_per_segment ? left : seg.packs_per_segment;
  return at;
}

// The row's state from the block's `own` (already reduced over the block): with one segment,
// `own`; otherwise every block stores its state in this wave's half of the exchange, waits at the
// grid barrier, and thread 0 merges the row's states in segment order (the same order, hence the
// same bits, in every block of the row) into `row_state`, which every thread then reads. Every
// block must call this once per wave, rows past the end included, so that the barriers match.
template <class Reducer, class State>
CUNORM_DEVICE State merge_row_segments(const RowSegments& seg, const SegmentPosition& at, int64_t wave,
                                       const State& own, State& row_state) {
  if (seg.count == 1) return own;
  const int64_t row_first = (wave & 1) * seg.slots * seg.count + static_cast<int64_t>(at.slot) * seg.count;
  if (threadIdx.x == 0) store_state(seg.exchange, row_first + at.segment, own);
  grid_sync();
  if (threadIdx.x == 0) {
    State merged = load_state<State>(seg.exchange, row_first);
    for (int other = 1; other < seg.count; ++other) {
      merged = Reducer::merge(merged, load_state<State>(seg.exchange, row_first + other));
    }
    row_state = merged;
  }
  __syncthreads();
  return row_state;
}

}  // namespace cunorm::kernels
