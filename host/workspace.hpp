// A handle's temporary memory: the user's buffer after cunormSetWorkspace, else one the handle
// allocates on first need, grows when a call needs more, and reuses.
#pragma once

#include <cstddef>

#include "status.hpp"

namespace cunorm {

class Backend;

class Workspace {
 public:
  // workspace == NULL with bytes == 0 returns to a handle-owned workspace.
  void use_user_buffer(void* workspace, std::size_t bytes);
  // At least `bytes` bytes, 256-byte aligned: WORKSPACE_TOO_SMALL if the user's buffer is
  // smaller, ALLOC_FAILED if growing the owned one fails.
  Status acquire(Backend& backend, std::size_t bytes, void** pointer);
  // Frees the owned buffer (at handle destruction).
  Status release(Backend& backend);

 private:
  void* user_ = nullptr;
  std::size_t user_bytes_ = 0;
  bool user_set_ = false;
  void* owned_ = nullptr;
  std::size_t owned_bytes_ = 0;
};

}  // namespace cunorm
