// LayerNorm and RMSNorm beyond the shape sweeps: the seed's worked example, pointers at every
// element offset from an aligned allocation, in-place calls and optional outputs, empty
// batches, numerics (large mean relative to std, constant rows, NaN and Inf confined to their
// row), and bad input (the documented status, a message naming the argument, nothing written).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cunorm/reference.hpp"
#include "simt/launch.hpp"
#include "support/backend_fixture.hpp"
#include "support/host_array.hpp"
#include "support/row_norm_case.hpp"

namespace cunorm_test {
namespace {

class RowNormEdge : public BackendParamTest<cunormBackend_t> {};

// Seed 003: LayerNorm of [[1, 2], [3, 4]] is [[-1, 1], [-1, 1]] (mean 1.5 and 3.5, variance
// 0.25), computed as the seed does with eps = 0.
TEST_P(RowNormEdge, SeedWorkedExample) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (const DtypePair& dtypes : kDtypePairs) {
    HostArray x(dtypes.dtype, 4);
    for (int i = 0; i < 4; ++i) x.set(static_cast<std::size_t>(i), i + 1.0);
    HostArray y(dtypes.dtype, 4), stats(CUNORM_FLOAT32, 2);
    DeviceArray d_x(handle_, x), d_y(handle_, y), d_mean(handle_, stats), d_rstd(handle_, stats);
    ASSERT_EQ(cunormLayerNormForward(handle_, 2, 2, dtypes.dtype, dtypes.param, d_x.data(), nullptr, nullptr, 0.0f,
                                     d_y.data(), d_mean.as_floats(), d_rstd.as_floats()),
              CUNORM_STATUS_SUCCESS)
        << cunormGetLastErrorMessage(handle_);
    const HostArray out = d_y.download(), mean = d_mean.download(), rstd = d_rstd.download();
    const double expected[4] = {-1, 1, -1, 1};
    for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(out.get(i), expected[i]) << dtypes.label() << " element " << i;
    EXPECT_EQ(mean.get(0), 1.5);
    EXPECT_EQ(mean.get(1), 3.5);
    EXPECT_EQ(rstd.get(0), 2.0);
    EXPECT_EQ(rstd.get(1), 2.0);
  }
}

// Each pointer at element offsets 0..7 from a 256-byte boundary, together and independently:
// the results stay right, and (SIMT records) the vector path runs exactly when every pointer
// allows it.
TEST_P(RowNormEdge, EveryPointerAtEveryElementOffset) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  const int64_t shapes[][2] = {{5, 64}, {3, 1024}, {2, 4096}, {1, 16384}};
  for (Norm norm : {Norm::kLayerNorm, Norm::kRmsNorm}) {
    for (const DtypePair& dtypes : kDtypePairs) {
      for (const auto& shape : shapes) {
        RowNormCase c(norm, dtypes, shape[0], shape[1], true, 1e-5f, static_cast<uint64_t>(shape[1]));
        std::vector<BufferOffsets> all;
        for (std::size_t k = 0; k < 8; ++k) all.push_back(BufferOffsets{k, k, k, k});
        all.push_back(BufferOffsets{0, 3, 0, 0});
        all.push_back(BufferOffsets{0, 0, 0, 5});
        all.push_back(BufferOffsets{2, 5, 6, 7});
        for (const BufferOffsets& offsets : all) {
          SCOPED_TRACE(std::string(norm_label(norm)) + " " + dtypes.label() + " cols " + std::to_string(shape[1]) +
                       " offsets x" + std::to_string(offsets.x) + " gamma" + std::to_string(offsets.gamma) + " beta" +
                       std::to_string(offsets.beta) + " y" + std::to_string(offsets.y));
          simt::LaunchRecorder recorder;
          const ForwardResult saved = c.forward(handle_, offsets);
          c.expect_forward_matches_reference(saved);
          c.expect_backward_matches_reference(saved, c.backward(handle_, saved, true, true, offsets));
          if (GetParam() != CUNORM_BACKEND_SIMT) continue;
          const std::size_t x_elem = element_size(dtypes.dtype), p_elem = element_size(dtypes.param);
          // The backward's dgamma/dbeta sit at the beta offset; only the forward reads beta.
          const bool forward_aligned = offsets.x * x_elem % 16 == 0 && offsets.y * x_elem % 16 == 0 &&
                                       offsets.gamma * p_elem % 16 == 0 &&
                                       (norm == Norm::kRmsNorm || offsets.beta * p_elem % 16 == 0);
          const bool backward_aligned =
              offsets.x * x_elem % 16 == 0 && offsets.y * x_elem % 16 == 0 && offsets.gamma * p_elem % 16 == 0;
          const int64_t vec = static_cast<int64_t>(16 / x_elem);
          ASSERT_GE(recorder.records().size(), 2u);
          EXPECT_EQ(recorder.records()[0].label.parameter("vec"), forward_aligned ? vec : 1)
              << recorder.records()[0].name;
          EXPECT_EQ(recorder.records()[1].label.parameter("vec"), backward_aligned ? vec : 1)
              << recorder.records()[1].name;
        }
      }
    }
  }
}

// y == x and dx == dy are allowed and give the out-of-place results; mean/rstd and the
// parameter gradients are optional; gamma alone and beta alone act as 1 and 0 for the other.
TEST_P(RowNormEdge, InPlaceAndOptionalOutputs) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (Norm norm : {Norm::kLayerNorm, Norm::kRmsNorm}) {
    for (const DtypePair& dtypes : kDtypePairs) {
      for (int64_t cols : {96, 3000, 20000}) {
        SCOPED_TRACE(std::string(norm_label(norm)) + " " + dtypes.label() + " cols " + std::to_string(cols));
        RowNormCase c(norm, dtypes, 3, cols, true, 1e-5f, 7);
        const ForwardResult expected = c.forward(handle_);
        const BackwardResult expected_back = c.backward(handle_, expected, true, true);
        DeviceArray d_xy(handle_, c.x), d_gamma(handle_, c.gamma), d_beta(handle_, c.beta);
        const cunormStatus_t status =
            norm == Norm::kLayerNorm
                ? cunormLayerNormForward(handle_, 3, cols, dtypes.dtype, dtypes.param, d_xy.data(), d_gamma.data(),
                                         d_beta.data(), c.eps, d_xy.data(), nullptr, nullptr)
                : cunormRMSNormForward(handle_, 3, cols, dtypes.dtype, dtypes.param, d_xy.data(), d_gamma.data(), c.eps,
                                       d_xy.data(), nullptr);
        ASSERT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle_);
        EXPECT_TRUE(d_xy.download().bitwise_equal(expected.y));
        // dx == dy, without parameter gradients.
        DeviceArray d_x(handle_, c.x), d_dxy(handle_, c.dy);
        HostArray rstd(CUNORM_FLOAT32, 3), mean(CUNORM_FLOAT32, 3);
        std::memcpy(rstd.data(), expected.rstd.data(), rstd.byte_size());
        if (norm == Norm::kLayerNorm) std::memcpy(mean.data(), expected.mean.data(), mean.byte_size());
        DeviceArray d_rstd(handle_, rstd), d_mean(handle_, mean);
        const cunormStatus_t back =
            norm == Norm::kLayerNorm
                ? cunormLayerNormBackward(handle_, 3, cols, dtypes.dtype, dtypes.param, d_dxy.data(), d_x.data(),
                                          d_mean.as_floats(), d_rstd.as_floats(), d_gamma.data(), d_dxy.data(), nullptr,
                                          nullptr)
                : cunormRMSNormBackward(handle_, 3, cols, dtypes.dtype, dtypes.param, d_dxy.data(), d_x.data(),
                                        d_rstd.as_floats(), d_gamma.data(), d_dxy.data(), nullptr);
        ASSERT_EQ(back, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle_);
        EXPECT_TRUE(d_dxy.download().bitwise_equal(expected_back.dx));
        // dgamma alone, then dbeta alone, equal the gradients computed together.
        const BackwardResult only_dgamma = c.backward(handle_, expected, true, false);
        EXPECT_TRUE(only_dgamma.dgamma.bitwise_equal(expected_back.dgamma));
        if (norm == Norm::kLayerNorm) {
          const BackwardResult only_dbeta = c.backward(handle_, expected, false, true);
          EXPECT_TRUE(only_dbeta.dbeta.bitwise_equal(expected_back.dbeta));
        }
      }
    }
  }
}

// rows == 0 succeeds and writes nothing, even with NULL activation pointers.
TEST_P(RowNormEdge, EmptyBatchWritesNothing) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  HostArray poison(CUNORM_FLOAT32, 16);
  poison.fill_bytes(0xab);
  DeviceArray d_x(handle_, poison), d_y(handle_, poison), d_mean(handle_, poison), d_g(handle_, poison);
  EXPECT_EQ(cunormLayerNormForward(handle_, 0, 16, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(), nullptr, nullptr, 1e-5f,
                                   d_y.data(), d_mean.as_floats(), nullptr),
            CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormLayerNormBackward(handle_, 0, 16, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(), d_x.data(), nullptr,
                                    nullptr, nullptr, d_y.data(), d_g.data(), nullptr),
            CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormRMSNormForward(handle_, 0, 16, CUNORM_FLOAT16, CUNORM_FLOAT32, nullptr, nullptr, 1e-5f, nullptr,
                                 d_mean.as_floats()),
            CUNORM_STATUS_SUCCESS);
  EXPECT_EQ(cunormRMSNormBackward(handle_, 0, 16, CUNORM_FLOAT16, CUNORM_FLOAT32, nullptr, nullptr, nullptr, nullptr,
                                  nullptr, d_g.data()),
            CUNORM_STATUS_SUCCESS);
  EXPECT_TRUE(d_y.download().bitwise_equal(poison));
  EXPECT_TRUE(d_mean.download().bitwise_equal(poison));
  EXPECT_TRUE(d_g.download().bitwise_equal(poison));
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "");
}

// Rows whose mean is 1e4 times their standard deviation: float32 results within 2e-3 of the
// float64 reference, where the single-pass E[x^2] - E[x]^2 in float32 is off by more than 1.
TEST_P(RowNormEdge, LargeMeanRelativeToStd) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (int64_t cols : {64, 1000, 6000, 30000, 70000}) {
    const int64_t rows = 2;
    HostArray x(CUNORM_FLOAT32, static_cast<std::size_t>(rows * cols));
    std::mt19937_64 rng(static_cast<uint64_t>(cols));
    std::normal_distribution<double> noise(0.0, 1.0);
    for (std::size_t i = 0; i < x.count(); ++i) x.set(i, 1e4 + noise(rng));
    // The naive float32 variance of the first row, to show what this test guards against.
    float sum = 0.0f, squares = 0.0f;
    for (int64_t j = 0; j < cols; ++j) {
      const float v = static_cast<float>(x.get(static_cast<std::size_t>(j)));
      sum += v;
      squares += v * v;
    }
    const float naive =
        squares / static_cast<float>(cols) - (sum / static_cast<float>(cols)) * (sum / static_cast<float>(cols));
    std::vector<double> xs = x.to_doubles(), y(x.count()), rstd(2);
    cunorm::reference::layer_norm_forward(rows, cols, xs.data(), static_cast<const double*>(nullptr),
                                          static_cast<const double*>(nullptr), 1e-5, y.data(),
                                          static_cast<double*>(nullptr), rstd.data());
    EXPECT_GT(std::abs(static_cast<double>(naive) - 1.0 / (rstd[0] * rstd[0])), 1.0) << "cols " << cols;
    HostArray out(CUNORM_FLOAT32, x.count());
    DeviceArray d_x(handle_, x), d_y(handle_, out);
    ASSERT_EQ(cunormLayerNormForward(handle_, rows, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(), nullptr, nullptr,
                                     1e-5f, d_y.data(), nullptr, nullptr),
              CUNORM_STATUS_SUCCESS);
    const HostArray result = d_y.download();
    double worst = 0.0;
    for (std::size_t i = 0; i < x.count(); ++i) worst = std::max(worst, std::abs(result.get(i) - y[i]));
    EXPECT_LE(worst, 2e-3) << "cols " << cols;
  }
}

// A constant row with eps > 0 has variance 0 and gives y = beta, no NaN; with eps = 0,
// rstd = inf and y = NaN, as in PyTorch.
TEST_P(RowNormEdge, ConstantRows) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (int64_t cols : {5, 1000, 5000, 30000}) {
    for (double value : {3.25, 0.1, -7.3}) {
      HostArray x(CUNORM_FLOAT32, static_cast<std::size_t>(cols)), beta(CUNORM_FLOAT32, static_cast<std::size_t>(cols));
      for (int64_t j = 0; j < cols; ++j) {
        x.set(static_cast<std::size_t>(j), value);
        beta.set(static_cast<std::size_t>(j), 0.125 * static_cast<double>(j % 7));
      }
      DeviceArray d_x(handle_, x), d_beta(handle_, beta), d_y(handle_, x);
      ASSERT_EQ(cunormLayerNormForward(handle_, 1, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(), nullptr,
                                       d_beta.data(), 1e-5f, d_y.data(), nullptr, nullptr),
                CUNORM_STATUS_SUCCESS);
      const HostArray y = d_y.download();
      for (int64_t j = 0; j < cols; ++j) {
        ASSERT_TRUE(cunorm::reference::output_tolerance(CUNORM_FLOAT32)
                        .accepts(y.get(static_cast<std::size_t>(j)), beta.get(static_cast<std::size_t>(j))))
            << "cols " << cols << " value " << value << " element " << j << ": " << y.get(static_cast<std::size_t>(j));
      }
      ASSERT_EQ(cunormLayerNormForward(handle_, 1, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(), nullptr,
                                       d_beta.data(), 0.0f, d_y.data(), nullptr, nullptr),
                CUNORM_STATUS_SUCCESS);
      if (value == 3.25) {  // sums of 3.25 are exact, so var is exactly 0
        EXPECT_TRUE(std::isnan(d_y.download().get(0))) << "cols " << cols;
      }
    }
  }
}

// A NaN or an Inf in one row changes that row only, forward and backward.
TEST_P(RowNormEdge, NonFiniteValuesStayInTheirRow) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (Norm norm : {Norm::kLayerNorm, Norm::kRmsNorm}) {
    for (int64_t cols : {33, 700, 5000, 40000}) {
      for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        const int64_t rows = 4;
        RowNormCase clean(norm, DtypePair{CUNORM_FLOAT32, CUNORM_FLOAT32}, rows, cols, true, 1e-5f, 99);
        RowNormCase dirty = clean;
        dirty.x.set(static_cast<std::size_t>(2 * cols + cols / 2), bad);
        const ForwardResult a = clean.forward(handle_), b = dirty.forward(handle_);
        const BackwardResult da = clean.backward(handle_, a, true, true), db = dirty.backward(handle_, b, true, true);
        for (int64_t r = 0; r < rows; ++r) {
          const std::size_t begin = static_cast<std::size_t>(r * cols), bytes = static_cast<std::size_t>(cols) * 4;
          const bool same_y = std::memcmp(static_cast<const char*>(a.y.data()) + begin * 4,
                                          static_cast<const char*>(b.y.data()) + begin * 4, bytes) == 0;
          const bool same_dx = std::memcmp(static_cast<const char*>(da.dx.data()) + begin * 4,
                                           static_cast<const char*>(db.dx.data()) + begin * 4, bytes) == 0;
          EXPECT_EQ(same_y, r != 2) << norm_label(norm) << " cols " << cols << " row " << r;
          EXPECT_EQ(same_dx, r != 2) << norm_label(norm) << " cols " << cols << " row " << r;
        }
      }
    }
  }
}

std::string backend_name(const ::testing::TestParamInfo<cunormBackend_t>& info) { return backend_label(info.param); }

INSTANTIATE_TEST_SUITE_P(All, RowNormEdge, ::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA), backend_name);

}  // namespace
}  // namespace cunorm_test
