// The API fuzzer's world (see fuzz_world.hpp).
#include "fuzz_world.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace cunorm_fuzz {
namespace {

char never_a_handle;  // its address is no handle's and no calibration's

void expect_success(cunormStatus_t status, const char* what) {
  if (status != CUNORM_STATUS_SUCCESS) {
    fail(std::string("harness cleanup: ") + what + " returned " + cunormGetStatusString(status) + ": " +
         cunormGetLastErrorMessage(nullptr));
  }
}

template <class T>
void erase_value(std::vector<T>& values, const T& value) {
  values.erase(std::remove(values.begin(), values.end(), value), values.end());
}

}  // namespace

void fail(const std::string& what) {
  std::fprintf(stderr, "\n== cunorm API fuzzer: %s\n== calls of this input:\n%s\n", what.c_str(),
               World::get().trace().c_str());
  std::abort();
}

World& World::get() {
  static World* world = new World();  // lives until exit, as the handles the library registers
  return *world;
}

World::World() {
  arena_ = static_cast<unsigned char*>(std::aligned_alloc(256, kArenaBytes));
  if (arena_ == nullptr) fail("cannot allocate the arena");
  expect_success(cunormCreate(&main_, CUNORM_BACKEND_SIMT), "cunormCreate(main)");
  expect_success(cunormCreate(&other_, CUNORM_BACKEND_SIMT), "cunormCreate(other)");
}

void World::begin_input(std::uint8_t seed) {
  std::uint32_t state = 0x9e3779b9u ^ (static_cast<std::uint32_t>(seed) * 0x01000193u);
  for (std::size_t i = 0; i < kArenaBytes; ++i) {  // xorshift32: values of every kind, NaN included
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    arena_[i] = static_cast<unsigned char>(state);
  }
  trace_.clear();
  // Made anew for each input, since an input may accumulate into it or destroy it.
  expect_success(cunormBatchNormCalibrationCreate(other_, 4, &foreign_), "cunormBatchNormCalibrationCreate(other)");
  foreign_live_ = true;
  erase_value(dead_calibrations_, foreign_);
}

void World::end_input() {
  if (foreign_live_) {
    expect_success(cunormBatchNormCalibrationDestroy(other_, foreign_), "cunormBatchNormCalibrationDestroy(other)");
  }
  foreign_live_ = false;
  for (const Calibration& c : calibrations_) {
    expect_success(cunormBatchNormCalibrationDestroy(c.owner, c.calib), "cunormBatchNormCalibrationDestroy");
  }
  calibrations_.clear();
  dead_calibrations_.clear();
  for (const Allocation& a : allocations_) expect_success(cunormFree(a.owner, a.p), "cunormFree");
  allocations_.clear();
  for (cunormHandle_t h : created_) expect_success(cunormDestroy(h), "cunormDestroy");
  created_.clear();
  dead_handles_.clear();
  expect_success(cunormSetWorkspace(main_, nullptr, 0), "cunormSetWorkspace(main, NULL, 0)");
  expect_success(cunormSetWorkspace(other_, nullptr, 0), "cunormSetWorkspace(other, NULL, 0)");
}

PickedHandle World::pick_handle(FuzzInput& in) {
  const std::uint8_t b = in.byte();
  switch (b % 16) {
    case 12: return {nullptr, true, "NULL"};
    case 13:
      if (!dead_handles_.empty()) return {dead_handles_[b / 16 % dead_handles_.size()], true, "destroyed"};
      return {reinterpret_cast<cunormHandle_t>(&never_a_handle), true, "never a handle"};
    case 14:
      if (!created_.empty()) return {created_[b / 16 % created_.size()], false, "created"};
      return {main_, false, "main"};
    case 15: return {other_, false, "other"};
    default: return {main_, false, "main"};
  }
}

PickedHandle World::pick_handle_to_destroy(FuzzInput& in) {
  const std::uint8_t b = in.byte();
  if (b % 4 == 1) return {nullptr, true, "NULL"};
  if (b % 4 != 2 && !created_.empty()) return {created_[b / 4 % created_.size()], false, "created"};
  if (!dead_handles_.empty()) return {dead_handles_[b / 4 % dead_handles_.size()], true, "destroyed"};
  return {reinterpret_cast<cunormHandle_t>(&never_a_handle), true, "never a handle"};
}

PickedCalibration World::pick_calibration(FuzzInput& in) {
  const std::uint8_t b = in.byte();
  switch (b % 8) {
    case 5: return {nullptr, 1, "NULL"};
    case 6:
      if (!dead_calibrations_.empty()) return {dead_calibrations_[b / 8 % dead_calibrations_.size()], 1, "destroyed"};
      return {reinterpret_cast<cunormBatchNormCalibration_t>(&never_a_handle), 1, "never a calibration"};
    case 7: return {foreign_, 4, "the other handle's"};
    default:
      if (calibrations_.empty()) return {nullptr, 1, "NULL (none created)"};
      const Calibration& c = calibrations_[b / 8 % calibrations_.size()];
      return {c.calib, c.c, c.owner == main_ ? "created on main" : "created on another handle"};
  }
}

void* World::pick_pointer(FuzzInput& in, std::size_t index, const std::vector<void*>& earlier) {
  unsigned char* const home = arena_ + (index % kSlots) * kSlotBytes;
  const std::uint8_t b = in.byte();
  switch (b % 8) {
    case 1: return nullptr;
    case 2: return arena_ + (in.byte() % kSlots) * kSlotBytes;  // another argument's home: overlaps
    case 3: return home + in.byte();                            // misaligned, or a partial overlap
    case 4:
    case 5: {  // an earlier argument's pointer (in place, inputs aliasing), maybe a little past it
      if (earlier.empty() || earlier[b / 8 % earlier.size()] == nullptr) return home;
      unsigned char* p = static_cast<unsigned char*>(earlier[b / 8 % earlier.size()]);
      return b % 8 == 4 ? p : p + in.byte();
    }
    case 6: return home + in.little_endian(2) % kSlotBytes;
    default: return home;
  }
}

void* World::pick_workspace(FuzzInput& in) {
  const std::uint8_t b = in.byte();
  if (b % 8 == 1) return nullptr;
  unsigned char* const region = arena_ + kPointerAreaBytes;
  if (b % 8 == 2) return region + in.little_endian(2) % kWorkspaceBytes;  // misaligned mostly
  return region;
}

void* World::pick_pointer_to_free(FuzzInput& in) {
  const std::uint8_t b = in.byte();
  switch (b % 4) {
    case 1: return nullptr;
    case 2: return arena_;  // host memory cunormMalloc did not return
    case 3: return arena_ + in.little_endian(2) % kArenaBytes;
    default:
      if (allocations_.empty()) return nullptr;
      return allocations_[b / 4 % allocations_.size()].p;
  }
}

std::size_t World::bytes_left(const void* p) const {
  const unsigned char* q = static_cast<const unsigned char*>(p);
  if (q < arena_ || q >= arena_ + kArenaBytes) return 0;
  return static_cast<std::size_t>(arena_ + kArenaBytes - q);
}

std::string World::describe(const void* p) const {
  if (p == nullptr) return "NULL";
  if (bytes_left(p) > 0) return "arena+" + std::to_string(static_cast<const unsigned char*>(p) - arena_);
  char text[32];
  std::snprintf(text, sizeof(text), "%p", p);
  return text;
}

void World::handle_created(cunormHandle_t handle) {
  created_.push_back(handle);
  erase_value(dead_handles_, handle);  // the address of a destroyed handle may be reused
}

void World::handle_destroyed(cunormHandle_t handle) {
  erase_value(created_, handle);
  dead_handles_.push_back(handle);
  // Its calibrations and allocations went with it.
  for (const Calibration& c : calibrations_) {
    if (c.owner == handle) dead_calibrations_.push_back(c.calib);
  }
  calibrations_.erase(std::remove_if(calibrations_.begin(), calibrations_.end(),
                                     [&](const Calibration& c) { return c.owner == handle; }),
                      calibrations_.end());
  allocations_.erase(
      std::remove_if(allocations_.begin(), allocations_.end(), [&](const Allocation& a) { return a.owner == handle; }),
      allocations_.end());
}

void World::calibration_created(cunormHandle_t owner, cunormBatchNormCalibration_t calib, std::int64_t c) {
  calibrations_.push_back({owner, calib, c});
  erase_value(dead_calibrations_, calib);
}

void World::calibration_destroyed(cunormBatchNormCalibration_t calib) {
  if (calib == foreign_) foreign_live_ = false;
  calibrations_.erase(std::remove_if(calibrations_.begin(), calibrations_.end(),
                                     [&](const Calibration& c) { return c.calib == calib; }),
                      calibrations_.end());
  dead_calibrations_.push_back(calib);
}

void World::allocated(cunormHandle_t owner, void* p) { allocations_.push_back({owner, p}); }

void World::freed(void* p) {
  allocations_.erase(
      std::remove_if(allocations_.begin(), allocations_.end(), [&](const Allocation& a) { return a.p == p; }),
      allocations_.end());
}

}  // namespace cunorm_fuzz
