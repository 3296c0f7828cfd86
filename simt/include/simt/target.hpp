// The GPU that the SIMT engine pretends to be: the limits a launch must respect and the sizes
// (SM count, shared memory) that the library's variant choice and grid sizing read. Each entry
// models one shipping part of an architecture so that a launch refused there is refused here too.
#pragma once

#include <cstddef>
#include <string>

namespace simt {

struct Target {
  // What differs between the parts the engine models, in the order the table in target.cpp
  // states it.
  const char* name = "";    // e.g. "sm_90"
  const char* models = "";  // the part whose limits these are, e.g. "H100 SXM"
  int cc_major = 0;
  int cc_minor = 0;
  int sm_count = 0;
  int max_threads_per_sm = 0;
  int max_blocks_per_sm = 0;
  std::size_t shared_per_block_optin = 0;  // the most one block may use after opting in
  std::size_t shared_per_sm = 0;
  // The same on every architecture the library is built for.
  int max_threads_per_block = 1024;
  int max_block_dim[3] = {1024, 1024, 64};
  long long max_grid_dim[3] = {2147483647LL, 65535, 65535};
  std::size_t shared_per_block = 48 * 1024;  // without the cudaFuncSetAttribute opt-in
  int registers_per_sm = 65536;
};

// The targets the engine knows, one per architecture the library is built for: a constant table,
// so that reading it allocates nothing and waits for no initialization.
struct TargetTable {
  const Target* first;
  const Target* last;
  const Target* begin() const { return first; }
  const Target* end() const { return last; }
};
TargetTable known_targets();
// nullptr when the name is unknown.
const Target* find_target(const std::string& name);
// The target named by CUNORM_SIMT_TARGET, sm_90 (H100 SXM) when it is unset, nullptr when it
// names no known target (the caller reports that as a bad setting).
const Target* environment_target();

}  // namespace simt
