// One BatchNorm problem for the tests: seeded (N, C, S) inputs of a layout and dtype pair, runs of
// every BatchNorm entry point through the C API, and their comparison with the float64 reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "dtype_pair.hpp"
#include "host_array.hpp"

namespace cunorm_test {

struct TrainingResult {
  HostArray y;
  std::vector<float> saved_mean, saved_invstd, running_mean, running_var;
};

struct GradientResult {
  HostArray dx;
  HostArray dgamma;  // empty when not requested
  HostArray dbeta;   // empty when not requested
};

// Running statistics given to and returned by the training forward.
struct RunningStatistics {
  std::vector<float> mean;
  std::vector<float> var;
};
// c seeded channels: means uniform in [-1, 1), variances in [0.5, 2).
RunningStatistics random_running(int64_t c, uint64_t seed);

class BatchNormCase {
 public:
  // x: per channel a mean in [-2, 2) and a spread in [0.5, 1.5), times `scale`, plus `offset`;
  // dy uniform in [-1, 1); gamma in [0.5, 1.5), beta in [-0.5, 0.5) when affine.
  BatchNormCase(cunormLayout_t layout, DtypePair dtypes, int64_t n, int64_t c, int64_t s, bool affine, float eps,
                uint64_t seed, double offset = 0.0, double scale = 1.0);

  std::string label() const;
  // On SIMT, the launches' records carry each buffer's traffic under its argument name.
  TrainingResult training(cunormHandle_t handle, float momentum, cunormRunningVarMode_t mode,
                          const RunningStatistics* running) const;
  HostArray inference(cunormHandle_t handle, const RunningStatistics& running) const;
  GradientResult backward(cunormHandle_t handle, const std::vector<float>& saved_mean,
                          const std::vector<float>& saved_invstd, bool want_dgamma, bool want_dbeta) const;
  GradientResult backward_inference(cunormHandle_t handle, const RunningStatistics& running, bool want_dgamma,
                                    bool want_dbeta) const;

  void expect_training_matches_reference(float momentum, cunormRunningVarMode_t mode, const RunningStatistics* before,
                                         const TrainingResult& result) const;
  void expect_inference_matches_reference(const RunningStatistics& running, const HostArray& y) const;
  void expect_backward_matches_reference(const std::vector<float>& saved_mean, const std::vector<float>& saved_invstd,
                                         const GradientResult& result) const;
  void expect_backward_inference_matches_reference(const RunningStatistics& running,
                                                   const GradientResult& result) const;

  cunormLayout_t layout;
  DtypePair dtypes;
  int64_t n, c, s;
  bool affine;
  float eps;
  HostArray x, dy, gamma, beta;
};

}  // namespace cunorm_test
