// cunormLayerNormForward and cunormRMSNormForward against the float64 reference: every backend
// x norm x dtype pair x shape x affine, bitwise identical across runs and (on SIMT) across the
// engine's three thread orders.
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

// Every variant with and without a tail, odd and prime sizes, 2^k +- 1.
const RowsCols kShapes[] = {{1, 1},     {300, 1},   {257, 2},   {229, 7},  {64, 31},  {255, 32}, {7, 33},
                            {129, 64},  {65, 127},  {33, 255},  {17, 256}, {29, 541}, {8, 768},  {5, 1023},
                            {4, 1024},  {3, 1025},  {2, 2047},  {3, 4096}, {2, 4099}, {1, 8192}, {2, 8193},
                            {1, 16411}, {1, 32768}, {1, 65537}, {1, 70001}};

class RowNormForward : public RowNormParamTest {};

TEST_P(RowNormForward, MatchesReferenceAndIsDeterministic) {
  CUNORM_OPEN_BACKEND_OR_SKIP(backend());
  const RowNormCase c = make_case(131);
  const ForwardResult first = c.forward(handle_);
  c.expect_forward_matches_reference(first);
  repeat_in_other_orders(backend(), 12345,
                         [&](const char* what) { c.expect_bitwise_equal(first, c.forward(handle_), what); });
}

INSTANTIATE_TEST_SUITE_P(All, RowNormForward, every_row_norm_param(kShapes), row_norm_param_name);

}  // namespace
}  // namespace cunorm_test
