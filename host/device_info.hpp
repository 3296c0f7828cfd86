// What the host code needs to know about the GPU it plans launches for, whichever backend runs
// them: the CUDA device's properties, or the SIMT engine's target.
#pragma once

#include <cstddef>
#include <string>

namespace cunorm {

struct DeviceInfo {
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  int sm_count = 0;
  int max_threads_per_sm = 0;
  int max_blocks_per_sm = 0;
  int registers_per_sm = 0;
  std::size_t shared_per_block = 0;        // without opting in
  std::size_t shared_per_block_optin = 0;  // after cudaFuncSetAttribute
  std::size_t shared_per_sm = 0;
  std::size_t max_cooperative_threads = 0;  // 0: only residency limits (GPUs); the SIMT engine's fiber limit
};

}  // namespace cunorm
