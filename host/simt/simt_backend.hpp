// The backend that runs the kernels on the CPU SIMT engine. Memory is host memory; copies are
// memcpy; every call completes before it returns.
#pragma once

#include <mutex>
#include <unordered_set>

#include "../backend.hpp"
#include "simt/target.hpp"

namespace cunorm {

class SimtBackend final : public Backend {
 public:
  explicit SimtBackend(const simt::Target& target);
  ~SimtBackend() override;
  Status set_stream(cudaStream_t stream) override;
  Status allocate(void** pointer, std::size_t bytes) override;
  Status release(void* pointer) override;
  Status copy_to_device(void* device_destination, const void* host_source, std::size_t bytes) override;
  Status copy_to_host(void* host_destination, const void* device_source, std::size_t bytes) override;
  Status synchronize() override;

 private:
  Status launch_op(const OpLaunch& op) override;
  const simt::Target& target_;
  std::mutex allocations_mutex_;
  std::unordered_set<void*> allocations_;  // so that freeing a foreign pointer is an error, not a crash
};

}  // namespace cunorm
