// Launches kernels on a CUDA stream: the dynamic shared memory opt-in beyond the default
// per-block limit, the launch, and cudaGetLastError() turned into EXECUTION_FAILED; cooperative
// grids checked against the kernel's occupancy (cached per handle: cooperative_occupancy.hpp).
#pragma once

#include <cuda_runtime.h>

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../device_info.hpp"
#include "../launch_shape.hpp"
#include "../status.hpp"
#include "cooperative_occupancy.hpp"

namespace cunorm {

class CudaLauncher {
 public:
  CudaLauncher(cudaStream_t stream, const DeviceInfo& device, CooperativeOccupancy& occupancy)
      : stream_(stream), device_(device), occupancy_(occupancy) {}

  template <class... Params, class... Args>
  Status launch(const LaunchShape& shape, void (*kernel)(Params...), Args&&... args) {
    if (shape.dynamic_shared_bytes > device_.shared_per_block) {
      const cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                     static_cast<int>(shape.dynamic_shared_bytes));
      if (error != cudaSuccess) {
        return Status::execution_failed(shape.label.text() +
                                        ": cudaFuncSetAttribute failed: " + cudaGetErrorString(error));
      }
    }
    if (shape.cooperative) return launch_cooperative(shape, kernel, std::forward<Args>(args)...);
    kernel<<<shape.grid, shape.block, shape.dynamic_shared_bytes, stream_>>>(std::forward<Args>(args)...);
    const cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess)
      return Status::execution_failed(shape.label.text() + ": launch failed: " + cudaGetErrorString(error));
    return Status::ok();
  }

 private:
  // Every block resident at once, checked against the kernel's real occupancy first (queried once
  // per configuration and handle): the plan assumed at most 64 registers per thread, which launch
  // bounds of 1024 threads guarantee.
  template <class... Params, class... Args>
  Status launch_cooperative(const LaunchShape& shape, void (*kernel)(Params...), Args&&... args) {
    const int threads = static_cast<int>(shape.block.x * shape.block.y * shape.block.z);
    const void* const id = reinterpret_cast<const void*>(kernel);
    int per_sm = occupancy_.find(id, threads, shape.dynamic_shared_bytes);
    if (per_sm < 0) {
      const cudaError_t error =
          cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, shape.dynamic_shared_bytes);
      if (error != cudaSuccess) {
        return Status::execution_failed(shape.label.text() + ": occupancy query failed: " + cudaGetErrorString(error));
      }
      occupancy_.add(id, threads, shape.dynamic_shared_bytes, per_sm);
    }
    const long long blocks = 1LL * shape.grid.x * shape.grid.y * shape.grid.z;
    if (blocks > 1LL * per_sm * device_.sm_count) {
      return Status::internal(shape.label.text() + ": cooperative grid of " + std::to_string(blocks) +
                              " blocks exceeds the " + std::to_string(per_sm * device_.sm_count) +
                              " that stay resident");
    }
    std::tuple<std::decay_t<Params>...> values(std::forward<Args>(args)...);
    void* pointers[sizeof...(Params)];
    std::apply(
        [&](auto&... value) {
          std::size_t i = 0;
          ((pointers[i++] = static_cast<void*>(&value)), ...);
        },
        values);
    const cudaError_t error = cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), shape.grid,
                                                          shape.block, pointers, shape.dynamic_shared_bytes, stream_);
    if (error != cudaSuccess) {
      cudaGetLastError();
      return Status::execution_failed(shape.label.text() + ": cooperative launch failed: " + cudaGetErrorString(error));
    }
    return Status::ok();
  }

  cudaStream_t stream_;
  const DeviceInfo& device_;
  CooperativeOccupancy& occupancy_;
};

}  // namespace cunorm
