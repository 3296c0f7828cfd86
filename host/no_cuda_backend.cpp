// The CUDA backend of a build configured with CUNORM_CUDA_BACKEND=OFF (sanitizer and coverage
// builds, which instrument the host compiler's code only): never usable.
#include "backend.hpp"

namespace cunorm {

bool cuda_backend_usable() { return false; }

Status create_cuda_backend(std::unique_ptr<Backend>*) {
  return Status::not_supported("this build of cunorm has no CUDA backend (configured with CUNORM_CUDA_BACKEND=OFF)");
}

}  // namespace cunorm
