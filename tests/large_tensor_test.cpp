// Tensors of more than 2^31 elements on the SIMT engine: every element index past 2^31 - 1 must be
// computed in 64 bits by the kernels. A CPU cannot run every block of such a launch, so each test
// reserves the tensors with MAP_NORESERVE (only touched pages cost memory; untouched ones read as
// zeros), fills the rows or channels around element 2^31, runs through the C API only the blocks
// that touch them (simt::ScopedBlockWindow, from each variant's documented block-to-data
// mapping), and compares that region with the float64 reference. The region is first filled with
// NaN, so a window that missed it fails instead of passing.
//
// Checked: LayerNorm and RMSNorm forward (y, mean, rstd) and backward (dx), BatchNorm inference
// forward and the inference backward's dx, in both layouts. Not checked: parameter gradients and
// BatchNorm training (forward statistics, running statistics, training backward): they reduce
// over all of the tensor's 2^31 elements, i.e. every block, hours of CPU time (docs/simt_engine.md).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "cunorm/reference.hpp"
#include "simt/launch.hpp"
#include "support/compare.hpp"

namespace {

constexpr int64_t kBoundary = int64_t{1} << 31;  // the first element a 32-bit index cannot reach

// Address space for `count` elements, backed only where touched; unmapped when it goes.
template <class T>
class Reserved {
 public:
  explicit Reserved(int64_t count) : bytes_(static_cast<std::size_t>(count) * sizeof(T)) {
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : static_cast<T*>(p);
  }
  ~Reserved() {
    if (data_ != nullptr) munmap(data_, bytes_);
  }
  Reserved(const Reserved&) = delete;
  Reserved& operator=(const Reserved&) = delete;
  T* get() const { return data_; }

 private:
  std::size_t bytes_;
  T* data_;
};

// Deterministic values in [-2, 2) with a per-position offset, so rows and channels differ.
float value_at(int64_t i, int salt) {
  const std::uint64_t h = (static_cast<std::uint64_t>(i) + 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(salt)) *
                          0xbf58476d1ce4e5b9ULL;
  return static_cast<float>((h >> 40) % 4096) / 1024.0f - 2.0f + 0.25f * static_cast<float>(salt);
}

void fill(float* p, int64_t first, int64_t count, int salt) {
  for (int64_t i = first; i < first + count; ++i) p[i] = value_at(i, salt);
}
void fill_nan(float* p, int64_t first, int64_t count) {
  for (int64_t i = first; i < first + count; ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
}

class LargeTensor : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(cunormCreate(&handle_, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS); }
  void TearDown() override { cunormDestroy(handle_); }
  void expect_ok(cunormStatus_t status) {
    EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle_);
  }
  cunormHandle_t handle_ = nullptr;
};

// ---- LayerNorm and RMSNorm ---------------------------------------------------------------------
// Rows of 500 float32 (vectors of 4): forward and backward both run warp_rows, whose blocks take
// groups of 4 rows (32 lanes a row, 128 threads), group g in block g % gridDim.x. Row 4294967 holds
// elements 2147483500 .. 2147483999, across 2^31; its group of 4 rows, from 4294964, is checked.
constexpr int64_t kCols = 500;
constexpr int64_t kRowsPerGroup = 4;
constexpr int64_t kRows = kBoundary / kCols + 3;
constexpr int64_t kFirstRow = kBoundary / kCols / kRowsPerGroup * kRowsPerGroup;
constexpr int64_t kCheckedRows = kRowsPerGroup;
static_assert(kFirstRow * kCols < kBoundary && (kFirstRow + kCheckedRows) * kCols > kBoundary, "rows around 2^31");

// The block of the checked rows in the warp_rows launches; none of any other launch.
simt::BlockRange row_blocks(const simt::LaunchConfig& launch) {
  if (launch.label == nullptr || std::strcmp(launch.label->variant, "warp_rows") != 0) return simt::BlockRange{0, 0};
  return simt::BlockRange{static_cast<std::uint64_t>(kFirstRow / kRowsPerGroup) % launch.grid.x, 1};
}

struct RowTensors {
  Reserved<float> x{kRows * kCols}, y{kRows * kCols}, dy{kRows * kCols}, dx{kRows * kCols};
  Reserved<float> mean{kRows}, rstd{kRows};
  std::vector<float> gamma, beta;
  RowTensors() : gamma(kCols), beta(kCols) {
    fill(gamma.data(), 0, kCols, 3);
    fill(beta.data(), 0, kCols, 4);
  }
  bool reserved() const { return x.get() && y.get() && dy.get() && dx.get() && mean.get() && rstd.get(); }
  const int64_t first = kFirstRow * kCols;
  const int64_t count = kCheckedRows * kCols;
};

TEST_F(LargeTensor, RowNormsForwardAndBackwardAcross2To31Elements) {
  ASSERT_GT(kRows * kCols, kBoundary);
  RowTensors t;
  ASSERT_TRUE(t.reserved()) << "could not reserve the address space";
  fill(t.x.get(), t.first, t.count, 1);
  fill(t.dy.get(), t.first, t.count, 2);
  const cunorm::reference::Tolerance tolerance = cunorm::reference::output_tolerance(CUNORM_FLOAT32);
  for (bool layer_norm : {true, false}) {
    SCOPED_TRACE(layer_norm ? "LayerNorm" : "RMSNorm");
    fill_nan(t.y.get(), t.first, t.count);
    fill_nan(t.dx.get(), t.first, t.count);
    fill_nan(t.mean.get(), kFirstRow, kCheckedRows);
    fill_nan(t.rstd.get(), kFirstRow, kCheckedRows);
    simt::LaunchRecorder recorder;
    {
      simt::ScopedBlockWindow window(row_blocks);
      if (layer_norm) {
        expect_ok(cunormLayerNormForward(handle_, kRows, kCols, CUNORM_FLOAT32, CUNORM_FLOAT32, t.x.get(),
                                         t.gamma.data(), t.beta.data(), 1e-5f, t.y.get(), t.mean.get(), t.rstd.get()));
      } else {
        expect_ok(cunormRMSNormForward(handle_, kRows, kCols, CUNORM_FLOAT32, CUNORM_FLOAT32, t.x.get(), t.gamma.data(),
                                       1e-5f, t.y.get(), t.rstd.get()));
      }
    }
    {
      simt::ScopedBlockWindow window(row_blocks);
      if (layer_norm) {
        expect_ok(cunormLayerNormBackward(handle_, kRows, kCols, CUNORM_FLOAT32, CUNORM_FLOAT32, t.dy.get(), t.x.get(),
                                          t.mean.get(), t.rstd.get(), t.gamma.data(), t.dx.get(), nullptr, nullptr));
      } else {
        expect_ok(cunormRMSNormBackward(handle_, kRows, kCols, CUNORM_FLOAT32, CUNORM_FLOAT32, t.dy.get(), t.x.get(),
                                        t.rstd.get(), t.gamma.data(), t.dx.get(), nullptr));
      }
    }
    ASSERT_EQ(recorder.records().size(), 2u);
    for (const simt::LaunchRecord& r : recorder.records()) EXPECT_EQ(r.blocks_run, 1u) << r.name;

    std::vector<double> y(t.count), mean(kCheckedRows), rstd(kCheckedRows), dx(t.count);
    const float* x = t.x.get() + t.first;
    const float* dy = t.dy.get() + t.first;
    if (layer_norm) {
      cunorm::reference::layer_norm_forward(kCheckedRows, kCols, x, t.gamma.data(), t.beta.data(), 1e-5, y.data(),
                                            mean.data(), rstd.data());
      cunorm_test::expect_close(
          "mean", kCheckedRows, [&](std::size_t i) { return t.mean.get()[kFirstRow + i]; }, mean,
          cunorm::reference::statistics_tolerance());
    } else {
      cunorm::reference::rms_norm_forward(kCheckedRows, kCols, x, t.gamma.data(), 1e-5, y.data(), rstd.data());
    }
    cunorm_test::expect_close(
        "rstd", kCheckedRows, [&](std::size_t i) { return t.rstd.get()[kFirstRow + i]; }, rstd,
        cunorm::reference::statistics_tolerance());
    cunorm_test::expect_close(
        "y", t.count, [&](std::size_t i) { return t.y.get()[t.first + i]; }, y, tolerance);
    // The backward from the kernel's own statistics, as a training step would run it.
    const float* kernel_mean = t.mean.get() + kFirstRow;
    const float* kernel_rstd = t.rstd.get() + kFirstRow;
    if (layer_norm) {
      cunorm::reference::layer_norm_backward(kCheckedRows, kCols, dy, x, kernel_mean, kernel_rstd, t.gamma.data(),
                                             dx.data(), static_cast<double*>(nullptr), static_cast<double*>(nullptr));
    } else {
      cunorm::reference::rms_norm_backward(kCheckedRows, kCols, dy, x, kernel_rstd, t.gamma.data(), dx.data(),
                                           static_cast<double*>(nullptr));
    }
    cunorm_test::expect_close(
        "dx", t.count, [&](std::size_t i) { return t.dx.get()[t.first + i]; }, dx, tolerance);
  }
}

// ---- BatchNorm inference -----------------------------------------------------------------------
// The map and reduce passes of a tiling (ops/batch_norm/batch_norm_passes.cuh) visit chunk k of a channel
// (channels first: a tile of S, blockIdx.x; channels last: a span of rows, blockIdx.y, the grid
// holding every chunk once here) in a block of their own; chunk k of `chunks` equal spans holds
// position p when k = p * chunks / extent, give or take one. Two chunks either side are run.
constexpr int64_t kMargin = 500;  // positions checked either side of element 2^31

simt::BlockRange batch_norm_blocks(const simt::LaunchConfig& launch, bool channels_last, int64_t position,
                                   int64_t extent, int64_t channel) {
  const std::string step = launch.label != nullptr ? launch.label->suffix : "";
  if (step == "coefficients") return simt::BlockRange{0, launch.grid.x};
  if (step != "map" && step != "reduce") return {0, 0};
  // Channels last: blockIdx.x runs over the channel tiles (one here), blockIdx.y over chunks.
  const std::uint64_t chunks = channels_last ? launch.grid.y : launch.grid.x;
  const std::uint64_t stride = channels_last ? launch.grid.x : 1;
  const std::uint64_t offset = channels_last ? 0 : static_cast<std::uint64_t>(channel) * launch.grid.x;
  const std::uint64_t estimate = static_cast<std::uint64_t>(position) * chunks / static_cast<std::uint64_t>(extent);
  const std::uint64_t first = estimate >= 2 ? estimate - 2 : 0;
  return simt::BlockRange{offset + first * stride, 4 * stride};
}

void check_batch_norm_inference(cunormHandle_t handle, cunormLayout_t layout, int64_t n, int64_t c, int64_t s) {
  const int64_t total = n * c * s;
  ASSERT_GT(total, kBoundary);
  Reserved<float> x(total), dy(total), out(total);
  ASSERT_TRUE(x.get() && dy.get() && out.get()) << "could not reserve the address space";
  const int64_t first = kBoundary - kMargin, count = 2 * kMargin;
  std::vector<float> gamma(c), beta(c), running_mean(c), running_var(c);
  fill(gamma.data(), 0, c, 3);
  fill(beta.data(), 0, c, 4);
  fill(running_mean.data(), 0, c, 5);
  for (int64_t i = 0; i < c; ++i) running_var[i] = 0.5f + std::abs(value_at(i, 6));
  // Where element 2^31 lies in the dimension the chunks split: S of its channel (channels first,
  // N = 1) or the rows N*S (channels last).
  const bool channels_last = layout == CUNORM_LAYOUT_NHWC;
  const int64_t channel = channels_last ? 0 : kBoundary / s;
  const int64_t position = channels_last ? kBoundary / c : kBoundary % s;
  const int64_t extent = channels_last ? n * s : s;
  const auto select = [&](const simt::LaunchConfig& l) {
    return batch_norm_blocks(l, channels_last, position, extent, channel);
  };
  // The checked span as a small tensor of its own: one channel's elements (channels first), or
  // whole rows of C (channels last, the span starting on a row).
  const int64_t span_first = channels_last ? first / c * c : first;
  const int64_t span_count = channels_last ? (count + 2 * c) / c * c : count;
  auto reference_span = [&](bool backward, std::vector<double>& expected) {
    expected.assign(span_count, 0.0);
    const int64_t rc = channels_last ? c : 1;
    const int64_t rs = channels_last ? span_count / c : span_count;
    const int64_t p = channels_last ? 0 : channel;
    if (backward) {
      cunorm::reference::batch_norm_backward_inference(
          layout, 1, rc, rs, dy.get() + span_first, x.get() + span_first, gamma.data() + p, running_mean.data() + p,
          running_var.data() + p, 1e-5, expected.data(), static_cast<double*>(nullptr), static_cast<double*>(nullptr));
    } else {
      cunorm::reference::batch_norm_forward_inference(layout, 1, rc, rs, x.get() + span_first, gamma.data() + p,
                                                      beta.data() + p, running_mean.data() + p, running_var.data() + p,
                                                      1e-5, expected.data());
    }
  };
  fill(x.get(), span_first, span_count, 1);
  fill(dy.get(), span_first, span_count, 2);
  const cunorm::reference::Tolerance tolerance = cunorm::reference::output_tolerance(CUNORM_FLOAT32);
  for (bool backward : {false, true}) {
    SCOPED_TRACE(backward ? "inference backward" : "inference forward");
    fill_nan(out.get(), span_first, span_count);
    {
      simt::ScopedBlockWindow window(select);
      const cunormStatus_t status =
          backward ? cunormBatchNormBackwardInference(handle, layout, n, c, s, CUNORM_FLOAT32, CUNORM_FLOAT32, dy.get(),
                                                      x.get(), gamma.data(), running_mean.data(), running_var.data(),
                                                      1e-5f, out.get(), nullptr, nullptr)
                   : cunormBatchNormForwardInference(handle, layout, n, c, s, CUNORM_FLOAT32, CUNORM_FLOAT32, x.get(),
                                                     gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                                     1e-5f, out.get());
      ASSERT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle);
    }
    std::vector<double> expected;
    reference_span(backward, expected);
    cunorm_test::expect_close(
        backward ? "dx" : "y", static_cast<std::size_t>(span_count),
        [&](std::size_t i) { return out.get()[span_first + static_cast<int64_t>(i)]; }, expected, tolerance);
  }
}

// NCHW with N = 1 and 3 channels: channel 1 spans elements S .. 2S - 1, across 2^31. S is a
// multiple of 4 (vectors of 4 floats).
TEST_F(LargeTensor, BatchNormInferenceChannelsFirstAcross2To31Elements) {
  check_batch_norm_inference(handle_, CUNORM_LAYOUT_NCHW, 1, 3, (int64_t{1} << 30) + (int64_t{1} << 20));
}

// NHWC with 3 channels (scalar accesses): row 2^31 / 3 holds element 2^31.
TEST_F(LargeTensor, BatchNormInferenceChannelsLastAcross2To31Elements) {
  check_batch_norm_inference(handle_, CUNORM_LAYOUT_NHWC, 1, 3, kBoundary / 3 + 4096);
}

}  // namespace
