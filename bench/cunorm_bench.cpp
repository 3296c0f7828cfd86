// The main job: validate every op against the float64 reference, then measure it.
//
// On a GPU (CUDA backend): each shape is timed with CUDA events over many repetitions, with L2
// flushed before each and the input rotated among copies that together exceed L2; the median is
// reported as ms, GB/s (10^9 bytes/s from the byte formula below) and as a percentage of the
// device-to-device copy bandwidth measured at start.
// On the SIMT engine (no GPU): the same validation, then the bytes each launch requested per
// element against the op's floor. CPU emulation time says nothing about GPU speed, so none is
// printed.
#include <cuda_runtime_api.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "cunorm/reference.hpp"
#include "simt/launch.hpp"
#include "support/host_array.hpp"

namespace {

using cunorm_test::HostArray;

struct DtypePair {
  cunormDataType_t dtype, param;
  const char* label;
};
const DtypePair kDtypes[] = {{CUNORM_FLOAT32, CUNORM_FLOAT32, "f32/f32"},
                             {CUNORM_FLOAT16, CUNORM_FLOAT32, "f16/f32"},
                             {CUNORM_BFLOAT16, CUNORM_BFLOAT16, "bf16/bf16"}};

#define CHECK_CUNORM(call)                                                                 \
  do {                                                                                     \
    const cunormStatus_t status_ = (call);                                                 \
    if (status_ != CUNORM_STATUS_SUCCESS) {                                                \
      std::fprintf(stderr, "\n%s failed: %s: %s\n", #call, cunormGetStatusString(status_), \
                   cunormGetLastErrorMessage(handle));                                     \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (false)

#define CHECK_CUDA(call)                                                            \
  do {                                                                              \
    const cudaError_t error_ = (call);                                              \
    if (error_ != cudaSuccess) {                                                    \
      std::fprintf(stderr, "\n%s failed: %s\n", #call, cudaGetErrorString(error_)); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (false)

cunormHandle_t handle = nullptr;
bool on_gpu = false;

// LayerNorm forward moves x once, y once, gamma and beta once, and 8 bytes of statistics per
// row: the floor the kernels are measured against.
double layer_norm_forward_bytes(int64_t rows, int64_t cols, const DtypePair& d) {
  const double s = static_cast<double>(cunorm_test::element_size(d.dtype));
  const double p = static_cast<double>(cunorm_test::element_size(d.param));
  return 2.0 * static_cast<double>(rows * cols) * s + 2.0 * static_cast<double>(cols) * p +
         8.0 * static_cast<double>(rows);
}

// A progress line on a terminal, rewritten in place; nothing when stderr is a file or pipe.
bool progress_shown = isatty(fileno(stderr)) != 0;
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
  explicit DeviceBuffer(std::size_t bytes) { CHECK_CUNORM(cunormMalloc(handle, &pointer, bytes)); }
  ~DeviceBuffer() { cunormFree(handle, pointer); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// Compares the rows the reference checks (up to 64, spread over the tensor) and returns the
// number of elements outside the tolerance.
std::size_t validate(int64_t rows, int64_t cols, const DtypePair& d, const HostArray& x, const HostArray& gamma,
                     const HostArray& beta, const HostArray& y, const std::vector<float>& mean) {
  const auto tolerance = cunorm::reference::output_tolerance(d.dtype);
  const int64_t step = std::max<int64_t>(1, rows / 64);
  std::vector<double> xs(static_cast<std::size_t>(cols)), out(static_cast<std::size_t>(cols));
  const std::vector<double> gs = gamma.to_doubles(), bs = beta.to_doubles();
  std::size_t bad = 0;
  for (int64_t r = 0; r < rows; r += step) {
    for (int64_t j = 0; j < cols; ++j) xs[static_cast<std::size_t>(j)] = x.get(static_cast<std::size_t>(r * cols + j));
    double ref_mean = 0.0;
    cunorm::reference::layer_norm_forward(1, cols, xs.data(), gs.data(), bs.data(), 1e-5, out.data(), &ref_mean,
                                          static_cast<double*>(nullptr));
    if (!cunorm::reference::statistics_tolerance().accepts(mean[static_cast<std::size_t>(r)], ref_mean)) ++bad;
    for (int64_t j = 0; j < cols; ++j) {
      if (!tolerance.accepts(y.get(static_cast<std::size_t>(r * cols + j)), out[static_cast<std::size_t>(j)])) ++bad;
    }
  }
  return bad;
}

// Device-to-device copy bandwidth in GB/s (read + write bytes), the ceiling the kernels are
// compared with.
double measure_copy_bandwidth(cudaStream_t stream) {
  const std::size_t bytes = std::size_t{1} << 30;
  DeviceBuffer a(bytes), b(bytes);
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> ms(10);
  for (float& t : ms) {
    CHECK_CUDA(cudaEventRecord(start, stream));
    CHECK_CUDA(cudaMemcpyAsync(b.pointer, a.pointer, bytes, cudaMemcpyDeviceToDevice, stream));
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
  }
  std::sort(ms.begin(), ms.end());
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return 2.0 * static_cast<double>(bytes) / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

struct Timing {
  double median_ms;
};

// Median time of the forward over `reps` runs, each after an L2 flush, rotating among `copies`
// inputs laid out in `x_copies`.
Timing time_forward(cudaStream_t stream, int64_t rows, int64_t cols, const DtypePair& d, const DeviceBuffer& x_copies,
                    int copies, const DeviceBuffer& gamma, const DeviceBuffer& beta, const DeviceBuffer& y,
                    const DeviceBuffer& stats, const DeviceBuffer& flush, std::size_t flush_bytes) {
  const std::size_t tensor_bytes = static_cast<std::size_t>(rows * cols) * cunorm_test::element_size(d.dtype);
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  const int reps = 30;
  std::vector<float> ms(reps);
  for (int rep = 0; rep < reps; ++rep) {
    CHECK_CUDA(cudaMemsetAsync(flush.pointer, rep, flush_bytes, stream));
    const void* x = static_cast<const char*>(x_copies.pointer) + static_cast<std::size_t>(rep % copies) * tensor_bytes;
    CHECK_CUDA(cudaEventRecord(start, stream));
    CHECK_CUNORM(cunormLayerNormForward(handle, rows, cols, d.dtype, d.param, x, gamma.pointer, beta.pointer, 1e-5f,
                                        y.pointer, static_cast<float*>(stats.pointer),
                                        static_cast<float*>(stats.pointer) + rows));
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaEventElapsedTime(&ms[static_cast<std::size_t>(rep)], start, stop));
  }
  std::sort(ms.begin(), ms.end());
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return Timing{ms[ms.size() / 2]};
}

struct Shape {
  int64_t rows, cols;
};

// Row lengths from 32 to 262144 at a fixed total size, then rows >> cols.
std::vector<Shape> layer_norm_shapes(int64_t total) {
  std::vector<Shape> shapes;
  for (int64_t cols = 32; cols <= 262144; cols *= 2) shapes.push_back({std::max<int64_t>(1, total / cols), cols});
  for (int64_t cols : {768, 1000, 4099}) shapes.push_back({std::max<int64_t>(1, total / cols), cols});
  shapes.push_back({on_gpu ? 1000000 : 4096, 128});
  return shapes;
}

void run_layer_norm_forward(cudaStream_t stream, double copy_gbps, std::size_t l2_bytes) {
  const int64_t total = on_gpu ? (int64_t{1} << 26) : (int64_t{1} << 18);
  if (on_gpu) {
    std::printf("\n%-22s %-10s %9s %7s  %-52s %9s %8s %7s\n", "op", "dtypes", "rows", "cols", "kernel", "ms", "GB/s",
                "% copy");
  } else {
    std::printf("\n%-22s %-10s %9s %7s  %-52s %12s %10s %6s\n", "op", "dtypes", "rows", "cols", "kernel", "bytes/elem",
                "floor", "ratio");
  }
  std::mt19937_64 rng(2024);
  for (const DtypePair& d : kDtypes) {
    for (const Shape& shape : layer_norm_shapes(total)) {
      const int64_t rows = shape.rows, cols = shape.cols;
      progress(std::string("layer_norm_forward ") + d.label + " " + std::to_string(rows) + "x" + std::to_string(cols));
      HostArray x(d.dtype, static_cast<std::size_t>(rows * cols)), gamma(d.param, static_cast<std::size_t>(cols)),
          beta(d.param, static_cast<std::size_t>(cols)), y(d.dtype, static_cast<std::size_t>(rows * cols));
      x.fill_uniform(rng, -3.0, 3.0);
      gamma.fill_uniform(rng, 0.5, 1.5);
      beta.fill_uniform(rng, -0.5, 0.5);
      // Enough copies of x that consecutive repetitions never find their input in L2.
      const int copies = on_gpu ? static_cast<int>(std::min<std::size_t>(8, l2_bytes / x.byte_size() + 2)) : 1;
      DeviceBuffer d_x(x.byte_size() * static_cast<std::size_t>(copies)), d_gamma(gamma.byte_size()),
          d_beta(beta.byte_size()), d_y(y.byte_size()), d_stats(2 * sizeof(float) * static_cast<std::size_t>(rows));
      for (int c = 0; c < copies; ++c) {
        CHECK_CUNORM(
            cunormMemcpyToDevice(handle, static_cast<char*>(d_x.pointer) + c * x.byte_size(), x.data(), x.byte_size()));
      }
      CHECK_CUNORM(cunormMemcpyToDevice(handle, d_gamma.pointer, gamma.data(), gamma.byte_size()));
      CHECK_CUNORM(cunormMemcpyToDevice(handle, d_beta.pointer, beta.data(), beta.byte_size()));
      simt::LaunchRecorder recorder;
      float* mean = static_cast<float*>(d_stats.pointer);
      CHECK_CUNORM(cunormLayerNormForward(handle, rows, cols, d.dtype, d.param, d_x.pointer, d_gamma.pointer,
                                          d_beta.pointer, 1e-5f, d_y.pointer, mean, mean + rows));
      CHECK_CUNORM(cunormMemcpyToHost(handle, y.data(), d_y.pointer, y.byte_size()));
      std::vector<float> host_mean(static_cast<std::size_t>(rows));
      CHECK_CUNORM(cunormMemcpyToHost(handle, host_mean.data(), mean, host_mean.size() * sizeof(float)));
      const std::size_t bad = validate(rows, cols, d, x, gamma, beta, y, host_mean);
      if (bad != 0) {
        std::fprintf(stderr, "\nVALIDATION FAILED: layer_norm_forward %s %lldx%lld: %zu values outside the tolerance\n",
                     d.label, static_cast<long long>(rows), static_cast<long long>(cols), bad);
        std::exit(1);
      }
      const double bytes = layer_norm_forward_bytes(rows, cols, d);
      end_progress();
      if (on_gpu) {
        const std::size_t flush_bytes = 2 * l2_bytes;
        DeviceBuffer flush(flush_bytes);
        const Timing t =
            time_forward(stream, rows, cols, d, d_x, copies, d_gamma, d_beta, d_y, d_stats, flush, flush_bytes);
        const double gbps = bytes / (t.median_ms * 1e-3) / 1e9;
        std::printf("%-22s %-10s %9lld %7lld  %-52s %9.4f %8.1f %6.1f%%\n", "layer_norm_forward", d.label,
                    static_cast<long long>(rows), static_cast<long long>(cols), "(CUDA)", t.median_ms, gbps,
                    100.0 * gbps / copy_gbps);
      } else {
        const simt::LaunchRecord& r = recorder.records().front();
        const double elements = static_cast<double>(rows * cols);
        const double requested = static_cast<double>(r.bytes_read + r.bytes_written) / elements;
        const std::string kernel = r.name.substr(r.name.find('.') + 1);
        std::printf("%-22s %-10s %9lld %7lld  %-52.52s %12.3f %10.3f %6.3f\n", "layer_norm_forward", d.label,
                    static_cast<long long>(rows), static_cast<long long>(cols), kernel.c_str(), requested,
                    bytes / elements, requested / (bytes / elements));
      }
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main() {
  CHECK_CUNORM(cunormCreate(&handle, CUNORM_BACKEND_AUTO));
  cunormBackend_t backend = CUNORM_BACKEND_AUTO;
  CHECK_CUNORM(cunormGetBackend(handle, &backend));
  on_gpu = backend == CUNORM_BACKEND_CUDA;
  cudaStream_t stream = nullptr;
  double copy_gbps = 0.0;
  std::size_t l2_bytes = 0;
  if (on_gpu) {
    int device = 0;
    cudaDeviceProp properties{};
    CHECK_CUDA(cudaGetDevice(&device));
    CHECK_CUDA(cudaGetDeviceProperties(&properties, device));
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CHECK_CUNORM(cunormSetStream(handle, stream));
    l2_bytes = static_cast<std::size_t>(properties.l2CacheSize);
    progress("measuring device-to-device copy bandwidth");
    copy_gbps = measure_copy_bandwidth(stream);
    end_progress();
    std::printf("cunorm benchmark on %s (sm_%d%d, %d SMs): device-to-device copy %.1f GB/s (10^9 bytes/s)\n",
                properties.name, properties.major, properties.minor, properties.multiProcessorCount, copy_gbps);
    std::printf(
        "Every op is validated against the float64 reference before it is timed; times are medians of 30 "
        "runs with L2 flushed.\n");
  } else {
    std::printf(
        "No usable GPU: running on the cunorm SIMT engine (the CUDA kernels executed on the CPU).\n"
        "CPU emulation time is not GPU performance, so no times are printed. Each op is validated against\n"
        "the float64 reference, then the global-memory bytes its kernel requested per element are shown\n"
        "against the op's DRAM floor (ratio 1.000 = every byte moved exactly once). Requested bytes include\n"
        "gamma and beta read again by every block that needs them, which a GPU serves from L2.\n");
  }
  run_layer_norm_forward(stream, copy_gbps, l2_bytes);
  if (stream != nullptr) CHECK_CUDA(cudaStreamDestroy(stream));
  CHECK_CUNORM(cunormDestroy(handle));
  std::printf("\nAll ops validated.\n");
  return 0;
}
