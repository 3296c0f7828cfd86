// The CUDA backend (see cuda_backend.hpp). Every runtime call is checked; a failure becomes
// EXECUTION_FAILED (or ALLOC_FAILED / INVALID_VALUE where the runtime says so) with the
// runtime's own description.
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "../registered_ops.hpp"
#include "cuda_backend.hpp"
#include "cuda_launcher.cuh"

namespace cunorm {
namespace {

Status runtime_failure(const char* call, cudaError_t error) {
  return Status::execution_failed(std::string(call) + " failed: " + cudaGetErrorString(error));
}

std::string cuda_version_text(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

// Why cudaGetDeviceCount found no device, in words that point at the fix. The runtime answers
// "driver version is insufficient" both when the driver is too old and when there is no driver
// at all (libcuda.so missing); the driver's version tells them apart (0: none installed).
std::string no_device_reason(cudaError_t error) {
  if (error == cudaSuccess) return "the NVIDIA driver reports no CUDA device";
  int driver = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess && driver == 0) {
    return "no NVIDIA driver found (libcuda.so missing)";
  }
  int runtime = 0;
  if (error == cudaErrorInsufficientDriver && cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
    return "the NVIDIA driver supports CUDA " + cuda_version_text(driver) + ", older than the CUDA " +
           cuda_version_text(runtime) + " runtime this library was built with (update the driver)";
  }
  if (error == cudaErrorNoDevice) return "the NVIDIA driver reports no CUDA device";
  return cudaGetErrorString(error);
}

// The current device (its ordinal in *device_id) if it is one the library was built for (sm_75
// or newer).
bool usable_device(DeviceInfo* info, int* device_id, std::string* why) {
  int count = 0;  // left unset by the runtime when no driver is present
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess || count == 0) {
    *why = "no usable CUDA device: " + no_device_reason(error);
    cudaGetLastError();  // do not leave the failure for the caller's next check
    return false;
  }
  cudaDeviceProp properties{};
  if (cudaGetDevice(device_id) != cudaSuccess || cudaGetDeviceProperties(&properties, *device_id) != cudaSuccess) {
    *why = "no usable CUDA device: cannot read the current device's properties";
    cudaGetLastError();
    return false;
  }
  int cooperative = 0;
  if (cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, *device_id) != cudaSuccess || !cooperative) {
    *why = std::string("no usable CUDA device: ") + properties.name + " does not support cooperative launches";
    cudaGetLastError();
    return false;
  }
  if (properties.major * 10 + properties.minor < 75) {
    *why = std::string("no usable CUDA device: ") + properties.name + " is sm_" + std::to_string(properties.major) +
           std::to_string(properties.minor) + ", the library needs sm_75 or newer";
    return false;
  }
  info->name = properties.name;
  info->cc_major = properties.major;
  info->cc_minor = properties.minor;
  info->sm_count = properties.multiProcessorCount;
  info->max_threads_per_sm = properties.maxThreadsPerMultiProcessor;
  info->max_blocks_per_sm = properties.maxBlocksPerMultiProcessor;
  info->registers_per_sm = properties.regsPerMultiprocessor;
  info->shared_per_block = properties.sharedMemPerBlock;
  info->shared_per_block_optin = properties.sharedMemPerBlockOptin;
  info->shared_per_sm = properties.sharedMemPerMultiprocessor;
  return true;
}

// Makes a device current for one call of the backend and gives the caller's current device back
// afterwards, so that a handle runs on the device it was created for whatever device the calling
// thread has made current since.
class CurrentDevice {
 public:
  Status enter(int device) {
    cudaError_t error = cudaGetDevice(&previous_);
    if (error != cudaSuccess) return runtime_failure("cudaGetDevice", error);
    if (previous_ == device) return Status::ok();
    error = cudaSetDevice(device);
    if (error != cudaSuccess) return runtime_failure("cudaSetDevice", error);
    switched_ = true;
    return Status::ok();
  }
  // A failure to switch back cannot be reported from here; the runtime keeps it for the caller's
  // next cudaGetLastError.
  ~CurrentDevice() {
    if (switched_) cudaSetDevice(previous_);
  }

 private:
  int previous_ = 0;
  bool switched_ = false;
};

}  // namespace

CudaBackend::CudaBackend(const DeviceInfo& device, int device_id)
    : Backend(CUNORM_BACKEND_CUDA, device), device_id_(device_id) {}

Status CudaBackend::set_stream(cudaStream_t stream) {
  stream_ = stream;
  return Status::ok();
}

Status CudaBackend::allocate(void** pointer, std::size_t bytes) {
  *pointer = nullptr;
  if (bytes == 0) return Status::ok();
  CurrentDevice current;
  CUNORM_RETURN_IF_ERROR(current.enter(device_id_));
  const cudaError_t error = cudaMalloc(pointer, bytes);
  if (error != cudaSuccess) {
    *pointer = nullptr;
    return Status(CUNORM_STATUS_ALLOC_FAILED,
                  "cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(error));
  }
  return Status::ok();
}

Status CudaBackend::release(void* pointer) {
  if (pointer == nullptr) return Status::ok();
  CurrentDevice current;
  CUNORM_RETURN_IF_ERROR(current.enter(device_id_));
  const cudaError_t error = cudaFree(pointer);
  if (error == cudaErrorInvalidValue || error == cudaErrorInvalidDevicePointer) {
    cudaGetLastError();
    return Status::invalid(std::string("ptr is not memory from cunormMalloc: ") + cudaGetErrorString(error));
  }
  if (error != cudaSuccess) return runtime_failure("cudaFree", error);
  return Status::ok();
}

Status CudaBackend::copy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return Status::ok();
  CurrentDevice current;
  CUNORM_RETURN_IF_ERROR(current.enter(device_id_));
  cudaError_t error = cudaMemcpyAsync(destination, source, bytes, kind, stream_);
  if (error != cudaSuccess) return runtime_failure("cudaMemcpyAsync", error);
  error = cudaStreamSynchronize(stream_);
  if (error != cudaSuccess) return runtime_failure("cudaStreamSynchronize", error);
  return Status::ok();
}

Status CudaBackend::copy_to_device(void* device_destination, const void* host_source, std::size_t bytes) {
  return copy(device_destination, host_source, bytes, cudaMemcpyHostToDevice);
}

Status CudaBackend::copy_to_host(void* host_destination, const void* device_source, std::size_t bytes) {
  return copy(host_destination, device_source, bytes, cudaMemcpyDeviceToHost);
}

Status CudaBackend::synchronize() {
  CurrentDevice current;
  CUNORM_RETURN_IF_ERROR(current.enter(device_id_));
  const cudaError_t error = cudaStreamSynchronize(stream_);
  if (error != cudaSuccess) return runtime_failure("cudaStreamSynchronize", error);
  return Status::ok();
}

Status CudaBackend::launch_op(const OpLaunch& op) {
  CurrentDevice current;
  CUNORM_RETURN_IF_ERROR(current.enter(device_id_));
  CudaLauncher launcher(stream_, device(), occupancy_);
  return launch_registered_op(launcher, op);
}

bool cuda_backend_usable() {
  DeviceInfo info;
  int device_id = 0;
  std::string why;
  return usable_device(&info, &device_id, &why);
}

Status create_cuda_backend(std::unique_ptr<Backend>* backend) {
  DeviceInfo info;
  int device_id = 0;
  std::string why;
  if (!usable_device(&info, &device_id, &why)) return Status(CUNORM_STATUS_NO_DEVICE, why);
  *backend = std::make_unique<CudaBackend>(info, device_id);
  return Status::ok();
}

}  // namespace cunorm
