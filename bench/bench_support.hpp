// What every part of the benchmark shares: the handle and the GPU facts measured at start, checked
// calls (a failed call ends the program with the reason: the benchmark is a program, not the
// library), a progress line, device buffers, the timing loop (CUDA events, L2 flushed before each
// run, inputs rotated among copies), validation against the reference, the SIMT traffic of a call
// (what a GPU would take from DRAM apart from what it re-reads from L2), and the result rows it
// prints and writes as JSON lines for tools/performance_doc.py.
#pragma once

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "cunorm/reference.hpp"
#include "simt/launch.hpp"
#include "support/host_array.hpp"

namespace bench {

using cunorm_test::element_size;
using cunorm_test::HostArray;

// Set up by main(): the handle every op runs on and, on a GPU, the facts the timings need.
struct Machine {
  cunormHandle_t handle = nullptr;
  // SIMT: a second handle, created under a record-only simt::LaunchRecorder, that plans as for the
  // GPU the engine models (sm_90: an H100 SXM), cooperative grids included. Its launches are
  // recorded, not run, while a record-only recorder is active (plan_at_gpu_shape): each row's
  // launch plan at its GPU shape, for the performance model.
  cunormHandle_t plan_handle = nullptr;
  bool on_gpu = false;
  cudaStream_t stream = nullptr;
  double copy_gbps = 0.0;    // device-to-device copy, read + write bytes per second / 10^9
  std::size_t l2_bytes = 0;  // flushed before every timed run
};
extern Machine machine;

// A failed call prints `what` with the status and `handle`'s last error message, and ends the program.
void check(cunormStatus_t status, const char* what, cunormHandle_t handle = machine.handle);
void check(cudaError_t error, const char* what);

// A progress line on a terminal, rewritten in place while a long step runs; nothing when stderr
// is a file or pipe (the numbered rows show the progress there).
void progress(const std::string& what);
void end_progress();

// Memory from cunormMalloc: device memory on a GPU, host memory on the SIMT engine.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes, cunormHandle_t handle = machine.handle);
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
  cunormHandle_t handle_;
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

// The activation and parameter types of a benchmark row, and its label ("f16/f32").
struct DtypePair {
  cunormDataType_t dtype, param;
  const char* label;
};

// An op's DRAM floor in bytes: activation tensors read or written once, and the per-row or
// per-channel terms (parameters, their gradients, statistics) moved once.
struct Floor {
  double activations = 0.0;
  double other = 0.0;
  double total() const { return activations + other; }
};

// A call's result against the float64 reference: the values compared, those outside the
// tolerance, and the largest error as a fraction of what the tolerance allows at that value.
struct Validation {
  std::size_t values = 0;
  std::size_t outside = 0;
  double worst = 0.0;  // max over values of |actual - expected| / allowed (NaN where not NaN: inf)
  void add(double actual, double expected, double allowed);
  void add(double actual, double expected, const cunorm::reference::Tolerance& tolerance, double slack = 0.0) {
    add(actual, expected, tolerance.allowed(expected) + slack);
  }
};

// What the SIMT engine saw one watched buffer of a call do, over all the call's launches.
struct BufferUse {
  std::string name;
  bool activation = false;  // x, dy or the output: in the floor once each
  double bytes = 0.0;       // the buffer's size
  double gpu_bytes = 0.0;   // its size at the row's GPU shape (plan_at_gpu_shape)
  double requested = 0.0;   // bytes read and written through the kernels' accessors
  double dram = 0.0;        // bytes of its distinct 32-byte sectors read from DRAM and written back
};

// One result row: the op and shape, its floor, and either GPU times or SIMT traffic. On the SIMT
// engine, shapes are smaller than a GPU run's; gpu_* describe the shape a GPU run measures, for
// the time the traffic implies there (tools/performance_doc.py).
struct Row {
  std::string op, layout, dtypes, shape, gpu_shape;
  double elements = 0.0, gpu_elements = 0.0;
  Floor floor, gpu_floor;
  Validation validation;
  double ms = 0.0;        // GPU: median time of the op
  double cudnn_ms = 0.0;  // GPU: cuDNN's median time for the same op, 0 when not compared
  // SIMT: every buffer of the call (activations first), the call's first kernel with its plan
  // (variant, dtypes, launch parameters) and how many launches the call made.
  std::vector<BufferUse> buffers;
  std::string kernel;
  std::size_t launches = 0;
  // SIMT: each launch of the call with the bytes it requested of each buffer and of those the
  // bytes it read; and the launch plan at the GPU shape (plan_at_gpu_shape).
  struct LaunchUse {
    std::string label;
    std::vector<double> buffers;       // bytes requested of each of `buffers` (the row's), in order
    std::vector<double> buffers_read;  // of those, the bytes read
  };
  std::vector<LaunchUse> launch_uses;
  struct PlannedLaunch {
    std::string label;
    std::string object;     // the shared object holding the kernel's host-compiled code
    std::uintptr_t offset;  // the kernel's address in it: its symbol there is the kernel's mangled name
    dim3 grid, block;
    std::size_t dynamic_shared_bytes;
    bool cooperative;
  };
  std::vector<PlannedLaunch> gpu_plan;

  // SIMT, in bytes over the call: requested of the activations and of everything else; what a
  // GPU moves to and from DRAM (the activations as requested; of every other buffer, the sectors
  // the call reads before writing them, once, and those it writes, once: simt::TrafficWatch's
  // footprint); and what the other buffers request beyond that (parameters re-read by each block,
  // partial states read back), which a GPU serves from L2. The model assumes that what the call
  // writes and reads back stays in L2, true of the partial states at the benchmark's shapes.
  double requested_activations() const;
  double requested_other() const;
  double dram() const;
  double l2_rereads() const;
  // "at floor", or how many times the floor the DRAM estimate is and what takes it there.
  std::string verdict() const;
};

// Buffers of a problem for the SIMT engine to watch: name, address, bytes.
using Watched = std::vector<simt::TrafficWatch::Buffer>;

// Fills row.buffers, row.kernel and row.launches from one call's launches (nothing on a GPU).
void record_traffic(const simt::LaunchRecorder& recorder, const simt::TrafficWatch& watch, std::size_t activations,
                    Row& row);

// SIMT: row.gpu_plan from `call(machine.plan_handle)`, the row's call at its GPU shape on buffers
// of that handle (recorded, not run), and each of row.buffers' size at that shape from
// `gpu_bytes` (by name; "workspace" included). A launch the GPU would refuse, or a buffer without
// a size, ends the program.
void plan_at_gpu_shape(const std::function<void(cunormHandle_t)>& call, const std::map<std::string, double>& gpu_bytes,
                       Row& row);

// The sizes every op's buffers share, by name: x, dy, y and dx of `tensor` bytes, gamma, beta,
// dgamma and dbeta of `params` bytes (plan_at_gpu_shape's gpu_bytes, before the op's own).
std::map<std::string, double> tensor_and_parameter_bytes(std::size_t tensor, std::size_t params);

// Reports a failed validation of `row`'s op and shape and ends the program.
[[noreturn]] void fail_validation(const Row& row);

// Runs `problem` once while the SIMT engine watches its buffers, validates that run (a failure
// ends the program), then times it on a GPU or keeps its traffic. Every call runs with a
// workspace of the problem's own (workspace_bytes(), watched as "workspace").
template <class Problem>
void validate_and_measure(Problem& problem, Row& row) {
  const std::size_t workspace_bytes = problem.workspace_bytes();
  DeviceBuffer workspace(workspace_bytes);
  check(cunormSetWorkspace(machine.handle, workspace.get(), workspace_bytes), "cunormSetWorkspace");
  const Watched activations = problem.activations();
  Watched watched = activations;
  for (const simt::TrafficWatch::Buffer& b : problem.others()) watched.push_back(b);
  watched.push_back({"workspace", workspace.get(), workspace_bytes});
  {
    simt::LaunchRecorder recorder;
    const simt::TrafficWatch watch(watched);
    problem.run(0);
    record_traffic(recorder, watch, activations.size(), row);
  }
  row.validation = problem.validate();
  if (row.validation.outside != 0) fail_validation(row);
  if (machine.on_gpu) row.ms = median_ms([&](int copy) { problem.run(copy); }, problem.copies);
  check(cunormSetWorkspace(machine.handle, nullptr, 0), "cunormSetWorkspace");
}

// Prints rows as a table on stdout, numbered [k/total] within their group as they complete (the
// progress, whatever stdout is), and, when given a file, as one JSON object per line.
class Report {
 public:
  explicit Report(std::FILE* json) : json_(json) {}
  void header(const char* title, bool with_cudnn, std::size_t rows);
  void add(const Row& row);

 private:
  std::FILE* json_;
  std::size_t done_ = 0, rows_ = 0;
  bool with_cudnn_ = false;
};

}  // namespace bench
