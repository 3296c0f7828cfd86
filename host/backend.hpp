// A backend runs the library's kernels on one kind of device: CudaBackend on a GPU, SimtBackend
// on the CPU SIMT engine. The host code above it (validation, planning, workspace) is shared;
// a backend only moves memory and launches what the plan says.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "batch_norm.hpp"
#include "cunorm/cunorm.h"
#include "device_info.hpp"
#include "row_norm.hpp"
#include "status.hpp"

namespace cunorm {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual cunormBackend_t kind() const = 0;
  virtual const DeviceInfo& device() const = 0;
  virtual Status set_stream(cudaStream_t stream) = 0;
  // 256-byte aligned; bytes == 0 gives NULL.
  virtual Status allocate(void** pointer, std::size_t bytes) = 0;
  virtual Status release(void* pointer) = 0;
  // Ordered after the work queued on the backend's stream; complete on return.
  virtual Status copy_to_device(void* device_destination, const void* host_source, std::size_t bytes) = 0;
  virtual Status copy_to_host(void* host_destination, const void* device_source, std::size_t bytes) = 0;
  virtual Status synchronize() = 0;

  // `workspace` holds at least plan.workspace_bytes.
  virtual Status row_norm_forward(const RowNormForwardCall& call, const RowNormPlan& plan, void* workspace) = 0;
  virtual Status row_norm_backward(const RowNormBackwardCall& call, const RowNormPlan& plan, void* workspace) = 0;
  virtual Status batch_norm(const BatchNormCall& call, const BatchNormPlan& plan, void* workspace) = 0;
};

// NO_DEVICE (with the CUDA runtime's reason) when no usable GPU exists; NOT_SUPPORTED when the
// library was built without its CUDA backend.
Status create_cuda_backend(std::unique_ptr<Backend>* backend);
// INVALID_VALUE when a CUNORM_SIMT_* environment variable is malformed.
Status create_simt_backend(std::unique_ptr<Backend>* backend);
// Whether create_cuda_backend would succeed.
bool cuda_backend_usable();

}  // namespace cunorm
