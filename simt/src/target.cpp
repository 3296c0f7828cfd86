// Launch limits per architecture, from NVIDIA's published compute-capability tables; the SM
// count is that of the named part.
#include "simt/target.hpp"

#include <cstdlib>
#include <iterator>

namespace simt {
namespace {

// Constant-initialized: no constructor runs, so no launch can see the table half built and an
// exhausted heap cannot leave it unbuilt.
constexpr Target kTargets[] = {
    // name, part, compute capability, SMs, threads and blocks per SM, shared memory per block
    // (opted in) and per SM
    {"sm_75", "Tesla T4", 7, 5, 40, 1024, 16, 64 * 1024, 64 * 1024},
    {"sm_80", "A100 SXM", 8, 0, 108, 2048, 32, 163 * 1024, 164 * 1024},
    {"sm_86", "RTX A6000", 8, 6, 84, 1536, 16, 99 * 1024, 100 * 1024},
    {"sm_89", "L40S", 8, 9, 142, 1536, 24, 99 * 1024, 100 * 1024},
    {"sm_90", "H100 SXM", 9, 0, 132, 2048, 32, 227 * 1024, 228 * 1024},
    {"sm_100", "B200", 10, 0, 148, 2048, 32, 227 * 1024, 228 * 1024},
    {"sm_120", "RTX 5090", 12, 0, 170, 1536, 32, 99 * 1024, 100 * 1024},
};

}  // namespace

TargetTable known_targets() { return {std::begin(kTargets), std::end(kTargets)}; }

const Target* find_target(const std::string& name) {
  for (const Target& t : known_targets()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

const Target* environment_target() {
  const char* env = std::getenv("CUNORM_SIMT_TARGET");
  return find_target(env != nullptr ? env : "sm_90");
}

}  // namespace simt
