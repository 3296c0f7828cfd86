// cunormLayerNormBackward and cunormRMSNormBackward against the float64 reference fed the
// statistics of the library's own forward: every backend x norm x dtype pair x shape x affine,
// including rows >> cols and cols >> rows; dgamma and dbeta bitwise identical across runs and
// (on SIMT) across the engine's three thread orders.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "support/backend_fixture.hpp"
#include "support/compare.hpp"
#include "support/orders.hpp"
#include "support/row_norm_case.hpp"
#include "support/row_norm_params.hpp"

namespace cunorm_test {
namespace {

// The forward's shapes, plus rows >> cols (many partial rows to reduce) and cols >> rows (a few
// long rows spread over many blocks of a cooperative grid).
const RowsCols kShapes[] = {{1, 1},     {300, 1},   {257, 2},   {229, 7},   {64, 31},   {255, 32},  {7, 33},
                            {129, 64},  {65, 127},  {33, 255},  {17, 256},  {29, 511},  {9, 512},   {8, 513},
                            {29, 541},  {5, 1023},  {4, 1024},  {3, 1025},  {2, 2047},  {3, 4096},  {2, 8193},
                            {1, 16411}, {1, 32768}, {1, 65537}, {16384, 8}, {8192, 65}, {4, 65536}, {2, 20011}};

class RowNormBackward : public RowNormParamTest {};

TEST_P(RowNormBackward, MatchesReferenceAndIsDeterministic) {
  CUNORM_OPEN_BACKEND_OR_SKIP(backend());
  const RowNormCase c = make_case(977);
  const ForwardResult saved = c.forward(handle_);
  const BackwardResult first = c.backward(handle_, saved, true, true);
  c.expect_backward_matches_reference(saved, first);
  repeat_in_other_orders(backend(), 777, [&](const char* what) {
    c.expect_bitwise_equal(first, c.backward(handle_, saved, true, true), what);
  });
}

INSTANTIATE_TEST_SUITE_P(All, RowNormBackward, every_row_norm_param(kShapes), row_norm_param_name);

}  // namespace
}  // namespace cunorm_test
