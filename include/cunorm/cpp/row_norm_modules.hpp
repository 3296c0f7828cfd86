// nn.LayerNorm and nn.RMSNorm as C++ modules over the C API, on the shared base RowNormModule
// (normalized shape, weight and its gradient, the record of the last forward). Part of
// cunorm/cunorm.hpp, which is the header to include.

#ifndef CUNORM_CPP_ROW_NORM_MODULES_HPP
#define CUNORM_CPP_ROW_NORM_MODULES_HPP

#include <cstdint>
#include <cunorm/cpp/core.hpp>
#include <optional>
#include <utility>
#include <vector>

namespace cunorm {

namespace detail {

// What LayerNorm and RMSNorm share: the normalized shape, the weight (ones) and its gradient
// (zeros until the first backward), in param_dtype, and the record of the last forward.
class RowNormModule {
 public:
  void* weight() noexcept { return weight_.data(); }  // nullptr without elementwise_affine
  void* weight_grad() noexcept { return weight_grad_.data(); }
  const std::vector<int64_t>& normalized_shape() const noexcept { return normalized_shape_; }
  int64_t normalized_size() const noexcept { return normalized_size_; }
  cunormDataType_t param_dtype() const noexcept { return param_dtype_; }

  // Move-only, as the buffers are; LayerNorm and RMSNorm inherit this.
  RowNormModule(const RowNormModule&) = delete;
  RowNormModule& operator=(const RowNormModule&) = delete;
  RowNormModule(RowNormModule&&) = default;
  RowNormModule& operator=(RowNormModule&&) = default;

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

}  // namespace cunorm

#endif  // CUNORM_CPP_ROW_NORM_MODULES_HPP
