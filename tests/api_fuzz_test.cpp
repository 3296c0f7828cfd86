// Seeded fuzz of every compute, query and calibration entry point with invalid arguments: each
// case draws a random valid call (dtype pair, layout, small sizes, optional pointers present or
// not), then breaks exactly one thing: the handle (NULL, destroyed), a size (negative, zero,
// overflowing 63 bits of bytes in the tensor or, in an empty batch, in the parameters or channel
// statistics, or huge and a later pointer NULL, checked without allocating), an enum
// (unknown values, a param_dtype that is neither float32 nor dtype), a pointer (NULL, misaligned),
// eps or momentum, the running-statistics pair, M == 1 in training, an output overlapping another
// buffer (other than y == x and dx == dy), a user workspace too small, or the calibration. Every
// buffer, outputs and running statistics included, holds random poison bytes: the call must
// return the documented status with a message naming the argument (and the value where api.md's
// example does), and leave every byte as it was. A few cases are valid instead (an empty batch
// with NULL activations: SUCCESS, nothing written; in-place y == x, dx == dy: SUCCESS).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "support/api_calls.hpp"
#include "support/api_mutation.hpp"
#include "support/fuzz_seed.hpp"

namespace cunorm_test {
namespace {

constexpr int kCases = 2400;
constexpr std::size_t kArenaBytes = 1 << 20;

class ApiFuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cunormCreate(&handle_, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormCreate(&other_, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormCreate(&dead_, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormDestroy(dead_), CUNORM_STATUS_SUCCESS);  // no handle is created after it: its address stays dead
    ASSERT_EQ(cunormBatchNormCalibrationCreate(other_, 4, &foreign_), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormBatchNormCalibrationCreate(handle_, 9, &unseen_), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormMalloc(handle_, &arena_, kArenaBytes), CUNORM_STATUS_SUCCESS);
    ASSERT_EQ(cunormMalloc(handle_, &scratch_, 256), CUNORM_STATUS_SUCCESS);
    const std::vector<unsigned char> zeros(256, 0);
    ASSERT_EQ(cunormMemcpyToDevice(handle_, scratch_, zeros.data(), zeros.size()), CUNORM_STATUS_SUCCESS);
  }
  void TearDown() override {
    EXPECT_EQ(cunormFree(handle_, arena_), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(cunormFree(handle_, scratch_), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(cunormDestroy(handle_), CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(cunormDestroy(other_), CUNORM_STATUS_SUCCESS);
  }

  // A random valid call of `entry` (pointers laid out by place_buffers).
  Args random_call(Entry entry, std::mt19937_64& rng) {
    Args a;
    a.handle = handle_;
    const auto pair = pick(rng, {0, 1, 2, 3, 4});
    const cunormDataType_t dtypes[5][2] = {{CUNORM_FLOAT32, CUNORM_FLOAT32},
                                           {CUNORM_FLOAT16, CUNORM_FLOAT32},
                                           {CUNORM_FLOAT16, CUNORM_FLOAT16},
                                           {CUNORM_BFLOAT16, CUNORM_FLOAT32},
                                           {CUNORM_BFLOAT16, CUNORM_BFLOAT16}};
    a.dtype = dtypes[pair][0];
    a.param = entry == Entry::kCalibrationAccumulate ? CUNORM_FLOAT32 : dtypes[pair][1];
    a.rows = uniform(rng, 1, 9);
    a.cols = coin(rng) ? uniform(rng, 1, 40) : uniform(rng, 41, 300);
    a.layout = pick(rng, {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC});
    a.n = uniform(rng, 1, 5);
    a.c = uniform(rng, 1, 9);
    a.s = uniform(rng, 1, 12);
    if (a.n * a.s == 1) a.s = 2;
    a.eps = pick(rng, {0.0f, 1e-5f, 1e-3f, 0.5f});
    a.momentum = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
    a.mode = pick(rng, {CUNORM_RUNNING_VAR_UNBIASED, CUNORM_RUNNING_VAR_BIASED});
    return a;
  }

  // Gives every pointer argument its own region of the arena (NULL for optional ones at random),
  // each followed by a gap as large as the largest, so that a buffer moved into another's region
  // overlaps that one only. The user workspace region comes last.
  std::size_t place_buffers(Entry entry, Args* a, int64_t calib_c, std::mt19937_64& rng) {
    const std::vector<PointerArg> pointers = pointer_args(entry, *a, calib_c);
    std::size_t largest = 256;
    for (const PointerArg& p : pointers) largest = std::max(largest, p.bytes());
    stride_ = (2 * largest + 511) / 256 * 256;
    const bool running = coin(rng, 0.6);  // the training forward's pair: both or neither
    std::size_t offset = 0;
    for (const PointerArg& p : pointers) {
      bool present = p.nullable != Nullable::kYes || coin(rng, 0.6);
      if (is_training(entry) && (std::strcmp(p.name, "running_mean") == 0 || std::strcmp(p.name, "running_var") == 0)) {
        present = running;
      }
      a->*p.member = present ? static_cast<char*>(arena_) + offset : nullptr;
      offset += stride_;
    }
    workspace_ = static_cast<char*>(arena_) + offset;
    return offset + stride_;
  }

  cunormHandle_t handle_ = nullptr, other_ = nullptr, dead_ = nullptr;
  cunormBatchNormCalibration_t foreign_ = nullptr;
  cunormBatchNormCalibration_t unseen_ = nullptr;  // has seen no value
  void* arena_ = nullptr;
  void* scratch_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t stride_ = 0;
};

TEST_F(ApiFuzz, InvalidCallsAreRejectedAndWriteNothing) {
  const std::uint64_t seed = fuzz_seed(20261122);
  std::mt19937_64 rng(seed);
  std::vector<int> per_mutation(kMutationCount, 0), per_entry(kEntryCount, 0);
  for (int index = 0; index < kCases; ++index) {
    const Entry entry = static_cast<Entry>(uniform(rng, 0, kEntryCount - 1));
    Args a = random_call(entry, rng);
    // Calibration entries get a calibration of this handle; finalize's has seen a batch (the
    // mutation kUnseenCalib swaps in one that has not).
    const int64_t calib_c = uniform(rng, 1, 9);
    if (has_calib(entry)) {
      ASSERT_EQ(cunormBatchNormCalibrationCreate(handle_, calib_c, &a.calib), CUNORM_STATUS_SUCCESS);
      if (entry == Entry::kCalibrationFinalize) {
        ASSERT_LE(static_cast<std::size_t>(2 * calib_c) * sizeof(float), std::size_t{256});
        ASSERT_EQ(
            cunormBatchNormCalibrationAccumulate(handle_, a.calib, CUNORM_LAYOUT_NCHW, 2, 1, CUNORM_FLOAT32, scratch_),
            CUNORM_STATUS_SUCCESS);
      }
    }
    const cunormBatchNormCalibration_t own_calib = a.calib;
    const std::size_t used = place_buffers(entry, &a, calib_c, rng);
    ASSERT_LE(used, kArenaBytes);
    Expectation ex;
    std::string what;
    Mutation m;
    do {
      m = static_cast<Mutation>(uniform(rng, 0, kMutationCount - 1));
    } while (!mutate(m, entry, &a, calib_c, {handle_, dead_, foreign_, unseen_, workspace_}, rng, &ex, &what));
    ++per_mutation[static_cast<int>(m)];
    ++per_entry[static_cast<int>(entry)];
    SCOPED_TRACE(fuzz_trace(seed, index, std::string(entry_name(entry)) + ", " + what));

    std::vector<unsigned char> before(used), after(used);
    for (unsigned char& byte : before) byte = static_cast<unsigned char>(rng());
    ASSERT_EQ(cunormMemcpyToDevice(handle_, arena_, before.data(), used), CUNORM_STATUS_SUCCESS);
    const cunormStatus_t status = call(entry, a);
    const std::string message = cunormGetLastErrorMessage(ex.handle_rejected ? nullptr : handle_);
    EXPECT_EQ(status, ex.status) << message;
    if (ex.status == CUNORM_STATUS_SUCCESS) {
      EXPECT_EQ(message, "");
    } else {
      for (const std::string& fragment : ex.fragments) {
        EXPECT_NE(message.find(fragment), std::string::npos)
            << "message \"" << message << "\" lacks \"" << fragment << "\"";
      }
    }
    if (!ex.writes) {
      ASSERT_EQ(cunormMemcpyToHost(handle_, after.data(), arena_, used), CUNORM_STATUS_SUCCESS);
      EXPECT_EQ(std::memcmp(before.data(), after.data(), used), 0) << "the call wrote to its buffers";
    }
    EXPECT_EQ(cunormSetWorkspace(handle_, nullptr, 0), CUNORM_STATUS_SUCCESS);
    if (own_calib != nullptr) {
      if (entry == Entry::kCalibrationAccumulate) {  // nothing was merged: still no value seen
        EXPECT_EQ(cunormBatchNormCalibrationFinalize(handle_, own_calib, static_cast<float*>(scratch_),
                                                     static_cast<float*>(scratch_) + calib_c),
                  CUNORM_STATUS_INVALID_VALUE);
        EXPECT_NE(std::string(cunormGetLastErrorMessage(handle_)).find("has seen 0 values"), std::string::npos);
      }
      EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle_, own_calib), CUNORM_STATUS_SUCCESS);
    }
    if (HasFailure()) return;
  }
  for (int m = 0; m < kMutationCount; ++m) EXPECT_GT(per_mutation[m], 0) << "mutation " << m << " never ran";
  for (int e = 0; e < kEntryCount; ++e) EXPECT_GT(per_entry[e], 0) << entry_name(static_cast<Entry>(e)) << " never ran";
  std::printf("%d cases\n", kCases);
}

}  // namespace
}  // namespace cunorm_test
