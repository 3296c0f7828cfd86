// nn.BatchNorm1d/2d/3d as a C++ module over the C API (parameters, running statistics, train and
// eval modes, exact calibration of the running statistics) and BatchNormCalibration, its streaming
// building block. Part of cunorm/cunorm.hpp, which is the header to include.

#ifndef CUNORM_CPP_BATCH_NORM_MODULES_HPP
#define CUNORM_CPP_BATCH_NORM_MODULES_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cunorm/cpp/core.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cunorm {

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
  // statistics (the C API writes nothing on a bad argument, and writes them only in a call's
  // last kernel, so a failed launch leaves them too) nor num_batches_tracked: PyTorch
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

#endif  // CUNORM_CPP_BATCH_NORM_MODULES_HPP
