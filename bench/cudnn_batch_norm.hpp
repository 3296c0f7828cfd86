// cuDNN's BatchNorm (cudnnBatchNormalizationForwardTrainingEx and BackwardEx), timed on the same
// inputs as cunorm's for the side-by-side columns. Built from cudnn_batch_norm.cpp (which loads
// cuDNN at run time) when CMake finds cudnn.h beside the CUDA toolkit, otherwise from
// cudnn_batch_norm_absent.cpp, which times nothing.
#pragma once

#include <cstddef>
#include <string>

#include "bench_support.hpp"

namespace bench {

// The inputs cuDNN reads: x and dy in `copies` rotating copies of `tensor_bytes` each, float32
// gamma and beta. cuDNN writes into buffers of its own.
struct CudnnBatchNormInputs {
  cunormLayout_t layout;
  int64_t n, c, h, w;
  cunormDataType_t dtype;  // float32 or float16 activations; parameters are float32
  const DeviceBuffer* x;
  const DeviceBuffer* dy;
  std::size_t tensor_bytes;
  int copies;
  const void* gamma;
  const void* beta;
};

enum class CudnnBatchNormPass { kForwardTraining, kBackward };

// "cuDNN <version> loaded at run time" when it loads, otherwise why it is absent.
std::string cudnn_description();

// The median milliseconds of cuDNN's pass (the faster of its SPATIAL and SPATIAL_PERSISTENT
// modes, eps 1e-5, momentum 0.1), timed like cunorm's ops; 0 when cuDNN is absent.
double cudnn_batch_norm_ms(CudnnBatchNormPass pass, const CudnnBatchNormInputs& inputs);

}  // namespace bench
