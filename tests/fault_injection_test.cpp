// Every op under injected faults (simt/fault_injection.hpp): for k = 1, 2, ... the k-th device
// allocation, then the k-th kernel launch, of one call fails, until k passes the number the call
// makes. Each failure must give the status api.md documents (ALLOC_FAILED for the workspace,
// EXECUTION_FAILED for a launch) with a message, leave the inputs untouched and, when nothing could
// have run yet (an allocation, or the first launch), every output and running statistic
// bit-for-bit untouched; the same handle must then run the call to the result of a call that never
// failed. Outputs updated in place from their own contents (BatchNorm's running statistics) must
// be untouched after any failure, and are not reset for the retry: a retry applies momentum once.
// Calibration: a failed accumulate must not merge anything into the accumulator.
#include "simt/fault_injection.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/backend_fixture.hpp"
#include "support/batch_norm_case.hpp"
#include "support/row_norm_case.hpp"

namespace cunorm_test {
namespace {

HostArray poison(cunormDataType_t dtype, std::size_t count) {
  HostArray out(dtype, count);
  out.fill_bytes(0xa5);
  return out;
}

HostArray filled(std::size_t count, double value) {
  HostArray out(CUNORM_FLOAT32, count);
  for (std::size_t i = 0; i < count; ++i) out.set(i, value);
  return out;
}

// The device buffers of one call on one handle, by argument name, and the calibration the call
// may use (prepared on the handle before faults are armed).
struct Session {
  cunormHandle_t handle = nullptr;
  std::map<std::string, std::unique_ptr<DeviceArray>> buffers;
  cunormBatchNormCalibration_t calib = nullptr;
  void* operator[](const std::string& name) const { return buffers.at(name)->data(); }
  float* floats(const std::string& name) const { return buffers.at(name)->as_floats(); }
};

struct Scenario {
  std::string name;
  std::map<std::string, HostArray> inputs, outputs;  // outputs hold their initial contents
  std::function<void(Session&)> prepare;             // optional, before faults are armed
  std::function<cunormStatus_t(const Session&)> call;
  std::set<std::string> updated_in_place;  // outputs no failing call may change
};

// A fresh handle with the scenario's buffers, so that the call allocates its workspace itself.
void open_session(const Scenario& scenario, Session* session) {
  ASSERT_EQ(cunormCreate(&session->handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  for (const auto* group : {&scenario.inputs, &scenario.outputs}) {
    for (const auto& [name, host] : *group) {
      session->buffers[name] = std::make_unique<DeviceArray>(session->handle, host);
    }
  }
  if (scenario.prepare) scenario.prepare(*session);
}

void close_session(Session* session) {
  session->buffers.clear();
  EXPECT_EQ(cunormDestroy(session->handle), CUNORM_STATUS_SUCCESS);
}

std::map<std::string, HostArray> download(const Session& session, const std::map<std::string, HostArray>& which) {
  std::map<std::string, HostArray> out;
  for (const auto& entry : which) out[entry.first] = session.buffers.at(entry.first)->download();
  return out;
}

void expect_same(const std::map<std::string, HostArray>& expected, const std::map<std::string, HostArray>& actual,
                 const std::string& what) {
  for (const auto& [name, host] : expected) {
    EXPECT_TRUE(host.bitwise_equal(actual.at(name))) << name << " differs " << what;
  }
}

// The outputs of the call on a handle that never saw a fault.
std::map<std::string, HostArray> fault_free_result(const Scenario& scenario) {
  Session session;
  open_session(scenario, &session);
  EXPECT_EQ(scenario.call(session), CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(session.handle);
  auto result = download(session, scenario.outputs);
  close_session(&session);
  return result;
}

// Sweeps k over every event of `site` the call makes; returns how many it makes.
int sweep(const Scenario& scenario, simt::FaultSite site, const std::map<std::string, HostArray>& expected) {
  const bool launch = site == simt::FaultSite::kLaunch;
  for (int k = 1;; ++k) {
    SCOPED_TRACE(scenario.name + (launch ? ": launch " : ": allocation ") + std::to_string(k) + " fails");
    Session session;
    open_session(scenario, &session);
    simt::inject_fault(site, static_cast<std::uint64_t>(k));
    const cunormStatus_t status = scenario.call(session);
    const bool fired = !simt::injected_fault_pending(site);
    simt::inject_fault(site, 0);
    if (!fired) {  // the call made fewer than k events: it ran to the end
      EXPECT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(session.handle);
      expect_same(expected, download(session, scenario.outputs), "from the fault-free run");
      close_session(&session);
      return k - 1;
    }
    EXPECT_EQ(status, launch ? CUNORM_STATUS_EXECUTION_FAILED : CUNORM_STATUS_ALLOC_FAILED);
    EXPECT_NE(std::string(cunormGetLastErrorMessage(session.handle)).find("injected fault"), std::string::npos)
        << cunormGetLastErrorMessage(session.handle);
    expect_same(scenario.inputs, download(session, scenario.inputs), "after the failure (an input)");
    const std::map<std::string, HostArray> after = download(session, scenario.outputs);
    if (!launch || k == 1) expect_same(scenario.outputs, after, "after a failure before any launch ran");
    for (const std::string& name : scenario.updated_in_place) {
      EXPECT_TRUE(scenario.outputs.at(name).bitwise_equal(after.at(name))) << name << " changed by a failing call";
    }
    // The same handle recovers: the outputs reset (but those updated in place, which a retry must
    // find as they were), the call succeeds with the fault-free result.
    for (const auto& [name, host] : scenario.outputs) {
      if (scenario.updated_in_place.count(name) == 0) session.buffers.at(name)->upload(host);
    }
    EXPECT_EQ(scenario.call(session), CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(session.handle);
    expect_same(expected, download(session, scenario.outputs), "in the retry on the same handle");
    close_session(&session);
    if (::testing::Test::HasFailure()) return k;
  }
}

const DtypePair kHalf{CUNORM_FLOAT16, CUNORM_FLOAT32};
const DtypePair kFloat{CUNORM_FLOAT32, CUNORM_FLOAT32};

Scenario layer_norm_forward(int64_t rows, int64_t cols) {
  const RowNormCase c(Norm::kLayerNorm, kFloat, rows, cols, true, 1e-5f, 11);
  const std::size_t r = static_cast<std::size_t>(rows);
  return {"LayerNormForward " + std::to_string(rows) + "x" + std::to_string(cols),
          {{"x", c.x}, {"gamma", c.gamma}, {"beta", c.beta}},
          {{"y", poison(kFloat.dtype, c.x.count())},
           {"mean", poison(CUNORM_FLOAT32, r)},
           {"rstd", poison(CUNORM_FLOAT32, r)}},
          nullptr,
          [=](const Session& s) {
            return cunormLayerNormForward(s.handle, rows, cols, kFloat.dtype, kFloat.param, s["x"], s["gamma"],
                                          s["beta"], 1e-5f, s["y"], s.floats("mean"), s.floats("rstd"));
          },
          {}};
}

Scenario row_norm_backward(Norm norm, int64_t rows, int64_t cols) {
  const RowNormCase c(norm, kHalf, rows, cols, true, 1e-5f, 12);
  const std::size_t r = static_cast<std::size_t>(rows), n = static_cast<std::size_t>(cols);
  const bool ln = norm == Norm::kLayerNorm;
  return {
      std::string(norm_label(norm)) + "Backward " + std::to_string(rows) + "x" + std::to_string(cols),
      {{"dy", c.dy}, {"x", c.x}, {"gamma", c.gamma}, {"mean", filled(r, 0.25)}, {"rstd", filled(r, 0.75)}},
      {{"dx", poison(kHalf.dtype, c.x.count())}, {"dgamma", poison(kHalf.param, n)}, {"dbeta", poison(kHalf.param, n)}},
      nullptr,
      [=](const Session& s) {
        if (ln) {
          return cunormLayerNormBackward(s.handle, rows, cols, kHalf.dtype, kHalf.param, s["dy"], s["x"],
                                         s.floats("mean"), s.floats("rstd"), s["gamma"], s["dx"], s["dgamma"],
                                         s["dbeta"]);
        }
        return cunormRMSNormBackward(s.handle, rows, cols, kHalf.dtype, kHalf.param, s["dy"], s["x"], s.floats("rstd"),
                                     s["gamma"], s["dx"], s["dgamma"]);
      },
      {}};
}

Scenario rms_norm_forward(int64_t rows, int64_t cols) {
  const RowNormCase c(Norm::kRmsNorm, kHalf, rows, cols, true, 1e-5f, 13);
  return {"RMSNormForward " + std::to_string(rows) + "x" + std::to_string(cols),
          {{"x", c.x}, {"gamma", c.gamma}},
          {{"y", poison(kHalf.dtype, c.x.count())}, {"rrms", poison(CUNORM_FLOAT32, static_cast<std::size_t>(rows))}},
          nullptr,
          [=](const Session& s) {
            return cunormRMSNormForward(s.handle, rows, cols, kHalf.dtype, kHalf.param, s["x"], s["gamma"], 1e-5f,
                                        s["y"], s.floats("rrms"));
          },
          {}};
}

enum class BnEntry { kTraining, kInference, kBackward, kBackwardInference };

Scenario batch_norm(BnEntry entry, cunormLayout_t layout, int64_t n, int64_t ch, int64_t sp) {
  const BatchNormCase c(layout, kHalf, n, ch, sp, true, 1e-5f, 14);
  const std::size_t channels = static_cast<std::size_t>(ch);
  const char* names[] = {"Training", "Inference", "Backward", "BackwardInference"};
  Scenario scenario{std::string("BatchNorm") + names[static_cast<int>(entry)] + " " + c.label(),
                    {{"x", c.x}, {"gamma", c.gamma}, {"beta", c.beta}},
                    {},
                    nullptr,
                    nullptr,
                    {}};
  const auto dtype = kHalf.dtype, param = kHalf.param;
  switch (entry) {
    case BnEntry::kTraining:
      scenario.outputs = {{"running_mean", filled(channels, 0.5)},
                          {"running_var", filled(channels, 2.0)},
                          {"y", poison(dtype, c.x.count())},
                          {"saved_mean", poison(CUNORM_FLOAT32, channels)},
                          {"saved_invstd", poison(CUNORM_FLOAT32, channels)}};
      scenario.updated_in_place = {"running_mean", "running_var"};
      scenario.call = [=](const Session& s) {
        return cunormBatchNormForwardTraining(s.handle, layout, n, ch, sp, dtype, param, s["x"], s["gamma"], s["beta"],
                                              1e-5f, 0.1f, s.floats("running_mean"), s.floats("running_var"), s["y"],
                                              s.floats("saved_mean"), s.floats("saved_invstd"));
      };
      break;
    case BnEntry::kInference:
      scenario.inputs.emplace("running_mean", filled(channels, 0.5));
      scenario.inputs.emplace("running_var", filled(channels, 2.0));
      scenario.outputs = {{"y", poison(dtype, c.x.count())}};
      scenario.call = [=](const Session& s) {
        return cunormBatchNormForwardInference(s.handle, layout, n, ch, sp, dtype, param, s["x"], s["gamma"], s["beta"],
                                               s.floats("running_mean"), s.floats("running_var"), 1e-5f, s["y"]);
      };
      break;
    case BnEntry::kBackward:
    case BnEntry::kBackwardInference:
      scenario.inputs.emplace("dy", c.dy);
      scenario.inputs.emplace("mean", filled(channels, 0.5));
      scenario.inputs.emplace("second", filled(channels, entry == BnEntry::kBackward ? 0.8 : 2.0));
      scenario.outputs = {
          {"dx", poison(dtype, c.x.count())}, {"dgamma", poison(param, channels)}, {"dbeta", poison(param, channels)}};
      scenario.call = [=](const Session& s) {
        if (entry == BnEntry::kBackward) {
          return cunormBatchNormBackward(s.handle, layout, n, ch, sp, dtype, param, s["dy"], s["x"], s["gamma"],
                                         s.floats("mean"), s.floats("second"), s["dx"], s["dgamma"], s["dbeta"]);
        }
        return cunormBatchNormBackwardInference(s.handle, layout, n, ch, sp, dtype, param, s["dy"], s["x"], s["gamma"],
                                                s.floats("mean"), s.floats("second"), 1e-5f, s["dx"], s["dgamma"],
                                                s["dbeta"]);
      };
      break;
  }
  return scenario;
}

// A calibration that has seen one batch (through a user workspace) accumulates another in the
// handle's own workspace and finalizes. A failed accumulate that merged anything would change the retry's statistics.
Scenario calibration(cunormLayout_t layout) {
  const int64_t ch = 5, sp = 9;
  const BatchNormCase first(layout, kFloat, 2, ch, sp, false, 1e-5f, 15),
      second(layout, kFloat, 7, ch, sp, false, 1e-5f, 16);
  const std::size_t channels = static_cast<std::size_t>(ch);
  return {
      std::string("BatchNormCalibration ") + second.label(),
      {{"first", first.x}, {"second", second.x}},
      {{"running_mean", poison(CUNORM_FLOAT32, channels)}, {"running_var", poison(CUNORM_FLOAT32, channels)}},
      [=](Session& s) {  // the first batch in a user workspace, so the handle still owns none
        size_t bytes = 0;
        ASSERT_EQ(cunormBatchNormWorkspaceSize(s.handle, layout, 2, ch, sp, CUNORM_FLOAT32, CUNORM_FLOAT32, &bytes),
                  CUNORM_STATUS_SUCCESS);
        s.buffers["workspace"] = std::make_unique<DeviceArray>(s.handle, HostArray(CUNORM_FLOAT32, bytes / 4));
        ASSERT_EQ(cunormSetWorkspace(s.handle, s["workspace"], bytes), CUNORM_STATUS_SUCCESS);
        ASSERT_EQ(cunormBatchNormCalibrationCreate(s.handle, ch, &s.calib), CUNORM_STATUS_SUCCESS);
        ASSERT_EQ(cunormBatchNormCalibrationAccumulate(s.handle, s.calib, layout, 2, sp, CUNORM_FLOAT32, s["first"]),
                  CUNORM_STATUS_SUCCESS);
        ASSERT_EQ(cunormSetWorkspace(s.handle, nullptr, 0), CUNORM_STATUS_SUCCESS);
      },
      [=](const Session& s) {
        const cunormStatus_t status =
            cunormBatchNormCalibrationAccumulate(s.handle, s.calib, layout, 7, sp, CUNORM_FLOAT32, s["second"]);
        if (status != CUNORM_STATUS_SUCCESS) return status;
        return cunormBatchNormCalibrationFinalize(s.handle, s.calib, s.floats("running_mean"), s.floats("running_var"));
      },
      {}};
}

struct Expected {
  Scenario scenario;
  bool allocates;  // on a fresh handle, the call needs a workspace
};

std::vector<Expected> all_scenarios() {
  return {{layer_norm_forward(5, 96), false},
          {layer_norm_forward(1, 40000), true},  // segments of one row across blocks, merged in the workspace
          {rms_norm_forward(7, 33), false},
          {row_norm_backward(Norm::kLayerNorm, 9, 40), true},
          {row_norm_backward(Norm::kRmsNorm, 6, 72), true},
          {batch_norm(BnEntry::kTraining, CUNORM_LAYOUT_NCHW, 3, 6, 10), true},
          {batch_norm(BnEntry::kTraining, CUNORM_LAYOUT_NHWC, 4, 12, 5), true},
          {batch_norm(BnEntry::kInference, CUNORM_LAYOUT_NHWC, 2, 8, 7), false},  // coefficients computed in its one pass
          {batch_norm(BnEntry::kBackward, CUNORM_LAYOUT_NCHW, 3, 5, 11), true},
          {batch_norm(BnEntry::kBackwardInference, CUNORM_LAYOUT_NHWC, 3, 6, 4), true},
          {calibration(CUNORM_LAYOUT_NCHW), true},
          {calibration(CUNORM_LAYOUT_NHWC), true}};
}

TEST(FaultInjection, EveryAllocationAndLaunchOfEveryOp) {
  for (const Expected& e : all_scenarios()) {
    const auto expected = fault_free_result(e.scenario);
    const int allocations = sweep(e.scenario, simt::FaultSite::kAllocation, expected);
    const int launches = sweep(e.scenario, simt::FaultSite::kLaunch, expected);
    EXPECT_GE(launches, 1) << e.scenario.name;
    EXPECT_EQ(allocations >= 1, e.allocates) << e.scenario.name << " made " << allocations << " allocations";
    std::printf("%-60s %d allocation(s), %d launch(es)\n", e.scenario.name.c_str(), allocations, launches);
    if (HasFailure()) return;
  }
}

// With a user workspace, no call allocates (api.md): an armed allocation fault stays pending.
TEST(FaultInjection, UserWorkspaceMeansNoAllocation) {
  const Scenario scenario = batch_norm(BnEntry::kTraining, CUNORM_LAYOUT_NCHW, 3, 6, 10);
  Session session;
  open_session(scenario, &session);
  size_t bytes = 0;
  ASSERT_EQ(
      cunormBatchNormWorkspaceSize(session.handle, CUNORM_LAYOUT_NCHW, 3, 6, 10, kHalf.dtype, kHalf.param, &bytes),
      CUNORM_STATUS_SUCCESS);
  void* workspace = nullptr;
  ASSERT_EQ(cunormMalloc(session.handle, &workspace, bytes), CUNORM_STATUS_SUCCESS);
  ASSERT_EQ(cunormSetWorkspace(session.handle, workspace, bytes), CUNORM_STATUS_SUCCESS);
  simt::inject_fault(simt::FaultSite::kAllocation, 1);
  EXPECT_EQ(scenario.call(session), CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(session.handle);
  EXPECT_TRUE(simt::injected_fault_pending(simt::FaultSite::kAllocation));
  simt::inject_fault(simt::FaultSite::kAllocation, 0);
  EXPECT_EQ(cunormFree(session.handle, workspace), CUNORM_STATUS_SUCCESS);
  close_session(&session);
}

// cunormMalloc itself: ALLOC_FAILED, *ptr set to NULL, and the next allocation works.
TEST(FaultInjection, MallocFailure) {
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  void* pointer = &handle;
  simt::inject_fault(simt::FaultSite::kAllocation, 1);
  EXPECT_EQ(cunormMalloc(handle, &pointer, 1024), CUNORM_STATUS_ALLOC_FAILED);
  EXPECT_EQ(pointer, nullptr);
  EXPECT_NE(std::string(cunormGetLastErrorMessage(handle)).find("1024 bytes"), std::string::npos);
  EXPECT_EQ(cunormMalloc(handle, &pointer, 1024), CUNORM_STATUS_SUCCESS);
  EXPECT_NE(pointer, nullptr);
  EXPECT_EQ(cunormFree(handle, pointer), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

}  // namespace
}  // namespace cunorm_test
