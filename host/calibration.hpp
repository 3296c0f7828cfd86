// What a cunormBatchNormCalibration_t points to: the exact population statistics of every batch
// accumulated so far, per channel, in float64 (Chan's merge). A calibration belongs to the handle
// it was created on and is destroyed with it at the latest.
#pragma once

#include <cstdint>
#include <vector>

struct cunormBatchNormCalibration {
  int64_t c = 0;
  int64_t count = 0;  // values seen per channel
  std::vector<double> mean;
  std::vector<double> m2;
};
