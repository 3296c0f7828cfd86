// The SIMT backend (see simt_backend.hpp).
#include "simt_backend.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "../registered_ops.hpp"
#include "simt/fault_injection.hpp"
#include "simt/launch.hpp"
#include "simt_launcher.hpp"

namespace cunorm {

namespace {

DeviceInfo device_of(const simt::Target& target) {
  DeviceInfo device;
  device.name = std::string("SIMT engine emulating ") + target.name + " (" + target.models + ")";
  device.cc_major = target.cc_major;
  device.cc_minor = target.cc_minor;
  device.sm_count = target.sm_count;
  device.max_threads_per_sm = target.max_threads_per_sm;
  device.max_blocks_per_sm = target.max_blocks_per_sm;
  device.registers_per_sm = target.registers_per_sm;
  device.shared_per_block = target.shared_per_block;
  device.shared_per_block_optin = target.shared_per_block_optin;
  device.shared_per_sm = target.shared_per_sm;
  // Launches that are only recorded (simt::LaunchRecorder::Mode::kRecordOnly) need no fibers: a
  // handle created under a record-only recorder plans cooperative grids as for the GPU, by
  // residency alone (0: no limit beyond residency).
  device.max_cooperative_threads = simt::launches_run() ? simt::max_cooperative_threads() : 0;
  return device;
}

}  // namespace

SimtBackend::SimtBackend(const simt::Target& target)
    : Backend(CUNORM_BACKEND_SIMT, device_of(target)), target_(target) {}

SimtBackend::~SimtBackend() {
  for (void* pointer : allocations_) std::free(pointer);
}

Status SimtBackend::set_stream(cudaStream_t) { return Status::ok(); }

Status SimtBackend::allocate(void** pointer, std::size_t bytes) {
  *pointer = nullptr;
  if (bytes == 0) return Status::ok();
  // No object can be larger than PTRDIFF_MAX (glibc refuses such requests too): refused before the
  // allocator, which under AddressSanitizer aborts on them instead of returning NULL.
  if (bytes > static_cast<std::size_t>(PTRDIFF_MAX) - 255) {
    return Status(CUNORM_STATUS_ALLOC_FAILED, "cannot allocate " + std::to_string(bytes) + " bytes");
  }
  const std::size_t rounded = (bytes + 255) / 256 * 256;
  if (simt::take_injected_fault(simt::FaultSite::kAllocation)) {
    return Status(CUNORM_STATUS_ALLOC_FAILED,
                  "allocation of " + std::to_string(bytes) + " bytes failed (injected fault)");
  }
  void* memory = std::aligned_alloc(256, rounded);
  if (memory == nullptr) {
    return Status(CUNORM_STATUS_ALLOC_FAILED, "host allocation of " + std::to_string(bytes) + " bytes failed");
  }
  std::lock_guard<std::mutex> lock(allocations_mutex_);
  allocations_.insert(memory);
  *pointer = memory;
  return Status::ok();
}

Status SimtBackend::release(void* pointer) {
  if (pointer == nullptr) return Status::ok();
  {
    std::lock_guard<std::mutex> lock(allocations_mutex_);
    if (allocations_.erase(pointer) == 0) {
      return Status::invalid("ptr was not allocated by cunormMalloc on this handle (or was freed already)");
    }
  }
  std::free(pointer);
  return Status::ok();
}

Status SimtBackend::copy_to_device(void* device_destination, const void* host_source, std::size_t bytes) {
  if (bytes > 0) std::memmove(device_destination, host_source, bytes);
  return Status::ok();
}

Status SimtBackend::copy_to_host(void* host_destination, const void* device_source, std::size_t bytes) {
  if (bytes > 0) std::memmove(host_destination, device_source, bytes);
  return Status::ok();
}

Status SimtBackend::synchronize() { return Status::ok(); }

Status SimtBackend::launch_op(const OpLaunch& op) {
  SimtLauncher launcher(target_);
  return launch_registered_op(launcher, op);
}

Status create_simt_backend(std::unique_ptr<Backend>* backend) {
  std::string error;
  simt::environment_options(&error);
  if (!error.empty()) return Status::invalid(error);
  const simt::Target* target = simt::environment_target();
  if (target == nullptr) {
    std::string names;
    for (const simt::Target& t : simt::known_targets()) names += std::string(names.empty() ? "" : ", ") + t.name;
    return Status::invalid("CUNORM_SIMT_TARGET must be one of " + names + ", got \"" +
                           std::getenv("CUNORM_SIMT_TARGET") + "\"");
  }
  *backend = std::make_unique<SimtBackend>(*target);
  return Status::ok();
}

}  // namespace cunorm
