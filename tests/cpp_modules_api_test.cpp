// The C++ layer (cunorm.hpp) through its public headers only, on the SIMT backend, beyond the
// modules' numerics (cpp_modules_test.cpp): every error turned into cunorm::Error with its status
// and a message naming the argument, the handle's stream, workspace and synchronization, and the
// RAII and move rules of Handle, DeviceBuffer and the modules.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cunorm/cunorm.hpp"
#include "cunorm/reference.hpp"
#include "support/compare.hpp"
#include "support/module_helpers.hpp"

namespace {

using cunorm_test::download;
using cunorm_test::expect_close;
using cunorm_test::expect_error;
using cunorm_test::kNoParam;
using cunorm_test::random_floats;
using cunorm_test::upload;

constexpr double kFloat32Eps = 1.1920928955078125e-07;  // torch.finfo(torch.float32).eps

// ---- Errors ----------------------------------------------------------------------------------

TEST(Errors, CheckPrefixesTheStatusNameToTheHandlesMessage) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  try {
    cunorm::check(cunormGetBackend(handle.get(), nullptr), handle.get());
    ADD_FAILURE() << "no cunorm::Error thrown";
  } catch (const cunorm::Error& e) {
    EXPECT_EQ(e.status(), CUNORM_STATUS_INVALID_VALUE);
    EXPECT_STREQ(e.what(), "CUNORM_STATUS_INVALID_VALUE: backend must not be NULL");
    EXPECT_EQ(e.message(), "backend must not be NULL");
  }
  cunormBackend_t backend = CUNORM_BACKEND_AUTO;
  expect_error([&] { cunorm::check(cunormGetBackend(nullptr, &backend), nullptr); }, CUNORM_STATUS_INVALID_VALUE,
               "handle must not be NULL");
  EXPECT_NO_THROW(cunorm::check(CUNORM_STATUS_SUCCESS, nullptr));
}

TEST(Errors, NumelNotAMultipleOfTheNormalizedSize) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {3, 5});
  cunorm::RMSNorm rms(handle, {3, 5});
  cunorm::DeviceBuffer d_x(handle, 64 * 4), d_y(handle, 64 * 4);
  expect_error([&] { ln.forward(d_x.data(), d_y.data(), 16, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "numel must be a multiple of the product of normalized_shape (15), got 16");
  expect_error([&] { rms.forward(d_x.data(), d_y.data(), 31, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "numel must be a multiple of the product of normalized_shape (15), got 31");
  expect_error([&] { ln.forward(d_x.data(), d_y.data(), -15, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "numel must be >= 0, got -15");
}

TEST(Errors, EmptyNormalizedShape) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  expect_error([&] { cunorm::LayerNorm ln(handle, {}); }, CUNORM_STATUS_INVALID_VALUE,
               "normalized_shape must not be empty");
  expect_error([&] { cunorm::RMSNorm rms(handle, {}); }, CUNORM_STATUS_INVALID_VALUE,
               "normalized_shape must not be empty");
}

TEST(Errors, NonPositiveDimension) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  expect_error(
      [&] {
        cunorm::LayerNorm ln(handle, {4, 0});
      },
      CUNORM_STATUS_INVALID_VALUE, "normalized_shape[1] must be > 0, got 0");
  expect_error([&] { cunorm::RMSNorm rms(handle, {-3}); }, CUNORM_STATUS_INVALID_VALUE,
               "normalized_shape[0] must be > 0, got -3");
}

TEST(Errors, NormalizedSizeOverflow) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  expect_error(
      [&] {
        cunorm::LayerNorm ln(handle, {int64_t{1} << 32, int64_t{1} << 32});
      },
      CUNORM_STATUS_INVALID_VALUE, "the product of normalized_shape must fit in int64_t");
}

TEST(Errors, BackwardBeforeForward) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {8});
  cunorm::RMSNorm rms(handle, {8});
  cunorm::DeviceBuffer d_dy(handle, 32), d_dx(handle, 32);
  expect_error([&] { ln.backward(d_dy.data(), d_dx.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
  expect_error([&] { rms.backward(d_dy.data(), d_dx.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
}

// A forward that threw leaves nothing to differentiate, even after an earlier good forward.
TEST(Errors, FailedForwardForgetsThePreviousForward) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {8});
  cunorm::DeviceBuffer d_x(handle, 32), d_y(handle, 32);
  d_x.upload(std::vector<float>(8, 1.0f));
  ln.forward(d_x.data(), d_y.data(), 8, CUNORM_FLOAT32);
  expect_error([&] { ln.forward(nullptr, d_y.data(), 8, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "x must not be NULL");
  expect_error([&] { ln.backward(d_y.data(), d_x.data()); }, CUNORM_STATUS_INVALID_VALUE,
               "backward called before forward");
}

// Without a usable GPU (or without the CUDA backend in this build) the Handle throws the
// status and message of cunormCreate; with one it works. Either way one branch is asserted.
TEST(Errors, CudaHandleWithoutGpu) {
  cunormHandle_t raw = nullptr;
  const cunormStatus_t status = cunormCreate(&raw, CUNORM_BACKEND_CUDA);
  if (status == CUNORM_STATUS_SUCCESS) {
    cunormDestroy(raw);
    cunorm::Handle handle(CUNORM_BACKEND_CUDA);
    EXPECT_EQ(handle.backend(), CUNORM_BACKEND_CUDA);
    return;
  }
  ASSERT_TRUE(status == CUNORM_STATUS_NO_DEVICE || status == CUNORM_STATUS_NOT_SUPPORTED) << status;
  const std::string message = cunormGetLastErrorMessage(nullptr);
  ASSERT_FALSE(message.empty());
  expect_error([] { cunorm::Handle handle(CUNORM_BACKEND_CUDA); }, status, message);
}

TEST(Errors, ParamDtypeNeitherFloat32NorTheActivationDtype) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::LayerNorm ln(handle, {4}, 1e-5, true, true, CUNORM_FLOAT16);
  cunorm::RMSNorm rms(handle, {4}, std::nullopt, true, CUNORM_BFLOAT16);
  const std::vector<float> poison(4, -7.0f);
  cunorm::DeviceBuffer d_x(handle, 16), d_y(handle, 16);
  d_x.upload(std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f});
  d_y.upload(poison);
  expect_error([&] { ln.forward(d_x.data(), d_y.data(), 4, CUNORM_FLOAT32); }, CUNORM_STATUS_INVALID_VALUE,
               "param_dtype must be CUNORM_FLOAT32 or equal to dtype");
  expect_error([&] { rms.forward(d_x.data(), d_y.data(), 4, CUNORM_FLOAT16); }, CUNORM_STATUS_INVALID_VALUE,
               "param_dtype must be CUNORM_FLOAT32 or equal to dtype");
  EXPECT_EQ(d_y.download<float>(4), poison);
  expect_error([&] { cunorm::LayerNorm bad(handle, {4}, 1e-5, true, true, static_cast<cunormDataType_t>(7)); },
               CUNORM_STATUS_INVALID_VALUE,
               "param_dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got 7");
  expect_error([&] { cunorm::RMSNorm bad(handle, {4}, 1e-6, false, static_cast<cunormDataType_t>(-1)); },
               CUNORM_STATUS_INVALID_VALUE,
               "param_dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got -1");
  expect_error([&] { rms.forward(d_x.data(), d_y.data(), 4, static_cast<cunormDataType_t>(9)); },
               CUNORM_STATUS_INVALID_VALUE, "dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got 9");
}

TEST(Errors, BufferCopiesPastTheEnd) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::DeviceBuffer buffer(handle, 12);
  expect_error([&] { buffer.upload(std::vector<float>(4, 1.0f)); }, CUNORM_STATUS_INVALID_VALUE,
               "bytes must be <= the buffer's size (12), got 16");
  expect_error([&] { buffer.download<float>(4); }, CUNORM_STATUS_INVALID_VALUE,
               "bytes must be <= the buffer's size (12), got 16");
}

// ---- Handle ----------------------------------------------------------------------------------

TEST(HandleTest, StreamWorkspaceAndSynchronize) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  EXPECT_EQ(handle.backend(), CUNORM_BACKEND_SIMT);
  handle.set_stream(nullptr);
  size_t bytes = 0;
  cunorm::check(cunormLayerNormWorkspaceSize(handle.get(), 4, 4096, CUNORM_FLOAT32, CUNORM_FLOAT32, &bytes),
                handle.get());
  cunorm::DeviceBuffer workspace(handle, bytes);
  handle.set_workspace(workspace.data(), workspace.bytes());
  cunorm::LayerNorm ln(handle, {4096});
  const std::vector<float> x = random_floats(4 * 4096, -1.0, 1.0, 61);
  cunorm::DeviceBuffer d_x(handle, x.size() * 4), d_y(handle, x.size() * 4);
  d_x.upload(x);
  ln.forward(d_x.data(), d_y.data(), 4 * 4096, CUNORM_FLOAT32);
  handle.synchronize();
  std::vector<double> y_ref(x.size());
  cunorm::reference::layer_norm_forward(4, 4096, x.data(), kNoParam, kNoParam, static_cast<float>(1e-5), y_ref.data(),
                                        static_cast<double*>(nullptr), static_cast<double*>(nullptr));
  expect_close("y", d_y.download<float>(x.size()), y_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  handle.set_workspace(nullptr, 0);
  expect_error([&] { handle.set_workspace(static_cast<char*>(workspace.data()) + 4, 256); },
               CUNORM_STATUS_INVALID_VALUE, "workspace must be 256-byte aligned");
}

// ---- Moves -----------------------------------------------------------------------------------

TEST(Moves, HandleMovesItsHandle) {
  cunorm::Handle a(CUNORM_BACKEND_SIMT);
  const cunormHandle_t raw = a.get();
  cunorm::Handle b(std::move(a));
  EXPECT_EQ(a.get(), nullptr);
  EXPECT_EQ(b.get(), raw);
  EXPECT_EQ(b.backend(), CUNORM_BACKEND_SIMT);
  expect_error([&] { a.synchronize(); }, CUNORM_STATUS_INVALID_VALUE, "handle must not be NULL");
  cunorm::Handle c(CUNORM_BACKEND_SIMT);
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_EQ(b.get(), nullptr);
  cunorm::DeviceBuffer buffer(c, 16);
  buffer.upload(std::vector<float>{1, 2, 3, 4});
  EXPECT_EQ(buffer.download<float>(4), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Moves, BufferMovesItsMemory) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  cunorm::DeviceBuffer a(handle, 16);
  a.upload(std::vector<float>{1, 2, 3, 4});
  const void* raw = a.data();
  cunorm::DeviceBuffer b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.bytes(), 0u);
  EXPECT_EQ(b.data(), raw);
  EXPECT_EQ(b.bytes(), 16u);
  cunorm::DeviceBuffer c(handle, 8);
  c = std::move(b);  // frees c's 8 bytes
  EXPECT_EQ(c.data(), raw);
  EXPECT_EQ(c.download<float>(4), (std::vector<float>{1, 2, 3, 4}));
  expect_error([&] { a.upload(std::vector<float>{1}); }, CUNORM_STATUS_INVALID_VALUE,
               "bytes must be <= the buffer's size (0), got 4");
}

// A moved module keeps its parameters and its saved forward: the moved-to one's backward equals
// that of a module that was never moved, bit for bit (results are deterministic).
TEST(Moves, ModulesMoveWithTheirForward) {
  cunorm::Handle handle(CUNORM_BACKEND_SIMT);
  const std::vector<float> x = random_floats(3 * 24, -1.0, 2.0, 71), dy = random_floats(3 * 24, -1.0, 1.0, 72);
  const std::vector<float> gamma = random_floats(24, 0.5, 1.5, 73);
  cunorm::DeviceBuffer d_x(handle, x.size() * 4), d_y(handle, x.size() * 4), d_dy(handle, x.size() * 4),
      d_dx(handle, x.size() * 4);
  d_x.upload(x);
  d_dy.upload(dy);
  const auto run_backward = [&](auto& module) {
    module.backward(d_dy.data(), d_dx.data());
    return std::make_pair(d_dx.download<float>(x.size()), download<float>(handle, module.weight_grad(), 24));
  };

  cunorm::LayerNorm unmoved_ln(handle, {4, 6});
  upload(handle, unmoved_ln.weight(), gamma);
  unmoved_ln.forward(d_x.data(), d_y.data(), 72, CUNORM_FLOAT32);
  const auto expected_ln = run_backward(unmoved_ln);
  cunorm::LayerNorm ln(handle, {4, 6});
  upload(handle, ln.weight(), gamma);
  ln.forward(d_x.data(), d_y.data(), 72, CUNORM_FLOAT32);
  cunorm::LayerNorm moved_ln(std::move(ln));
  EXPECT_EQ(ln.weight(), nullptr);
  EXPECT_EQ(ln.saved_mean(), nullptr);
  EXPECT_EQ(run_backward(moved_ln), expected_ln);
  cunorm::LayerNorm assigned_ln(handle, {2});
  assigned_ln = std::move(moved_ln);
  EXPECT_EQ(assigned_ln.normalized_size(), 24);
  EXPECT_EQ(run_backward(assigned_ln), expected_ln);

  cunorm::RMSNorm unmoved_rms(handle, {24});
  upload(handle, unmoved_rms.weight(), gamma);
  unmoved_rms.forward(d_x.data(), d_y.data(), 72, CUNORM_FLOAT32);
  const auto expected_rms = run_backward(unmoved_rms);
  cunorm::RMSNorm rms(handle, {24});
  upload(handle, rms.weight(), gamma);
  rms.forward(d_x.data(), d_y.data(), 72, CUNORM_FLOAT32);
  cunorm::RMSNorm assigned_rms(handle, {3}, 0.5);
  assigned_rms = std::move(rms);
  EXPECT_EQ(rms.weight(), nullptr);
  EXPECT_EQ(rms.saved_rrms(), nullptr);
  EXPECT_EQ(run_backward(assigned_rms), expected_rms);
}

// Modules keep the raw handle, so moving the Handle object (or the modules, as a vector does
// when it grows) leaves them working.
TEST(Moves, ModulesOutliveMovesOfTheirHandleAndOfThemselves) {
  cunorm::Handle first(CUNORM_BACKEND_SIMT);
  std::vector<cunorm::RMSNorm> modules;
  for (int64_t cols = 1; cols <= 9; ++cols) modules.emplace_back(first, std::vector<int64_t>{cols});
  cunorm::Handle handle(std::move(first));
  const std::vector<float> x = random_floats(2 * 9, 0.5, 1.5, 81);
  cunorm::DeviceBuffer d_x(handle, x.size() * 4), d_y(handle, x.size() * 4);
  d_x.upload(x);
  for (cunorm::RMSNorm& rms : modules) {
    const int64_t cols = rms.normalized_size();
    rms.forward(d_x.data(), d_y.data(), 2 * cols, CUNORM_FLOAT32);
    std::vector<double> y_ref(static_cast<std::size_t>(2 * cols));
    cunorm::reference::rms_norm_forward(2, cols, x.data(), kNoParam, kFloat32Eps, y_ref.data(),
                                        static_cast<double*>(nullptr));
    expect_close("y", d_y.download<float>(y_ref.size()), y_ref, cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  }
}

}  // namespace
