// The idiomatic C++17 layer over the cunorm C API (cunorm.h): RAII owners of handles and
// memory, exceptions instead of status codes, and LayerNorm / RMSNorm / BatchNorm modules with
// the semantics of PyTorch's nn.LayerNorm, nn.RMSNorm and nn.BatchNorm1d/2d/3d (own parameters
// initialized as reset_parameters does, their gradients, the statistics a backward needs, and
// for BatchNorm the running statistics, train/eval modes and the exact calibration of the
// running statistics over a data set, with BatchNormCalibration as its streaming building block).
//
// Why a separate header-only layer: the C API is the stable ABI that bindings and C code use,
// so it never throws and leaves ownership to the caller; C++ users want neither, and this
// header gives them scope-bound resources and errors that cannot be ignored, without adding
// a second compiled library. It includes nothing but cunorm.h and the standard library, so it
// needs no CUDA half-precision headers.
//
// Lifetimes: DeviceBuffer, BatchNormCalibration and the modules keep the raw cunormHandle_t of
// the Handle they were created on, so the Handle object may be moved, but the handle it owns
// must outlive them. A moved-from object may only be destroyed or assigned to.
#ifndef CUNORM_CUNORM_HPP
#define CUNORM_CUNORM_HPP

#include <cunorm/cunorm.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
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

// What LayerNorm and RMSNorm share: the normalized shape, the weight (ones) and its gradient
// (zeros until the first backward), in param_dtype, and the record of the last forward.
class RowNormModule {
 public:
  void* weight() noexcept { return weight_.data(); }  // nullptr without elementwise_affine
  void* weight_grad() noexcept { return weight_grad_.data(); }
  const std::vector<int64_t>& normalized_shape() const noexcept { return normalized_shape_; }
  int64_t normalized_size() const noexcept { return normalized_size_; }
  cunormDataType_t param_dtype() const noexcept { return param_dtype_; }

 protected:
  RowNormModule(Handle& handle, std::vector<int64_t> normalized_shape, bool elementwise_affine,
                cunormDataType_t param_dtype)
      : handle_(handle.get()),
        normalized_shape_(std::move(normalized_shape)),
        normalized_size_(normalized_size_of(normalized_shape_)),
        param_dtype_(param_dtype) {
    element_size(param_dtype_, "param_dtype");  // rejected here even when no parameter is made
    if (elementwise_affine) {
      weight_ = parameter(Fill::kOnes);
      weight_grad_ = parameter(Fill::kZeros);
    }
  }

  DeviceBuffer parameter(Fill value) const { return detail::parameter(handle_, normalized_size_, param_dtype_, value); }
  // Forgets the last forward, then the rows of a forward over numel elements (or throws).
  int64_t begin_forward(int64_t numel) {
    saved_.reset();
    return rows_of(numel, normalized_size_);
  }
  void end_forward(const void* x, int64_t rows, cunormDataType_t dtype) { saved_ = SavedForward{x, rows, dtype}; }
  const SavedForward& last_forward() const {
    if (!saved_) throw_backward_before_forward();
    return *saved_;
  }
  // After a backward of an empty batch, for which the C API writes nothing: the gradient of an
  // empty sum is zero.
  void zero_after_empty_backward(DeviceBuffer& grad) {
    if (saved_->rows == 0 && grad.data() != nullptr) fill(grad, normalized_size_, param_dtype_, Fill::kZeros);
  }

  cunormHandle_t handle_;
  std::vector<int64_t> normalized_shape_;
  int64_t normalized_size_;
  cunormDataType_t param_dtype_;
  DeviceBuffer weight_, weight_grad_;
  std::optional<SavedForward> saved_;
};

}  // namespace detail

// nn.LayerNorm over the trailing dimensions `normalized_shape` of its input:
//   y = (x - mean) * rstd * weight + bias,  rstd = 1 / sqrt(var + eps), var biased.
// Activations are device memory of the handle's backend; the module owns weight (ones), bias
// (zeros), their gradients (zeros until the first backward), and the float32 mean and rstd of
// the last forward. param_dtype must be CUNORM_FLOAT32 or the activation dtype of each call; the
// C API reports a mismatch at forward.
class LayerNorm : public detail::RowNormModule {
 public:
  LayerNorm(Handle& handle, std::vector<int64_t> normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
            bool bias = true, cunormDataType_t param_dtype = CUNORM_FLOAT32)
      : RowNormModule(handle, std::move(normalized_shape), elementwise_affine, param_dtype), eps_(eps) {
    if (elementwise_affine && bias) {
      bias_ = parameter(detail::Fill::kZeros);
      bias_grad_ = parameter(detail::Fill::kZeros);
    }
  }
  LayerNorm(const LayerNorm&) = delete;
  LayerNorm& operator=(const LayerNorm&) = delete;
  LayerNorm(LayerNorm&&) = default;
  LayerNorm& operator=(LayerNorm&&) = default;

  // x and y hold `numel` elements of `dtype`; rows = numel / normalized_size(). backward reads x
  // again, so the caller keeps x alive and unchanged until the last backward of this forward, as
  // autograd keeps its saved tensors; hence y may equal x only when no backward follows. A
  // forward that throws leaves no forward to differentiate.
  void forward(const void* x, void* y, int64_t numel, cunormDataType_t dtype) {
    const int64_t rows = begin_forward(numel);
    detail::reserve_floats(mean_, handle_, rows);
    detail::reserve_floats(rstd_, handle_, rows);
    check(cunormLayerNormForward(handle_, rows, normalized_size_, dtype, param_dtype_, x, weight_.data(), bias_.data(),
                                 static_cast<float>(eps_), y, static_cast<float*>(mean_.data()),
                                 static_cast<float*>(rstd_.data())),
          handle_);
    end_forward(x, rows, dtype);
  }

  // Writes dx (dtype and size of x; dx may equal dy) from the last forward's x and statistics.
  // weight_grad() and bias_grad() are overwritten, not accumulated as PyTorch's .grad is, so a
  // sum over several backward calls is the caller's to keep.
  void backward(const void* dy, void* dx) {
    const detail::SavedForward& saved = last_forward();
    check(
        cunormLayerNormBackward(handle_, saved.rows, normalized_size_, saved.dtype, param_dtype_, dy, saved.x,
                                saved_mean(), saved_rstd(), weight_.data(), dx, weight_grad_.data(), bias_grad_.data()),
        handle_);
    zero_after_empty_backward(weight_grad_);
    zero_after_empty_backward(bias_grad_);
  }

  void* bias() noexcept { return bias_.data(); }  // nullptr without elementwise_affine or bias
  void* bias_grad() noexcept { return bias_grad_.data(); }
  double eps() const noexcept { return eps_; }
  // Device pointers to the rows values of the last forward; nullptr before the first forward.
  const float* saved_mean() const noexcept { return static_cast<const float*>(mean_.data()); }
  const float* saved_rstd() const noexcept { return static_cast<const float*>(rstd_.data()); }

 private:
  double eps_;
  DeviceBuffer bias_, bias_grad_;
  DeviceBuffer mean_, rstd_;
};

// nn.RMSNorm over the trailing dimensions `normalized_shape`:
//   y = x * rrms * weight,  rrms = 1 / sqrt(mean(x^2) + eps).
// eps = nullopt is torch.finfo(dtype).eps of each forward's activation dtype (finfo_eps), as
// PyTorch decides it from the input. Owns weight (ones), its gradient and the float32 rrms of
// the last forward; the same rules as LayerNorm otherwise.
class RMSNorm : public detail::RowNormModule {
 public:
  RMSNorm(Handle& handle, std::vector<int64_t> normalized_shape, std::optional<double> eps = std::nullopt,
          bool elementwise_affine = true, cunormDataType_t param_dtype = CUNORM_FLOAT32)
      : RowNormModule(handle, std::move(normalized_shape), elementwise_affine, param_dtype), eps_(eps) {}
  RMSNorm(const RMSNorm&) = delete;
  RMSNorm& operator=(const RMSNorm&) = delete;
  RMSNorm(RMSNorm&&) = default;
  RMSNorm& operator=(RMSNorm&&) = default;

  // As LayerNorm::forward: the caller keeps x alive and unchanged for backward.
  void forward(const void* x, void* y, int64_t numel, cunormDataType_t dtype) {
    const int64_t rows = begin_forward(numel);
    const double eps = eps_ ? *eps_ : finfo_eps(dtype);
    detail::reserve_floats(rrms_, handle_, rows);
    check(cunormRMSNormForward(handle_, rows, normalized_size_, dtype, param_dtype_, x, weight_.data(),
                               static_cast<float>(eps), y, static_cast<float*>(rrms_.data())),
          handle_);
    end_forward(x, rows, dtype);
  }

  // As LayerNorm::backward: weight_grad() is overwritten, not accumulated.
  void backward(const void* dy, void* dx) {
    const detail::SavedForward& saved = last_forward();
    check(cunormRMSNormBackward(handle_, saved.rows, normalized_size_, saved.dtype, param_dtype_, dy, saved.x,
                                saved_rrms(), weight_.data(), dx, weight_grad_.data()),
          handle_);
    zero_after_empty_backward(weight_grad_);
  }

  // As given at construction: nullopt means finfo_eps of each forward's dtype.
  std::optional<double> eps() const noexcept { return eps_; }
  // Device pointer to the rows values of the last forward; nullptr before the first forward.
  const float* saved_rrms() const noexcept { return static_cast<const float*>(rrms_.data()); }

 private:
  std::optional<double> eps_;
  DeviceBuffer rrms_;
};

// Owner of one cunormBatchNormCalibration_t: the exact population statistics of a stream of
// (N, C, S) batches, C = num_features. Each accumulate merges the batch's per-channel count,
// mean and M2 into float64 totals (Chan's formula), so the result is that of the concatenation
// of all the batches, however the data was split, with no batch weighted by a momentum.
// finalize writes the mean and the unbiased variance and does not reset, so more batches may
// follow. BatchNorm::calibrate is this loop over a list of batches; this class is for callers
// that produce the batches one at a time.
class BatchNormCalibration {
 public:
  BatchNormCalibration(Handle& handle, int64_t num_features) : BatchNormCalibration(handle.get(), num_features) {}
  // For a calibration on a handle that C code created.
  BatchNormCalibration(cunormHandle_t handle, int64_t num_features) : handle_(handle), num_features_(num_features) {
    check(cunormBatchNormCalibrationCreate(handle_, num_features, &calib_), handle_);
  }
  ~BatchNormCalibration() { release(); }
  BatchNormCalibration(const BatchNormCalibration&) = delete;
  BatchNormCalibration& operator=(const BatchNormCalibration&) = delete;
  BatchNormCalibration(BatchNormCalibration&& other) noexcept
      : handle_(other.handle_), calib_(std::exchange(other.calib_, nullptr)), num_features_(other.num_features_) {}
  BatchNormCalibration& operator=(BatchNormCalibration&& other) noexcept {
    if (this != &other) {
      release();
      handle_ = other.handle_;
      calib_ = std::exchange(other.calib_, nullptr);
      num_features_ = other.num_features_;
    }
    return *this;
  }

  // x is an (n, num_features(), s) tensor of dtype in layout; n == 0 or s == 0 adds nothing.
  void accumulate(const void* x, cunormLayout_t layout, int64_t n, int64_t s, cunormDataType_t dtype) {
    check(cunormBatchNormCalibrationAccumulate(handle_, calib_, layout, n, s, dtype, x), handle_);
  }

  // Writes num_features() floats to each of running_mean and running_var (unbiased): memory of
  // the handle's backend. INVALID_VALUE, and nothing written, while fewer than 2 values per
  // channel have been accumulated.
  void finalize(float* running_mean, float* running_var) {
    check(cunormBatchNormCalibrationFinalize(handle_, calib_, running_mean, running_var), handle_);
  }

  cunormBatchNormCalibration_t get() const noexcept { return calib_; }
  int64_t num_features() const noexcept { return num_features_; }

 private:
  void release() noexcept {
    // Called from the destructor, which must not throw; a failed destroy leaves the caller
    // nothing to do, and the handle frees its calibrations when it is destroyed anyway.
    if (calib_ != nullptr) cunormBatchNormCalibrationDestroy(handle_, calib_);
    calib_ = nullptr;
  }

  cunormHandle_t handle_ = nullptr;
  cunormBatchNormCalibration_t calib_ = nullptr;
  int64_t num_features_ = 0;
};

// nn.BatchNorm1d / 2d / 3d: per channel c of (N, C, S) tensors, C = num_features and S the
// product of the spatial sizes (1 for BatchNorm1d on (N, C)), in either layout:
//   y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c.
// In training mode mean_c and var_c (biased) are those of the batch, and with
// track_running_stats each forward moves the running statistics towards them, as PyTorch does:
//   running_mean = (1 - momentum) * running_mean + momentum * mean_c
//   running_var  = (1 - momentum) * running_var  + momentum * var_c * M / (M - 1),  M = N*S,
// and counts the batch in num_batches_tracked. momentum = nullopt is PyTorch's momentum=None,
// the cumulative average of all batches: momentum = 1 / num_batches_tracked, the count
// including the current batch. In eval mode the running statistics are used; without
// track_running_stats there are none, and eval uses the batch statistics as training does
// (PyTorch's rule), still without a running update.
// The module owns, with affine, weight (ones), bias (zeros) and their gradients (zeros until
// the first backward) in param_dtype, which must be CUNORM_FLOAT32 or the activation dtype of
// each call (the C API reports a mismatch at forward); with track_running_stats, float32
// running_mean (zeros) and running_var (ones); and the float32 mean and invstd of the last
// forward that used batch statistics.
class BatchNorm {
 public:
  BatchNorm(Handle& handle, int64_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
            bool affine = true, bool track_running_stats = true, cunormDataType_t param_dtype = CUNORM_FLOAT32)
      : handle_(handle.get()),
        num_features_(num_features),
        eps_(eps),
        momentum_(momentum),
        affine_(affine),
        track_running_stats_(track_running_stats),
        param_dtype_(param_dtype) {
    // Checked here so that a module that cannot run is never built: every buffer is
    // num_features long, and without track_running_stats the momentum never reaches the C API.
    if (num_features_ <= 0) detail::throw_invalid("num_features must be > 0, got " + std::to_string(num_features_));
    if (momentum_ && !(*momentum_ >= 0.0 && *momentum_ <= 1.0)) {
      detail::throw_invalid("momentum must be in [0, 1] and not NaN, got " +
                            (std::isnan(*momentum_) ? std::string("NaN") : std::to_string(*momentum_)));
    }
    detail::element_size(param_dtype_, "param_dtype");  // rejected here even when no parameter is made
    if (affine_) {
      weight_ = detail::parameter(handle_, num_features_, param_dtype_, detail::Fill::kOnes);
      bias_ = detail::parameter(handle_, num_features_, param_dtype_, detail::Fill::kZeros);
      weight_grad_ = detail::parameter(handle_, num_features_, param_dtype_, detail::Fill::kZeros);
      bias_grad_ = detail::parameter(handle_, num_features_, param_dtype_, detail::Fill::kZeros);
    }
    if (track_running_stats_) {
      running_mean_ = detail::parameter(handle_, num_features_, CUNORM_FLOAT32, detail::Fill::kZeros);
      running_var_ = detail::parameter(handle_, num_features_, CUNORM_FLOAT32, detail::Fill::kOnes);
    }
  }
  BatchNorm(const BatchNorm&) = delete;
  BatchNorm& operator=(const BatchNorm&) = delete;
  BatchNorm(BatchNorm&&) = default;
  BatchNorm& operator=(BatchNorm&&) = default;

  // A new module is in training mode, as in PyTorch.
  void train(bool mode = true) noexcept { training_ = mode; }
  void eval() noexcept { train(false); }
  bool training() const noexcept { return training_; }

  // x and y are (n, num_features(), s) tensors of dtype in layout. As LayerNorm::forward, the
  // caller keeps x alive and unchanged until the last backward of this forward (y may equal x
  // only when no backward follows). Training needs n * s > 1, as PyTorch does ("Expected more
  // than 1 value per channel when training"), and so does eval without track_running_stats.
  // A forward that throws leaves no forward to differentiate and changes neither the running
  // statistics (the C API writes nothing on a bad argument) nor num_batches_tracked: PyTorch
  // counts a batch before running it, here only once its update is made, so that a rejected
  // batch does not shift the momentum=None average. An empty batch (n or s == 0) writes nothing
  // and is counted, as PyTorch counts it.
  void forward(const void* x, void* y, cunormLayout_t layout, int64_t n, int64_t s, cunormDataType_t dtype) {
    saved_.reset();
    const bool batch_statistics = training_ || !track_running_stats_;
    if (batch_statistics) {
      detail::reserve_floats(mean_, handle_, num_features_);
      detail::reserve_floats(invstd_, handle_, num_features_);
      // running_mean() and running_var() are nullptr without track_running_stats, which is the
      // only way to get here in eval mode, so they are updated exactly in training with tracking.
      check(cunormBatchNormForwardTraining(handle_, layout, n, num_features_, s, dtype, param_dtype_, x, weight_.data(),
                                           bias_.data(), static_cast<float>(eps_), step_momentum(), running_mean(),
                                           running_var(), y, saved_mean_mutable(), saved_invstd_mutable()),
            handle_);
      if (track_running_stats_) ++num_batches_tracked_;
    } else {
      check(
          cunormBatchNormForwardInference(handle_, layout, n, num_features_, s, dtype, param_dtype_, x, weight_.data(),
                                          bias_.data(), running_mean(), running_var(), static_cast<float>(eps_), y),
          handle_);
    }
    saved_ = SavedForward{x, layout, n, s, dtype, batch_statistics};
  }

  // Writes dx (dtype, layout and size of x; dx may equal dy) for the last forward: through the
  // batch statistics it saved when it used them, else through the running statistics as they
  // are now, so those must not change between an eval forward and its backward (calibrate, or a
  // write through running_mean()). weight_grad() and bias_grad() are overwritten, not
  // accumulated as PyTorch's .grad is, so a sum over several backward calls is the caller's to keep.
  void backward(const void* dy, void* dx) {
    if (!saved_) detail::throw_backward_before_forward();
    const SavedForward& f = *saved_;
    if (f.batch_statistics) {
      check(cunormBatchNormBackward(handle_, f.layout, f.n, num_features_, f.s, f.dtype, param_dtype_, dy, f.x,
                                    weight_.data(), saved_mean(), saved_invstd(), dx, weight_grad_.data(),
                                    bias_grad_.data()),
            handle_);
    } else {
      check(cunormBatchNormBackwardInference(handle_, f.layout, f.n, num_features_, f.s, f.dtype, param_dtype_, dy, f.x,
                                             weight_.data(), running_mean(), running_var(), static_cast<float>(eps_),
                                             dx, weight_grad_.data(), bias_grad_.data()),
            handle_);
    }
    // The C API writes nothing for an empty batch; the gradient of an empty sum is zero.
    if (f.n * f.s == 0) zero_grads();
  }

  // Sets running_mean and running_var to the exact mean and unbiased variance of all the
  // batches together (batch i is (batch_sizes_n[i], num_features(), s) of dtype in layout),
  // the seeds' "calibrate the batch norm at the end of training": the population statistics
  // in place of the moving average. num_batches_tracked, the mode and a saved forward's batch
  // statistics are unchanged. The running statistics are written once, after every batch has
  // been merged, so an error leaves them as they were.
  void calibrate(const std::vector<const void*>& batches, const std::vector<int64_t>& batch_sizes_n,
                 cunormLayout_t layout, int64_t s, cunormDataType_t dtype) {
    if (!track_running_stats_) {
      detail::throw_invalid("calibrate needs track_running_stats: this module has no running statistics to set");
    }
    if (batch_sizes_n.size() != batches.size()) {
      detail::throw_invalid("batch_sizes_n must hold one size per batch (" + std::to_string(batches.size()) +
                            "), got " + std::to_string(batch_sizes_n.size()));
    }
    BatchNormCalibration calibration(handle_, num_features_);
    for (std::size_t i = 0; i < batches.size(); ++i) {
      try {
        calibration.accumulate(batches[i], layout, batch_sizes_n[i], s, dtype);
      } catch (const Error& e) {
        // The C API's message names the argument; which of the batches it was is known only here.
        throw Error(e.status(), "batches[" + std::to_string(i) + "]: " + e.message());
      }
    }
    calibration.finalize(running_mean(), running_var());
  }

  void* weight() noexcept { return weight_.data(); }  // nullptr without affine
  void* bias() noexcept { return bias_.data(); }      // nullptr without affine
  void* weight_grad() noexcept { return weight_grad_.data(); }
  void* bias_grad() noexcept { return bias_grad_.data(); }
  // Device pointers to num_features floats; nullptr without track_running_stats. Writable, so
  // that saved statistics can be loaded.
  float* running_mean() noexcept { return static_cast<float*>(running_mean_.data()); }
  float* running_var() noexcept { return static_cast<float*>(running_var_.data()); }
  // Training forwards that succeeded with track_running_stats (PyTorch's buffer of that name).
  int64_t num_batches_tracked() const noexcept { return num_batches_tracked_; }
  // Device pointers to the num_features values of the last forward that used batch statistics;
  // nullptr before the first one.
  const float* saved_mean() const noexcept { return static_cast<const float*>(mean_.data()); }
  const float* saved_invstd() const noexcept { return static_cast<const float*>(invstd_.data()); }
  int64_t num_features() const noexcept { return num_features_; }
  double eps() const noexcept { return eps_; }
  // As given at construction: nullopt means the cumulative average.
  std::optional<double> momentum() const noexcept { return momentum_; }
  bool affine() const noexcept { return affine_; }
  bool track_running_stats() const noexcept { return track_running_stats_; }
  cunormDataType_t param_dtype() const noexcept { return param_dtype_; }

 private:
  // What backward needs from the last forward besides the statistics.
  struct SavedForward {
    const void* x;
    cunormLayout_t layout;
    int64_t n, s;
    cunormDataType_t dtype;
    bool batch_statistics;  // false: the forward used the running statistics
  };

  // The momentum of this forward's running update: for momentum=None, 1 / num_batches_tracked
  // counting this batch (1, 1/2, 1/3, ...), so that the first batch replaces the initial
  // statistics. Without running statistics it is unused, and 0 is a value the C API accepts.
  float step_momentum() const noexcept {
    if (!track_running_stats_) return 0.0f;
    if (momentum_) return static_cast<float>(*momentum_);
    return static_cast<float>(1.0 / static_cast<double>(num_batches_tracked_ + 1));
  }
  float* saved_mean_mutable() noexcept { return static_cast<float*>(mean_.data()); }
  float* saved_invstd_mutable() noexcept { return static_cast<float*>(invstd_.data()); }
  void zero_grads() {
    if (weight_grad_.data() != nullptr) detail::fill(weight_grad_, num_features_, param_dtype_, detail::Fill::kZeros);
    if (bias_grad_.data() != nullptr) detail::fill(bias_grad_, num_features_, param_dtype_, detail::Fill::kZeros);
  }

  cunormHandle_t handle_;
  int64_t num_features_;
  double eps_;
  std::optional<double> momentum_;
  bool affine_;
  bool track_running_stats_;
  cunormDataType_t param_dtype_;
  bool training_ = true;
  int64_t num_batches_tracked_ = 0;
  DeviceBuffer weight_, bias_, weight_grad_, bias_grad_;
  DeviceBuffer running_mean_, running_var_;
  DeviceBuffer mean_, invstd_;
  std::optional<SavedForward> saved_;
};

}  // namespace cunorm

#endif  // CUNORM_CUNORM_HPP
