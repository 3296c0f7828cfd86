// What every part of the benchmark shares: the handle and the GPU facts measured at start, checked
// calls (a failed call ends the program with the reason: the benchmark is a program, not the
// library), a progress line, device buffers, the timing loop (CUDA events, L2 flushed before each
// run, inputs rotated among copies), the SIMT traffic of a call, and the result rows it prints and
// writes as JSON lines for tools/performance_doc.py.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>

#include "cunorm/cunorm.h"
#include "simt/launch.hpp"
#include "support/host_array.hpp"

namespace bench {

using cunorm_test::element_size;
using cunorm_test::HostArray;

// Set up by main(): the handle every op runs on and, on a GPU, the facts the timings need.
struct Machine {
  cunormHandle_t handle = nullptr;
  bool on_gpu = false;
  cudaStream_t stream = nullptr;
  double copy_gbps = 0.0;    // device-to-device copy, read + write bytes per second / 10^9
  std::size_t l2_bytes = 0;  // flushed before every timed run
};
extern Machine machine;

void check(cunormStatus_t status, const char* what);
void check(cudaError_t error, const char* what);

// A progress line on a terminal, rewritten in place; nothing when stderr is a file or pipe.
void progress(const std::string& what);
void end_progress();

// Memory from cunormMalloc: device memory on a GPU, host memory on the SIMT engine.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes);
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();
  void* get() const { return pointer_; }
  float* floats() const { return static_cast<float*>(pointer_); }
  // The address of the `index`-th of several equal parts of `part_bytes`.
  void* part(std::size_t index, std::size_t part_bytes) const {
    return static_cast<char*>(pointer_) + index * part_bytes;
  }
  void upload(const HostArray& host, std::size_t copies = 1) const;
  HostArray download(cunormDataType_t dtype, std::size_t count) const;

 private:
  void* pointer_ = nullptr;
};

// How many copies of an input of `bytes` rotate through the timed runs so that no run finds its
// input in L2 (1 on the SIMT engine).
int input_copies(std::size_t bytes);

// Device-to-device copy bandwidth in GB/s (read + write bytes), the ceiling ops are compared with.
double measure_copy_bandwidth();

// Median milliseconds of 30 runs of `run(copy)` on the handle's stream, each after an L2 flush,
// `copy` cycling through 0 .. copies - 1.
double median_ms(const std::function<void(int copy)>& run, int copies);

// An op's DRAM floor in bytes: activation tensors read or written once, and the per-row or
// per-channel terms (parameters, their gradients, statistics) moved once.
struct Floor {
  double activations = 0.0;
  double other = 0.0;
  double total() const { return activations + other; }
};

// One result row: the op and shape, its floor, and either GPU times or SIMT traffic. On the SIMT
// engine, shapes are smaller than a GPU run's; gpu_* describe the shape a GPU run measures, for
// the time the traffic implies there (tools/performance_doc.py).
struct Row {
  std::string op, layout, dtypes, shape, gpu_shape;
  double elements = 0.0, gpu_elements = 0.0;
  Floor floor, gpu_floor;
  double ms = 0.0;                     // GPU: median time of the op
  double cudnn_ms = 0.0;               // GPU: cuDNN's median time for the same op, 0 when not compared
  double requested_activations = 0.0;  // SIMT: bytes the call's kernels requested of x, y, dy, dx
  double requested_other = 0.0;        // SIMT: of every other buffer (parameters, statistics, workspace)
  std::string kernel;                  // SIMT: the call's first kernel and its variant
};

// The SIMT launch records of one call: bytes requested of the buffers a simt::TrafficWatch
// watched during the call (the activations) and of all others, and the first kernel's name.
void record_traffic(const simt::LaunchRecorder& recorder, Row& row);

// Reports a failed validation of `row`'s op and shape and ends the program.
[[noreturn]] void fail_validation(const Row& row, std::size_t bad_values);

// Runs `problem` once while the SIMT engine watches its activations (x, dy and the output),
// validates that run (a failure ends the program), then times it on a GPU or records its traffic.
template <class Problem>
void validate_and_measure(Problem& problem, Row& row) {
  simt::LaunchRecorder recorder;
  const simt::TrafficWatch activations({{"x", problem.d_x.get(), problem.x.byte_size()},
                                         {"dy", problem.d_dy.get(), problem.x.byte_size()},
                                         {"out", problem.d_out.get(), problem.x.byte_size()}});
  problem.run(0);
  const std::size_t bad = problem.validate();
  end_progress();
  if (bad != 0) fail_validation(row, bad);
  if (machine.on_gpu) {
    row.ms = median_ms([&](int copy) { problem.run(copy); }, problem.copies);
  } else {
    record_traffic(recorder, row);
  }
}

// Prints rows as a table on stdout and, when given a file, as one JSON object per line.
class Report {
 public:
  explicit Report(std::FILE* json) : json_(json) {}
  void header(const char* title, bool with_cudnn) const;
  void add(const Row& row) const;

 private:
  std::FILE* json_;
};

}  // namespace bench
