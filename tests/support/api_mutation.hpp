// The one-argument breakages of the C API fuzz (tests/api_fuzz_test.cpp): each Mutation turns a
// valid call of an entry point into one that api.md says must fail in a given way (or, for the
// last two, into another valid form), and says what the status and message must be.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "api_calls.hpp"
#include "cunorm/cunorm.h"

namespace cunorm_test {

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

// What the broken call must do.
struct Expectation {
  cunormStatus_t status = CUNORM_STATUS_INVALID_VALUE;
  std::vector<std::string> fragments;  // the message contains each
  bool handle_rejected = false;        // the message is the thread's (cunormGetLastErrorMessage(NULL))
  bool writes = false;                 // a valid call that may write its outputs
};

// What mutations point at: the live handle, a destroyed one, a calibration of another handle, one
// of this handle that has seen no value, and a 256-byte aligned region for a user workspace.
struct MutationTargets {
  cunormHandle_t handle;
  cunormHandle_t dead;
  cunormBatchNormCalibration_t foreign_calib;
  cunormBatchNormCalibration_t unseen_calib;
  void* workspace;
};

template <class T>
T pick(std::mt19937_64& rng, std::initializer_list<T> values) {
  return *(values.begin() + std::uniform_int_distribution<std::size_t>(0, values.size() - 1)(rng));
}

inline int64_t uniform(std::mt19937_64& rng, int64_t low, int64_t high) {
  return std::uniform_int_distribution<int64_t>(low, high)(rng);
}

inline bool coin(std::mt19937_64& rng, double p = 0.5) { return std::bernoulli_distribution(p)(rng); }

bool has_calib(Entry entry);    // the calibration entries that take a calibration
bool is_training(Entry entry);  // the BatchNorm training forwards

// Applies `m` to the valid call `a` (calib_c: the channels of a.calib) if it applies to this entry
// and call, filling *ex and a description; returns false if it does not apply.
bool mutate(Mutation m, Entry entry, Args* a, int64_t calib_c, const MutationTargets& targets, std::mt19937_64& rng,
            Expectation* ex, std::string* what);

}  // namespace cunorm_test
