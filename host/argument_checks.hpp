// Argument validation shared by every entry point. Each check returns INVALID_VALUE with one
// sentence naming the argument and its value; an entry point runs them left to right and
// returns the first failure, before anything is launched or written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "status.hpp"

namespace cunorm {

Status check_non_negative(const char* name, int64_t value);
Status check_positive(const char* name, int64_t value);
Status check_dtype(const char* name, cunormDataType_t dtype);
Status check_param_dtype(cunormDataType_t param_dtype, cunormDataType_t dtype);
Status check_layout(cunormLayout_t layout);
Status check_eps(float eps);
// Non-NULL (unless nullable) and aligned to the element it points to.
Status check_pointer(const char* name, const void* pointer, bool nullable, std::size_t element_bytes);
// The product of the sizes times element_bytes fits in int64_t; `what` names the product.
Status check_extent(const char* what, const std::vector<int64_t>& sizes, std::size_t element_bytes);

// The buffers of one call, registered left to right: outputs must not overlap any buffer seen
// before them, except that an output may be exactly the input named by may_alias (y == x,
// dx == dy).
class BufferOverlapCheck {
 public:
  void add_input(const char* name, const void* pointer, std::size_t bytes);
  Status add_output(const char* name, void* pointer, std::size_t bytes, const char* may_alias = nullptr);

 private:
  struct Buffer {
    const char* name;
    const char* begin;
    const char* end;
  };
  std::vector<Buffer> buffers_;
};

}  // namespace cunorm
