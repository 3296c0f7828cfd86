// What the API fuzzer's calls act on, and the bookkeeping that makes each input independent of
// the ones before it. An arena of host memory (valid memory of the SIMT backend) holds every buffer
// a call passes: each pointer argument has a home slot of kSlotBytes, and valid-looking sizes are
// cut down so that no buffer claims more than that (the library cannot know a buffer's size, so a
// larger claim would be the harness's bug, not the library's); a user workspace lives in a region
// of its own, so that kernels writing it never touch a call's buffers. Handles: one main handle,
// an "other" one that owns a calibration (foreign to the main handle), handles the input creates,
// and dead ones (destroyed by the input, or an address that never was a handle). Every handle,
// calibration and allocation an input creates is released when it ends, and user workspaces are
// unset, so that the next input starts from the same state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cunorm/cunorm.h"
#include "fuzz_input.hpp"

namespace cunorm_fuzz {

constexpr std::size_t kSlots = 12;
constexpr std::size_t kSlotBytes = 16384;  // the most bytes any buffer of a fitted call claims
// Pointers are a slot plus an offset below kSlotBytes, maybe plus 255 more: with a claim of up to
// kSlotBytes they stay within kSlots + 2 slots.
constexpr std::size_t kPointerAreaBytes = (kSlots + 2) * kSlotBytes;
constexpr std::size_t kWorkspaceBytes = 65536;
constexpr std::size_t kArenaBytes = kPointerAreaBytes + kWorkspaceBytes;
constexpr std::size_t kMallocLimit = 1 << 20;  // cunormMalloc requests the library would serve

struct PickedHandle {
  cunormHandle_t handle;
  bool rejected;  // NULL or not live: the message is the thread's
  std::string role;
};

struct PickedCalibration {
  cunormBatchNormCalibration_t calib;
  std::int64_t c;  // its channels (1 when it is not a live calibration)
  std::string role;
};

class World {
 public:
  static World& get();

  void begin_input(std::uint8_t seed);
  void end_input();

  PickedHandle pick_handle(FuzzInput& in);
  // A handle for cunormDestroy: one the input created, NULL or dead, never the main or other one.
  PickedHandle pick_handle_to_destroy(FuzzInput& in);
  PickedCalibration pick_calibration(FuzzInput& in);
  // The pointer of the index-th pointer argument of a call; `earlier` are the call's previous ones.
  void* pick_pointer(FuzzInput& in, std::size_t index, const std::vector<void*>& earlier);
  void* pick_workspace(FuzzInput& in);
  // An allocation of this input, the arena, a pointer into it, or NULL, for cunormFree.
  void* pick_pointer_to_free(FuzzInput& in);

  // Bytes from p to the end of the arena; 0 when p is not in it.
  std::size_t bytes_left(const void* p) const;
  std::string describe(const void* p) const;  // "NULL", "arena+1234" or the address

  std::size_t created_handles() const { return created_.size(); }
  void handle_created(cunormHandle_t handle);
  void handle_destroyed(cunormHandle_t handle);
  void calibration_created(cunormHandle_t owner, cunormBatchNormCalibration_t calib, std::int64_t c);
  void calibration_destroyed(cunormBatchNormCalibration_t calib);
  void allocated(cunormHandle_t owner, void* p);
  void freed(void* p);

  unsigned char* arena() const { return arena_; }

  // The calls of this input so far, one line each, for the report of a failure.
  void note(const std::string& call) { trace_ += call + "\n"; }
  const std::string& trace() const { return trace_; }

 private:
  World();
  struct Calibration {
    cunormHandle_t owner;
    cunormBatchNormCalibration_t calib;
    std::int64_t c;
  };
  struct Allocation {
    cunormHandle_t owner;
    void* p;
  };

  unsigned char* arena_ = nullptr;
  cunormHandle_t main_ = nullptr, other_ = nullptr;
  cunormBatchNormCalibration_t foreign_ = nullptr;  // the other handle's, of 4 channels, made per input
  bool foreign_live_ = false;
  std::vector<cunormHandle_t> created_, dead_handles_;
  std::vector<Calibration> calibrations_;
  std::vector<cunormBatchNormCalibration_t> dead_calibrations_;
  std::vector<Allocation> allocations_;
  std::string trace_;
};

// Reports a broken oracle (or harness bookkeeping) and aborts, which libFuzzer records as a crash
// with the input that caused it.
[[noreturn]] void fail(const std::string& what);

}  // namespace cunorm_fuzz
