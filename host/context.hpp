// What a cunormHandle_t points to: the backend, the workspace and the last error messages, and
// the wrapper through which every C entry point runs (handle check, exceptions caught, the
// message recorded for cunormGetLastErrorMessage).
#pragma once

#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>

#include "backend.hpp"
#include "calibration.hpp"
#include "status.hpp"
#include "workspace.hpp"

struct cunormContext {
  std::unique_ptr<cunorm::Backend> backend;
  cunorm::Workspace workspace;
  // The calibrations created on this handle, freed with it if not destroyed before.
  std::unordered_map<cunormBatchNormCalibration*, std::unique_ptr<cunormBatchNormCalibration>> calibrations;
  std::mutex messages_mutex;
  // One message per host thread, so that threads sharing a handle read their own failures.
  std::unordered_map<std::thread::id, std::string> messages;
};

namespace cunorm {

// The message slot of calls made without a usable handle, per host thread.
std::string& thread_message();

// Handles are registered while alive, so that a destroyed or forged handle is INVALID_VALUE
// rather than a crash.
void register_handle(cunormContext* context);
void unregister_handle(cunormContext* context);
bool is_live_handle(cunormContext* context);

void set_handle_message(cunormContext* context, const std::string& message);
const char* handle_message(cunormContext* context);

cunormStatus_t fail_without_handle(const Status& status);

// Runs body(context) -> Status for an entry point taking `handle`: the handle is checked
// first, no exception escapes, and the outcome becomes the handle's last error message.
template <class Body>
cunormStatus_t run_with_handle(cunormHandle_t handle, Body&& body) {
  if (handle == nullptr) return fail_without_handle(Status::invalid("handle must not be NULL"));
  if (!is_live_handle(handle)) {
    return fail_without_handle(Status::invalid("handle is not a live cunorm handle (destroyed or never created)"));
  }
  Status status;
  try {
    status = body(*handle);
  } catch (const std::bad_alloc&) {
    status = Status(CUNORM_STATUS_ALLOC_FAILED, "out of host memory");
  } catch (const std::exception& e) {
    status = Status::internal(std::string("unexpected exception: ") + e.what());
  }
  set_handle_message(handle, status.message());
  return status.code();
}

}  // namespace cunorm
