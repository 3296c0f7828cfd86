// Warp collectives (__shfl*_sync, __ballot_sync, __any_sync, __all_sync, __syncwarp): the lanes
// of a mask meet at one call; a mask naming the caller's absence, missing or exited lanes, a bad
// width, lanes that disagree or a read outside the mask is the launch's error. Shuffles follow the
// PTX ISA's shfl.sync definition: the CUDA intrinsics pass c = ((32 - width) << 8) | clamp, with
// clamp 0 for up and 31 otherwise; segmask = c[12:8] splits the warp into segments of `width`
// lanes, and a source lane that falls outside the lane's segment (or the warp) yields the lane's
// own value.
#include "engine.hpp"
#include "fault_text.hpp"
#include "sanitizer_hooks.hpp"

namespace simt::detail {

const char* collective_name(Collective kind) {
  switch (kind) {
    case Collective::kShflIdx: return "__shfl_sync";
    case Collective::kShflUp: return "__shfl_up_sync";
    case Collective::kShflDown: return "__shfl_down_sync";
    case Collective::kShflXor: return "__shfl_xor_sync";
    case Collective::kBallot: return "__ballot_sync";
    case Collective::kAny: return "__any_sync";
    case Collective::kAll: return "__all_sync";
    case Collective::kSyncWarp: return "__syncwarp";
  }
  return "collective";
}

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

std::uint64_t Worker::warp_collective(Collective kind, unsigned mask, std::uint64_t value, int operand, int width,
                                      SourceLocation loc) {
  Fiber* fiber = current_;
  Warp& warp = fiber->block->warps[fiber->warp];
  const unsigned bit = 1u << fiber->lane;
  const char* name = collective_name(kind);
  if ((mask & bit) == 0) {
    fail(FaultText() << name << " with mask " << Mask{mask} << " that excludes the calling lane " << fiber->lane, loc);
  }
  if (mask & ~warp.existing) {
    fail(FaultText() << name << " with mask " << Mask{mask} << " naming lanes " << Mask{mask & ~warp.existing}
                     << " that do not exist in this block",
         loc);
  }
  if (mask & warp.exited) {
    fail(FaultText() << name << " with mask " << Mask{mask} << " naming lanes " << Mask{mask & warp.exited}
                     << " that have exited",
         loc);
  }
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    fail(FaultText() << name << " with width " << width << ", which is not a power of two from 1 to 32", loc);
  }
  // Lanes meet at the pending collective with the same mask; collectives with other masks may
  // be pending at the same time (independent thread scheduling), and a set of them that can
  // never complete is reported as a deadlock.
  PendingCollective* pending = nullptr;
  for (PendingCollective& p : warp.pending) {
    if (p.mask != mask) continue;
    if (p.kind != kind || p.width != width) {
      FaultText what;
      what << "lanes disagree: this lane calls " << name << " with mask " << Mask{mask} << " while lanes "
           << Mask{p.arrived} << " wait at " << collective_name(p.kind) << " (" << p.loc << ") with the same mask";
      if (p.width != width) what << " and width " << p.width;
      fail(what, loc);
    }
    pending = &p;
  }
  if (pending == nullptr) {
    warp.pending.push_back(PendingCollective{kind, mask, width, loc, 0});
    pending = &warp.pending.back();
  }
  pending->arrived |= bit;
  fiber->value = value;
  fiber->operand = operand;
  fiber->wait_loc = loc;
  if (pending->arrived != mask) {
    fiber->state = FiberState::kAtCollective;
    suspend();
    return fiber->result;
  }
  // Last to arrive: compute every participant's result.
  int operands[32] = {};
  std::uint64_t values[32] = {};
  std::uint64_t results[32] = {};
  for (unsigned lane = 0; lane < 32; ++lane) {
    if (mask & (1u << lane)) {
      operands[lane] = warp.lanes[lane]->operand;
      values[lane] = warp.lanes[lane]->value;
    }
  }
  const int bad_lane = shuffle_results(kind, mask, width, operands, values, results);
  if (kThreadSanitizer && kind == Collective::kSyncWarp) {  // orders memory among its lanes; shuffles do not
    Fiber* lanes[32];
    std::size_t n = 0;
    for (unsigned lane = 0; lane < 32; ++lane) {
      if (mask & (1u << lane)) lanes[n++] = warp.lanes[lane];
    }
    tsan_barrier_edges(lanes, n);
  }
  warp.pending.erase(warp.pending.begin() + (pending - warp.pending.data()));
  if (bad_lane >= 0) {
    fail(FaultText() << name << ": lane " << bad_lane << " reads a lane outside the mask " << Mask{mask}
                     << " (undefined on a GPU)",
         loc);
  }
  for (unsigned lane = 0; lane < 32; ++lane) {
    if ((mask & (1u << lane)) == 0) continue;
    Fiber* participant = warp.lanes[lane];
    participant->result = results[lane];
    if (participant != fiber) participant->state = FiberState::kRunnable;
  }
  return fiber->result;
}
}  // namespace simt::detail
