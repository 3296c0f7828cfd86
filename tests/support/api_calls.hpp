// Every compute and query entry point of the C API behind one argument record, with the list of
// its pointer arguments in argument order (name, element size, count, input or output, whether
// NULL is allowed, the one input an output may equal). The fuzz tests build random calls from it
// and know which argument a failure must name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cunorm/cunorm.h"

namespace cunorm_test {

enum class Entry {
  kLayerNormForward,
  kLayerNormBackward,
  kRmsNormForward,
  kRmsNormBackward,
  kLayerNormWorkspaceSize,
  kBatchNormForwardTraining,
  kBatchNormForwardTrainingEx,
  kBatchNormForwardInference,
  kBatchNormBackward,
  kBatchNormBackwardInference,
  kBatchNormWorkspaceSize,
  kCalibrationCreate,
  kCalibrationAccumulate,
  kCalibrationFinalize,
  kCalibrationDestroy,
};
constexpr int kEntryCount = 15;

const char* entry_name(Entry entry);
bool is_row_norm(Entry entry);       // rows, cols and the dtype pair
bool is_batch_norm(Entry entry);     // layout, n, c, s and the dtype pair
bool launches_kernels(Entry entry);  // a non-empty valid call runs kernels
bool has_eps(Entry entry);
bool needs_two_values(Entry entry);  // BatchNorm training forward and backward: M == 1 is invalid

// Every argument any entry takes; enums as int so that unknown values can be passed.
struct Args {
  cunormHandle_t handle = nullptr;
  int64_t rows = 0, cols = 0;
  int layout = 0;
  int64_t n = 0, c = 0, s = 0;
  int dtype = 0, param = 0, mode = 0;
  float eps = 0.0f, momentum = 0.0f;
  cunormBatchNormCalibration_t calib = nullptr;
  void *x = nullptr, *dy = nullptr, *gamma = nullptr, *beta = nullptr;
  void *mean = nullptr, *rstd = nullptr, *rrms = nullptr;  // row norms: forward outputs, backward inputs
  void *running_mean = nullptr, *running_var = nullptr, *saved_mean = nullptr, *saved_invstd = nullptr;
  void *y = nullptr, *dx = nullptr, *dgamma = nullptr, *dbeta = nullptr;
  void* bytes = nullptr;      // size_t* of the workspace queries
  void* calib_out = nullptr;  // cunormBatchNormCalibration_t* of CalibrationCreate
};

cunormStatus_t call(Entry entry, const Args& args);

enum class Nullable { kNo, kYes, kWhenEmpty };  // kWhenEmpty: NULL allowed for an empty batch

struct PointerArg {
  const char* name;
  void* Args::*member;
  std::size_t element_bytes;
  int64_t count;  // elements (0 for an empty batch)
  bool output;
  Nullable nullable;
  const char* may_equal;  // the input this output may be exactly (y == x, dx == dy), or nullptr
  std::size_t bytes() const { return element_bytes * static_cast<std::size_t>(count); }
};

// The pointer arguments of `entry` in argument order, sized from args (calib_c: the channels of
// args.calib for the calibration entries).
std::vector<PointerArg> pointer_args(Entry entry, const Args& args, int64_t calib_c);

}  // namespace cunorm_test
