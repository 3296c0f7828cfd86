// The benchmark's op groups, each validating every op against the float64 reference before it
// reports it (a failed validation ends the program).
#pragma once

#include "bench_support.hpp"

namespace bench {

// LayerNorm and RMSNorm forward and backward: row lengths 32 to 262144 at a fixed total size,
// odd lengths, and rows >> cols, in every dtype pair.
void run_row_norm_benchmarks(Report& report);

// BatchNorm training and inference forward and both backwards on ResNet-50's layer shapes, NCHW
// and NHWC, float32 and float16 activations, beside cuDNN where it was built in.
void run_batch_norm_benchmarks(Report& report);

}  // namespace bench
