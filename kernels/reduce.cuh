// Warp and block all-reductions over any small state, CUB-style: a Reducer says what its State
// is, what the empty state is, how two states merge (lower lane's first) and how a state moves
// through a shuffle. Every merge puts the state of the lower lane (or warp) first, so the two
// partners of each xor-butterfly step compute the identical merge and every lane ends with the
// same bits whatever order the threads ran in.
#pragma once

#include "platform.cuh"

namespace cunorm::kernels {

// Reducer concept:
//   using State = ...;
//   static State empty();
//   static State merge(const State& lower, const State& upper);
//   static State shuffle_xor(const State& s, int offset, int width);   // every lane calls it

// The thread's index within its block and the block's size, for blocks of any shape: warps are
// formed from consecutive linear indices.
CUNORM_DEVICE unsigned linear_thread_index() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}
CUNORM_DEVICE unsigned block_thread_count() { return blockDim.x * blockDim.y * blockDim.z; }

template <class Reducer>
CUNORM_DEVICE typename Reducer::State warp_all_reduce(typename Reducer::State s, int width) {
  const int lane = static_cast<int>(linear_thread_index() % 32);
  for (int offset = width / 2; offset > 0; offset /= 2) {
    const typename Reducer::State other = Reducer::shuffle_xor(s, offset, width);
    s = (lane & offset) != 0 ? Reducer::merge(other, s) : Reducer::merge(s, other);
  }
  return s;
}

// All-reduce over a block whose size is a multiple of 32; every thread must call it. The caller
// owns the TempStorage in shared memory; one storage may serve consecutive calls.
template <class Reducer>
class BlockAllReduce {
 public:
  using State = typename Reducer::State;
  struct TempStorage {
    State warps[32];
    State total;
  };

  CUNORM_DEVICE explicit BlockAllReduce(TempStorage& storage) : storage_(storage) {}

  CUNORM_DEVICE State all_reduce(State s) {
    const unsigned lane = linear_thread_index() % 32;
    const unsigned warp = linear_thread_index() / 32;
    s = warp_all_reduce<Reducer>(s, 32);
    if (lane == 0) storage_.warps[warp] = s;
    __syncthreads();
    if (warp == 0) {
      State t = lane < block_thread_count() / 32 ? storage_.warps[lane] : Reducer::empty();
      t = warp_all_reduce<Reducer>(t, 32);
      if (lane == 0) storage_.total = t;
    }
    __syncthreads();
    return storage_.total;
  }

 private:
  TempStorage& storage_;
};

// N float sums reduced together (float addition is commutative, so the butterfly's partners
// agree; the tree's shape fixes the rounding).
template <int N>
struct Sums {
  float v[N];
};

template <int N>
struct SumReducer {
  using State = Sums<N>;
  static CUNORM_DEVICE State empty() {
    State s;
    CUNORM_UNROLL
    for (int i = 0; i < N; ++i) s.v[i] = 0.0f;
    return s;
  }
  static CUNORM_DEVICE State merge(const State& lower, const State& upper) {
    State s;
    CUNORM_UNROLL
    for (int i = 0; i < N; ++i) s.v[i] = lower.v[i] + upper.v[i];
    return s;
  }
  static CUNORM_DEVICE State shuffle_xor(const State& s, int offset, int width) {
    State o;
    CUNORM_UNROLL
    for (int i = 0; i < N; ++i) o.v[i] = __shfl_xor_sync(0xffffffffu, s.v[i], offset, width);
    return o;
  }
};

}  // namespace cunorm::kernels
