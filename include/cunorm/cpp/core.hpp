// What every C++ module of cunorm.hpp builds on: Error and check (a C status as an exception),
// Handle and DeviceBuffer (RAII owners of a cunormHandle_t and of memory on its backend), finfo_eps,
// and the detail helpers the modules share (sizes of shapes and dtypes, parameter buffers filled
// from the host, the record of a forward that a backward needs). Include cunorm/cunorm.hpp; this
// part is separate so that each module's header stays small.

#ifndef CUNORM_CPP_CORE_HPP
#define CUNORM_CPP_CORE_HPP

#include <cunorm/cunorm.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace cunorm {

// A failed C API call: status() is its status, what() is "<status name>: <message>".
class Error : public std::runtime_error {
 public:
  Error(cunormStatus_t status, const std::string& message)
      : std::runtime_error(std::string(cunormGetStatusString(status)) + ": " + message),
        status_(status),
        message_(message) {}

  cunormStatus_t status() const noexcept { return status_; }
  // The message without the status name, as cunormGetLastErrorMessage gave it.
  const std::string& message() const noexcept { return message_; }

 private:
  cunormStatus_t status_;
  std::string message_;
};

// Throws Error for any status but SUCCESS. The message is copied at once because the next
// call on the same handle (or, for nullptr, on this thread) replaces it.
inline void check(cunormStatus_t status, cunormHandle_t handle) {
  if (status != CUNORM_STATUS_SUCCESS) throw Error(status, cunormGetLastErrorMessage(handle));
}

namespace detail {

[[noreturn]] inline void throw_invalid(const std::string& message) {
  throw Error(CUNORM_STATUS_INVALID_VALUE, message);
}

// Bytes of one element; `name` is the argument reported when the value is not a dtype.
inline std::size_t element_size(cunormDataType_t dtype, const char* name) {
  switch (dtype) {
    case CUNORM_FLOAT32: return 4;
    case CUNORM_FLOAT16:
    case CUNORM_BFLOAT16: return 2;
    default:
      throw_invalid(std::string(name) + " must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got " +
                    std::to_string(static_cast<int>(dtype)));
  }
}

// The product of normalized_shape, i.e. the C API's cols. Checked here rather than at the first
// forward so that a module that cannot run is never built, as the C API rejects cols <= 0.
inline int64_t normalized_size_of(const std::vector<int64_t>& normalized_shape) {
  if (normalized_shape.empty()) throw_invalid("normalized_shape must not be empty");
  int64_t size = 1;
  for (std::size_t i = 0; i < normalized_shape.size(); ++i) {
    const int64_t dim = normalized_shape[i];
    if (dim <= 0) {
      throw_invalid("normalized_shape[" + std::to_string(i) + "] must be > 0, got " + std::to_string(dim));
    }
    if (size > INT64_MAX / dim) throw_invalid("the product of normalized_shape must fit in int64_t");
    size *= dim;
  }
  return size;
}

// Rows of a tensor of `numel` elements whose trailing dimensions hold `normalized_size` of them.
inline int64_t rows_of(int64_t numel, int64_t normalized_size) {
  if (numel < 0) throw_invalid("numel must be >= 0, got " + std::to_string(numel));
  if (numel % normalized_size != 0) {
    throw_invalid("numel must be a multiple of the product of normalized_shape (" + std::to_string(normalized_size) +
                  "), got " + std::to_string(numel));
  }
  return numel / normalized_size;
}

}  // namespace detail

// torch.finfo(dtype).eps: the gap between 1 and the next value of the activation type, which is
// the epsilon nn.RMSNorm uses when none is given.
inline double finfo_eps(cunormDataType_t dtype) {
  switch (dtype) {
    case CUNORM_FLOAT32: return 1.1920928955078125e-07;  // 2^-23
    case CUNORM_FLOAT16: return 0.0009765625;            // 2^-10
    case CUNORM_BFLOAT16: return 0.0078125;              // 2^-7
    default:
      detail::throw_invalid("dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got " +
                            std::to_string(static_cast<int>(dtype)));
  }
}

// Owner of one cunormHandle_t, destroyed with the object.
class Handle {
 public:
  explicit Handle(cunormBackend_t backend = CUNORM_BACKEND_AUTO) {
    check(cunormCreate(&handle_, backend), nullptr);  // no handle yet: the message is the thread's
  }
  ~Handle() {
    // A destructor must not throw, and a failed destroy (a lost device) leaves the caller nothing to do.
    if (handle_ != nullptr) cunormDestroy(handle_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      if (handle_ != nullptr) cunormDestroy(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }

  cunormHandle_t get() const noexcept { return handle_; }
  // The backend actually in use: CUDA or SIMT, never AUTO.
  cunormBackend_t backend() const {
    cunormBackend_t backend = CUNORM_BACKEND_AUTO;
    check(cunormGetBackend(handle_, &backend), handle_);
    return backend;
  }
  void set_stream(cudaStream_t stream) { check(cunormSetStream(handle_, stream), handle_); }
  // nullptr, 0 gives the handle back its own workspace. The buffer must outlive its use.
  void set_workspace(void* workspace, std::size_t bytes) {
    check(cunormSetWorkspace(handle_, workspace, bytes), handle_);
  }
  void synchronize() { check(cunormSynchronize(handle_), handle_); }

 private:
  cunormHandle_t handle_ = nullptr;
};

// Owner of `bytes` bytes of cunormMalloc memory (device memory on CUDA, host memory on SIMT),
// freed with the object. Default-constructed or moved-from: no memory, data() == nullptr.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Handle& handle, std::size_t bytes) : DeviceBuffer(handle.get(), bytes) {}
  // For memory on a handle that C code created.
  DeviceBuffer(cunormHandle_t handle, std::size_t bytes) : handle_(handle) {
    check(cunormMalloc(handle_, &data_, bytes), handle_);
    bytes_ = bytes;
  }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : handle_(other.handle_), data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      handle_ = other.handle_;
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }

  void* data() noexcept { return data_; }
  const void* data() const noexcept { return data_; }
  std::size_t bytes() const noexcept { return bytes_; }

  // Copies `bytes` bytes from the host to the start of the buffer, after the work queued on the
  // handle's stream; returns when the copy is complete.
  void upload(const void* host, std::size_t bytes) {
    check_fits(bytes);
    check(cunormMemcpyToDevice(handle_, data_, host, bytes), handle_);
  }
  void download(void* host, std::size_t bytes) const {
    check_fits(bytes);
    check(cunormMemcpyToHost(handle_, host, data_, bytes), handle_);
  }

  template <class T>
  void upload(const std::vector<T>& host) {
    static_assert(std::is_trivially_copyable_v<T>, "uploads copy bytes");
    upload(host.data(), host.size() * sizeof(T));
  }
  template <class T>
  std::vector<T> download(std::size_t count) const {
    static_assert(std::is_trivially_copyable_v<T>, "downloads copy bytes");
    std::vector<T> host(count);
    download(host.data(), count * sizeof(T));
    return host;
  }

 private:
  // The C API cannot know how large a buffer is, so an overrun is caught here.
  void check_fits(std::size_t bytes) const {
    if (bytes > bytes_) {
      detail::throw_invalid("bytes must be <= the buffer's size (" + std::to_string(bytes_) + "), got " +
                            std::to_string(bytes));
    }
  }
  void release() noexcept {
    // Called from the destructor, which must not throw; a failed free (a lost device) leaves the
    // caller nothing to do.
    if (data_ != nullptr) cunormFree(handle_, data_);
    data_ = nullptr;
    bytes_ = 0;
  }

  cunormHandle_t handle_ = nullptr;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

namespace detail {

enum class Fill { kZeros, kOnes };

// Sets the `count` elements of `dtype` at the start of `buffer` to 0 or 1, from the host because
// the memory may be device memory. Half types are written as their bit patterns (1.0 is 0x3C00
// in float16, 0x3F80 in bfloat16; 0.0 is 0 in every type) so that no CUDA header is needed.
inline void fill(DeviceBuffer& buffer, int64_t count, cunormDataType_t dtype, Fill value) {
  const std::size_t n = static_cast<std::size_t>(count);
  if (dtype == CUNORM_FLOAT32) {
    buffer.upload(std::vector<float>(n, value == Fill::kOnes ? 1.0f : 0.0f));
  } else {
    const std::uint16_t one = dtype == CUNORM_FLOAT16 ? 0x3C00 : 0x3F80;
    buffer.upload(std::vector<std::uint16_t>(n, value == Fill::kOnes ? one : 0));
  }
}

inline DeviceBuffer parameter(cunormHandle_t handle, int64_t count, cunormDataType_t dtype, Fill value) {
  DeviceBuffer buffer(handle, static_cast<std::size_t>(count) * element_size(dtype, "param_dtype"));
  fill(buffer, count, dtype, value);
  return buffer;
}

// A float buffer that holds at least `count` values; replaced (not copied) when too small,
// since its old contents belong to a forward that is being superseded.
inline void reserve_floats(DeviceBuffer& buffer, cunormHandle_t handle, int64_t count) {
  const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(float);
  if (buffer.bytes() < bytes) buffer = DeviceBuffer(handle, bytes);
}

// What backward needs from the last forward besides the statistics.
struct SavedForward {
  const void* x;
  int64_t rows;
  cunormDataType_t dtype;
};

[[noreturn]] inline void throw_backward_before_forward() { throw_invalid("backward called before forward"); }

}  // namespace detail

}  // namespace cunorm

#endif  // CUNORM_CPP_CORE_HPP
