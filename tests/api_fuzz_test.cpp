// Seeded fuzz of every compute, query and calibration entry point with invalid arguments: each
// case draws a random valid call (dtype pair, layout, small sizes, optional pointers present or
// not), then breaks exactly one thing: the handle (NULL, destroyed), a size (negative, zero,
// overflowing 63 bits, or huge and a later pointer NULL, checked without allocating), an enum
// (unknown values, a param_dtype that is neither float32 nor dtype), a pointer (NULL, misaligned),
// eps or momentum, the running-statistics pair, M == 1 in training, an output overlapping another
// buffer (other than y == x and dx == dy), a user workspace too small, or the calibration. Every
// buffer, outputs and running statistics included, holds random poison bytes: the call must
// return the documented status with a message naming the argument (and the value where api.md's
// example does), and leave every byte as it was. A few cases are valid instead (an empty batch
// with NULL activations: SUCCESS, nothing written; in-place y == x, dx == dy: SUCCESS).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "support/api_calls.hpp"
#include "support/fuzz_seed.hpp"

namespace cunorm_test {
namespace {

constexpr int kCases = 2400;
constexpr std::size_t kArenaBytes = 1 << 20;

enum class Mutation {
  kNullHandle,
  kDeadHandle,
  kNegativeSize,
  kZeroSize,
  kOverflowSize,
  kHugeSizeNullPointer,
  kUnknownDtype,
  kUnknownParamDtype,
  kMismatchedParamDtype,
  kUnknownLayout,
  kUnknownMode,
  kNullPointer,
  kMisalignedPointer,
  kBadEps,
  kBadMomentum,
  kHalfRunningPair,
  kOneValuePerChannel,
  kOverlap,
  kSmallWorkspace,
  kNullCalib,
  kForeignCalib,
  kUnseenCalib,
  kEmptyBatch,
  kInPlace,
};
constexpr int kMutationCount = 24;

struct Expectation {
  cunormStatus_t status = CUNORM_STATUS_INVALID_VALUE;
  std::vector<std::string> fragments;  // the message contains each
  bool handle_rejected = false;        // the message is the thread's (cunormGetLastErrorMessage(NULL))
  bool writes = false;                 // a valid call that may write its outputs
};

template <class T>
T pick(std::mt19937_64& rng, std::initializer_list<T> values) {
  return *(values.begin() + std::uniform_int_distribution<std::size_t>(0, values.size() - 1)(rng));
}

int64_t uniform(std::mt19937_64& rng, int64_t low, int64_t high) {
  return std::uniform_int_distribution<int64_t>(low, high)(rng);
}

bool coin(std::mt19937_64& rng, double p = 0.5) { return std::bernoulli_distribution(p)(rng); }

std::string float_text(float v) { return std::isnan(v) ? "NaN" : std::to_string(v); }

// The sizes an entry takes: name, member, whether 0 is allowed.
struct SizeArg {
  const char* name;
  int64_t Args::*member;
  bool zero_allowed;
};

std::vector<SizeArg> size_args(Entry entry) {
  if (is_row_norm(entry)) return {{"rows", &Args::rows, true}, {"cols", &Args::cols, false}};
  if (is_batch_norm(entry)) return {{"n", &Args::n, true}, {"c", &Args::c, false}, {"s", &Args::s, true}};
  if (entry == Entry::kCalibrationCreate) return {{"c", &Args::c, false}};
  if (entry == Entry::kCalibrationAccumulate) return {{"n", &Args::n, true}, {"s", &Args::s, true}};
  return {};
}

bool has_dtype(Entry entry) {
  return is_row_norm(entry) || is_batch_norm(entry) || entry == Entry::kCalibrationAccumulate;
}
bool has_layout(Entry entry) { return is_batch_norm(entry) || entry == Entry::kCalibrationAccumulate; }
bool has_calib(Entry entry) {
  return entry == Entry::kCalibrationAccumulate || entry == Entry::kCalibrationFinalize ||
         entry == Entry::kCalibrationDestroy;
}
bool is_training(Entry entry) {
  return entry == Entry::kBatchNormForwardTraining || entry == Entry::kBatchNormForwardTrainingEx;
}
const char* in_place_output(Entry entry) {
  switch (entry) {
    case Entry::kLayerNormForward:
    case Entry::kRmsNormForward:
    case Entry::kBatchNormForwardTraining:
    case Entry::kBatchNormForwardTrainingEx:
    case Entry::kBatchNormForwardInference: return "y";
    case Entry::kLayerNormBackward:
    case Entry::kRmsNormBackward:
    case Entry::kBatchNormBackward:
    case Entry::kBatchNormBackwardInference: return "dx";
    default: return nullptr;
  }
}

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

  // Applies `m` to the valid call `a` if it applies to this entry and call; returns false if not.
  bool mutate(Mutation m, Entry entry, Args* a, int64_t calib_c, std::mt19937_64& rng, Expectation* ex,
              std::string* what) {
    const std::vector<PointerArg> pointers = pointer_args(entry, *a, calib_c);
    const std::vector<SizeArg> sizes = size_args(entry);
    switch (m) {
      case Mutation::kNullHandle:
      case Mutation::kDeadHandle:
        a->handle = m == Mutation::kNullHandle ? nullptr : dead_;
        ex->handle_rejected = true;
        ex->fragments = {m == Mutation::kNullHandle ? "handle must not be NULL" : "handle is not a live cunorm handle"};
        *what = m == Mutation::kNullHandle ? "NULL handle" : "destroyed handle";
        return true;
      case Mutation::kNegativeSize:
      case Mutation::kZeroSize: {
        std::vector<SizeArg> candidates;
        for (const SizeArg& s : sizes) {
          if (m == Mutation::kNegativeSize || !s.zero_allowed) candidates.push_back(s);
        }
        if (candidates.empty()) return false;
        const SizeArg& s =
            candidates[static_cast<std::size_t>(uniform(rng, 0, static_cast<int64_t>(candidates.size()) - 1))];
        const int64_t value = m == Mutation::kZeroSize ? 0
                              : coin(rng)              ? -uniform(rng, 1, 3)
                                                       : -uniform(rng, 4, std::numeric_limits<int64_t>::max());
        a->*s.member = value;
        ex->fragments = {std::string(s.name) + (s.zero_allowed ? " must be >= 0, got " : " must be > 0, got ") +
                         std::to_string(value)};
        *what = std::string(s.name) + " = " + std::to_string(value);
        return true;
      }
      case Mutation::kOverflowSize:
        if (is_row_norm(entry)) {
          a->rows = (int64_t{1} << 40) + uniform(rng, 0, 1000);
          a->cols = int64_t{1} << 40;
          ex->fragments = {"rows * cols is too large"};
        } else if (is_batch_norm(entry) || entry == Entry::kCalibrationAccumulate) {
          a->n = int64_t{1} << 22;
          a->c = (int64_t{1} << 21) + uniform(rng, 0, 1000);
          a->s = int64_t{1} << 42;
          ex->fragments = {"n * c * s is too large"};
        } else if (entry == Entry::kCalibrationCreate) {  // accumulators that cannot exist
          a->c = (int64_t{1} << 61) + uniform(rng, 0, 1000);
          ex->status = CUNORM_STATUS_ALLOC_FAILED;
          ex->fragments = {"c = " + std::to_string(a->c)};
        } else {
          return false;
        }
        *what = "sizes overflowing 63 bits of bytes";
        return true;
      case Mutation::kHugeSizeNullPointer: {
        // Sizes whose bytes fit but that were never allocated: the NULL pointer must be found
        // before anything is touched.
        std::vector<const PointerArg*> required;
        for (const PointerArg& p : pointers) {
          if (p.nullable != Nullable::kYes) required.push_back(&p);
        }
        if (required.empty()) return false;
        const PointerArg& p =
            *required[static_cast<std::size_t>(uniform(rng, 0, static_cast<int64_t>(required.size()) - 1))];
        if (is_row_norm(entry)) {
          a->rows = (int64_t{1} << 31) + uniform(rng, 0, 1000);
          a->cols = int64_t{1} << 20;
        } else if (is_batch_norm(entry) || entry == Entry::kCalibrationAccumulate) {
          a->n = (int64_t{1} << 20) + uniform(rng, 0, 1000);
          if (is_batch_norm(entry)) a->c = int64_t{1} << 10;
          a->s = int64_t{1} << 20;
        } else if (entry == Entry::kCalibrationCreate) {
          a->c = int64_t{1} << 40;
        } else {
          return false;
        }
        a->*p.member = nullptr;
        ex->fragments = {std::string(p.name) + " must not be NULL"};
        *what = std::string("huge sizes and ") + p.name + " NULL";
        return true;
      }
      case Mutation::kUnknownDtype:
      case Mutation::kUnknownParamDtype: {
        const bool param = m == Mutation::kUnknownParamDtype;
        if (!has_dtype(entry) || (param && entry == Entry::kCalibrationAccumulate)) return false;
        const int value = pick(rng, {3, 4, -1, 255, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()});
        (param ? a->param : a->dtype) = value;
        ex->fragments = {std::string(param ? "param_dtype" : "dtype") +
                         " must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got " + std::to_string(value)};
        *what = std::string(param ? "param_dtype" : "dtype") + " = " + std::to_string(value);
        return true;
      }
      case Mutation::kMismatchedParamDtype:
        if (!is_row_norm(entry) && !is_batch_norm(entry)) return false;
        a->param = a->dtype == CUNORM_FLOAT16    ? CUNORM_BFLOAT16
                   : a->dtype == CUNORM_BFLOAT16 ? CUNORM_FLOAT16
                                                 : pick(rng, {CUNORM_FLOAT16, CUNORM_BFLOAT16});
        ex->fragments = {"param_dtype must be CUNORM_FLOAT32 or equal to dtype"};
        *what = "param_dtype neither float32 nor dtype";
        return true;
      case Mutation::kUnknownLayout:
        if (!has_layout(entry)) return false;
        a->layout = pick(rng, {2, -1, 7, std::numeric_limits<int>::max()});
        ex->fragments = {"layout must be CUNORM_LAYOUT_NCHW or CUNORM_LAYOUT_NHWC, got " + std::to_string(a->layout)};
        *what = "layout = " + std::to_string(a->layout);
        return true;
      case Mutation::kUnknownMode:
        if (entry != Entry::kBatchNormForwardTrainingEx) return false;
        a->mode = pick(rng, {2, -1, 100});
        ex->fragments = {"running_var_mode must be CUNORM_RUNNING_VAR_UNBIASED or CUNORM_RUNNING_VAR_BIASED, got " +
                         std::to_string(a->mode)};
        *what = "running_var_mode = " + std::to_string(a->mode);
        return true;
      case Mutation::kNullPointer:
      case Mutation::kMisalignedPointer: {
        const bool null = m == Mutation::kNullPointer;
        std::vector<const PointerArg*> candidates;
        for (const PointerArg& p : pointers) {
          if (null ? p.nullable != Nullable::kYes : (a->*p.member != nullptr && p.element_bytes > 1)) {
            candidates.push_back(&p);
          }
        }
        if (candidates.empty()) return false;
        const PointerArg& p =
            *candidates[static_cast<std::size_t>(uniform(rng, 0, static_cast<int64_t>(candidates.size()) - 1))];
        if (null) {
          a->*p.member = nullptr;
          ex->fragments = {std::string(p.name) + " must not be NULL"};
        } else {
          a->*p.member = static_cast<char*>(a->*p.member) + uniform(rng, 1, static_cast<int64_t>(p.element_bytes) - 1);
          ex->fragments = {std::string(p.name) + " must be aligned to its " + std::to_string(p.element_bytes) +
                           "-byte elements"};
        }
        *what = std::string(p.name) + (null ? " NULL" : " misaligned");
        return true;
      }
      case Mutation::kBadEps:
        if (!has_eps(entry)) return false;
        a->eps = pick(rng, {-1e-5f, -1.0f, -std::numeric_limits<float>::infinity(), std::nanf("")});
        ex->fragments = {"eps must be >= 0 and not NaN, got " + float_text(a->eps)};
        *what = "eps = " + float_text(a->eps);
        return true;
      case Mutation::kBadMomentum:
        if (!is_training(entry)) return false;
        a->momentum = pick(rng, {-0.01f, 1.01f, std::nanf(""), std::numeric_limits<float>::infinity(),
                                 -std::numeric_limits<float>::infinity()});
        ex->fragments = {"momentum must be in [0, 1] and not NaN, got " + float_text(a->momentum)};
        *what = "momentum = " + float_text(a->momentum);
        return true;
      case Mutation::kHalfRunningPair:
        if (!is_training(entry) || a->running_mean == nullptr) return false;
        (coin(rng) ? a->running_mean : a->running_var) = nullptr;
        ex->fragments = {"running_mean and running_var must be both NULL or both given"};
        *what = "one running statistic NULL";
        return true;
      case Mutation::kOneValuePerChannel:
        if (!needs_two_values(entry)) return false;
        a->n = 1;
        a->s = 1;
        ex->fragments = {"Expected more than 1 value per channel when training, got input size (n, c, s) = (1, " +
                         std::to_string(a->c) + ", 1)"};
        *what = "n = s = 1 in training";
        return true;
      case Mutation::kOverlap: {
        std::vector<std::pair<std::size_t, std::size_t>> pairs;  // (output, other) indices
        for (std::size_t o = 0; o < pointers.size(); ++o) {
          for (std::size_t b = 0; b < pointers.size(); ++b) {
            if (o != b && pointers[o].output && a->*pointers[o].member != nullptr &&
                a->*pointers[b].member != nullptr && pointers[o].bytes() > 0 &&
                pointers[b].bytes() >= pointers[o].element_bytes) {
              pairs.emplace_back(o, b);
            }
          }
        }
        if (pairs.empty()) return false;
        const auto [o, b] = pairs[static_cast<std::size_t>(uniform(rng, 0, static_cast<int64_t>(pairs.size()) - 1))];
        const PointerArg &out = pointers[o], &other = pointers[b];
        const int64_t slots = static_cast<int64_t>(other.bytes() / out.element_bytes);
        int64_t at = uniform(rng, 0, slots - 1);
        const bool allowed =
            out.may_equal != nullptr && std::strcmp(out.may_equal, other.name) == 0 && out.bytes() == other.bytes();
        if (allowed && at == 0) {
          if (slots == 1) return false;
          at = 1;  // exact equality is the allowed in-place form
        }
        a->*out.member = static_cast<char*>(a->*other.member) + at * static_cast<int64_t>(out.element_bytes);
        // The later of the two in registration order (inputs, then outputs, left to right) is reported.
        ex->fragments = {b < o ? std::string(out.name) + " overlaps " + other.name
                               : std::string(other.name) + " overlaps " + out.name};
        *what = std::string(out.name) + " moved " + std::to_string(at) + " elements into " + other.name;
        return true;
      }
      case Mutation::kSmallWorkspace: {
        // Calls that need a workspace need at least 256 bytes (regions are 256-byte multiples):
        // BatchNorm always (per-channel coefficients), row-norm backward when it forms dgamma.
        const bool needs =
            (is_batch_norm(entry) && launches_kernels(entry)) || entry == Entry::kCalibrationAccumulate ||
            ((entry == Entry::kLayerNormBackward || entry == Entry::kRmsNormBackward) && a->dgamma != nullptr);
        if (!needs) return false;
        const std::size_t bytes = static_cast<std::size_t>(uniform(rng, 0, 255));
        EXPECT_EQ(cunormSetWorkspace(handle_, workspace_, bytes), CUNORM_STATUS_SUCCESS);
        ex->status = CUNORM_STATUS_WORKSPACE_TOO_SMALL;
        ex->fragments = {"the workspace set with cunormSetWorkspace has " + std::to_string(bytes) + " bytes"};
        *what = "user workspace of " + std::to_string(bytes) + " bytes";
        return true;
      }
      case Mutation::kNullCalib:
      case Mutation::kForeignCalib:
        if (!has_calib(entry)) return false;
        a->calib = m == Mutation::kNullCalib ? nullptr : foreign_;
        ex->fragments = {m == Mutation::kNullCalib ? "calib must not be NULL"
                                                   : "calib is not a live calibration of this handle"};
        *what = m == Mutation::kNullCalib ? "NULL calib" : "calib of another handle";
        return true;
      case Mutation::kUnseenCalib:
        if (entry != Entry::kCalibrationFinalize) return false;
        a->calib = unseen_;
        ex->fragments = {"calib has seen 0 values per channel"};
        *what = "finalize before any value was seen";
        return true;
      case Mutation::kEmptyBatch:
        if (!launches_kernels(entry)) return false;
        if (is_row_norm(entry)) {
          a->rows = 0;
        } else {
          (coin(rng) ? a->n : a->s) = 0;
        }
        for (const PointerArg& p : pointers) {
          if (p.nullable == Nullable::kWhenEmpty && coin(rng)) a->*p.member = nullptr;
        }
        ex->status = CUNORM_STATUS_SUCCESS;
        *what = "empty batch";
        return true;
      case Mutation::kInPlace: {
        const char* output = in_place_output(entry);
        if (output == nullptr) return false;
        const bool forward = std::strcmp(output, "y") == 0;
        (forward ? a->y : a->dx) = forward ? a->x : a->dy;
        ex->status = CUNORM_STATUS_SUCCESS;
        ex->writes = true;
        *what = forward ? "in place, y == x" : "in place, dx == dy";
        return true;
      }
    }
    return false;
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
    } while (!mutate(m, entry, &a, calib_c, rng, &ex, &what));
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
