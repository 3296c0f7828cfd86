// The benchmark's shared machinery (bench_support.hpp): checked calls, progress line, buffers,
// the CUDA-event timing loop, validation, SIMT traffic and the result table / JSON lines.
#include "bench_support.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace bench {

Machine machine;

void check(cunormStatus_t status, const char* what, cunormHandle_t handle) {
  if (status == CUNORM_STATUS_SUCCESS) return;
  std::fprintf(stderr, "\n%s failed: %s: %s\n", what, cunormGetStatusString(status), cunormGetLastErrorMessage(handle));
  std::exit(1);
}

void check(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return;
  std::fprintf(stderr, "\n%s failed: %s\n", what, cudaGetErrorString(error));
  std::exit(1);
}

namespace {
const bool progress_shown = isatty(fileno(stderr)) != 0;

// `text` as a JSON string, quoted, with quotes, backslashes and control characters escaped.
std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}
}  // namespace

void progress(const std::string& what) {
  if (!progress_shown) return;
  std::fprintf(stderr, "\r\033[K... %s", what.c_str());
  std::fflush(stderr);
}

void end_progress() {
  if (progress_shown) std::fprintf(stderr, "\r\033[K");
}

DeviceBuffer::DeviceBuffer(std::size_t bytes, cunormHandle_t handle) : handle_(handle) {
  check(cunormMalloc(handle_, &pointer_, bytes), "cunormMalloc", handle_);
}

DeviceBuffer::~DeviceBuffer() { cunormFree(handle_, pointer_); }

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

void Validation::add(double actual, double expected, double allowed) {
  ++values;
  const double error = std::isnan(expected) ? (std::isnan(actual) ? 0.0 : INFINITY) : std::abs(actual - expected);
  if (!(error <= allowed)) ++outside;
  worst = std::max(worst, std::isnan(error) ? INFINITY : error / allowed);
}

double Row::requested_activations() const {
  double sum = 0.0;
  for (const BufferUse& b : buffers) sum += b.activation ? b.requested : 0.0;
  return sum;
}

double Row::requested_other() const {
  double sum = 0.0;
  for (const BufferUse& b : buffers) sum += b.activation ? 0.0 : b.requested;
  return sum;
}

double Row::dram() const {
  double sum = 0.0;
  for (const BufferUse& b : buffers) sum += b.activation ? b.requested : b.dram;
  return sum;
}

double Row::l2_rereads() const { return requested_activations() + requested_other() - dram(); }

namespace {

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

}  // namespace

std::string Row::verdict() const {
  const double ratio = dram() / floor.total();
  // Below the floor is an accounting error: a buffer the floor counts that the call did not move.
  if (ratio < 0.98) return format("%.2fx floor: below it, a buffer of the floor was not moved", ratio);
  if (ratio <= 1.02) return "at floor";
  // What lies above the floor: activations moved more than once, the partial states in the
  // workspace, then the other buffers' sectors beyond the floor's per-row and per-channel terms.
  std::string why;
  const auto add = [&why](const std::string& part) { why += (why.empty() ? "" : ", ") + part; };
  double other = 0.0;
  for (const BufferUse& b : buffers) {
    if (b.activation && b.requested > 1.02 * b.bytes) add(b.name + format(" moved %.2gx", b.requested / b.bytes));
    if (b.name == "workspace" && b.dram > 0.0) add("partial states " + format("%.3g B/elem", b.dram / elements));
    if (!b.activation && b.name != "workspace") other += b.dram;
  }
  if (other > 1.02 * floor.other || why.empty()) {
    add("parameters and statistics " + format("%.3g B/elem", other / elements) + " in 32-byte sectors, floor " +
        format("%.3g", floor.other / elements));
  }
  return format("%.2fx floor: ", ratio) + why;
}

void record_traffic(const simt::LaunchRecorder& recorder, const simt::TrafficWatch& watch, std::size_t activations,
                    Row& row) {
  if (machine.on_gpu) return;
  const std::vector<simt::TrafficWatch::Buffer>& watched = watch.buffers();
  row.buffers.clear();
  double watched_bytes = 0.0, launch_bytes = 0.0;
  for (const simt::LaunchRecord& r : recorder.records())
    launch_bytes += static_cast<double>(r.bytes_read + r.bytes_written);
  for (std::size_t i = 0; i < watched.size(); ++i) {
    BufferUse use;
    use.name = watched[i].name;
    use.activation = i < activations;
    use.bytes = static_cast<double>(watched[i].bytes);
    const simt::TrafficWatch::Footprint footprint = watch.footprint(i);
    use.dram = static_cast<double>(footprint.read + footprint.written);
    for (const simt::LaunchRecord& r : recorder.records()) {
      use.requested += static_cast<double>(r.buffers.at(i).bytes_read + r.buffers.at(i).bytes_written);
    }
    watched_bytes += use.requested;
    row.buffers.push_back(use);
  }
  // Every byte the kernels moved must belong to a buffer the problem named, or the columns would
  // leave it out.
  if (watched_bytes != launch_bytes) {
    std::fprintf(stderr, "%s %s %s: the kernels moved %.0f bytes outside the watched buffers\n", row.op.c_str(),
                 row.dtypes.c_str(), row.shape.c_str(), launch_bytes - watched_bytes);
    std::exit(1);
  }
  row.launch_uses.clear();
  for (const simt::LaunchRecord& r : recorder.records()) {
    Row::LaunchUse use{r.name, {}, {}};
    for (std::size_t i = 0; i < watched.size(); ++i) {
      use.buffers.push_back(static_cast<double>(r.buffers.at(i).bytes_read + r.buffers.at(i).bytes_written));
      use.buffers_read.push_back(static_cast<double>(r.buffers.at(i).bytes_read));
    }
    row.launch_uses.push_back(use);
  }
  row.launches = recorder.records().size();
  // "family.variant<dtypes> launch parameters" -> "variant<dtypes> launch parameters"
  const std::string& first = recorder.records().front().name;
  row.kernel = first.substr(first.find('.') + 1);
}

void plan_at_gpu_shape(const std::function<void(cunormHandle_t)>& call, const std::map<std::string, double>& gpu_bytes,
                       Row& row) {
  if (machine.on_gpu) return;
  for (BufferUse& b : row.buffers) {
    const auto size = gpu_bytes.find(b.name);
    if (size == gpu_bytes.end()) {
      std::fprintf(stderr, "%s %s %s: no size at the GPU shape for buffer %s\n", row.op.c_str(), row.dtypes.c_str(),
                   row.shape.c_str(), b.name.c_str());
      std::exit(1);
    }
    b.gpu_bytes = size->second;
  }
  simt::LaunchRecorder recorder(simt::LaunchRecorder::Mode::kRecordOnly);
  call(machine.plan_handle);
  row.gpu_plan.clear();
  for (const simt::LaunchRecord& r : recorder.records()) {
    Dl_info info{};
    if (dladdr(r.kernel, &info) == 0 || info.dli_fname == nullptr) {
      std::fprintf(stderr, "%s %s%s%s %s at %s: kernel %s not found in a loaded shared object\n", row.op.c_str(),
                   row.layout.c_str(), row.layout.empty() ? "" : " ", row.dtypes.c_str(), row.shape.c_str(),
                   row.gpu_shape.c_str(), r.name.c_str());
      std::exit(1);
    }
    row.gpu_plan.push_back(
        {r.name, info.dli_fname,
         reinterpret_cast<std::uintptr_t>(r.kernel) - reinterpret_cast<std::uintptr_t>(info.dli_fbase), r.grid, r.block,
         r.dynamic_shared_bytes, r.cooperative});
  }
}

std::map<std::string, double> tensor_and_parameter_bytes(std::size_t tensor, std::size_t params) {
  std::map<std::string, double> bytes;
  for (const char* name : {"x", "dy", "y", "dx"}) bytes[name] = static_cast<double>(tensor);
  for (const char* name : {"gamma", "beta", "dgamma", "dbeta"}) bytes[name] = static_cast<double>(params);
  return bytes;
}

void fail_validation(const Row& row) {
  std::fprintf(stderr, "VALIDATION FAILED: %s %s%s%s %s: %zu of %zu values outside the tolerance (worst %.3g x it)\n",
               row.op.c_str(), row.layout.c_str(), row.layout.empty() ? "" : " ", row.dtypes.c_str(), row.shape.c_str(),
               row.validation.outside, row.validation.values, row.validation.worst);
  std::exit(1);
}

void Report::header(const char* title, bool with_cudnn, std::size_t rows) {
  done_ = 0;
  rows_ = rows;
  with_cudnn_ = with_cudnn;
  std::printf("\n== %s\n", title);
  std::printf("%-9s %-29s %-4s %-9s %-16s", "row", "op", "lay", "dtypes", "shape");
  if (machine.on_gpu) {
    std::printf(" %10s %9s %7s", "ms", "GB/s", "% copy");
    if (with_cudnn) std::printf(" %10s %8s", "cuDNN ms", "speedup");
  } else {
    std::printf(" %7s %7s %7s", "floor", "DRAM", "L2");
  }
  std::printf(" %7s  %s\n", "err/tol", machine.on_gpu ? "" : "verdict | first kernel (launches)");
}

void Report::add(const Row& row) {
  end_progress();
  const std::string number = "[" + std::to_string(++done_) + "/" + std::to_string(rows_) + "]";
  std::printf("%-9s %-29s %-4s %-9s %-16s", number.c_str(), row.op.c_str(), row.layout.c_str(), row.dtypes.c_str(),
              row.shape.c_str());
  const double gbps = row.ms > 0.0 ? row.floor.total() / (row.ms * 1e-3) / 1e9 : 0.0;
  if (machine.on_gpu) {
    std::printf(" %10.4f %9.1f %6.1f%%", row.ms, gbps, 100.0 * gbps / machine.copy_gbps);
    if (row.cudnn_ms > 0.0) std::printf(" %10.4f %7.2fx", row.cudnn_ms, row.cudnn_ms / row.ms);
    if (row.cudnn_ms <= 0.0 && with_cudnn_) std::printf(" %10s %8s", "-", "-");
    std::printf(" %7.3f\n", row.validation.worst);
  } else {
    std::printf(" %7.3f %7.3f %7.3f %7.3f  %s | %s (%zu)\n", row.floor.total() / row.elements,
                row.dram() / row.elements, row.l2_rereads() / row.elements, row.validation.worst, row.verdict().c_str(),
                row.kernel.c_str(), row.launches);
  }
  std::fflush(stdout);
  if (json_ == nullptr) return;
  std::fprintf(json_,
               "{\"op\": %s, \"layout\": %s, \"dtypes\": %s, \"shape\": %s, \"elements\": %.0f, "
               "\"floor_activations\": %.0f, \"floor_other\": %.0f, \"requested_activations\": %.0f, "
               "\"requested_other\": %.0f, \"dram\": %.0f, \"l2_rereads\": %.0f, \"verdict\": %s, "
               "\"kernel\": %s, \"launches\": %zu, \"worst_error_over_tolerance\": %.6g, \"gpu_shape\": %s, "
               "\"gpu_elements\": %.0f, \"gpu_floor_activations\": %.0f, \"gpu_floor_other\": %.0f, \"ms\": %.6f, "
               "\"cudnn_ms\": %.6f, \"gbps\": %.3f, \"copy_gbps\": %.3f, ",
               json_string(row.op).c_str(), json_string(row.layout).c_str(), json_string(row.dtypes).c_str(),
               json_string(row.shape).c_str(), row.elements, row.floor.activations, row.floor.other,
               row.requested_activations(), row.requested_other(), row.dram(), row.l2_rereads(),
               json_string(machine.on_gpu ? "" : row.verdict()).c_str(), json_string(row.kernel).c_str(), row.launches,
               row.validation.worst, json_string(row.gpu_shape).c_str(), row.gpu_elements, row.gpu_floor.activations,
               row.gpu_floor.other, row.ms, row.cudnn_ms, gbps, machine.copy_gbps);
  std::fprintf(json_, "\"launch_uses\": [");
  for (std::size_t i = 0; i < row.launch_uses.size(); ++i) {
    const Row::LaunchUse& u = row.launch_uses[i];
    std::fprintf(json_, "%s{\"label\": %s, \"buffers\": [", i ? ", " : "", json_string(u.label).c_str());
    for (std::size_t b = 0; b < u.buffers.size(); ++b) std::fprintf(json_, "%s%.0f", b ? ", " : "", u.buffers[b]);
    std::fprintf(json_, "], \"buffers_read\": [");
    for (std::size_t b = 0; b < u.buffers_read.size(); ++b) {
      std::fprintf(json_, "%s%.0f", b ? ", " : "", u.buffers_read[b]);
    }
    std::fprintf(json_, "]}");
  }
  std::fprintf(json_, "], \"buffers\": [");
  for (std::size_t i = 0; i < row.buffers.size(); ++i) {
    const BufferUse& b = row.buffers[i];
    std::fprintf(json_,
                 "%s{\"name\": %s, \"activation\": %s, \"bytes\": %.0f, \"gpu_bytes\": %.0f, \"requested\": %.0f, "
                 "\"dram\": %.0f}",
                 i ? ", " : "", json_string(b.name).c_str(), b.activation ? "true" : "false", b.bytes, b.gpu_bytes,
                 b.requested, b.dram);
  }
  std::fprintf(json_, "], \"gpu_plan\": [");
  for (std::size_t i = 0; i < row.gpu_plan.size(); ++i) {
    const Row::PlannedLaunch& p = row.gpu_plan[i];
    std::fprintf(json_,
                 "%s{\"label\": %s, \"object\": %s, \"offset\": %llu, \"grid\": [%u, %u, %u], "
                 "\"block\": [%u, %u, %u], \"dynamic_shared_bytes\": %zu, \"cooperative\": %s}",
                 i ? ", " : "", json_string(p.label).c_str(), json_string(p.object).c_str(),
                 static_cast<unsigned long long>(p.offset), p.grid.x, p.grid.y, p.grid.z, p.block.x, p.block.y,
                 p.block.z, p.dynamic_shared_bytes, p.cooperative ? "true" : "false");
  }
  std::fprintf(json_, "]}\n");
  std::fflush(json_);
}

}  // namespace bench
