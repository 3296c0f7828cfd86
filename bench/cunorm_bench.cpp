// The main job: validate every op against the float64 reference, then measure it.
//
// On a GPU (CUDA backend): each shape is timed with CUDA events over many repetitions, with L2
// flushed before each and the input rotated among copies that together exceed L2; the median is
// reported as ms, GB/s (10^9 bytes/s from the op's byte formula below) and as a percentage of
// the device-to-device copy bandwidth measured at start.
// On the SIMT engine (no GPU): the same validation, then the bytes each op's kernels requested
// per element against the op's floor. CPU emulation time says nothing about GPU speed, so none
// is printed.
#include <cuda_runtime_api.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "cunorm/reference.hpp"
#include "simt/launch.hpp"
#include "support/host_array.hpp"

namespace {

using cunorm_test::element_size;
using cunorm_test::HostArray;

struct DtypePair {
  cunormDataType_t dtype, param;
  const char* label;
};
const DtypePair kDtypes[] = {{CUNORM_FLOAT32, CUNORM_FLOAT32, "f32/f32"},
                             {CUNORM_FLOAT16, CUNORM_FLOAT32, "f16/f32"},
                             {CUNORM_BFLOAT16, CUNORM_BFLOAT16, "bf16/bf16"}};

cunormHandle_t handle = nullptr;
bool on_gpu = false;
cudaStream_t stream = nullptr;
double copy_gbps = 0.0;
std::size_t l2_bytes = 0;

// The benchmark is a program, not the library: a failed call ends it with the reason.
void check(cunormStatus_t status, const char* what) {
  if (status == CUNORM_STATUS_SUCCESS) return;
  std::fprintf(stderr, "\n%s failed: %s: %s\n", what, cunormGetStatusString(status), cunormGetLastErrorMessage(handle));
  std::exit(1);
}
void check(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return;
  std::fprintf(stderr, "\n%s failed: %s\n", what, cudaGetErrorString(error));
  std::exit(1);
}

// A progress line on a terminal, rewritten in place; nothing when stderr is a file or pipe.
const bool progress_shown = isatty(fileno(stderr)) != 0;
void progress(const std::string& what) {
  if (!progress_shown) return;
  std::fprintf(stderr, "\r\033[K... %s", what.c_str());
  std::fflush(stderr);
}
void end_progress() {
  if (progress_shown) std::fprintf(stderr, "\r\033[K");
}

struct DeviceBuffer {
  void* pointer = nullptr;
  explicit DeviceBuffer(std::size_t bytes) { check(cunormMalloc(handle, &pointer, bytes), "cunormMalloc"); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cunormFree(handle, pointer); }
  float* floats() const { return static_cast<float*>(pointer); }
  void upload(const HostArray& host) const {
    check(cunormMemcpyToDevice(handle, pointer, host.data(), host.byte_size()), "cunormMemcpyToDevice");
  }
  HostArray download(cunormDataType_t dtype, std::size_t count) const {
    HostArray host(dtype, count);
    check(cunormMemcpyToHost(handle, host.data(), pointer, host.byte_size()), "cunormMemcpyToHost");
    return host;
  }
};

enum class Op { kLayerNormForward, kLayerNormBackward, kRmsNormForward, kRmsNormBackward };
const char* op_name(Op op) {
  switch (op) {
    case Op::kLayerNormForward: return "layer_norm_forward";
    case Op::kLayerNormBackward: return "layer_norm_backward";
    case Op::kRmsNormForward: return "rms_norm_forward";
    case Op::kRmsNormBackward: return "rms_norm_backward";
  }
  return "?";
}
bool is_layer_norm(Op op) { return op == Op::kLayerNormForward || op == Op::kLayerNormBackward; }
bool is_forward(Op op) { return op == Op::kLayerNormForward || op == Op::kRmsNormForward; }

// The DRAM floor of each op: activations read or written once (forward: x, y; backward: x, dy,
// dx), parameters and their gradients once, per-row statistics once.
double floor_bytes(Op op, int64_t rows, int64_t cols, const DtypePair& d) {
  const double n = static_cast<double>(rows * cols), s = static_cast<double>(element_size(d.dtype));
  const double p = static_cast<double>(cols) * static_cast<double>(element_size(d.param));
  const double stats = static_cast<double>(rows) * (is_layer_norm(op) ? 8.0 : 4.0);
  const double params = is_layer_norm(op) ? 2.0 * p : p;  // gamma (and beta), or dgamma (and dbeta)
  return (is_forward(op) ? 2.0 : 3.0) * n * s + params + stats + (is_forward(op) ? 0.0 : p);
}

// One problem: inputs on the device, the op's call, and its validation against the reference.
struct Problem {
  Op op;
  DtypePair d;
  int64_t rows, cols;
  HostArray x, dy, gamma, beta;
  int copies;  // copies of x and dy, so that repetitions do not find their input in L2
  DeviceBuffer d_x, d_dy, d_gamma, d_beta, d_out, d_mean, d_rstd, d_dgamma, d_dbeta;

  Problem(Op op_, const DtypePair& d_, int64_t rows_, int64_t cols_, int copies_, std::mt19937_64& rng)
      : op(op_),
        d(d_),
        rows(rows_),
        cols(cols_),
        x(d_.dtype, static_cast<std::size_t>(rows_ * cols_)),
        dy(d_.dtype, static_cast<std::size_t>(rows_ * cols_)),
        gamma(d_.param, static_cast<std::size_t>(cols_)),
        beta(d_.param, static_cast<std::size_t>(cols_)),
        copies(copies_),
        d_x(x.byte_size() * static_cast<std::size_t>(copies_)),
        d_dy(x.byte_size() * static_cast<std::size_t>(copies_)),
        d_gamma(gamma.byte_size()),
        d_beta(gamma.byte_size()),
        d_out(x.byte_size()),
        d_mean(static_cast<std::size_t>(rows_) * sizeof(float)),
        d_rstd(static_cast<std::size_t>(rows_) * sizeof(float)),
        d_dgamma(gamma.byte_size()),
        d_dbeta(gamma.byte_size()) {
    x.fill_uniform(rng, -3.0, 3.0);
    dy.fill_uniform(rng, -1.0, 1.0);
    gamma.fill_uniform(rng, 0.5, 1.5);
    beta.fill_uniform(rng, -0.5, 0.5);
    for (int c = 0; c < copies; ++c) {
      check(cunormMemcpyToDevice(handle, static_cast<char*>(d_x.pointer) + c * x.byte_size(), x.data(), x.byte_size()),
            "upload x");
      check(
          cunormMemcpyToDevice(handle, static_cast<char*>(d_dy.pointer) + c * x.byte_size(), dy.data(), x.byte_size()),
          "upload dy");
    }
    d_gamma.upload(gamma);
    d_beta.upload(beta);
    // The backward needs the forward's statistics.
    if (!is_forward(op)) {
      forward_for_statistics();
    }
  }

  void forward_for_statistics() {
    if (is_layer_norm(op)) {
      check(cunormLayerNormForward(handle, rows, cols, d.dtype, d.param, d_x.pointer, d_gamma.pointer, d_beta.pointer,
                                   1e-5f, d_out.pointer, d_mean.floats(), d_rstd.floats()),
            "cunormLayerNormForward");
    } else {
      check(cunormRMSNormForward(handle, rows, cols, d.dtype, d.param, d_x.pointer, d_gamma.pointer, 1e-5f,
                                 d_out.pointer, d_rstd.floats()),
            "cunormRMSNormForward");
    }
  }

  // The op on copy `c` of the inputs.
  void run(int c) {
    const std::size_t shift = static_cast<std::size_t>(c) * x.byte_size();
    const void* xc = static_cast<const char*>(d_x.pointer) + shift;
    const void* dyc = static_cast<const char*>(d_dy.pointer) + shift;
    switch (op) {
      case Op::kLayerNormForward:
        check(cunormLayerNormForward(handle, rows, cols, d.dtype, d.param, xc, d_gamma.pointer, d_beta.pointer, 1e-5f,
                                     d_out.pointer, d_mean.floats(), d_rstd.floats()),
              "cunormLayerNormForward");
        break;
      case Op::kRmsNormForward:
        check(cunormRMSNormForward(handle, rows, cols, d.dtype, d.param, xc, d_gamma.pointer, 1e-5f, d_out.pointer,
                                   d_rstd.floats()),
              "cunormRMSNormForward");
        break;
      case Op::kLayerNormBackward:
        check(cunormLayerNormBackward(handle, rows, cols, d.dtype, d.param, dyc, xc, d_mean.floats(), d_rstd.floats(),
                                      d_gamma.pointer, d_out.pointer, d_dgamma.pointer, d_dbeta.pointer),
              "cunormLayerNormBackward");
        break;
      case Op::kRmsNormBackward:
        check(cunormRMSNormBackward(handle, rows, cols, d.dtype, d.param, dyc, xc, d_rstd.floats(), d_gamma.pointer,
                                    d_out.pointer, d_dgamma.pointer),
              "cunormRMSNormBackward");
        break;
    }
  }

  // Compares up to 64 rows spread over the tensor (and, for the backward, every dgamma/dbeta,
  // which sum over all rows); returns the number of values outside the tolerance.
  std::size_t validate() const {
    const auto tolerance = cunorm::reference::output_tolerance(d.dtype);
    const HostArray out = d_out.download(d.dtype, x.count());
    const HostArray rstd = d_rstd.download(CUNORM_FLOAT32, static_cast<std::size_t>(rows));
    const HostArray mean = d_mean.download(CUNORM_FLOAT32, static_cast<std::size_t>(rows));
    const std::vector<double> gs = gamma.to_doubles(), bs = beta.to_doubles();
    const int64_t step = std::max<int64_t>(1, rows / 64);
    const std::size_t n = static_cast<std::size_t>(cols);
    std::vector<double> xr(n), dyr(n), ref(n), dg(n), db(n), dg_sum(n, 0.0), db_sum(n, 0.0);
    std::size_t bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const bool sampled = r % step == 0;
      if (!sampled && is_forward(op)) continue;
      for (std::size_t j = 0; j < n; ++j) {
        xr[j] = x.get(static_cast<std::size_t>(r) * n + j);
        dyr[j] = dy.get(static_cast<std::size_t>(r) * n + j);
      }
      const float m = static_cast<float>(mean.get(static_cast<std::size_t>(r)));
      const float s = static_cast<float>(rstd.get(static_cast<std::size_t>(r)));
      switch (op) {
        case Op::kLayerNormForward:
          cunorm::reference::layer_norm_forward(1, cols, xr.data(), gs.data(), bs.data(), 1e-5, ref.data(),
                                                static_cast<double*>(nullptr), static_cast<double*>(nullptr));
          break;
        case Op::kRmsNormForward:
          cunorm::reference::rms_norm_forward(1, cols, xr.data(), gs.data(), 1e-5, ref.data(),
                                              static_cast<double*>(nullptr));
          break;
        case Op::kLayerNormBackward:
          cunorm::reference::layer_norm_backward(1, cols, dyr.data(), xr.data(), &m, &s, gs.data(), ref.data(),
                                                 dg.data(), db.data());
          break;
        case Op::kRmsNormBackward:
          cunorm::reference::rms_norm_backward(1, cols, dyr.data(), xr.data(), &s, gs.data(), ref.data(), dg.data());
          break;
      }
      if (!is_forward(op)) {
        for (std::size_t j = 0; j < n; ++j) {
          dg_sum[j] += dg[j];
          db_sum[j] += is_layer_norm(op) ? db[j] : 0.0;
        }
      }
      if (!sampled) continue;
      for (std::size_t j = 0; j < n; ++j)
        bad += !tolerance.accepts(out.get(static_cast<std::size_t>(r) * n + j), ref[j]);
    }
    if (!is_forward(op)) {
      // Float32 sums over `rows` terms: within (rows + 8) 2^-23 of the sum of |terms| (here
      // bounded by rows * max|dy| * max|xhat| <= rows * 1 * 8) on top of the parameter rounding.
      const auto param_tolerance = cunorm::reference::output_tolerance(d.param);
      const double slack = (static_cast<double>(rows) + 8.0) * 1.2e-7 * static_cast<double>(rows) * 8.0;
      const HostArray dgamma = d_dgamma.download(d.param, n), dbeta = d_dbeta.download(d.param, n);
      for (std::size_t j = 0; j < n; ++j) {
        bad += std::abs(dgamma.get(j) - dg_sum[j]) >
               slack + param_tolerance.absolute + param_tolerance.relative * std::abs(dg_sum[j]);
        if (is_layer_norm(op)) {
          bad += std::abs(dbeta.get(j) - db_sum[j]) >
                 slack + param_tolerance.absolute + param_tolerance.relative * std::abs(db_sum[j]);
        }
      }
    }
    return bad;
  }
};

// Device-to-device copy bandwidth in GB/s (read + write bytes), the ceiling ops are compared with.
double measure_copy_bandwidth() {
  const std::size_t bytes = std::size_t{1} << 30;
  DeviceBuffer a(bytes), b(bytes);
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<float> ms(10);
  for (float& t : ms) {
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    check(cudaMemcpyAsync(b.pointer, a.pointer, bytes, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync");
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    check(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
  }
  std::sort(ms.begin(), ms.end());
  check(cudaEventDestroy(start), "cudaEventDestroy");
  check(cudaEventDestroy(stop), "cudaEventDestroy");
  return 2.0 * static_cast<double>(bytes) / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

// Median ms over 30 runs, each after an L2 flush, rotating among the problem's input copies.
double time_op(Problem& problem) {
  const std::size_t flush_bytes = 2 * l2_bytes;
  DeviceBuffer flush(flush_bytes);
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<float> ms(30);
  for (std::size_t rep = 0; rep < ms.size(); ++rep) {
    check(cudaMemsetAsync(flush.pointer, static_cast<int>(rep), flush_bytes, stream), "cudaMemsetAsync");
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    problem.run(static_cast<int>(rep) % problem.copies);
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    check(cudaEventElapsedTime(&ms[rep], start, stop), "cudaEventElapsedTime");
  }
  std::sort(ms.begin(), ms.end());
  check(cudaEventDestroy(start), "cudaEventDestroy");
  check(cudaEventDestroy(stop), "cudaEventDestroy");
  return ms[ms.size() / 2];
}

struct Shape {
  int64_t rows, cols;
};

// Row lengths from 32 to 262144 at a fixed total size, odd lengths, then rows >> cols.
std::vector<Shape> row_shapes() {
  const int64_t total = on_gpu ? (int64_t{1} << 26) : (int64_t{1} << 17);
  std::vector<Shape> shapes;
  for (int64_t cols = 32; cols <= 262144; cols *= 2) shapes.push_back({std::max<int64_t>(1, total / cols), cols});
  for (int64_t cols : {768, 1000, 4099}) shapes.push_back({std::max<int64_t>(1, total / cols), cols});
  shapes.push_back({on_gpu ? 1000000 : 2048, 128});
  return shapes;
}

void run_row_ops() {
  if (on_gpu) {
    std::printf("\n%-20s %-10s %9s %7s %10s %9s %7s\n", "op", "dtypes", "rows", "cols", "ms", "GB/s", "% copy");
  } else {
    std::printf("\n%-20s %-10s %6s %7s  %-44s %11s %9s %6s\n", "op", "dtypes", "rows", "cols", "kernel (first launch)",
                "bytes/elem", "floor", "ratio");
  }
  std::mt19937_64 rng(2024);
  for (Op op : {Op::kLayerNormForward, Op::kLayerNormBackward, Op::kRmsNormForward, Op::kRmsNormBackward}) {
    for (const DtypePair& d : kDtypes) {
      for (const Shape& shape : row_shapes()) {
        progress(std::string(op_name(op)) + " " + d.label + " " + std::to_string(shape.rows) + "x" +
                 std::to_string(shape.cols));
        const std::size_t tensor = static_cast<std::size_t>(shape.rows * shape.cols) * element_size(d.dtype);
        const int copies = on_gpu ? static_cast<int>(std::min<std::size_t>(8, l2_bytes / tensor + 2)) : 1;
        Problem problem(op, d, shape.rows, shape.cols, copies, rng);
        simt::LaunchRecorder recorder;
        problem.run(0);
        const std::size_t bad = problem.validate();
        end_progress();
        if (bad != 0) {
          std::fprintf(stderr, "VALIDATION FAILED: %s %s %lldx%lld: %zu values outside the tolerance\n", op_name(op),
                       d.label, static_cast<long long>(shape.rows), static_cast<long long>(shape.cols), bad);
          std::exit(1);
        }
        const double bytes = floor_bytes(op, shape.rows, shape.cols, d);
        if (on_gpu) {
          const double ms = time_op(problem);
          const double gbps = bytes / (ms * 1e-3) / 1e9;
          std::printf("%-20s %-10s %9lld %7lld %10.4f %9.1f %6.1f%%\n", op_name(op), d.label,
                      static_cast<long long>(shape.rows), static_cast<long long>(shape.cols), ms, gbps,
                      100.0 * gbps / copy_gbps);
        } else {
          double requested = 0.0;
          for (const simt::LaunchRecord& r : recorder.records())
            requested += static_cast<double>(r.bytes_read + r.bytes_written);
          const double elements = static_cast<double>(shape.rows * shape.cols);
          const std::string& first = recorder.records().front().name;
          const std::string kernel = first.substr(first.find('.') + 1, first.find('>') - first.find('.'));
          std::printf("%-20s %-10s %6lld %7lld  %-44.44s %11.3f %9.3f %6.3f\n", op_name(op), d.label,
                      static_cast<long long>(shape.rows), static_cast<long long>(shape.cols), kernel.c_str(),
                      requested / elements, bytes / elements, requested / bytes);
        }
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace

// The static kernel report the build wrote (tools/static_report.py): its summary lines, and where
// the full table is. Builds without the CUDA backend have none.
void print_static_report() {
  std::FILE* report = std::fopen(CUNORM_STATIC_REPORT, "r");
  if (report == nullptr) {
    std::printf("\nNo static kernel report at %s (a build with the CUDA backend writes it).\n", CUNORM_STATIC_REPORT);
    return;
  }
  std::printf("\nStatic kernel report (%s):\n", CUNORM_STATIC_REPORT);
  char line[4096];
  while (std::fgets(line, sizeof line, report) != nullptr && line[0] != '|') {
    if (line[0] != '#' && line[0] != '\n') std::printf("  %s", line);
  }
  std::fclose(report);
}

int main() {
  check(cunormCreate(&handle, CUNORM_BACKEND_AUTO), "cunormCreate");
  cunormBackend_t backend = CUNORM_BACKEND_AUTO;
  check(cunormGetBackend(handle, &backend), "cunormGetBackend");
  on_gpu = backend == CUNORM_BACKEND_CUDA;
  if (on_gpu) {
    int device = 0;
    cudaDeviceProp properties{};
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cunormSetStream(handle, stream), "cunormSetStream");
    l2_bytes = static_cast<std::size_t>(properties.l2CacheSize);
    progress("measuring device-to-device copy bandwidth");
    copy_gbps = measure_copy_bandwidth();
    end_progress();
    std::printf("cunorm benchmark on %s (sm_%d%d, %d SMs): device-to-device copy %.1f GB/s (10^9 bytes/s)\n",
                properties.name, properties.major, properties.minor, properties.multiProcessorCount, copy_gbps);
    std::printf(
        "Every op is validated against the float64 reference before it is timed; times are medians of 30 "
        "runs with L2 flushed; GB/s from each op's DRAM floor in bytes.\n");
  } else {
    std::printf(
        "No usable GPU: running on the cunorm SIMT engine (the CUDA kernels executed on the CPU).\n"
        "CPU emulation time is not GPU performance, so no times are printed. Each op is validated against\n"
        "the float64 reference, then the global-memory bytes its kernels requested per element (all\n"
        "launches of the call) are shown against the op's DRAM floor (ratio 1.000 = every byte moved\n"
        "exactly once). Requested bytes include parameters read again by every block that needs them\n"
        "and partial parameter gradients, which a GPU serves mostly from L2.\n");
  }
  run_row_ops();
  if (!on_gpu) print_static_report();
  if (stream != nullptr) check(cudaStreamDestroy(stream), "cudaStreamDestroy");
  check(cunormDestroy(handle), "cunormDestroy");
  std::printf("\nAll ops validated.\n");
  return 0;
}
