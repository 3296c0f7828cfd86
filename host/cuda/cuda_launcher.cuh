// Launches kernels on a CUDA stream: the dynamic shared memory opt-in beyond the default
// per-block limit, the launch, and cudaGetLastError() turned into EXECUTION_FAILED.
#pragma once

#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "../device_info.hpp"
#include "../launch_shape.hpp"
#include "../status.hpp"

namespace cunorm {

class CudaLauncher {
 public:
  CudaLauncher(cudaStream_t stream, const DeviceInfo& device) : stream_(stream), device_(device) {}

  template <class... Params, class... Args>
  Status launch(const LaunchShape& shape, void (*kernel)(Params...), Args&&... args) {
    if (shape.dynamic_shared_bytes > device_.shared_per_block) {
      const cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                     static_cast<int>(shape.dynamic_shared_bytes));
      if (error != cudaSuccess) {
        return Status::execution_failed(shape.name + ": cudaFuncSetAttribute failed: " + cudaGetErrorString(error));
      }
    }
    kernel<<<shape.grid, shape.block, shape.dynamic_shared_bytes, stream_>>>(std::forward<Args>(args)...);
    const cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess)
      return Status::execution_failed(shape.name + ": launch failed: " + cudaGetErrorString(error));
    return Status::ok();
  }

 private:
  cudaStream_t stream_;
  const DeviceInfo& device_;
};

}  // namespace cunorm
