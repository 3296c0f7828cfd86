// The main job: validate every op against the float64 reference, then measure it.
//
// On a GPU (CUDA backend): each shape is timed with CUDA events over 30 runs, with L2 flushed
// before each and the input rotated among copies that together exceed L2; the median is reported
// as ms, GB/s (10^9 bytes/s from the op's DRAM floor in bytes, written in its group's file) and
// as a percentage of the device-to-device copy bandwidth measured at start; BatchNorm's training
// passes also run through cuDNN when it was built in.
// On the SIMT engine (no GPU): the same validation, then the bytes each op's kernels requested
// per element against the op's floor, and the build's static kernel report. CPU emulation time
// says nothing about GPU speed, so none is printed. Each row also records the launches its call
// makes at the GPU shape as the planner sizes them for the GPU the engine models (recorded, not run):
// the launch plans the performance model predicts (tools/performance_model.py).
//
// Usage: cunorm_bench [--json FILE]   (FILE gets one JSON object per result row, for
// tools/performance_doc.py)
#include <cstdio>
#include <cstring>

#include "benchmarks.hpp"

namespace {

using bench::check;
using bench::machine;

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

void describe_gpu() {
  int device = 0;
  cudaDeviceProp properties{};
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  check(cudaStreamCreateWithFlags(&machine.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cunormSetStream(machine.handle, machine.stream), "cunormSetStream");
  machine.l2_bytes = static_cast<std::size_t>(properties.l2CacheSize);
  bench::progress("measuring device-to-device copy bandwidth");
  machine.copy_gbps = bench::measure_copy_bandwidth();
  bench::end_progress();
  std::printf("cunorm benchmark on %s (sm_%d%d, %d SMs): device-to-device copy %.1f GB/s (10^9 bytes/s)\n",
              properties.name, properties.major, properties.minor, properties.multiProcessorCount, machine.copy_gbps);
  std::printf(
      "Every op is validated against the float64 reference before it is timed; times are medians of 30 "
      "runs with L2 flushed; GB/s from each op's DRAM floor in bytes.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::FILE* json = nullptr;
  if (argc == 3 && std::strcmp(argv[1], "--json") == 0) {
    json = std::fopen(argv[2], "w");
    if (json == nullptr) {
      std::fprintf(stderr, "cannot write %s\n", argv[2]);
      return 2;
    }
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: %s [--json FILE]\n", argv[0]);
    return 2;
  }
  check(cunormCreate(&machine.handle, CUNORM_BACKEND_AUTO), "cunormCreate");
  cunormBackend_t backend = CUNORM_BACKEND_AUTO;
  check(cunormGetBackend(machine.handle, &backend), "cunormGetBackend");
  machine.on_gpu = backend == CUNORM_BACKEND_CUDA;
  if (machine.on_gpu) {
    describe_gpu();
  } else {
    const simt::LaunchRecorder record_only(simt::LaunchRecorder::Mode::kRecordOnly);
    check(cunormCreate(&machine.plan_handle, CUNORM_BACKEND_SIMT), "cunormCreate");
    std::printf(
        "No usable GPU: running on the cunorm SIMT engine (the CUDA kernels executed on the CPU), on shapes\n"
        "smaller than a GPU run's. CPU emulation time is not GPU performance, so no times are printed. Each op\n"
        "is validated against the float64 reference (err/tol: its largest error as a fraction of the\n"
        "tolerance), then its global-memory traffic is shown in bytes per element:\n"
        "  floor  the op's DRAM floor: activations (x, y, dy, dx) once, parameters and statistics once;\n"
        "  DRAM   what a GPU would move to and from DRAM: the activations as the kernels requested them, and\n"
        "         of every other buffer (parameters, statistics, partial states) the distinct 32-byte\n"
        "         sectors read before the call wrote them and those it wrote, once each (what the call\n"
        "         writes and reads back is taken to stay in L2);\n"
        "  L2     what the kernels request of those other buffers again (parameters re-read by each block,\n"
        "         partial states read back), which a GPU serves from L2.\n"
        "The verdict compares DRAM with the floor and names what lies above it. docs/performance.md has the chart.\n");
  }
  bench::Report report(json);
  bench::run_row_norm_benchmarks(report);
  bench::run_batch_norm_benchmarks(report);
  if (!machine.on_gpu) print_static_report();
  if (json != nullptr) std::fclose(json);
  if (machine.stream != nullptr) check(cudaStreamDestroy(machine.stream), "cudaStreamDestroy");
  check(cunormDestroy(machine.handle), "cunormDestroy");
  if (machine.plan_handle != nullptr) check(cunormDestroy(machine.plan_handle), "cunormDestroy");
  std::printf("\nAll ops validated.\n");
  return 0;
}
