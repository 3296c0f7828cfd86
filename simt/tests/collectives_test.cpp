// Warp collectives follow CUDA's documented semantics: shuffles with widths (a lane reading past
// its segment keeps its own value for up/down, wraps modulo width for idx, may read an earlier
// segment for xor), ballot/any/all over the mask, and independent lanes between collectives.
#include <vector>

#include "engine_test_util.hpp"

namespace {

using simt_test::run;

struct ShuffleCase {
  int mode;  // 0 idx, 1 up, 2 down, 3 xor
  int operand;
  int width;
};

void shuffle_kernel(ShuffleCase c, int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  const int value = 1000 + lane;
  int r = 0;
  switch (c.mode) {
    case 0: r = __shfl_sync(0xffffffffu, value, c.operand, c.width); break;
    case 1: r = __shfl_up_sync(0xffffffffu, value, static_cast<unsigned>(c.operand), c.width); break;
    case 2: r = __shfl_down_sync(0xffffffffu, value, static_cast<unsigned>(c.operand), c.width); break;
    default: r = __shfl_xor_sync(0xffffffffu, value, c.operand, c.width); break;
  }
  out[lane] = r;
}

// The CUDA programming guide's description, written independently of the PTX formula that the
// engine implements.
int expected_source(const ShuffleCase& c, int lane) {
  const int segment_start = lane / c.width * c.width;
  switch (c.mode) {
    case 0: return segment_start + c.operand % c.width;
    case 1: return lane - c.operand >= segment_start ? lane - c.operand : lane;
    case 2: return lane + c.operand < segment_start + c.width ? lane + c.operand : lane;
    default: {
      const int source = lane ^ c.operand;
      return source < segment_start + c.width ? source : lane;  // later segments: own value
    }
  }
}

TEST(Collectives, ShufflesMatchTheProgrammingGuide) {
  std::vector<int> out(32);
  for (int mode = 0; mode < 4; ++mode) {
    for (int width : {1, 2, 4, 8, 16, 32}) {
      for (int operand : {0, 1, 2, 3, 5, 8, 13, 16, 31, 40}) {
        const ShuffleCase c{mode, operand, width};
        ASSERT_TRUE(run(simt::Order::kRandom, dim3(1), dim3(32), shuffle_kernel, c, out.data()).ok);
        for (int lane = 0; lane < 32; ++lane) {
          ASSERT_EQ(out[lane], 1000 + expected_source(c, lane))
              << "mode " << mode << " width " << width << " operand " << operand << " lane " << lane;
        }
      }
    }
  }
}

void shuffle_types(double* d, __half* h, long long* ll) {
  const unsigned lane = threadIdx.x;
  d[lane] = __shfl_xor_sync(0xffffffffu, 0.5 + lane, 1);
  h[lane] = __shfl_down_sync(0xffffffffu, __float2half(static_cast<float>(lane)), 1);
  ll[lane] = __shfl_sync(0xffffffffu, (1LL << 40) + lane, 3);
}

TEST(Collectives, ShufflesCarry64BitAndHalfValues) {
  std::vector<double> d(32);
  std::vector<__half> h(32);
  std::vector<long long> ll(32);
  ASSERT_TRUE(run(simt::Order::kForward, dim3(1), dim3(32), shuffle_types, d.data(), h.data(), ll.data()).ok);
  for (int lane = 0; lane < 32; ++lane) {
    EXPECT_EQ(d[lane], 0.5 + (lane ^ 1));
    EXPECT_EQ(__half2float(h[lane]), static_cast<float>(lane < 31 ? lane + 1 : lane));
    EXPECT_EQ(ll[lane], (1LL << 40) + 3);
  }
}

void votes(unsigned* out) {
  const unsigned lane = threadIdx.x % 32;
  const unsigned warp = threadIdx.x / 32;
  // Two half-warps vote independently with disjoint masks.
  const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  out[threadIdx.x * 4 + 0] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  out[threadIdx.x * 4 + 1] = static_cast<unsigned>(__any_sync(half, lane == 20));
  out[threadIdx.x * 4 + 2] = static_cast<unsigned>(__all_sync(half, lane < 16 || warp == 1));
  __syncwarp();
  out[threadIdx.x * 4 + 3] = __ballot_sync(half, 1);
}

TEST(Collectives, BallotAnyAllWithFullAndPartialMasks) {
  std::vector<unsigned> out(64 * 4);
  for (simt::Order order : simt_test::kAllOrders) {
    const simt::LaunchResult result = run(order, dim3(1), dim3(64), votes, out.data());
    ASSERT_TRUE(result.ok) << result.message;
    unsigned every_third = 0;
    for (int lane = 0; lane < 32; lane += 3) every_third |= 1u << lane;
    for (unsigned t = 0; t < 64; ++t) {
      const unsigned lane = t % 32;
      EXPECT_EQ(out[t * 4 + 0], every_third);
      EXPECT_EQ(out[t * 4 + 1], lane < 16 ? 0u : 1u);
      EXPECT_EQ(out[t * 4 + 2], lane < 16 || t >= 32 ? 1u : 0u);
      EXPECT_EQ(out[t * 4 + 3], lane < 16 ? 0x0000ffffu : 0xffff0000u);
    }
  }
}

void partial_warp_reduce(int* out) {
  // A block of 48 threads: the second warp has 16 lanes and must name only those.
  const unsigned mask = threadIdx.x < 32 ? 0xffffffffu : 0x0000ffffu;
  const int width = threadIdx.x < 32 ? 32 : 16;
  int v = static_cast<int>(threadIdx.x);
  for (int offset = width / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(mask, v, offset, width);
  out[threadIdx.x] = v;
}

TEST(Collectives, PartialLastWarpUsesItsExistingLanes) {
  std::vector<int> out(48);
  ASSERT_TRUE(run(simt::Order::kRandom, dim3(1), dim3(48), partial_warp_reduce, out.data()).ok);
  for (int t = 0; t < 32; ++t) EXPECT_EQ(out[t], 31 * 32 / 2);
  for (int t = 32; t < 48; ++t) EXPECT_EQ(out[t], (32 + 47) * 16 / 2);
}

}  // namespace
