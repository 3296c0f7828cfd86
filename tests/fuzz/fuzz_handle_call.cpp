// The API fuzzer's handle, memory, workspace and error calls (see fuzz_calls.hpp). Sizes follow the
// harness's rule: a valid-looking byte count is cut down to what the arena (or, for cunormMalloc,
// kMallocLimit) holds; one the library must refuse is passed as it is. Successful calls are checked
// for what they promise (the backend, the 256-byte alignment of an allocation, a status string).
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_calls.hpp"
#include "fuzz_oracle.hpp"

extern "C" const char* fuzz_status_string(int value);  // status_string.c

namespace cunorm_fuzz {
namespace {

constexpr int kMaxCreatedHandles = 2;  // a SIMT handle is cheap, but each one is a new set of state

cunormHandle_t message_slot(const PickedHandle& h) { return h.rejected ? nullptr : h.handle; }

// A byte count of a copy or a workspace: cut to `limit` (the arena bytes from the pointers) when the
// pointers are real; as it is with a NULL pointer, which the library must refuse for bytes > 0.
std::size_t byte_count(FuzzInput& in, std::size_t limit, bool pointers_real) {
  std::size_t bytes = static_cast<std::size_t>(in.size());
  if (pointers_real && bytes > limit) bytes %= limit + 1;
  return bytes;
}

std::string text(std::size_t v) { return std::to_string(v); }

}  // namespace

void fuzz_handle_call(World& world, FuzzInput& in, int which) {
  switch (which) {
    case 0: {  // cunormCreate
      const int backend = in.enumerator(3);
      void* out = world.pick_pointer(in, 0, {});
      const std::string call = "cunormCreate(" + world.describe(out) + ", backend " + std::to_string(backend) + ")";
      world.note(call);
      const ArenaSnapshot before(world);
      const cunormStatus_t status =
          cunormCreate(static_cast<cunormHandle_t*>(out), static_cast<cunormBackend_t>(backend));
      check_outcome(world, call, status, nullptr, false, before);
      if (status != CUNORM_STATUS_SUCCESS) return;
      cunormHandle_t created;
      std::memcpy(&created, out, sizeof(created));
      world.handle_created(created);
      if (world.created_handles() > kMaxCreatedHandles) {
        if (cunormDestroy(created) != CUNORM_STATUS_SUCCESS) fail(call + ": destroying the new handle failed");
        world.handle_destroyed(created);
      }
      return;
    }
    case 1: {  // cunormDestroy
      const PickedHandle h = world.pick_handle_to_destroy(in);
      const std::string call = "cunormDestroy(" + h.role + ")";
      world.note(call);
      const ArenaSnapshot before(world);
      const cunormStatus_t status = cunormDestroy(h.handle);
      check_outcome(world, call, status, nullptr, false, before);
      if (status == CUNORM_STATUS_SUCCESS) world.handle_destroyed(h.handle);
      return;
    }
    case 2: {  // cunormGetBackend
      const PickedHandle h = world.pick_handle(in);
      void* out = world.pick_pointer(in, 0, {});
      const std::string call = "cunormGetBackend(" + h.role + ", " + world.describe(out) + ")";
      world.note(call);
      const ArenaSnapshot before(world);
      const cunormStatus_t status = cunormGetBackend(h.handle, static_cast<cunormBackend_t*>(out));
      check_outcome(world, call, status, message_slot(h), false, before);
      int backend = -1;
      if (status == CUNORM_STATUS_SUCCESS) std::memcpy(&backend, out, sizeof(backend));
      if (status == CUNORM_STATUS_SUCCESS && backend != CUNORM_BACKEND_SIMT) {
        fail(call + " gave backend " + std::to_string(backend) + " for a SIMT handle");
      }
      return;
    }
    case 3: {  // cunormSetStream: SIMT accepts and ignores any stream
      const PickedHandle h = world.pick_handle(in);
      const std::uint64_t stream = in.little_endian(8);
      const std::string call = "cunormSetStream(" + h.role + ", " + std::to_string(stream) + ")";
      world.note(call);
      const ArenaSnapshot before(world);
      const cunormStatus_t status = cunormSetStream(h.handle, reinterpret_cast<cudaStream_t>(stream));
      check_outcome(world, call, status, message_slot(h), false, before);
      return;
    }
    case 4: {  // cunormSetWorkspace, in the arena's workspace region
      const PickedHandle h = world.pick_handle(in);
      void* workspace = world.pick_workspace(in);
      const std::size_t bytes = byte_count(in, world.bytes_left(workspace), workspace != nullptr);
      const std::string call =
          "cunormSetWorkspace(" + h.role + ", " + world.describe(workspace) + ", " + text(bytes) + ")";
      world.note(call);
      const ArenaSnapshot before(world);
      check_outcome(world, call, cunormSetWorkspace(h.handle, workspace, bytes), message_slot(h), false, before);
      return;
    }
    case 5: {  // cunormMalloc: requests past PTRDIFF_MAX - 255 are refused before any allocator
      const PickedHandle h = world.pick_handle(in);
      void* out = world.pick_pointer(in, 0, {});
      std::size_t bytes = static_cast<std::size_t>(in.size());
      if (bytes <= static_cast<std::size_t>(PTRDIFF_MAX) - 255) bytes %= kMallocLimit + 1;
      const std::string call = "cunormMalloc(" + h.role + ", " + world.describe(out) + ", " + text(bytes) + ")";
      world.note(call);
      const ArenaSnapshot before(world);
      const cunormStatus_t status = cunormMalloc(h.handle, static_cast<void**>(out), bytes);
      // ALLOC_FAILED sets *ptr to NULL (api.md does not count it among the statuses that write
      // nothing; tests/fault_injection_test.cpp requires the NULL): the only write allowed.
      const bool alloc_failed = status == CUNORM_STATUS_ALLOC_FAILED;
      check_outcome(world, call, status, message_slot(h), false, before, alloc_failed ? out : nullptr, sizeof(void*));
      void* p = nullptr;
      if (alloc_failed || status == CUNORM_STATUS_SUCCESS) std::memcpy(&p, out, sizeof(p));
      if (alloc_failed && p != nullptr) fail(call + " failed and left *ptr = " + world.describe(p) + ", not NULL");
      if (status != CUNORM_STATUS_SUCCESS) return;
      if ((p == nullptr) != (bytes == 0) || reinterpret_cast<std::uintptr_t>(p) % 256 != 0) {
        fail(call + " gave " + world.describe(p) + ": NULL exactly for 0 bytes, else 256-byte aligned");
      }
      if (p != nullptr) world.allocated(h.handle, p);
      return;
    }
    case 6: {  // cunormFree
      const PickedHandle h = world.pick_handle(in);
      void* p = world.pick_pointer_to_free(in);
      const std::string call = "cunormFree(" + h.role + ", " + world.describe(p) + ")";
      world.note(call);
      const ArenaSnapshot before(world);
      const cunormStatus_t status = cunormFree(h.handle, p);
      check_outcome(world, call, status, message_slot(h), false, before);
      if (status == CUNORM_STATUS_SUCCESS && p != nullptr) world.freed(p);
      return;
    }
    case 7:
    case 8: {  // cunormMemcpyToDevice, cunormMemcpyToHost within the arena
      const bool to_device = which == 7;
      const PickedHandle h = world.pick_handle(in);
      void* dst = world.pick_pointer(in, 0, {});
      void* src = world.pick_pointer(in, 1, {dst});
      const std::size_t limit = std::min(world.bytes_left(dst), world.bytes_left(src));
      const std::size_t bytes = byte_count(in, limit, dst != nullptr && src != nullptr);
      const std::string call = std::string(to_device ? "cunormMemcpyToDevice(" : "cunormMemcpyToHost(") + h.role +
                               ", " + world.describe(dst) + ", " + world.describe(src) + ", " + text(bytes) + ")";
      world.note(call);
      const ArenaSnapshot before(world);
      const cunormStatus_t status =
          to_device ? cunormMemcpyToDevice(h.handle, dst, src, bytes) : cunormMemcpyToHost(h.handle, dst, src, bytes);
      check_outcome(world, call, status, message_slot(h), false, before);
      return;
    }
    case 9: {  // cunormSynchronize
      const PickedHandle h = world.pick_handle(in);
      const std::string call = "cunormSynchronize(" + h.role + ")";
      world.note(call);
      const ArenaSnapshot before(world);
      check_outcome(world, call, cunormSynchronize(h.handle), message_slot(h), false, before);
      return;
    }
    case 10: {  // cunormGetStatusString of any int
      const std::uint8_t b = in.byte();
      const int value = b < 0xF0 ? b % 10 - 1 : static_cast<int>(static_cast<std::uint32_t>(in.little_endian(4)));
      const std::string call = "cunormGetStatusString(" + std::to_string(value) + ")";
      world.note(call);
      const char* name = fuzz_status_string(value);
      const bool known = value >= CUNORM_STATUS_SUCCESS && value <= CUNORM_STATUS_INTERNAL_ERROR;
      if (name == nullptr || std::string(name).rfind(known ? "CUNORM_STATUS_" : "unknown", 0) != 0) {
        fail(call + " gave " + (name == nullptr ? std::string("NULL") : "\"" + std::string(name) + "\""));
      }
      report(call, name);
      return;
    }
    default: {  // cunormGetLastErrorMessage of any handle
      const PickedHandle h = world.pick_handle(in);
      const std::string call = "cunormGetLastErrorMessage(" + h.role + ")";
      world.note(call);
      const char* message = cunormGetLastErrorMessage(h.handle);
      if (message == nullptr) fail(call + " gave NULL");
      report(call, std::string("\"") + message + "\"");
      return;
    }
  }
}

}  // namespace cunorm_fuzz
