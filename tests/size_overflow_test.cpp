// Sizes whose bytes do not fit in 63 bits: every extent an entry point derives from its sizes (the
// tensor, the parameters, the row or channel statistics, the calibration's accumulators, the
// workspace) must be INVALID_VALUE naming the size and its value, with every buffer as it was,
// also for empty batches, whose tensors have no bytes while their parameters and statistics still
// do; sizes just inside the limit are accepted. A libFuzzer run (issue 20) found
// cunormLayerNormForward(rows = 0, cols = INT64_MAX) passing validation, after which the overlap
// check formed a pointer 2^64 - 4 bytes past gamma; checking every extent then showed the
// workspace query of a row of 2^61 elements dividing by zero, and BatchNorm's of 2^60 channels
// returning a wrapped, small size.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "support/api_calls.hpp"
#include "support/backend_fixture.hpp"
#include "support/host_array.hpp"

namespace cunorm_test {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kPow(int bits) { return int64_t{1} << bits; }
constexpr std::size_t kSlot = 256;  // bytes of each pointer argument's own region of the arena

const std::vector<Entry> kRowEntries = {Entry::kLayerNormForward, Entry::kLayerNormBackward, Entry::kRmsNormForward,
                                        Entry::kRmsNormBackward, Entry::kLayerNormWorkspaceSize};
const std::vector<Entry> kBatchEntries = {Entry::kBatchNormForwardTraining,   Entry::kBatchNormForwardTrainingEx,
                                          Entry::kBatchNormForwardInference,  Entry::kBatchNormBackward,
                                          Entry::kBatchNormBackwardInference, Entry::kBatchNormWorkspaceSize};

class SizeOverflow : public BackendParamTest<cunormBackend_t> {
 protected:
  // The arena is the handle's memory: freed before the handle is destroyed.
  void TearDown() override {
    arena_.reset();
    BackendParamTest::TearDown();
  }

  // Valid small buffers for every pointer argument (their own slot of a poisoned arena), valid
  // enums and scalars; each case sets the sizes.
  Args valid_args() const {
    Args a;
    a.handle = handle_;
    a.dtype = CUNORM_FLOAT16;
    a.param = CUNORM_FLOAT32;
    a.layout = CUNORM_LAYOUT_NCHW;
    a.eps = 1e-5f;
    a.momentum = 0.1f;
    a.mode = CUNORM_RUNNING_VAR_UNBIASED;
    char* slot = static_cast<char*>(arena_->data());
    for (void* Args::*member : {&Args::x, &Args::dy, &Args::gamma, &Args::beta, &Args::mean, &Args::rstd, &Args::rrms,
                                &Args::running_mean, &Args::running_var, &Args::saved_mean, &Args::saved_invstd,
                                &Args::y, &Args::dx, &Args::dgamma, &Args::dbeta, &Args::bytes, &Args::calib_out}) {
      a.*member = slot;
      slot += kSlot;
    }
    return a;
  }

  // The call fails with INVALID_VALUE and `message`, and writes nothing.
  void expect_rejected(Entry entry, const Args& a, const std::string& message) {
    SCOPED_TRACE(entry_name(entry));
    EXPECT_EQ(call(entry, a), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_EQ(std::string(cunormGetLastErrorMessage(handle_)), message);
    EXPECT_TRUE(arena_->download().bitwise_equal(poison_));
  }

  // The bytes of every buffer before a call: a call that writes anything changes them.
  static HostArray poisoned(int64_t floats) {
    HostArray poison(CUNORM_FLOAT32, floats);
    poison.fill_bytes(0xa5);
    return poison;
  }

  // The slots of valid_args(), holding poison_; made by each test after its handle.
  const HostArray poison_ = poisoned(32 * kSlot / 4);
  std::optional<DeviceArray> arena_;
};

TEST_P(SizeOverflow, RowNormSizes) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  arena_.emplace(handle_, poison_);
  for (Entry entry : kRowEntries) {
    Args a = valid_args();
    // The case the fuzzer found: an empty batch whose float32 parameters would have 2^65 - 4 bytes.
    a.rows = 0, a.cols = kMax;
    expect_rejected(entry, a,
                    "cols is too large: the parameters' bytes (cols * 4) do not fit in 63 bits, got cols = "
                    "9223372036854775807");
    a.cols = kPow(62), a.param = CUNORM_FLOAT16;  // 2^63 bytes of float16 parameters: one too many
    expect_rejected(entry, a,
                    "cols is too large: the parameters' bytes (cols * 2) do not fit in 63 bits, got cols = "
                    "4611686018427387904");
    a.rows = kPow(61), a.cols = 1;  // a tensor of 2^62 bytes, but 2^63 bytes of row statistics
    expect_rejected(entry, a,
                    "rows is too large: the row statistics' bytes (rows * 4) do not fit in 63 bits, got rows = "
                    "2305843009213693952");
    a.rows = kPow(40), a.cols = kPow(40), a.param = CUNORM_FLOAT32;
    expect_rejected(entry, a,
                    "rows * cols is too large: the tensor's bytes (rows * cols * 2) do not fit in 63 bits, got rows = "
                    "1099511627776, cols = 1099511627776");
  }
  // Backward partial dgamma rows of 2^61 floats: the workspace (2^63 bytes and more) is rejected
  // with the sizes, before the pointers are looked at.
  for (Entry entry : {Entry::kLayerNormBackward, Entry::kRmsNormBackward, Entry::kLayerNormWorkspaceSize}) {
    Args a = valid_args();
    a.rows = 1, a.cols = kPow(61), a.param = CUNORM_FLOAT16;
    expect_rejected(entry, a,
                    "cols is too large: the workspace's bytes do not fit in 63 bits, got rows = 1, cols = "
                    "2305843009213693952");
  }
  // Just inside: an empty batch with 2^63 - 2 bytes of parameters is a SUCCESS that writes nothing,
  // and rows of 2^59 elements need two partial rows of 2^61 bytes.
  Args a = valid_args();
  a.rows = 0, a.cols = kPow(62) - 1, a.param = CUNORM_FLOAT16;
  EXPECT_EQ(call(Entry::kLayerNormForward, a), CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle_);
  EXPECT_TRUE(arena_->download().bitwise_equal(poison_));
  size_t bytes = 0;
  ASSERT_EQ(cunormLayerNormWorkspaceSize(handle_, 1, kPow(59), CUNORM_FLOAT16, CUNORM_FLOAT16, &bytes),
            CUNORM_STATUS_SUCCESS)
      << cunormGetLastErrorMessage(handle_);
  EXPECT_GE(bytes, static_cast<size_t>(kPow(62)));
}

TEST_P(SizeOverflow, BatchNormSizes) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  arena_.emplace(handle_, poison_);
  for (Entry entry : kBatchEntries) {
    Args a = valid_args();
    a.n = 0, a.c = kMax, a.s = 1;  // the empty batch of the row-norm case, by channels
    expect_rejected(entry, a,
                    "c is too large: the per-channel statistics' bytes (c * 4) do not fit in 63 bits, got c = "
                    "9223372036854775807");
    a.n = 4, a.c = kPow(61), a.s = 0, a.param = CUNORM_FLOAT16;  // float16 parameters fit, float statistics do not
    expect_rejected(entry, a,
                    "c is too large: the per-channel statistics' bytes (c * 4) do not fit in 63 bits, got c = "
                    "2305843009213693952");
    a.n = kPow(30), a.c = 8, a.s = kPow(32);
    expect_rejected(entry, a,
                    "n * c * s is too large: the tensor's bytes (n * c * s * 2) do not fit in 63 bits, got n = "
                    "1073741824, c = 8, s = 4294967296");
    // 16 bytes of coefficients (or partial states) per channel: 2^64 bytes of workspace. Reported
    // with the sizes, so before the training rule on M = n * s (here 1). The inference forward
    // needs no workspace: its next check is the overlap of the arena's slots.
    a.n = 1, a.c = kPow(60), a.s = 1;
    expect_rejected(entry, a,
                    entry == Entry::kBatchNormForwardInference
                        ? "y overlaps x (only y == x is allowed)"
                        : "c is too large: the workspace's bytes do not fit in 63 bits, got n = 1, c = "
                          "1152921504606846976, s = 1");
  }
  // Just inside: 2^63 - 4 bytes of per-channel statistics, an empty batch.
  Args a = valid_args();
  a.n = 0, a.c = kPow(61) - 1, a.s = 1, a.param = CUNORM_FLOAT16;
  EXPECT_EQ(call(Entry::kBatchNormForwardInference, a), CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle_);
  EXPECT_TRUE(arena_->download().bitwise_equal(poison_));
  size_t bytes = 1;
  ASSERT_EQ(cunormBatchNormWorkspaceSize(handle_, CUNORM_LAYOUT_NHWC, 0, kPow(61) - 1, 1, CUNORM_FLOAT16,
                                         CUNORM_FLOAT16, &bytes),
            CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(bytes, 0u);
}

TEST_P(SizeOverflow, CalibrationSizes) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  cunormBatchNormCalibration_t untouched = nullptr;
  for (const int64_t c : {kMax, kPow(61), kPow(60)}) {  // 2^60 float64 values: 2^63 bytes
    cunormBatchNormCalibration_t calib = untouched;
    EXPECT_EQ(cunormBatchNormCalibrationCreate(handle_, c, &calib), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_EQ(std::string(cunormGetLastErrorMessage(handle_)),
              "c is too large: the calibration's float64 accumulators' bytes (c * 8) do not fit in 63 bits, got c = " +
                  std::to_string(c));
    EXPECT_EQ(calib, untouched);
  }
  // A calibration's own c is allocated, so its sizes fit; an accumulated batch may be empty with
  // any other size, and its tensor must still fit.
  cunormBatchNormCalibration_t calib = nullptr;
  ASSERT_EQ(cunormBatchNormCalibrationCreate(handle_, 4, &calib), CUNORM_STATUS_SUCCESS);
  const HostArray poison = poisoned(64);
  const DeviceArray x(handle_, poison), out(handle_, poison);
  EXPECT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calib, CUNORM_LAYOUT_NCHW, 0, kMax, CUNORM_FLOAT32, x.data()),
            CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormBatchNormCalibrationAccumulate(handle_, calib, CUNORM_LAYOUT_NHWC, kMax, 0, CUNORM_FLOAT16, x.data()),
            CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(
      cunormBatchNormCalibrationAccumulate(handle_, calib, CUNORM_LAYOUT_NCHW, kPow(62), 2, CUNORM_FLOAT32, x.data()),
      CUNORM_STATUS_INVALID_VALUE);
  EXPECT_EQ(std::string(cunormGetLastErrorMessage(handle_)),
            "n * c * s is too large: the tensor's bytes (n * c * s * 4) do not fit in 63 bits, got n = "
            "4611686018427387904, c = 4, s = 2");
  // Nothing was merged.
  EXPECT_EQ(cunormBatchNormCalibrationFinalize(handle_, calib, out.as_floats(), out.as_floats() + 4),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cunormGetLastErrorMessage(handle_)).find("has seen 0 values"), std::string::npos);
  EXPECT_TRUE(out.download().bitwise_equal(poison));
  EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle_, calib), CUNORM_STATUS_SUCCESS);
}

// The overlap check compares claimed extents as integers: a buffer claimed at the top of the
// address space (an empty batch reads none of it) neither wraps around into a false "no overlap"
// nor forms a pointer past the end of memory (undefined behaviour UBSan reports).
TEST_P(SizeOverflow, OverlapOfExtentsReachingTheTopOfTheAddressSpace) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  const HostArray poison = poisoned(64);
  const DeviceArray dgamma(handle_, poison);
  const int64_t cols = kPow(60);  // 2^62 bytes of float32 parameters, claimed
  void* const high = reinterpret_cast<void*>(~std::uintptr_t{0} - 4095);
  void* const below_high = static_cast<char*>(high) - 8;  // its claimed extent covers gamma's first bytes
  EXPECT_EQ(cunormLayerNormBackward(handle_, 0, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, nullptr, nullptr, nullptr,
                                    nullptr, high, nullptr, dgamma.data(), nullptr),
            CUNORM_STATUS_SUCCESS)
      << cunormGetLastErrorMessage(handle_);
  EXPECT_EQ(cunormLayerNormBackward(handle_, 0, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, nullptr, nullptr, nullptr,
                                    nullptr, high, nullptr, below_high, nullptr),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_EQ(std::string(cunormGetLastErrorMessage(handle_)), "dgamma overlaps gamma");
  EXPECT_TRUE(dgamma.download().bitwise_equal(poison));
}

std::string backend_name(const ::testing::TestParamInfo<cunormBackend_t>& info) { return backend_label(info.param); }

INSTANTIATE_TEST_SUITE_P(All, SizeOverflow, ::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA), backend_name);

}  // namespace
}  // namespace cunorm_test
