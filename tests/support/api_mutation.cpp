// The C API fuzz's mutations (see api_mutation.hpp).
#include "api_mutation.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "host_array.hpp"

namespace cunorm_test {
namespace {

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

}  // namespace

bool has_calib(Entry entry) {
  return entry == Entry::kCalibrationAccumulate || entry == Entry::kCalibrationFinalize ||
         entry == Entry::kCalibrationDestroy;
}

bool is_training(Entry entry) {
  return entry == Entry::kBatchNormForwardTraining || entry == Entry::kBatchNormForwardTrainingEx;
}

bool mutate(Mutation m, Entry entry, Args* a, int64_t calib_c, const MutationTargets& targets, std::mt19937_64& rng,
            Expectation* ex, std::string* what) {
  const std::vector<PointerArg> pointers = pointer_args(entry, *a, calib_c);
  const std::vector<SizeArg> sizes = size_args(entry);
  switch (m) {
    case Mutation::kNullHandle:
    case Mutation::kDeadHandle:
      a->handle = m == Mutation::kNullHandle ? nullptr : targets.dead;
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
    case Mutation::kOverflowSize: {
      // The tensor's bytes, or, in an empty batch (whose tensor has none), the parameters' or the
      // per-channel statistics' bytes overflow 63 bits.
      const bool empty = (is_row_norm(entry) || is_batch_norm(entry)) && coin(rng);
      const int64_t max = std::numeric_limits<int64_t>::max();
      if (is_row_norm(entry) && empty) {
        a->rows = 0;
        a->cols =
            uniform(rng, max / static_cast<int64_t>(element_size(static_cast<cunormDataType_t>(a->param))) + 1, max);
        ex->fragments = {"cols is too large", "got cols = " + std::to_string(a->cols)};
      } else if (is_row_norm(entry)) {
        a->rows = (int64_t{1} << 40) + uniform(rng, 0, 1000);
        a->cols = int64_t{1} << 40;
        ex->fragments = {"rows * cols is too large"};
      } else if (is_batch_norm(entry) && empty) {
        (coin(rng) ? a->n : a->s) = 0;
        a->c = uniform(rng, max / 4 + 1, max);  // float statistics per channel
        ex->fragments = {"c is too large", "got c = " + std::to_string(a->c)};
      } else if (is_batch_norm(entry) || entry == Entry::kCalibrationAccumulate) {
        a->n = int64_t{1} << 22;
        a->c = (int64_t{1} << 21) + uniform(rng, 0, 1000);
        a->s = int64_t{1} << 42;
        ex->fragments = {"n * c * s is too large"};
      } else if (entry == Entry::kCalibrationCreate) {  // float64 accumulators past 63 bits of bytes
        a->c = uniform(rng, max / 8 + 1, max);
        ex->fragments = {"c is too large", "got c = " + std::to_string(a->c)};
      } else {
        return false;
      }
      *what = "sizes overflowing 63 bits of bytes" + std::string(empty ? " in an empty batch" : "");
      return true;
    }
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
          if (o != b && pointers[o].output && a->*pointers[o].member != nullptr && a->*pointers[b].member != nullptr &&
              pointers[o].bytes() > 0 && pointers[b].bytes() >= pointers[o].element_bytes) {
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
      // BatchNorm but its inference forward (per-channel partials or coefficients; the inference
      // computes its coefficients where it uses them), row-norm backward when it forms dgamma.
      const bool needs =
          (is_batch_norm(entry) && launches_kernels(entry) && entry != Entry::kBatchNormForwardInference) ||
          entry == Entry::kCalibrationAccumulate ||
          ((entry == Entry::kLayerNormBackward || entry == Entry::kRmsNormBackward) && a->dgamma != nullptr);
      if (!needs) return false;
      const std::size_t bytes = static_cast<std::size_t>(uniform(rng, 0, 255));
      EXPECT_EQ(cunormSetWorkspace(targets.handle, targets.workspace, bytes), CUNORM_STATUS_SUCCESS);
      ex->status = CUNORM_STATUS_WORKSPACE_TOO_SMALL;
      ex->fragments = {"the workspace set with cunormSetWorkspace has " + std::to_string(bytes) + " bytes"};
      *what = "user workspace of " + std::to_string(bytes) + " bytes";
      return true;
    }
    case Mutation::kNullCalib:
    case Mutation::kForeignCalib:
      if (!has_calib(entry)) return false;
      a->calib = m == Mutation::kNullCalib ? nullptr : targets.foreign_calib;
      ex->fragments = {m == Mutation::kNullCalib ? "calib must not be NULL"
                                                 : "calib is not a live calibration of this handle"};
      *what = m == Mutation::kNullCalib ? "NULL calib" : "calib of another handle";
      return true;
    case Mutation::kUnseenCalib:
      if (entry != Entry::kCalibrationFinalize) return false;
      a->calib = targets.unseen_calib;
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

}  // namespace cunorm_test
