// Launch limits per architecture, from NVIDIA's published compute-capability tables; the SM
// count is that of the named part.
#include "simt/target.hpp"

#include <cstdlib>
#include <iterator>

namespace simt {
namespace {

constexpr Target make(const char* name, const char* models, int major, int minor, int sms, int threads_per_sm,
                      int blocks_per_sm, std::size_t optin, std::size_t per_sm) {
  Target t{};
  t.name = name;
  t.models = models;
  t.cc_major = major;
  t.cc_minor = minor;
  t.sm_count = sms;
  t.max_threads_per_sm = threads_per_sm;
  t.max_blocks_per_sm = blocks_per_sm;
  t.shared_per_block_optin = optin;
  t.shared_per_sm = per_sm;
  return t;
}

// Constant-initialized: no constructor runs, so no launch can see the table half built and an
// exhausted heap cannot leave it unbuilt.
constexpr Target kTargets[] = {
    make("sm_75", "Tesla T4", 7, 5, 40, 1024, 16, 64 * 1024, 64 * 1024),
    make("sm_80", "A100 SXM", 8, 0, 108, 2048, 32, 163 * 1024, 164 * 1024),
    make("sm_86", "RTX A6000", 8, 6, 84, 1536, 16, 99 * 1024, 100 * 1024),
    make("sm_89", "L40S", 8, 9, 142, 1536, 24, 99 * 1024, 100 * 1024),
    make("sm_90", "H100 SXM", 9, 0, 132, 2048, 32, 227 * 1024, 228 * 1024),
    make("sm_100", "B200", 10, 0, 148, 2048, 32, 227 * 1024, 228 * 1024),
    make("sm_120", "RTX 5090", 12, 0, 170, 1536, 32, 99 * 1024, 100 * 1024),
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
