// The backend that runs the kernels on a CUDA GPU: the device current when the handle was
// created (made current for each of its calls, whatever device is current then), the handle's
// stream, cudaMalloc'd memory.
#pragma once

#include "../backend.hpp"
#include "cooperative_occupancy.hpp"

namespace cunorm {

class CudaBackend final : public Backend {
 public:
  CudaBackend(const DeviceInfo& device, int device_id);
  Status set_stream(cudaStream_t stream) override;
  Status allocate(void** pointer, std::size_t bytes) override;
  Status release(void* pointer) override;
  Status copy_to_device(void* device_destination, const void* host_source, std::size_t bytes) override;
  Status copy_to_host(void* host_destination, const void* device_source, std::size_t bytes) override;
  Status synchronize() override;

 private:
  Status launch_op(const OpLaunch& op) override;
  Status copy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind);

  int device_id_;  // the CUDA runtime's ordinal of the handle's device
  cudaStream_t stream_ = nullptr;
  CooperativeOccupancy occupancy_;  // of the cooperative kernels launched so far
};

}  // namespace cunorm
