// The library's internal result type: a cunormStatus_t and, when it is not SUCCESS, the
// one-sentence message that cunormGetLastErrorMessage() returns.
#pragma once

#include <string>
#include <utility>

#include "cunorm/cunorm.h"

namespace cunorm {

class Status {
 public:
  Status() = default;
  Status(cunormStatus_t code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return Status(); }
  static Status invalid(std::string message) { return Status(CUNORM_STATUS_INVALID_VALUE, std::move(message)); }
  static Status not_supported(std::string message) { return Status(CUNORM_STATUS_NOT_SUPPORTED, std::move(message)); }
  static Status internal(std::string message) { return Status(CUNORM_STATUS_INTERNAL_ERROR, std::move(message)); }
  static Status execution_failed(std::string message) {
    return Status(CUNORM_STATUS_EXECUTION_FAILED, std::move(message));
  }

  bool is_ok() const { return code_ == CUNORM_STATUS_SUCCESS; }
  cunormStatus_t code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  cunormStatus_t code_ = CUNORM_STATUS_SUCCESS;
  std::string message_;
};

}  // namespace cunorm

// Returns from the enclosing function when the status is not OK.
#define CUNORM_RETURN_IF_ERROR(expression)              \
  do {                                                  \
    ::cunorm::Status cunorm_status_ = (expression);     \
    if (!cunorm_status_.is_ok()) return cunorm_status_; \
  } while (false)
