// A backend runs the library's kernels on one kind of device: CudaBackend on a GPU, SimtBackend
// on the CPU SIMT engine. The host code above it (validation, planning, workspace) is shared;
// a backend only moves memory and launches what the plan says, with a launcher of its own
// (SimtLauncher, CudaLauncher) and one dispatch over the registered ops for both.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <utility>

#include "cunorm/cunorm.h"
#include "device_info.hpp"
#include "op_registry.hpp"
#include "status.hpp"

namespace cunorm {

// The registered ops (ops/registry.json) by name, and each op's plan type by its call type.
enum class OpId {
#define CUNORM_OP_ID(name, CallType, PlanType) name,
  CUNORM_FOR_EACH_OP(CUNORM_OP_ID)
#undef CUNORM_OP_ID
};
template <class Call>
struct OpOf;
#define CUNORM_OP_OF(name, CallType, PlanType) \
  template <>                                  \
  struct OpOf<CallType> {                      \
    static constexpr OpId id = OpId::name;     \
    using Plan = PlanType;                     \
  };
CUNORM_FOR_EACH_OP(CUNORM_OP_OF)
#undef CUNORM_OP_OF

// One launch with its types erased, for the backend's virtual launch_op.
struct OpLaunch {
  OpId op;
  const void* call;
  const void* plan;
  void* workspace;
};

class Backend {
 public:
  Backend(cunormBackend_t kind, DeviceInfo device) : kind_(kind), device_(std::move(device)) {}
  virtual ~Backend() = default;
  cunormBackend_t kind() const { return kind_; }
  const DeviceInfo& device() const { return device_; }
  virtual Status set_stream(cudaStream_t stream) = 0;
  // 256-byte aligned; bytes == 0 gives NULL.
  virtual Status allocate(void** pointer, std::size_t bytes) = 0;
  virtual Status release(void* pointer) = 0;
  // Ordered after the work queued on the backend's stream; complete on return.
  virtual Status copy_to_device(void* device_destination, const void* host_source, std::size_t bytes) = 0;
  virtual Status copy_to_host(void* host_destination, const void* device_source, std::size_t bytes) = 0;
  virtual Status synchronize() = 0;

  // Launches a validated, planned call of a registered op; `workspace` holds at least
  // plan.workspace_bytes.
  template <class Call>
  Status launch(const Call& call, const typename OpOf<Call>::Plan& plan, void* workspace) {
    return launch_op(OpLaunch{OpOf<Call>::id, &call, &plan, workspace});
  }

 protected:
  // Runs the op with this backend's launcher, through launch_registered_op (launch/registered_ops.hpp).
  virtual Status launch_op(const OpLaunch& op) = 0;

 private:
  cunormBackend_t kind_;
  DeviceInfo device_;
};

// NO_DEVICE (with the CUDA runtime's reason) when no usable GPU exists; NOT_SUPPORTED when the
// library was built without its CUDA backend.
Status create_cuda_backend(std::unique_ptr<Backend>* backend);
// INVALID_VALUE when a CUNORM_SIMT_* environment variable is malformed.
Status create_simt_backend(std::unique_ptr<Backend>* backend);
// Whether create_cuda_backend would succeed.
bool cuda_backend_usable();

}  // namespace cunorm
