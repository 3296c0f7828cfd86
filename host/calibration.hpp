// What a cunormBatchNormCalibration_t points to: the exact population statistics of every batch
// accumulated so far, per channel, in float64 (Chan's merge). A calibration belongs to the handle
// it was created on and is destroyed with it at the latest. All its host memory is allocated when
// it is created.
#pragma once

#include <cstdint>
#include <vector>

struct cunormBatchNormCalibration {
  int64_t c = 0;
  int64_t count = 0;  // values seen per channel
  std::vector<double> mean;
  std::vector<double> m2;
  std::vector<float> batch;  // 2 x c: a batch's (mean, M2) copied from the device, held so that an
                             // accumulate allocates nothing
};
