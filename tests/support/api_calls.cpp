// The C API's entry points behind one argument record (see api_calls.hpp).
#include "api_calls.hpp"

#include <initializer_list>

#include "host_array.hpp"

namespace cunorm_test {

const char* entry_name(Entry entry) {
  switch (entry) {
    case Entry::kLayerNormForward: return "cunormLayerNormForward";
    case Entry::kLayerNormBackward: return "cunormLayerNormBackward";
    case Entry::kRmsNormForward: return "cunormRMSNormForward";
    case Entry::kRmsNormBackward: return "cunormRMSNormBackward";
    case Entry::kLayerNormWorkspaceSize: return "cunormLayerNormWorkspaceSize";
    case Entry::kBatchNormForwardTraining: return "cunormBatchNormForwardTraining";
    case Entry::kBatchNormForwardTrainingEx: return "cunormBatchNormForwardTrainingEx";
    case Entry::kBatchNormForwardInference: return "cunormBatchNormForwardInference";
    case Entry::kBatchNormBackward: return "cunormBatchNormBackward";
    case Entry::kBatchNormBackwardInference: return "cunormBatchNormBackwardInference";
    case Entry::kBatchNormWorkspaceSize: return "cunormBatchNormWorkspaceSize";
    case Entry::kCalibrationCreate: return "cunormBatchNormCalibrationCreate";
    case Entry::kCalibrationAccumulate: return "cunormBatchNormCalibrationAccumulate";
    case Entry::kCalibrationFinalize: return "cunormBatchNormCalibrationFinalize";
    case Entry::kCalibrationDestroy: return "cunormBatchNormCalibrationDestroy";
  }
  return "unknown entry";
}

bool is_row_norm(Entry entry) { return entry <= Entry::kLayerNormWorkspaceSize; }

bool is_batch_norm(Entry entry) {
  return entry >= Entry::kBatchNormForwardTraining && entry <= Entry::kBatchNormWorkspaceSize;
}

bool launches_kernels(Entry entry) {
  return entry != Entry::kLayerNormWorkspaceSize && entry != Entry::kBatchNormWorkspaceSize &&
         entry != Entry::kCalibrationCreate && entry != Entry::kCalibrationFinalize &&
         entry != Entry::kCalibrationDestroy;
}

bool has_eps(Entry entry) {
  switch (entry) {
    case Entry::kLayerNormForward:
    case Entry::kRmsNormForward:
    case Entry::kBatchNormForwardTraining:
    case Entry::kBatchNormForwardTrainingEx:
    case Entry::kBatchNormForwardInference:
    case Entry::kBatchNormBackwardInference: return true;
    default: return false;
  }
}

bool needs_two_values(Entry entry) {
  return entry == Entry::kBatchNormForwardTraining || entry == Entry::kBatchNormForwardTrainingEx ||
         entry == Entry::kBatchNormBackward;
}

cunormStatus_t call(Entry entry, const Args& a) {
  const auto layout = static_cast<cunormLayout_t>(a.layout);
  const auto dtype = static_cast<cunormDataType_t>(a.dtype), param = static_cast<cunormDataType_t>(a.param);
  const auto f = [](void* p) { return static_cast<float*>(p); };
  switch (entry) {
    case Entry::kLayerNormForward:
      return cunormLayerNormForward(a.handle, a.rows, a.cols, dtype, param, a.x, a.gamma, a.beta, a.eps, a.y, f(a.mean),
                                    f(a.rstd));
    case Entry::kLayerNormBackward:
      return cunormLayerNormBackward(a.handle, a.rows, a.cols, dtype, param, a.dy, a.x, f(a.mean), f(a.rstd), a.gamma,
                                     a.dx, a.dgamma, a.dbeta);
    case Entry::kRmsNormForward:
      return cunormRMSNormForward(a.handle, a.rows, a.cols, dtype, param, a.x, a.gamma, a.eps, a.y, f(a.rrms));
    case Entry::kRmsNormBackward:
      return cunormRMSNormBackward(a.handle, a.rows, a.cols, dtype, param, a.dy, a.x, f(a.rrms), a.gamma, a.dx,
                                   a.dgamma);
    case Entry::kLayerNormWorkspaceSize:
      return cunormLayerNormWorkspaceSize(a.handle, a.rows, a.cols, dtype, param, static_cast<size_t*>(a.bytes));
    case Entry::kBatchNormForwardTraining:
      return cunormBatchNormForwardTraining(a.handle, layout, a.n, a.c, a.s, dtype, param, a.x, a.gamma, a.beta, a.eps,
                                            a.momentum, f(a.running_mean), f(a.running_var), a.y, f(a.saved_mean),
                                            f(a.saved_invstd));
    case Entry::kBatchNormForwardTrainingEx:
      return cunormBatchNormForwardTrainingEx(a.handle, layout, a.n, a.c, a.s, dtype, param, a.x, a.gamma, a.beta,
                                              a.eps, a.momentum, static_cast<cunormRunningVarMode_t>(a.mode),
                                              f(a.running_mean), f(a.running_var), a.y, f(a.saved_mean),
                                              f(a.saved_invstd));
    case Entry::kBatchNormForwardInference:
      return cunormBatchNormForwardInference(a.handle, layout, a.n, a.c, a.s, dtype, param, a.x, a.gamma, a.beta,
                                             f(a.running_mean), f(a.running_var), a.eps, a.y);
    case Entry::kBatchNormBackward:
      return cunormBatchNormBackward(a.handle, layout, a.n, a.c, a.s, dtype, param, a.dy, a.x, a.gamma, f(a.saved_mean),
                                     f(a.saved_invstd), a.dx, a.dgamma, a.dbeta);
    case Entry::kBatchNormBackwardInference:
      return cunormBatchNormBackwardInference(a.handle, layout, a.n, a.c, a.s, dtype, param, a.dy, a.x, a.gamma,
                                              f(a.running_mean), f(a.running_var), a.eps, a.dx, a.dgamma, a.dbeta);
    case Entry::kBatchNormWorkspaceSize:
      return cunormBatchNormWorkspaceSize(a.handle, layout, a.n, a.c, a.s, dtype, param, static_cast<size_t*>(a.bytes));
    case Entry::kCalibrationCreate:
      return cunormBatchNormCalibrationCreate(a.handle, a.c, static_cast<cunormBatchNormCalibration_t*>(a.calib_out));
    case Entry::kCalibrationAccumulate:
      return cunormBatchNormCalibrationAccumulate(a.handle, a.calib, layout, a.n, a.s, dtype, a.x);
    case Entry::kCalibrationFinalize:
      return cunormBatchNormCalibrationFinalize(a.handle, a.calib, f(a.running_mean), f(a.running_var));
    case Entry::kCalibrationDestroy: return cunormBatchNormCalibrationDestroy(a.handle, a.calib);
  }
  return CUNORM_STATUS_INTERNAL_ERROR;
}

namespace {

// Elements of a tensor: 0 as soon as one size is, without multiplying the others (an empty batch
// may come with any other size; the API fuzzer passes such).
int64_t elements(std::initializer_list<int64_t> sizes) {
  int64_t product = 1;
  for (int64_t size : sizes) {
    if (size == 0) return 0;
  }
  for (int64_t size : sizes) product *= size;
  return product;
}

}  // namespace

std::vector<PointerArg> pointer_args(Entry entry, const Args& a, int64_t calib_c) {
  const auto dtype = static_cast<cunormDataType_t>(a.dtype), param = static_cast<cunormDataType_t>(a.param);
  const std::size_t e = element_size(dtype), p = element_size(param), f = sizeof(float);
  const int64_t row_tensor = elements({a.rows, a.cols}), bn_tensor = elements({a.n, a.c, a.s});
  const auto in = [](const char* name, void* Args::*m, std::size_t bytes, int64_t count, Nullable nullable) {
    return PointerArg{name, m, bytes, count, false, nullable, nullptr};
  };
  const auto out = [](const char* name, void* Args::*m, std::size_t bytes, int64_t count, Nullable nullable,
                      const char* may_equal = nullptr) {
    return PointerArg{name, m, bytes, count, true, nullable, may_equal};
  };
  const Nullable no = Nullable::kNo, yes = Nullable::kYes, empty = Nullable::kWhenEmpty;
  switch (entry) {
    case Entry::kLayerNormForward:
      return {in("x", &Args::x, e, row_tensor, empty),  in("gamma", &Args::gamma, p, a.cols, yes),
              in("beta", &Args::beta, p, a.cols, yes),  out("y", &Args::y, e, row_tensor, empty, "x"),
              out("mean", &Args::mean, f, a.rows, yes), out("rstd", &Args::rstd, f, a.rows, yes)};
    case Entry::kLayerNormBackward:
      return {in("dy", &Args::dy, e, row_tensor, empty),    in("x", &Args::x, e, row_tensor, empty),
              in("mean", &Args::mean, f, a.rows, empty),    in("rstd", &Args::rstd, f, a.rows, empty),
              in("gamma", &Args::gamma, p, a.cols, yes),    out("dx", &Args::dx, e, row_tensor, empty, "dy"),
              out("dgamma", &Args::dgamma, p, a.cols, yes), out("dbeta", &Args::dbeta, p, a.cols, yes)};
    case Entry::kRmsNormForward:
      return {in("x", &Args::x, e, row_tensor, empty), in("gamma", &Args::gamma, p, a.cols, yes),
              out("y", &Args::y, e, row_tensor, empty, "x"), out("rrms", &Args::rrms, f, a.rows, yes)};
    case Entry::kRmsNormBackward:
      return {in("dy", &Args::dy, e, row_tensor, empty),        in("x", &Args::x, e, row_tensor, empty),
              in("rrms", &Args::rrms, f, a.rows, empty),        in("gamma", &Args::gamma, p, a.cols, yes),
              out("dx", &Args::dx, e, row_tensor, empty, "dy"), out("dgamma", &Args::dgamma, p, a.cols, yes)};
    case Entry::kLayerNormWorkspaceSize:
    case Entry::kBatchNormWorkspaceSize: return {out("bytes", &Args::bytes, sizeof(size_t), 1, no)};
    case Entry::kBatchNormForwardTraining:
    case Entry::kBatchNormForwardTrainingEx:
      return {in("x", &Args::x, e, bn_tensor, empty),
              in("gamma", &Args::gamma, p, a.c, yes),
              in("beta", &Args::beta, p, a.c, yes),
              out("running_mean", &Args::running_mean, f, a.c, yes),
              out("running_var", &Args::running_var, f, a.c, yes),
              out("y", &Args::y, e, bn_tensor, empty, "x"),
              out("saved_mean", &Args::saved_mean, f, a.c, yes),
              out("saved_invstd", &Args::saved_invstd, f, a.c, yes)};
    case Entry::kBatchNormForwardInference:
      return {in("x", &Args::x, e, bn_tensor, empty),
              in("gamma", &Args::gamma, p, a.c, yes),
              in("beta", &Args::beta, p, a.c, yes),
              in("running_mean", &Args::running_mean, f, a.c, no),
              in("running_var", &Args::running_var, f, a.c, no),
              out("y", &Args::y, e, bn_tensor, empty, "x")};
    case Entry::kBatchNormBackward:
    case Entry::kBatchNormBackwardInference: {
      const bool inference = entry == Entry::kBatchNormBackwardInference;
      return {in("dy", &Args::dy, e, bn_tensor, empty),
              in("x", &Args::x, e, bn_tensor, empty),
              in("gamma", &Args::gamma, p, a.c, yes),
              inference ? in("running_mean", &Args::running_mean, f, a.c, no)
                        : in("saved_mean", &Args::saved_mean, f, a.c, no),
              inference ? in("running_var", &Args::running_var, f, a.c, no)
                        : in("saved_invstd", &Args::saved_invstd, f, a.c, no),
              out("dx", &Args::dx, e, bn_tensor, empty, "dy"),
              out("dgamma", &Args::dgamma, p, a.c, yes),
              out("dbeta", &Args::dbeta, p, a.c, yes)};
    }
    case Entry::kCalibrationCreate:
      return {out("calib", &Args::calib_out, sizeof(cunormBatchNormCalibration_t), 1, no)};
    case Entry::kCalibrationAccumulate: return {in("x", &Args::x, e, elements({a.n, calib_c, a.s}), empty)};
    case Entry::kCalibrationFinalize:
      return {out("running_mean", &Args::running_mean, f, calib_c, no),
              out("running_var", &Args::running_var, f, calib_c, no)};
    case Entry::kCalibrationDestroy: return {};
  }
  return {};
}

}  // namespace cunorm_test
