// Argument validation (see argument_checks.hpp).
#include "argument_checks.hpp"

#include <cmath>
#include <limits>

#include "dtype.hpp"

namespace cunorm {

Status check_non_negative(const char* name, int64_t value) {
  if (value >= 0) return Status::ok();
  return Status::invalid(std::string(name) + " must be >= 0, got " + std::to_string(value));
}

Status check_positive(const char* name, int64_t value) {
  if (value > 0) return Status::ok();
  return Status::invalid(std::string(name) + " must be > 0, got " + std::to_string(value));
}

Status check_dtype(const char* name, cunormDataType_t dtype) {
  if (is_valid_dtype(dtype)) return Status::ok();
  return Status::invalid(std::string(name) + " must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got " +
                         std::to_string(static_cast<int>(dtype)));
}

Status check_param_dtype(cunormDataType_t param_dtype, cunormDataType_t dtype) {
  CUNORM_RETURN_IF_ERROR(check_dtype("param_dtype", param_dtype));
  if (param_dtype == CUNORM_FLOAT32 || param_dtype == dtype) return Status::ok();
  return Status::invalid(std::string("param_dtype must be CUNORM_FLOAT32 or equal to dtype (") + dtype_name(dtype) +
                         "), got " + dtype_name(param_dtype));
}

Status check_layout(cunormLayout_t layout) {
  if (layout == CUNORM_LAYOUT_NCHW || layout == CUNORM_LAYOUT_NHWC) return Status::ok();
  return Status::invalid("layout must be CUNORM_LAYOUT_NCHW or CUNORM_LAYOUT_NHWC, got " +
                         std::to_string(static_cast<int>(layout)));
}

Status check_eps(float eps) {
  if (eps >= 0.0f) return Status::ok();  // false for NaN too
  return Status::invalid(std::string("eps must be >= 0 and not NaN, got ") +
                         (std::isnan(eps) ? std::string("NaN") : std::to_string(eps)));
}

Status check_pointer(const char* name, const void* pointer, bool nullable, std::size_t element_bytes) {
  if (pointer == nullptr) {
    if (nullable) return Status::ok();
    return Status::invalid(std::string(name) + " must not be NULL");
  }
  if (reinterpret_cast<std::uintptr_t>(pointer) % element_bytes != 0) {
    return Status::invalid(std::string(name) + " must be aligned to its " + std::to_string(element_bytes) +
                           "-byte elements");
  }
  return Status::ok();
}

Status check_extent(const char* what, const std::vector<int64_t>& sizes, std::size_t element_bytes) {
  const int64_t limit = std::numeric_limits<int64_t>::max() / static_cast<int64_t>(element_bytes);
  int64_t product = 1;
  for (int64_t size : sizes) {
    if (size != 0 && product > limit / size) {
      return Status::invalid(std::string(what) + " is too large: its bytes do not fit in 63 bits");
    }
    product *= size;
  }
  return Status::ok();
}

void BufferOverlapCheck::add_input(const char* name, const void* pointer, std::size_t bytes) {
  if (pointer == nullptr || bytes == 0) return;
  const char* begin = static_cast<const char*>(pointer);
  buffers_.push_back(Buffer{name, begin, begin + bytes});
}

Status BufferOverlapCheck::add_output(const char* name, void* pointer, std::size_t bytes, const char* may_alias) {
  if (pointer == nullptr || bytes == 0) return Status::ok();
  const char* begin = static_cast<const char*>(pointer);
  const char* end = begin + bytes;
  for (const Buffer& other : buffers_) {
    if (begin >= other.end || other.begin >= end) continue;
    const bool exact = other.begin == begin && other.end == end;
    if (may_alias != nullptr && exact && std::string(other.name) == may_alias) continue;
    std::string message = std::string(name) + " overlaps " + other.name;
    if (may_alias != nullptr) message += std::string(" (only ") + name + " == " + may_alias + " is allowed)";
    return Status::invalid(message);
  }
  buffers_.push_back(Buffer{name, begin, end});
  return Status::ok();
}

}  // namespace cunorm
