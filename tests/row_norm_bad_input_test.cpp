// Bad input to the four LayerNorm/RMSNorm entry points: each invalid argument returns the status
// api.md names with a message naming the argument, and leaves every output exactly as it was.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "support/backend_fixture.hpp"
#include "support/bad_input.hpp"
#include "support/host_array.hpp"

namespace cunorm_test {
namespace {

enum class Entry { kLayerNormForward, kLayerNormBackward, kRmsNormForward, kRmsNormBackward };

// Every argument any of the four takes; each entry point reads the ones it has.
struct Args {
  int64_t rows, cols;
  int dtype, param;
  const void *x, *dy, *gamma, *beta;
  const float *saved_mean, *saved_rstd;
  float eps;
  void *y, *dx, *dgamma, *dbeta;
  float *mean, *rstd;
};

cunormStatus_t call(Entry entry, cunormHandle_t h, const Args& a) {
  const auto dtype = static_cast<cunormDataType_t>(a.dtype), param = static_cast<cunormDataType_t>(a.param);
  switch (entry) {
    case Entry::kLayerNormForward:
      return cunormLayerNormForward(h, a.rows, a.cols, dtype, param, a.x, a.gamma, a.beta, a.eps, a.y, a.mean, a.rstd);
    case Entry::kLayerNormBackward:
      return cunormLayerNormBackward(h, a.rows, a.cols, dtype, param, a.dy, a.x, a.saved_mean, a.saved_rstd, a.gamma,
                                     a.dx, a.dgamma, a.dbeta);
    case Entry::kRmsNormForward:
      return cunormRMSNormForward(h, a.rows, a.cols, dtype, param, a.x, a.gamma, a.eps, a.y, a.rstd);
    case Entry::kRmsNormBackward:
      return cunormRMSNormBackward(h, a.rows, a.cols, dtype, param, a.dy, a.x, a.saved_rstd, a.gamma, a.dx, a.dgamma);
  }
  return CUNORM_STATUS_INTERNAL_ERROR;
}

using BadCase = cunorm_test::BadCase<Entry, Args>;

const std::vector<Entry> kAll = {Entry::kLayerNormForward, Entry::kLayerNormBackward, Entry::kRmsNormForward,
                                 Entry::kRmsNormBackward};
const std::vector<Entry> kForward = {Entry::kLayerNormForward, Entry::kRmsNormForward};
const std::vector<Entry> kBackward = {Entry::kLayerNormBackward, Entry::kRmsNormBackward};

class RowNormBadInput : public BackendParamTest<cunormBackend_t> {};

TEST_P(RowNormBadInput, IsRejectedAndWritesNothing) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  const int64_t rows = 4, cols = 64;
  HostArray input(CUNORM_FLOAT32, rows * cols), poison(CUNORM_FLOAT32, rows * cols);
  input.fill_bytes(0x3c);
  poison.fill_bytes(0xa5);
  DeviceArray d_x(handle_, input), d_dy(handle_, input), d_gamma(handle_, input), d_beta(handle_, input),
      d_saved_mean(handle_, input), d_saved_rstd(handle_, input);
  DeviceArray d_y(handle_, poison), d_dx(handle_, poison), d_dgamma(handle_, poison), d_dbeta(handle_, poison),
      d_mean(handle_, poison), d_rstd(handle_, poison);
  const DeviceArray* outputs[] = {&d_y, &d_dx, &d_dgamma, &d_dbeta, &d_mean, &d_rstd};
  char* const y_bytes = static_cast<char*>(d_y.data());
  const Args good{rows,
                  cols,
                  CUNORM_FLOAT32,
                  CUNORM_FLOAT32,
                  d_x.data(),
                  d_dy.data(),
                  d_gamma.data(),
                  d_beta.data(),
                  d_saved_mean.as_floats(),
                  d_saved_rstd.as_floats(),
                  1e-5f,
                  d_y.data(),
                  d_dx.data(),
                  d_dgamma.data(),
                  d_dbeta.data(),
                  d_mean.as_floats(),
                  d_rstd.as_floats()};
  const std::vector<BadCase> cases = {
      {kAll, "negative rows", [](Args& a) { a.rows = -1; }, "rows must be >= 0, got -1"},
      {kAll, "cols 0", [](Args& a) { a.cols = 0; }, "cols must be > 0, got 0"},
      {kAll, "negative cols", [](Args& a) { a.cols = -5; }, "cols must be > 0, got -5"},
      {kAll, "huge", [](Args& a) { a.rows = int64_t{1} << 40, a.cols = int64_t{1} << 40; }, "rows * cols is too large"},
      {kAll, "dtype", [](Args& a) { a.dtype = 7; },
       "dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got 7"},
      {kAll, "param_dtype enum", [](Args& a) { a.param = -1; }, "param_dtype must be"},
      {kAll, "dtype pair", [](Args& a) { a.dtype = CUNORM_FLOAT16, a.param = CUNORM_BFLOAT16; },
       "param_dtype must be CUNORM_FLOAT32 or equal to dtype (CUNORM_FLOAT16), got CUNORM_BFLOAT16"},
      {kAll, "param bigger than activations", [](Args& a) { a.param = CUNORM_FLOAT16; },
       "param_dtype must be CUNORM_FLOAT32 or equal to dtype (CUNORM_FLOAT32), got CUNORM_FLOAT16"},
      {kAll, "x NULL", [](Args& a) { a.x = nullptr; }, "x must not be NULL"},
      {kAll, "x misaligned", [](Args& a) { a.x = static_cast<const char*>(a.x) + 2; }, "x must be aligned"},
      {kAll, "gamma misaligned", [](Args& a) { a.gamma = static_cast<const char*>(a.gamma) + 1; },
       "gamma must be aligned"},
      {kForward, "eps negative", [](Args& a) { a.eps = -1e-5f; }, "eps must be >= 0 and not NaN, got -0.000010"},
      {kForward, "eps NaN", [](Args& a) { a.eps = std::numeric_limits<float>::quiet_NaN(); },
       "eps must be >= 0 and not NaN, got NaN"},
      {kForward, "y NULL", [](Args& a) { a.y = nullptr; }, "y must not be NULL"},
      {kForward, "y overlaps x", [&](Args& a) { a.x = y_bytes + 64; }, "y overlaps x (only y == x is allowed)"},
      {kForward, "y overlaps gamma", [&](Args& a) { a.gamma = y_bytes + 128; }, "y overlaps gamma"},
      {{Entry::kLayerNormForward},
       "beta misaligned",
       [](Args& a) { a.beta = static_cast<const char*>(a.beta) + 2; },
       "beta must be aligned"},
      {{Entry::kLayerNormForward},
       "mean overlaps y",
       [&](Args& a) { a.mean = reinterpret_cast<float*>(y_bytes) + 3; },
       "mean overlaps y"},
      {{Entry::kLayerNormForward}, "rstd is mean", [](Args& a) { a.rstd = a.mean; }, "rstd overlaps mean"},
      {{Entry::kRmsNormForward},
       "rrms overlaps x",
       [](Args& a) { a.rstd = static_cast<float*>(const_cast<void*>(a.x)) + 1; },
       "rrms overlaps x"},
      {kBackward, "dy NULL", [](Args& a) { a.dy = nullptr; }, "dy must not be NULL"},
      {{Entry::kLayerNormBackward}, "mean NULL", [](Args& a) { a.saved_mean = nullptr; }, "mean must not be NULL"},
      {{Entry::kLayerNormBackward}, "rstd NULL", [](Args& a) { a.saved_rstd = nullptr; }, "rstd must not be NULL"},
      {{Entry::kRmsNormBackward}, "rrms NULL", [](Args& a) { a.saved_rstd = nullptr; }, "rrms must not be NULL"},
      {kBackward, "dx NULL", [](Args& a) { a.dx = nullptr; }, "dx must not be NULL"},
      {kBackward, "dx overlaps dy", [](Args& a) { a.dx = static_cast<char*>(const_cast<void*>(a.dy)) + 4; },
       "dx overlaps dy (only dx == dy is allowed)"},
      {kBackward, "dx is x", [](Args& a) { a.dx = const_cast<void*>(a.x); }, "dx overlaps x"},
      {kBackward, "dgamma overlaps dx", [](Args& a) { a.dgamma = static_cast<char*>(a.dx) + 8; }, "dgamma overlaps dx"},
      {kBackward, "dgamma is gamma", [](Args& a) { a.dgamma = const_cast<void*>(a.gamma); }, "dgamma overlaps gamma"},
      {{Entry::kLayerNormBackward}, "dbeta is dgamma", [](Args& a) { a.dbeta = a.dgamma; }, "dbeta overlaps dgamma"},
      {{Entry::kLayerNormBackward},
       "dbeta overlaps rstd",
       [](Args& a) { a.dbeta = const_cast<float*>(a.saved_rstd); },
       "dbeta overlaps rstd"},
  };
  expect_each_rejected(handle_, good, cases, call, [&] {
    for (const DeviceArray* out : outputs) EXPECT_TRUE(out->download().bitwise_equal(poison));
  });
  // Checked handle first, then left to right: with several bad arguments the first is reported.
  Args many = good;
  many.rows = -1;
  many.cols = 0;
  many.dtype = 9;
  many.eps = -1.0f;
  for (Entry entry : kAll) {
    EXPECT_EQ(call(entry, handle_, many), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "rows must be >= 0, got -1");
    EXPECT_EQ(call(entry, nullptr, good), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_STREQ(cunormGetLastErrorMessage(nullptr), "handle must not be NULL");
  }
  // A good call afterwards succeeds and clears the message.
  EXPECT_EQ(call(Entry::kLayerNormForward, handle_, good), CUNORM_STATUS_SUCCESS);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "");
}

// A user workspace smaller than the call needs: WORKSPACE_TOO_SMALL, nothing written.
TEST_P(RowNormBadInput, WorkspaceTooSmall) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  const int64_t rows = 64, cols = 256;
  size_t needed = 0;
  ASSERT_EQ(cunormLayerNormWorkspaceSize(handle_, rows, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, &needed),
            CUNORM_STATUS_SUCCESS);
  ASSERT_GT(needed, 512u);  // the backward's partial dgamma/dbeta
  HostArray input(CUNORM_FLOAT32, rows * cols), poison(CUNORM_FLOAT32, rows * cols);
  input.fill_bytes(0x3c);
  poison.fill_bytes(0xa5);
  DeviceArray d_x(handle_, input), d_dy(handle_, input), d_stats(handle_, input), d_dx(handle_, poison),
      d_dgamma(handle_, poison), d_workspace(handle_, poison);
  ASSERT_EQ(cunormSetWorkspace(handle_, d_workspace.data(), 256), CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(
      cunormLayerNormBackward(handle_, rows, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_dy.data(), d_x.data(),
                              d_stats.as_floats(), d_stats.as_floats(), nullptr, d_dx.data(), d_dgamma.data(), nullptr),
      CUNORM_STATUS_WORKSPACE_TOO_SMALL);
  EXPECT_NE(std::string(cunormGetLastErrorMessage(handle_)).find("has 256 bytes"), std::string::npos);
  EXPECT_TRUE(d_dx.download().bitwise_equal(poison));
  EXPECT_TRUE(d_dgamma.download().bitwise_equal(poison));
  // Enough workspace: the same call succeeds without the handle allocating.
  ASSERT_EQ(cunormSetWorkspace(handle_, d_workspace.data(), poison.byte_size()), CUNORM_STATUS_SUCCESS);
  ASSERT_LE(needed, poison.byte_size());
  EXPECT_EQ(
      cunormLayerNormBackward(handle_, rows, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_dy.data(), d_x.data(),
                              d_stats.as_floats(), d_stats.as_floats(), nullptr, d_dx.data(), d_dgamma.data(), nullptr),
      CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormSetWorkspace(handle_, nullptr, 0), CUNORM_STATUS_SUCCESS);
}

std::string backend_name(const ::testing::TestParamInfo<cunormBackend_t>& info) { return backend_label(info.param); }

INSTANTIATE_TEST_SUITE_P(All, RowNormBadInput, ::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA),
                         backend_name);

}  // namespace
}  // namespace cunorm_test
