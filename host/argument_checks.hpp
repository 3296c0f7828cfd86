// Argument validation shared by every entry point. Each check returns INVALID_VALUE with one
// sentence naming the argument and its value; an entry point runs them left to right (its buffers
// stated once each in a CallArguments) and returns the first failure, before anything is launched
// or written.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

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

// Whether a buffer argument may be NULL: never, always, or only in a call on an empty batch (which
// reads and writes no activation).
enum class Null { kRejected, kAllowed, kWhenEmpty };

// The buffer arguments of one call and the scalar checks between them, each stated once, in the
// argument order of the contract: a buffer's role (input or output), element size, extent in
// bytes, nullability, and for an output the one input it may be exactly (y == x, dx == dy). As
// they are stated, each buffer's NULL and alignment checks and each scalar check run, up to the
// first failure; result() returns that failure, or else checks overlaps in the same order: an
// output must not overlap any buffer stated before it, except its may_alias input exactly.
// Addresses are compared as integers, without forming a pointer past a buffer: the extents are
// the caller's claims (up to 2^63 - 1 bytes each), not objects this process holds.
class CallArguments {
 public:
  explicit CallArguments(bool empty_batch) : empty_batch_(empty_batch) {}
  CallArguments& input(const char* name, const void* pointer, std::size_t element_bytes, std::size_t bytes, Null null);
  CallArguments& output(const char* name, void* pointer, std::size_t element_bytes, std::size_t bytes, Null null,
                        const char* may_alias = nullptr);
  // A check of a scalar argument (or of several arguments together) at its place in the order.
  template <class Check>
  CallArguments& then(Check check) {
    if (status_.is_ok()) status_ = check();
    return *this;
  }
  Status result() const;

 private:
  struct Buffer {
    const char* name;
    std::uintptr_t begin;
    std::size_t bytes;
    bool output;
    const char* may_alias;
  };
  void add(const char* name, const void* pointer, std::size_t element_bytes, std::size_t bytes, Null null, bool output,
           const char* may_alias);

  // More than any call passes (today at most 8), held in place: a call's checks allocate nothing.
  static constexpr std::size_t kMaxBuffers = 16;
  bool empty_batch_;
  Status status_;
  std::array<Buffer, kMaxBuffers> buffers_{};
  std::size_t buffer_count_ = 0;
};

}  // namespace cunorm
