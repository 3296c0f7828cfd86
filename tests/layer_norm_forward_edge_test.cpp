// cunormLayerNormForward beyond the shape sweep: the seed's worked example, pointers at every
// element offset from an aligned allocation, in-place and optional outputs, empty batches,
// bad input (the documented status, a message naming the argument, nothing written), and
// launch records proving that every variant, vector width and tail path ran.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cunorm/reference.hpp"
#include "simt/launch.hpp"
#include "support/backend_fixture.hpp"
#include "support/host_array.hpp"
#include "support/layer_norm_case.hpp"

namespace cunorm_test {
namespace {

class LayerNormForwardEdge : public ::testing::TestWithParam<cunormBackend_t>, protected BackendTest {
 protected:
  void TearDown() override { close(); }
};

// Seed 003: LayerNorm of [[1, 2], [3, 4]] is [[-1, 1], [-1, 1]] (mean 1.5 and 3.5, variance
// 0.25), computed as the seed does with eps = 0.
TEST_P(LayerNormForwardEdge, SeedWorkedExample) {
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
// the results stay right, and the vector path is taken exactly when every pointer allows it.
TEST_P(LayerNormForwardEdge, EveryPointerAtEveryElementOffset) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  const int64_t shapes[][2] = {{5, 64}, {3, 1024}, {2, 4096}, {1, 16384}, {1, 61440}};
  for (const DtypePair& dtypes : kDtypePairs) {
    for (const auto& shape : shapes) {
      LayerNormCase c(dtypes, shape[0], shape[1], true, 1e-5f, static_cast<uint64_t>(shape[1]));
      for (std::size_t k = 0; k < 8; ++k) {
        for (const BufferOffsets& offsets :
             {BufferOffsets{k, k, k, k}, BufferOffsets{k, 0, 0, 0}, BufferOffsets{0, k, 0, 0},
              BufferOffsets{0, 0, k, 0}, BufferOffsets{0, 0, 0, k},
              BufferOffsets{k, (k + 3) % 8, (k + 5) % 8, 7 - k}}) {
          SCOPED_TRACE(dtypes.label() + " cols " + std::to_string(shape[1]) + " offsets x" + std::to_string(offsets.x) +
                       " gamma" + std::to_string(offsets.gamma) + " beta" + std::to_string(offsets.beta) + " y" +
                       std::to_string(offsets.y));
          simt::LaunchRecorder recorder;
          c.expect_matches_reference(c.run(handle_, offsets));
          if (GetParam() != CUNORM_BACKEND_SIMT) continue;
          const std::size_t x_elem = element_size(dtypes.dtype), p_elem = element_size(dtypes.param);
          const bool aligned = offsets.x * x_elem % 16 == 0 && offsets.y * x_elem % 16 == 0 &&
                               offsets.gamma * p_elem % 16 == 0 && offsets.beta * p_elem % 16 == 0;
          const std::string expected_vec = " vec=" + std::to_string(aligned ? 16 / x_elem : 1) + " ";
          ASSERT_EQ(recorder.records().size(), 1u);
          EXPECT_NE(recorder.records()[0].name.find(expected_vec), std::string::npos) << recorder.records()[0].name;
        }
      }
    }
  }
}

TEST_P(LayerNormForwardEdge, InPlaceAndOptionalOutputs) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (const DtypePair& dtypes : kDtypePairs) {
    for (int64_t cols : {96, 3000, 20000}) {
      LayerNormCase c(dtypes, 3, cols, true, 1e-5f, 7);
      const LayerNormResult expected = c.run(handle_);
      // y == x, no mean or rstd, gamma alone, beta alone.
      DeviceArray d_xy(handle_, c.x), d_gamma(handle_, c.gamma), d_beta(handle_, c.beta);
      ASSERT_EQ(cunormLayerNormForward(handle_, 3, cols, dtypes.dtype, dtypes.param, d_xy.data(), d_gamma.data(),
                                       d_beta.data(), c.eps, d_xy.data(), nullptr, nullptr),
                CUNORM_STATUS_SUCCESS)
          << cunormGetLastErrorMessage(handle_);
      EXPECT_TRUE(d_xy.download().bitwise_equal(expected.y)) << dtypes.label() << " cols " << cols;
      for (int which = 0; which < 2; ++which) {
        LayerNormCase half_affine = c;
        HostArray ones(dtypes.param, static_cast<std::size_t>(cols)),
            zeros(dtypes.param, static_cast<std::size_t>(cols));
        for (int64_t j = 0; j < cols; ++j) {
          ones.set(static_cast<std::size_t>(j), 1.0);
          zeros.set(static_cast<std::size_t>(j), 0.0);
        }
        (which == 0 ? half_affine.beta : half_affine.gamma) = which == 0 ? zeros : ones;
        const LayerNormResult full = half_affine.run(handle_);
        DeviceArray d_x(handle_, c.x), d_y(handle_, c.x), d_param(handle_, which == 0 ? c.gamma : c.beta);
        ASSERT_EQ(cunormLayerNormForward(handle_, 3, cols, dtypes.dtype, dtypes.param, d_x.data(),
                                         which == 0 ? d_param.data() : nullptr, which == 1 ? d_param.data() : nullptr,
                                         c.eps, d_y.data(), nullptr, nullptr),
                  CUNORM_STATUS_SUCCESS);
        EXPECT_TRUE(d_y.download().bitwise_equal(full.y))
            << dtypes.label() << (which == 0 ? " gamma only" : " beta only");
      }
    }
  }
}

// rows == 0 succeeds and writes nothing, even with NULL activation pointers.
TEST_P(LayerNormForwardEdge, EmptyBatchWritesNothing) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  HostArray poison(CUNORM_FLOAT32, 16);
  poison.fill_bytes(0xab);
  DeviceArray d_x(handle_, poison), d_y(handle_, poison), d_mean(handle_, poison);
  EXPECT_EQ(cunormLayerNormForward(handle_, 0, 16, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(), nullptr, nullptr, 1e-5f,
                                   d_y.data(), d_mean.as_floats(), nullptr),
            CUNORM_STATUS_SUCCESS);
  EXPECT_TRUE(d_y.download().bitwise_equal(poison));
  EXPECT_TRUE(d_mean.download().bitwise_equal(poison));
  EXPECT_EQ(cunormLayerNormForward(handle_, 0, 16, CUNORM_FLOAT16, CUNORM_FLOAT32, nullptr, nullptr, nullptr, 1e-5f,
                                   nullptr, nullptr, nullptr),
            CUNORM_STATUS_SUCCESS);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "");
}

// A constant row with eps = 0 has variance 0: rstd = inf and y = NaN, as PyTorch gives; with
// eps > 0 it is y = beta.
TEST_P(LayerNormForwardEdge, ConstantRows) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  for (int64_t cols : {5, 1000, 5000, 30000}) {
    HostArray x(CUNORM_FLOAT32, static_cast<std::size_t>(cols)), beta(CUNORM_FLOAT32, static_cast<std::size_t>(cols));
    for (int64_t j = 0; j < cols; ++j) {
      x.set(static_cast<std::size_t>(j), 3.25);
      beta.set(static_cast<std::size_t>(j), 0.125 * static_cast<double>(j % 7));
    }
    DeviceArray d_x(handle_, x), d_beta(handle_, beta), d_y(handle_, x);
    ASSERT_EQ(cunormLayerNormForward(handle_, 1, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(), nullptr,
                                     d_beta.data(), 1e-5f, d_y.data(), nullptr, nullptr),
              CUNORM_STATUS_SUCCESS);
    EXPECT_TRUE(d_y.download().bitwise_equal(beta)) << "cols " << cols;
    ASSERT_EQ(cunormLayerNormForward(handle_, 1, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(), nullptr,
                                     d_beta.data(), 0.0f, d_y.data(), nullptr, nullptr),
              CUNORM_STATUS_SUCCESS);
    EXPECT_TRUE(std::isnan(d_y.download().get(0))) << "cols " << cols;
  }
}

// Every invalid argument: the status api.md names, a message naming the argument, and every
// output exactly as it was.
TEST_P(LayerNormForwardEdge, BadInputIsRejectedAndWritesNothing) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  const int64_t rows = 4, cols = 64;
  HostArray x(CUNORM_FLOAT32, rows * cols), params(CUNORM_FLOAT32, cols), poison(CUNORM_FLOAT32, rows * cols);
  x.fill_bytes(0x3c);
  params.fill_bytes(0x3c);
  poison.fill_bytes(0xa5);
  DeviceArray d_x(handle_, x), d_gamma(handle_, params), d_beta(handle_, params), d_y(handle_, poison),
      d_mean(handle_, poison), d_rstd(handle_, poison);
  char* const y_bytes = static_cast<char*>(d_y.data());
  struct Call {
    int64_t rows, cols;
    int dtype, param;
    const void *x, *gamma, *beta;
    float eps;
    void* y;
    float *mean, *rstd;
  };
  const Call good{rows,          cols,  CUNORM_FLOAT32, CUNORM_FLOAT32,     d_x.data(),        d_gamma.data(),
                  d_beta.data(), 1e-5f, d_y.data(),     d_mean.as_floats(), d_rstd.as_floats()};
  struct Bad {
    const char* what;
    Call call;
    const char* message;
  };
  auto with = [&](auto change) {
    Call c = good;
    change(c);
    return c;
  };
  const Bad cases[] = {
      {"negative rows", with([](Call& c) { c.rows = -1; }), "rows must be >= 0, got -1"},
      {"cols 0", with([](Call& c) { c.cols = 0; }), "cols must be > 0, got 0"},
      {"negative cols", with([](Call& c) { c.cols = -5; }), "cols must be > 0, got -5"},
      {"huge", with([](Call& c) { c.rows = int64_t{1} << 40, c.cols = int64_t{1} << 40; }), "rows * cols is too large"},
      {"dtype", with([](Call& c) { c.dtype = 7; }),
       "dtype must be CUNORM_FLOAT32, CUNORM_FLOAT16 or CUNORM_BFLOAT16, got 7"},
      {"param_dtype enum", with([](Call& c) { c.param = -1; }), "param_dtype must be"},
      {"dtype pair", with([](Call& c) { c.dtype = CUNORM_FLOAT16, c.param = CUNORM_BFLOAT16; }),
       "param_dtype must be CUNORM_FLOAT32 or equal to dtype (CUNORM_FLOAT16), got CUNORM_BFLOAT16"},
      {"param bigger than activations", with([](Call& c) { c.param = CUNORM_FLOAT16; }),
       "param_dtype must be CUNORM_FLOAT32 or equal to dtype (CUNORM_FLOAT32), got CUNORM_FLOAT16"},
      {"x NULL", with([](Call& c) { c.x = nullptr; }), "x must not be NULL"},
      {"x misaligned", with([](Call& c) { c.x = static_cast<const char*>(c.x) + 2; }), "x must be aligned"},
      {"gamma misaligned", with([](Call& c) { c.gamma = static_cast<const char*>(c.gamma) + 1; }),
       "gamma must be aligned"},
      {"eps negative", with([](Call& c) { c.eps = -1e-5f; }), "eps must be >= 0 and not NaN, got -0.000010"},
      {"eps NaN", with([](Call& c) { c.eps = std::numeric_limits<float>::quiet_NaN(); }),
       "eps must be >= 0 and not NaN, got NaN"},
      {"y NULL", with([](Call& c) { c.y = nullptr; }), "y must not be NULL"},
      {"y overlaps x", with([&](Call& c) { c.x = y_bytes + 64; }), "y overlaps x (only y == x is allowed)"},
      {"y overlaps gamma", with([&](Call& c) { c.gamma = y_bytes + 128; }), "y overlaps gamma"},
      {"mean overlaps y", with([&](Call& c) { c.mean = reinterpret_cast<float*>(y_bytes) + 3; }), "mean overlaps y"},
      {"rstd is mean", with([](Call& c) { c.rstd = c.mean; }), "rstd overlaps mean"},
      {"rstd overlaps x", with([](Call& c) { c.rstd = static_cast<float*>(const_cast<void*>(c.x)) + 1; }),
       "rstd overlaps x"},
  };
  for (const Bad& bad : cases) {
    const Call& c = bad.call;
    EXPECT_EQ(cunormLayerNormForward(handle_, c.rows, c.cols, static_cast<cunormDataType_t>(c.dtype),
                                     static_cast<cunormDataType_t>(c.param), c.x, c.gamma, c.beta, c.eps, c.y, c.mean,
                                     c.rstd),
              CUNORM_STATUS_INVALID_VALUE)
        << bad.what;
    EXPECT_NE(std::string(cunormGetLastErrorMessage(handle_)).find(bad.message), std::string::npos)
        << bad.what << ": " << cunormGetLastErrorMessage(handle_);
    EXPECT_TRUE(d_y.download().bitwise_equal(poison)) << bad.what;
    EXPECT_TRUE(d_mean.download().bitwise_equal(poison)) << bad.what;
    EXPECT_TRUE(d_rstd.download().bitwise_equal(poison)) << bad.what;
    EXPECT_TRUE(d_x.download().bitwise_equal(x)) << bad.what;
  }
  // Checked handle first, then left to right: with several bad arguments the first is reported.
  EXPECT_EQ(cunormLayerNormForward(handle_, -1, 0, static_cast<cunormDataType_t>(9), CUNORM_FLOAT32, nullptr, nullptr,
                                   nullptr, -1.0f, nullptr, nullptr, nullptr),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "rows must be >= 0, got -1");
  EXPECT_EQ(cunormLayerNormForward(nullptr, -1, 0, CUNORM_FLOAT32, CUNORM_FLOAT32, nullptr, nullptr, nullptr, 1e-5f,
                                   nullptr, nullptr, nullptr),
            CUNORM_STATUS_INVALID_VALUE);
  EXPECT_STREQ(cunormGetLastErrorMessage(nullptr), "handle must not be NULL");
  // A good call afterwards succeeds and clears the message.
  const Call& c = good;
  EXPECT_EQ(cunormLayerNormForward(handle_, c.rows, c.cols, CUNORM_FLOAT32, CUNORM_FLOAT32, c.x, c.gamma, c.beta, c.eps,
                                   c.y, c.mean, c.rstd),
            CUNORM_STATUS_SUCCESS);
  EXPECT_STREQ(cunormGetLastErrorMessage(handle_), "");
}

std::string backend_name(const ::testing::TestParamInfo<cunormBackend_t>& info) { return backend_label(info.param); }

INSTANTIATE_TEST_SUITE_P(All, LayerNormForwardEdge, ::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA),
                         backend_name);

// From the SIMT launch records: for every activation dtype, each of the four variants ran with
// the 16-byte vector path and the scalar path, each with and without a tail.
TEST(LayerNormForwardCoverage, EveryVariantVectorWidthAndTailRan) {
  cunormHandle_t handle = nullptr;
  ASSERT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  for (cunormDataType_t dtype : {CUNORM_FLOAT32, CUNORM_FLOAT16, CUNORM_BFLOAT16}) {
    const std::size_t elem = element_size(dtype);
    const int64_t vec = static_cast<int64_t>(16 / elem);
    // A row longer than the 227 KiB shared memory an sm_90 block can opt into is not cached.
    const int64_t uncached = (232448 / static_cast<int64_t>(elem) / (1024 * vec) + 1) * 1024 * vec;
    const int64_t columns[] = {vec,  32 * vec, 32 * vec + vec, 256,  1024, 1000,     2048 * 2,      1024 * 3 + vec,
                               8192, 16384,    16384 + vec,    9000, 4097, uncached, uncached + vec};
    std::set<std::string> seen;
    simt::LaunchRecorder recorder;
    for (int64_t cols : columns) {
      for (std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
        LayerNormCase c(DtypePair{dtype, CUNORM_FLOAT32}, 2, cols, true, 1e-5f, static_cast<uint64_t>(cols));
        c.expect_matches_reference(c.run(handle, BufferOffsets{offset, 0, 0, offset}));
      }
    }
    for (const simt::LaunchRecord& record : recorder.records()) {
      const std::string& name = record.name;
      const std::size_t dot = name.find('.'), angle = name.find('<');
      const std::size_t vec_at = name.find(" vec="), chunks_at = name.find(" chunks=");
      seen.insert(name.substr(dot + 1, angle - dot - 1) + " vec=" + name.substr(vec_at + 5, chunks_at - vec_at - 5) +
                  (name.find(" tail") != std::string::npos ? " tail" : " full"));
    }
    for (const char* variant : {"warp_rows", "block_registers", "block_shared", "block_uncached"}) {
      for (int64_t v : {int64_t{1}, vec}) {
        for (const char* tail : {" tail", " full"}) {
          const std::string key = std::string(variant) + " vec=" + std::to_string(v) + tail;
          EXPECT_EQ(seen.count(key), 1u) << "never ran for " << element_size(dtype) * 8 << "-bit activations: " << key;
        }
      }
    }
  }
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

}  // namespace
}  // namespace cunorm_test
