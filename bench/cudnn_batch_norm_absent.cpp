// The benchmark built without cuDNN (no cudnn.h beside the CUDA toolkit): no side-by-side columns.
#include "cudnn_batch_norm.hpp"

namespace bench {

std::string cudnn_description() { return "cudnn.h not found when the benchmark was built: no cuDNN comparison"; }

double cudnn_batch_norm_ms(CudnnBatchNormPass, const CudnnBatchNormInputs&) { return 0.0; }

}  // namespace bench
