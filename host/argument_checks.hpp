// Argument validation shared by every entry point. Each check returns INVALID_VALUE with one
// sentence naming the argument and its value; an entry point runs them left to right and
// returns the first failure, before anything is launched or written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
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
// A size argument and its value, for messages.
struct NamedSize {
  const char* name;
  int64_t value;
};
// The bytes of a buffer of (product of the non-negative sizes) elements of element_bytes each, into
// *bytes; INVALID_VALUE naming the sizes and their values when they do not fit in 63 bits. `whose`
// names the buffer in the possessive ("the tensor's"). A zero size makes the product 0 whatever
// the others are (an empty batch).
Status check_extent(const char* whose, std::initializer_list<NamedSize> sizes, std::size_t element_bytes,
                    std::size_t* bytes);
// A plan's workspace bytes (saturated, byte_count.hpp): INVALID_VALUE when they do not fit in 63
// bits, naming `grows_with`, the size the workspace grows with, and the values of all the sizes.
Status check_workspace_extent(std::size_t bytes, const char* grows_with, std::initializer_list<NamedSize> sizes);

// The buffers of one call, registered left to right: outputs must not overlap any buffer seen
// before them, except that an output may be exactly the input named by may_alias (y == x,
// dx == dy). Addresses are compared as integers, without forming a pointer past a buffer: the
// sizes are the caller's claims (up to 2^63 - 1 bytes each), not objects this process holds.
class BufferOverlapCheck {
 public:
  void add_input(const char* name, const void* pointer, std::size_t bytes);
  Status add_output(const char* name, void* pointer, std::size_t bytes, const char* may_alias = nullptr);

 private:
  struct Buffer {
    const char* name;
    std::uintptr_t begin;
    std::size_t bytes;
  };
  std::vector<Buffer> buffers_;
};

}  // namespace cunorm
