// cunormLayerNormForward and cunormRMSNormForward against the float64 reference: every backend
// x norm x dtype pair x shape x affine, bitwise identical across runs and (on SIMT) across the
// engine's three thread orders.
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

// Every variant with and without a tail, odd and prime sizes, 2^k +- 1.
const Shape kShapes[] = {{1, 1},     {300, 1},   {257, 2},   {229, 7},  {64, 31},  {255, 32}, {7, 33},
                         {129, 64},  {65, 127},  {33, 255},  {17, 256}, {29, 541}, {8, 768},  {5, 1023},
                         {4, 1024},  {3, 1025},  {2, 2047},  {3, 4096}, {2, 4099}, {1, 8192}, {2, 8193},
                         {1, 16411}, {1, 32768}, {1, 65537}, {1, 70001}};

using Param = std::tuple<cunormBackend_t, Norm, DtypePair, Shape, bool>;

class RowNormForward : public ::testing::TestWithParam<Param>, protected BackendTest {
 protected:
  void TearDown() override { close(); }
};

TEST_P(RowNormForward, MatchesReferenceAndIsDeterministic) {
  const auto [backend, norm, dtypes, shape, affine] = GetParam();
  CUNORM_OPEN_BACKEND_OR_SKIP(backend);
  RowNormCase c(norm, dtypes, shape.rows, shape.cols, affine, 1e-5f,
                static_cast<uint64_t>(shape.rows * 131 + shape.cols));
  const ForwardResult first = c.forward(handle_);
  c.expect_forward_matches_reference(first);
  if (backend == CUNORM_BACKEND_SIMT) {
    for (simt::Order order : other_orders()) {
      simt::Options options = simt::current_options();
      options.order = order;
      options.seed = 12345;
      simt::ScopedOptions scoped(options);
      c.expect_bitwise_equal(first, c.forward(handle_), simt::order_name(order));
    }
  } else {
    c.expect_bitwise_equal(first, c.forward(handle_), "a second run");
  }
}

std::string name(const ::testing::TestParamInfo<Param>& info) {
  const auto [backend, norm, dtypes, shape, affine] = info.param;
  return std::string(backend_label(backend)) + "_" + norm_label(norm) + "_" + dtypes.label() + "_R" +
         std::to_string(shape.rows) + "xC" + std::to_string(shape.cols) + (affine ? "_Affine" : "_Plain");
}

INSTANTIATE_TEST_SUITE_P(All, RowNormForward,
                         ::testing::Combine(::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA),
                                            ::testing::Values(Norm::kLayerNorm, Norm::kRmsNorm),
                                            ::testing::ValuesIn(kDtypePairs), ::testing::ValuesIn(kShapes),
                                            ::testing::Bool()),
                         name);

}  // namespace
}  // namespace cunorm_test
