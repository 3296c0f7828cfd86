// The API fuzzer's compute, workspace-query and calibration calls (see fuzz_calls.hpp): the
// handle, then the arguments in the entry point's order (sizes, enums, scalars), the size rule
// (fuzz_sizes.hpp), then every pointer argument.
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_calls.hpp"
#include "fuzz_oracle.hpp"
#include "fuzz_sizes.hpp"

namespace cunorm_fuzz {
namespace {

using cunorm_test::Args;
using cunorm_test::Entry;

bool takes_calibration(Entry e) {
  return e == Entry::kCalibrationAccumulate || e == Entry::kCalibrationFinalize || e == Entry::kCalibrationDestroy;
}
bool takes_layout(Entry e) { return cunorm_test::is_batch_norm(e) || e == Entry::kCalibrationAccumulate; }
bool takes_dtype_pair(Entry e) { return cunorm_test::is_row_norm(e) || cunorm_test::is_batch_norm(e); }
bool is_training(Entry e) { return e == Entry::kBatchNormForwardTraining || e == Entry::kBatchNormForwardTrainingEx; }

// param_dtype: mostly float32 or dtype itself (the valid pairs), sometimes any value.
int param_dtype(FuzzInput& in, int dtype) {
  const std::uint8_t b = in.byte();
  if (b >= 0xF0) return static_cast<int>(static_cast<std::uint32_t>(in.little_endian(4)));
  return b % 4 == 0 ? CUNORM_FLOAT32 : b % 4 == 1 ? dtype : b % 3;
}

std::string describe(const World& world, Entry entry, const Args& a, const std::string& handle,
                     const std::string& calib, const std::vector<cunorm_test::PointerArg>& pointers) {
  std::string text = std::string(cunorm_test::entry_name(entry)) + "(handle " + handle;
  if (takes_calibration(entry)) text += ", calib " + calib;
  if (cunorm_test::is_row_norm(entry)) text += ", rows " + std::to_string(a.rows) + ", cols " + std::to_string(a.cols);
  if (takes_layout(entry)) text += ", layout " + std::to_string(a.layout) + ", n " + std::to_string(a.n);
  if (cunorm_test::is_batch_norm(entry) || entry == Entry::kCalibrationCreate) text += ", c " + std::to_string(a.c);
  if (takes_layout(entry)) text += ", s " + std::to_string(a.s);
  if (takes_dtype_pair(entry) || entry == Entry::kCalibrationAccumulate) {
    text += ", dtype " + std::to_string(a.dtype) + ", param " + std::to_string(a.param);
  }
  if (cunorm_test::has_eps(entry)) text += ", eps " + std::to_string(a.eps);
  if (is_training(entry)) text += ", momentum " + std::to_string(a.momentum) + ", mode " + std::to_string(a.mode);
  for (const cunorm_test::PointerArg& p : pointers)
    text += std::string(", ") + p.name + " " + world.describe(a.*p.member);
  return text + ")";
}

}  // namespace

void fuzz_api_call(World& world, FuzzInput& in, Entry entry) {
  Args a;
  const PickedHandle handle = world.pick_handle(in);
  a.handle = handle.handle;
  PickedCalibration calib{nullptr, 1, "none"};
  if (takes_calibration(entry)) {
    calib = world.pick_calibration(in);
    a.calib = calib.calib;
  }
  if (takes_layout(entry)) a.layout = in.enumerator(2);
  if (cunorm_test::is_row_norm(entry)) {
    a.rows = in.size();
    a.cols = in.size();
  }
  if (takes_layout(entry)) a.n = in.size();
  if (cunorm_test::is_batch_norm(entry) || entry == Entry::kCalibrationCreate) a.c = in.size();
  if (takes_layout(entry)) a.s = in.size();
  if (takes_dtype_pair(entry) || entry == Entry::kCalibrationAccumulate) a.dtype = in.enumerator(3);
  a.param = takes_dtype_pair(entry) ? param_dtype(in, a.dtype) : CUNORM_FLOAT32;
  if (cunorm_test::has_eps(entry)) a.eps = in.scalar(1e-5f);
  if (is_training(entry)) a.momentum = in.scalar(0.1f);
  if (entry == Entry::kBatchNormForwardTrainingEx) a.mode = in.enumerator(2);
  const SizeVerdict verdict = fit_sizes(entry, &a, calib.c);

  // The pointer arguments in order; with zero sizes the list only names them.
  const std::vector<cunorm_test::PointerArg> names = cunorm_test::pointer_args(entry, Args{}, 0);
  std::vector<void*> earlier;
  for (std::size_t i = 0; i < names.size(); ++i) {
    a.*names[i].member = world.pick_pointer(in, i, earlier);
    earlier.push_back(a.*names[i].member);
  }
  if (verdict == SizeVerdict::kFitted) {  // the harness's own promise: no claim past a slot
    for (const cunorm_test::PointerArg& p : cunorm_test::pointer_args(entry, a, calib.c)) {
      if (p.count < 0 || p.bytes() > kSlotBytes) fail(std::string("fitted sizes claim too much for ") + p.name);
    }
  }
  const std::string call = describe(world, entry, a, handle.role, calib.role, names);
  world.note(call);

  const ArenaSnapshot before(world);
  const cunormStatus_t status = cunorm_test::call(entry, a);
  check_outcome(world, call, status, handle.rejected ? nullptr : handle.handle, verdict == SizeVerdict::kRejected,
                before);
  if (status != CUNORM_STATUS_SUCCESS) return;
  if (entry == Entry::kCalibrationCreate) {
    cunormBatchNormCalibration_t created;
    std::memcpy(&created, a.calib_out, sizeof(created));
    world.calibration_created(handle.handle, created, a.c);
  } else if (entry == Entry::kCalibrationDestroy) {
    world.calibration_destroyed(a.calib);
  }
}

}  // namespace cunorm_fuzz
