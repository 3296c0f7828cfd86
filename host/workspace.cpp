// The handle's workspace (see workspace.hpp).
#include "workspace.hpp"

#include <string>

#include "backend.hpp"

namespace cunorm {

void Workspace::use_user_buffer(void* workspace, std::size_t bytes) {
  user_ = workspace;
  user_bytes_ = bytes;
  user_set_ = workspace != nullptr;
}

Status Workspace::acquire(Backend& backend, std::size_t bytes, void** pointer) {
  if (user_set_) {
    if (bytes > user_bytes_) {
      return Status(CUNORM_STATUS_WORKSPACE_TOO_SMALL, "the workspace set with cunormSetWorkspace has " +
                                                           std::to_string(user_bytes_) + " bytes, this call needs " +
                                                           std::to_string(bytes));
    }
    *pointer = user_;
    return Status::ok();
  }
  if (bytes > owned_bytes_) {
    // The old buffer may still be read by queued work: synchronize before giving it back.
    CUNORM_RETURN_IF_ERROR(backend.synchronize());
    CUNORM_RETURN_IF_ERROR(backend.release(owned_));
    owned_ = nullptr;
    owned_bytes_ = 0;
    CUNORM_RETURN_IF_ERROR(backend.allocate(&owned_, bytes));
    owned_bytes_ = bytes;
  }
  *pointer = owned_;
  return Status::ok();
}

Status Workspace::release(Backend& backend) {
  const Status status = backend.release(owned_);
  owned_ = nullptr;
  owned_bytes_ = 0;
  return status;
}

}  // namespace cunorm
