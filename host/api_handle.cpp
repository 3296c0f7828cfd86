// The C API's handle, memory, workspace and error functions.
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "argument_checks.hpp"
#include "context.hpp"
#include "cunorm/cunorm.h"

using cunorm::Status;

namespace {

Status choose_backend(cunormBackend_t requested, std::unique_ptr<cunorm::Backend>* backend) {
  switch (requested) {
    case CUNORM_BACKEND_CUDA: return cunorm::create_cuda_backend(backend);
    case CUNORM_BACKEND_SIMT: return cunorm::create_simt_backend(backend);
    case CUNORM_BACKEND_AUTO: break;
    default:
      return Status::invalid("backend must be CUNORM_BACKEND_AUTO, CUNORM_BACKEND_CUDA or CUNORM_BACKEND_SIMT, got " +
                             std::to_string(static_cast<int>(requested)));
  }
  if (const char* env = std::getenv("CUNORM_BACKEND")) {
    const std::string value = env;
    if (value == "cuda") return cunorm::create_cuda_backend(backend);
    if (value == "simt") return cunorm::create_simt_backend(backend);
    return Status::invalid("CUNORM_BACKEND must be \"cuda\" or \"simt\", got \"" + value + "\"");
  }
  return cunorm::cuda_backend_usable() ? cunorm::create_cuda_backend(backend) : cunorm::create_simt_backend(backend);
}

}  // namespace

extern "C" {

cunormStatus_t cunormCreate(cunormHandle_t* handle, cunormBackend_t backend) {
  // Aligned, as every output argument must be: the store to a misaligned one would be undefined
  // behaviour (the API fuzzer found it, tests/fuzz/).
  const Status usable = cunorm::check_pointer("handle", handle, false, alignof(cunormHandle_t));
  if (!usable.is_ok()) return cunorm::fail_without_handle(usable);
  try {
    std::unique_ptr<cunorm::Backend> chosen;
    const Status status = choose_backend(backend, &chosen);
    if (!status.is_ok()) return cunorm::fail_without_handle(status);
    auto context = std::make_unique<cunormContext>();
    context->backend = std::move(chosen);
    cunorm::register_handle(context.get());  // may throw: the context is still owned here
    *handle = context.release();
    cunorm::thread_message().clear();
    return CUNORM_STATUS_SUCCESS;
  } catch (const std::bad_alloc&) {
    return cunorm::fail_without_handle(Status(CUNORM_STATUS_ALLOC_FAILED, "out of host memory"));
  }
}

cunormStatus_t cunormDestroy(cunormHandle_t handle) {
  if (handle == nullptr) return cunorm::fail_without_handle(Status::invalid("handle must not be NULL"));
  if (!cunorm::is_live_handle(handle)) {
    return cunorm::fail_without_handle(
        Status::invalid("handle is not a live cunorm handle (destroyed or never created)"));
  }
  cunorm::unregister_handle(handle);
  Status status = handle->backend->synchronize();
  const Status released = handle->workspace.release(*handle->backend);
  if (status.is_ok()) status = released;
  delete handle;
  return cunorm::fail_without_handle(status);
}

cunormStatus_t cunormGetBackend(cunormHandle_t handle, cunormBackend_t* backend) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("backend", backend, false, alignof(cunormBackend_t)));
    *backend = context.backend->kind();
    return Status::ok();
  });
}

cunormStatus_t cunormSetStream(cunormHandle_t handle, cudaStream_t stream) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) { return context.backend->set_stream(stream); });
}

cunormStatus_t cunormSetWorkspace(cunormHandle_t handle, void* workspace, size_t bytes) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    if (workspace == nullptr && bytes != 0) {
      return Status::invalid("workspace must not be NULL when bytes > 0, got bytes = " + std::to_string(bytes));
    }
    if (reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0) {
      return Status::invalid("workspace must be 256-byte aligned (as cunormMalloc returns)");
    }
    context.workspace.use_user_buffer(workspace, bytes);
    return Status::ok();
  });
}

cunormStatus_t cunormMalloc(cunormHandle_t handle, void** ptr, size_t bytes) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("ptr", ptr, false, alignof(void*)));
    return context.backend->allocate(ptr, bytes);
  });
}

cunormStatus_t cunormFree(cunormHandle_t handle, void* ptr) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) { return context.backend->release(ptr); });
}

cunormStatus_t cunormMemcpyToDevice(cunormHandle_t handle, void* dst, const void* host_src, size_t bytes) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("dst", dst, bytes == 0, 1));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("host_src", host_src, bytes == 0, 1));
    return context.backend->copy_to_device(dst, host_src, bytes);
  });
}

cunormStatus_t cunormMemcpyToHost(cunormHandle_t handle, void* host_dst, const void* src, size_t bytes) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) {
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("host_dst", host_dst, bytes == 0, 1));
    CUNORM_RETURN_IF_ERROR(cunorm::check_pointer("src", src, bytes == 0, 1));
    return context.backend->copy_to_host(host_dst, src, bytes);
  });
}

cunormStatus_t cunormSynchronize(cunormHandle_t handle) {
  return cunorm::run_with_handle(handle, [&](cunormContext& context) { return context.backend->synchronize(); });
}

int cunormGetVersion(void) { return CUNORM_VERSION; }

const char* cunormGetStatusString(cunormStatus_t status) {
  // A C caller may pass any int. In C++ only 0 ... 7 are values of cunormStatus_t (a return type,
  // it has no range enumerators, docs/api.md), and loading another one as the enum is undefined
  // behaviour (UBSan under clang; found by the API fuzzer): read the integer it was passed as.
  std::underlying_type_t<cunormStatus_t> code;
  std::memcpy(&code, &status, sizeof(code));
  switch (code) {
    case CUNORM_STATUS_SUCCESS: return "CUNORM_STATUS_SUCCESS";
    case CUNORM_STATUS_INVALID_VALUE: return "CUNORM_STATUS_INVALID_VALUE";
    case CUNORM_STATUS_NOT_SUPPORTED: return "CUNORM_STATUS_NOT_SUPPORTED";
    case CUNORM_STATUS_WORKSPACE_TOO_SMALL: return "CUNORM_STATUS_WORKSPACE_TOO_SMALL";
    case CUNORM_STATUS_ALLOC_FAILED: return "CUNORM_STATUS_ALLOC_FAILED";
    case CUNORM_STATUS_NO_DEVICE: return "CUNORM_STATUS_NO_DEVICE";
    case CUNORM_STATUS_EXECUTION_FAILED: return "CUNORM_STATUS_EXECUTION_FAILED";
    case CUNORM_STATUS_INTERNAL_ERROR: return "CUNORM_STATUS_INTERNAL_ERROR";
  }
  return "unknown cunormStatus_t";
}

const char* cunormGetLastErrorMessage(cunormHandle_t handle) {
  if (handle == nullptr) return cunorm::thread_message().c_str();
  if (!cunorm::is_live_handle(handle)) return "handle is not a live cunorm handle (destroyed or never created)";
  return cunorm::handle_message(handle);
}

}  // extern "C"
