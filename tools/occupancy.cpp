// Theoretical occupancy of a kernel on the A100 (sm_80) and H100 (sm_90), from CUDA's own
// occupancy calculator (cuda_occupancy.h runs on the host): the static report's columns and the
// performance model's resident blocks.
//   occupancy <threads per block> <registers per thread> <shared bytes per block>
// prints "<sm_80 percent> <sm_90 percent> <sm_80 blocks> <sm_90 blocks>" (active warps over the
// SM's maximum, in percent; resident blocks per SM).
#include <cuda_occupancy.h>

#include <cstdio>
#include <cstdlib>

namespace {

cudaOccDeviceProp device(int major, int sms, std::size_t shared_per_sm, std::size_t shared_optin) {
  cudaOccDeviceProp p{};
  p.computeMajor = major;
  p.computeMinor = 0;
  p.maxThreadsPerBlock = 1024;
  p.maxThreadsPerMultiprocessor = 2048;
  p.regsPerBlock = 65536;
  p.regsPerMultiprocessor = 65536;
  p.warpSize = 32;
  p.sharedMemPerBlock = 48 * 1024;
  p.sharedMemPerMultiprocessor = shared_per_sm;
  p.numSms = sms;
  p.sharedMemPerBlockOptin = shared_optin;
  p.reservedSharedMemPerBlock = 1024;
  return p;
}

// Resident blocks per SM, or -1 where the calculator refuses the kernel.
int resident_blocks(const cudaOccDeviceProp& prop, int threads, int registers, std::size_t shared) {
  cudaOccFuncAttributes attributes{};
  attributes.maxThreadsPerBlock = threads;
  attributes.numRegs = registers;
  attributes.sharedSizeBytes = shared;
  attributes.partitionedGCConfig = PARTITIONED_GC_OFF;
  attributes.shmemLimitConfig = FUNC_SHMEM_LIMIT_OPTIN;
  attributes.maxDynamicSharedSizeBytes = 0;
  const cudaOccDeviceState state{};
  cudaOccResult result{};
  if (cudaOccMaxActiveBlocksPerMultiprocessor(&result, &prop, &attributes, &state, threads, 0) != CUDA_OCC_SUCCESS) {
    return -1;
  }
  return result.activeBlocksPerMultiprocessor;
}

double percent(const cudaOccDeviceProp& prop, int threads, int blocks) {
  return blocks < 0 ? -1.0 : 100.0 * blocks * threads / prop.maxThreadsPerMultiprocessor;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: occupancy <threads per block> <registers per thread> <shared bytes per block>\n");
    return 2;
  }
  const int threads = std::atoi(argv[1]), registers = std::atoi(argv[2]);
  const std::size_t shared = static_cast<std::size_t>(std::atoll(argv[3]));
  const cudaOccDeviceProp a100 = device(8, 108, 164 * 1024, 163 * 1024);
  const cudaOccDeviceProp h100 = device(9, 132, 228 * 1024, 227 * 1024);
  const int a100_blocks = resident_blocks(a100, threads, registers, shared);
  const int h100_blocks = resident_blocks(h100, threads, registers, shared);
  std::printf("%.1f %.1f %d %d\n", percent(a100, threads, a100_blocks), percent(h100, threads, h100_blocks),
              a100_blocks, h100_blocks);
  return 0;
}
