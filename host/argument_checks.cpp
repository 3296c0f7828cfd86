// Argument validation (see argument_checks.hpp).
#include "argument_checks.hpp"

#include <cmath>
#include <cstring>

#include "byte_count.hpp"
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

namespace {

// "rows = 0, cols = 9223372036854775807"
std::string size_values(std::initializer_list<NamedSize> sizes) {
  std::string text;
  for (const NamedSize& size : sizes) {
    if (!text.empty()) text += ", ";
    text += std::string(size.name) + " = " + std::to_string(size.value);
  }
  return text;
}

// Whether [a, a + a_bytes) and [b, b + b_bytes) share a byte, without computing either end (which
// may lie past the top of the address space for claimed sizes).
bool overlap(std::uintptr_t a, std::size_t a_bytes, std::uintptr_t b, std::size_t b_bytes) {
  return a >= b ? a - b < b_bytes : b - a < a_bytes;
}

}  // namespace

Status check_extent(const char* whose, std::initializer_list<NamedSize> sizes, std::size_t element_bytes,
                    std::size_t* bytes) {
  std::size_t product = element_bytes;
  std::string names;
  for (const NamedSize& size : sizes) {
    product = saturating_mul(product, static_cast<std::size_t>(size.value));  // validated >= 0
    names += std::string(names.empty() ? "" : " * ") + size.name;
  }
  if (!fits_in_63_bits(product)) {
    return Status::invalid(names + " is too large: " + whose + " bytes (" + names + " * " +
                           std::to_string(element_bytes) + ") do not fit in 63 bits, got " + size_values(sizes));
  }
  *bytes = product;
  return Status::ok();
}

Status check_workspace_extent(std::size_t bytes, const char* grows_with, std::initializer_list<NamedSize> sizes) {
  if (fits_in_63_bits(bytes)) return Status::ok();
  return Status::invalid(std::string(grows_with) + " is too large: the workspace's bytes do not fit in 63 bits, got " +
                         size_values(sizes));
}

void CallArguments::add(const char* name, const void* pointer, std::size_t element_bytes, std::size_t bytes, Null null,
                        bool output, const char* may_alias) {
  if (!status_.is_ok()) return;
  const bool nullable = null == Null::kAllowed || (null == Null::kWhenEmpty && empty_batch_);
  status_ = check_pointer(name, pointer, nullable, element_bytes);
  if (!status_.is_ok() || pointer == nullptr || bytes == 0) return;
  if (buffer_count_ == kMaxBuffers) {
    status_ = Status::internal(std::string("a call checks more than ") + std::to_string(kMaxBuffers) +
                               " buffers (CallArguments::kMaxBuffers), the last " + name);
    return;
  }
  buffers_[buffer_count_++] = Buffer{name, reinterpret_cast<std::uintptr_t>(pointer), bytes, output, may_alias};
}

CallArguments& CallArguments::input(const char* name, const void* pointer, std::size_t element_bytes, std::size_t bytes,
                                    Null null) {
  add(name, pointer, element_bytes, bytes, null, false, nullptr);
  return *this;
}

CallArguments& CallArguments::output(const char* name, void* pointer, std::size_t element_bytes, std::size_t bytes,
                                     Null null, const char* may_alias) {
  add(name, pointer, element_bytes, bytes, null, true, may_alias);
  return *this;
}

Status CallArguments::result() const {
  if (!status_.is_ok()) return status_;
  for (std::size_t i = 0; i < buffer_count_; ++i) {
    const Buffer& buffer = buffers_[i];
    if (!buffer.output) continue;
    for (std::size_t j = 0; j < i; ++j) {
      const Buffer& other = buffers_[j];
      if (!overlap(buffer.begin, buffer.bytes, other.begin, other.bytes)) continue;
      const bool exact = other.begin == buffer.begin && other.bytes == buffer.bytes;
      if (buffer.may_alias != nullptr && exact && std::strcmp(other.name, buffer.may_alias) == 0) continue;
      std::string message = std::string(buffer.name) + " overlaps " + other.name;
      if (buffer.may_alias != nullptr) {
        message += std::string(" (only ") + buffer.name + " == " + buffer.may_alias + " is allowed)";
      }
      return Status::invalid(message);
    }
  }
  return Status::ok();
}

}  // namespace cunorm
