// Handle registry and last-error messages (see context.hpp).
#include "context.hpp"

#include <unordered_set>

namespace cunorm {
namespace {

std::mutex registry_mutex;
std::unordered_set<cunormContext*>& live_handles() {
  static auto* handles = new std::unordered_set<cunormContext*>();  // lives until exit
  return *handles;
}

}  // namespace

std::string& thread_message() {
  thread_local std::string message;
  return message;
}

void register_handle(cunormContext* context) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  live_handles().insert(context);
}

void unregister_handle(cunormContext* context) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  live_handles().erase(context);
}

bool is_live_handle(cunormContext* context) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return live_handles().count(context) != 0;
}

void set_handle_message(cunormContext* context, const std::string& message) {
  std::lock_guard<std::mutex> lock(context->messages_mutex);
  context->messages[std::this_thread::get_id()] = message;
}

const char* handle_message(cunormContext* context) {
  std::lock_guard<std::mutex> lock(context->messages_mutex);
  return context->messages[std::this_thread::get_id()].c_str();
}

cunormStatus_t fail_without_handle(const Status& status) {
  thread_message() = status.message();
  return status.code();
}

}  // namespace cunorm
