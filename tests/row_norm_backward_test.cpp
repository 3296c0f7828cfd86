// cunormLayerNormBackward and cunormRMSNormBackward against the float64 reference fed the
// statistics of the library's own forward: every backend x norm x dtype pair x shape x affine,
// including rows >> cols and cols >> rows; dgamma and dbeta bitwise identical across runs and
// (on SIMT) across the engine's three thread orders.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "simt/launch.hpp"
#include "support/backend_fixture.hpp"
#include "support/compare.hpp"
#include "support/row_norm_case.hpp"

namespace cunorm_test {
namespace {

struct Shape {
  int64_t rows;
  int64_t cols;
};

// The forward's shapes, plus rows >> cols (many partial rows to reduce) and cols >> rows (a few
// long rows spread over many blocks of a cooperative grid).
const Shape kShapes[] = {{1, 1},     {300, 1},   {257, 2},   {229, 7},   {64, 31},   {255, 32},  {7, 33},
                         {129, 64},  {65, 127},  {33, 255},  {17, 256},  {29, 511},  {9, 512},   {8, 513},
                         {29, 541},  {5, 1023},  {4, 1024},  {3, 1025},  {2, 2047},  {3, 4096},  {2, 8193},
                         {1, 16411}, {1, 32768}, {1, 65537}, {16384, 8}, {8192, 65}, {4, 65536}, {2, 20011}};

using Param = std::tuple<cunormBackend_t, Norm, DtypePair, Shape, bool>;

class RowNormBackward : public ::testing::TestWithParam<Param>, protected BackendTest {
 protected:
  void TearDown() override { close(); }
};

TEST_P(RowNormBackward, MatchesReferenceAndIsDeterministic) {
  const auto [backend, norm, dtypes, shape, affine] = GetParam();
  CUNORM_OPEN_BACKEND_OR_SKIP(backend);
  RowNormCase c(norm, dtypes, shape.rows, shape.cols, affine, 1e-5f,
                static_cast<uint64_t>(shape.rows * 977 + shape.cols));
  const ForwardResult saved = c.forward(handle_);
  const BackwardResult first = c.backward(handle_, saved, true, true);
  c.expect_backward_matches_reference(saved, first);
  if (backend == CUNORM_BACKEND_SIMT) {
    for (simt::Order order : other_orders()) {
      simt::Options options = simt::current_options();
      options.order = order;
      options.seed = 777;
      simt::ScopedOptions scoped(options);
      c.expect_bitwise_equal(first, c.backward(handle_, saved, true, true), simt::order_name(order));
    }
  } else {
    c.expect_bitwise_equal(first, c.backward(handle_, saved, true, true), "a second run");
  }
}

std::string name(const ::testing::TestParamInfo<Param>& info) {
  const auto [backend, norm, dtypes, shape, affine] = info.param;
  return std::string(backend_label(backend)) + "_" + norm_label(norm) + "_" + dtypes.label() + "_R" +
         std::to_string(shape.rows) + "xC" + std::to_string(shape.cols) + (affine ? "_Affine" : "_Plain");
}

INSTANTIATE_TEST_SUITE_P(All, RowNormBackward,
                         ::testing::Combine(::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA),
                                            ::testing::Values(Norm::kLayerNorm, Norm::kRmsNorm),
                                            ::testing::ValuesIn(kDtypePairs), ::testing::ValuesIn(kShapes),
                                            ::testing::Bool()),
                         name);

}  // namespace
}  // namespace cunorm_test
