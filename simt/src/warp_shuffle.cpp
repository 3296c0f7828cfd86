// Results of a completed warp collective. Shuffles follow the PTX ISA's shfl.sync definition:
// the CUDA intrinsics pass c = ((32 - width) << 8) | clamp, with clamp 0 for up and 31 otherwise;
// segmask = c[12:8] splits the warp into segments of `width` lanes, and a source lane that falls
// outside the lane's segment (or the warp) yields the lane's own value.
#include "engine.hpp"

namespace simt::detail {

int shuffle_results(Collective kind, unsigned mask, int width, const int operands[32], const std::uint64_t values[32],
                    std::uint64_t results[32]) {
  if (kind == Collective::kBallot || kind == Collective::kAny || kind == Collective::kAll ||
      kind == Collective::kSyncWarp) {
    unsigned ballot = 0;
    for (int lane = 0; lane < 32; ++lane) {
      if ((mask >> lane & 1u) && values[lane] != 0) ballot |= 1u << lane;
    }
    std::uint64_t result = 0;
    if (kind == Collective::kBallot) result = ballot;
    if (kind == Collective::kAny) result = ballot != 0;
    if (kind == Collective::kAll) result = ballot == mask;
    for (int lane = 0; lane < 32; ++lane) results[lane] = result;
    return -1;
  }
  const int segmask = (32 - width) & 31;
  const int clamp = kind == Collective::kShflUp ? 0 : 31;
  for (int lane = 0; lane < 32; ++lane) {
    if ((mask >> lane & 1u) == 0) continue;
    const int b = operands[lane];
    const int min_lane = lane & segmask;
    const int max_lane = min_lane | (clamp & ~segmask);
    int source = lane;
    bool in_range = false;
    switch (kind) {
      case Collective::kShflUp:
        source = lane - b;
        in_range = source >= min_lane;
        break;
      case Collective::kShflDown:
        source = lane + b;
        in_range = source <= max_lane;
        break;
      case Collective::kShflXor:
        source = lane ^ b;
        in_range = source <= max_lane;
        break;
      default:  // kShflIdx: the source lane modulo width, within the lane's segment
        source = min_lane | (b & ~segmask & 31);
        in_range = source <= max_lane;
        break;
    }
    if (!in_range || source < 0 || source > 31) source = lane;
    if ((mask >> source & 1u) == 0) return lane;
    results[lane] = values[source];
  }
  return -1;
}

}  // namespace simt::detail
