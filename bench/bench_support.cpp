// The benchmark's shared machinery (bench_support.hpp): checked calls, progress line, buffers,
// the CUDA-event timing loop, SIMT traffic and the result table / JSON lines.
#include "bench_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace bench {

Machine machine;

void check(cunormStatus_t status, const char* what) {
  if (status == CUNORM_STATUS_SUCCESS) return;
  std::fprintf(stderr, "\n%s failed: %s: %s\n", what, cunormGetStatusString(status),
               cunormGetLastErrorMessage(machine.handle));
  std::exit(1);
}

void check(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return;
  std::fprintf(stderr, "\n%s failed: %s\n", what, cudaGetErrorString(error));
  std::exit(1);
}

namespace {
const bool progress_shown = isatty(fileno(stderr)) != 0;
}  // namespace

void progress(const std::string& what) {
  if (!progress_shown) return;
  std::fprintf(stderr, "\r\033[K... %s", what.c_str());
  std::fflush(stderr);
}

void end_progress() {
  if (progress_shown) std::fprintf(stderr, "\r\033[K");
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) { check(cunormMalloc(machine.handle, &pointer_, bytes), "cunormMalloc"); }

DeviceBuffer::~DeviceBuffer() { cunormFree(machine.handle, pointer_); }

void DeviceBuffer::upload(const HostArray& host, std::size_t copies) const {
  for (std::size_t c = 0; c < copies; ++c) {
    check(cunormMemcpyToDevice(machine.handle, part(c, host.byte_size()), host.data(), host.byte_size()),
          "cunormMemcpyToDevice");
  }
}

HostArray DeviceBuffer::download(cunormDataType_t dtype, std::size_t count) const {
  HostArray host(dtype, count);
  check(cunormMemcpyToHost(machine.handle, host.data(), pointer_, host.byte_size()), "cunormMemcpyToHost");
  return host;
}

int input_copies(std::size_t bytes) {
  if (!machine.on_gpu) return 1;
  return static_cast<int>(std::min<std::size_t>(8, machine.l2_bytes / std::max<std::size_t>(bytes, 1) + 2));
}

namespace {

// Events around each run; the median of the elapsed times.
class EventTimer {
 public:
  EventTimer() {
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  ~EventTimer() {
    check(cudaEventDestroy(start_), "cudaEventDestroy");
    check(cudaEventDestroy(stop_), "cudaEventDestroy");
  }
  void start() { check(cudaEventRecord(start_, machine.stream), "cudaEventRecord"); }
  void stop() {
    check(cudaEventRecord(stop_, machine.stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    times_.push_back(ms);
  }
  double median() {
    std::sort(times_.begin(), times_.end());
    return times_[times_.size() / 2];
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::vector<float> times_;
};

}  // namespace

double measure_copy_bandwidth() {
  const std::size_t bytes = std::size_t{1} << 30;
  DeviceBuffer a(bytes), b(bytes);
  EventTimer timer;
  for (int rep = 0; rep < 10; ++rep) {
    timer.start();
    check(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, machine.stream), "cudaMemcpyAsync");
    timer.stop();
  }
  return 2.0 * static_cast<double>(bytes) / (timer.median() * 1e-3) / 1e9;
}

double median_ms(const std::function<void(int copy)>& run, int copies) {
  const std::size_t flush_bytes = 2 * machine.l2_bytes;
  DeviceBuffer flush(flush_bytes);
  EventTimer timer;
  for (int rep = 0; rep < 30; ++rep) {
    check(cudaMemsetAsync(flush.get(), rep, flush_bytes, machine.stream), "cudaMemsetAsync");
    timer.start();
    run(rep % copies);
    timer.stop();
  }
  return timer.median();
}

void record_traffic(const simt::LaunchRecorder& recorder, Row& row) {
  double total = 0.0;
  row.requested_activations = 0.0;
  for (const simt::LaunchRecord& r : recorder.records()) {
    total += static_cast<double>(r.bytes_read + r.bytes_written);
    for (const simt::BufferTraffic& t : r.buffers) {
      row.requested_activations += static_cast<double>(t.bytes_read + t.bytes_written);
    }
  }
  row.requested_other = total - row.requested_activations;
  // "family.variant<dtypes> launch parameters" -> "variant<dtypes>"
  const std::string& first = recorder.records().front().name;
  const std::size_t begin = first.find('.') + 1;
  row.kernel = first.substr(begin, first.find('>') + 1 - begin);
}

void fail_validation(const Row& row, std::size_t bad_values) {
  std::fprintf(stderr, "VALIDATION FAILED: %s %s%s%s %s: %zu values outside the tolerance\n", row.op.c_str(),
               row.layout.c_str(), row.layout.empty() ? "" : " ", row.dtypes.c_str(), row.shape.c_str(), bad_values);
  std::exit(1);
}

void Report::header(const char* title, bool with_cudnn) const {
  std::printf("\n== %s\n", title);
  if (machine.on_gpu) {
    std::printf("%-29s %-4s %-9s %-16s %10s %9s %7s", "op", "lay", "dtypes", "shape", "ms", "GB/s", "% copy");
    if (with_cudnn) std::printf(" %10s %8s", "cuDNN ms", "speedup");
  } else {
    std::printf("%-29s %-4s %-9s %-16s %-36s %9s %9s %8s", "op", "lay", "dtypes", "shape", "kernel (first launch)",
                "B/elem", "floor", "x,y,dy,dx");
  }
  std::printf("\n");
}

void Report::add(const Row& row) const {
  std::printf("%-29s %-4s %-9s %-16s", row.op.c_str(), row.layout.c_str(), row.dtypes.c_str(), row.shape.c_str());
  const double gbps = row.ms > 0.0 ? row.floor.total() / (row.ms * 1e-3) / 1e9 : 0.0;
  if (machine.on_gpu) {
    std::printf(" %10.4f %9.1f %6.1f%%", row.ms, gbps, 100.0 * gbps / machine.copy_gbps);
    if (row.cudnn_ms > 0.0) std::printf(" %10.4f %7.2fx", row.cudnn_ms, row.cudnn_ms / row.ms);
  } else {
    std::printf(" %-36.36s %9.3f %9.3f %7.3fx", row.kernel.c_str(),
                (row.requested_activations + row.requested_other) / row.elements, row.floor.total() / row.elements,
                row.requested_activations / row.floor.activations);
  }
  std::printf("\n");
  std::fflush(stdout);
  if (json_ == nullptr) return;
  std::fprintf(json_,
               "{\"op\": \"%s\", \"layout\": \"%s\", \"dtypes\": \"%s\", \"shape\": \"%s\", \"elements\": %.0f, "
               "\"floor_activations\": %.0f, \"floor_other\": %.0f, \"requested_activations\": %.0f, "
               "\"requested_other\": %.0f, \"kernel\": \"%s\", \"gpu_shape\": \"%s\", \"gpu_elements\": %.0f, "
               "\"gpu_floor_activations\": %.0f, \"gpu_floor_other\": %.0f, \"ms\": %.6f, \"cudnn_ms\": %.6f, "
               "\"gbps\": %.3f, \"copy_gbps\": %.3f}\n",
               row.op.c_str(), row.layout.c_str(), row.dtypes.c_str(), row.shape.c_str(), row.elements,
               row.floor.activations, row.floor.other, row.requested_activations, row.requested_other,
               row.kernel.c_str(), row.gpu_shape.c_str(), row.gpu_elements, row.gpu_floor.activations,
               row.gpu_floor.other, row.ms, row.cudnn_ms, gbps, machine.copy_gbps);
  std::fflush(json_);
}

}  // namespace bench
