// The parameter space of the row-norm forward and backward tests: every backend x norm x dtype
// pair x shape x affine setting, and the test name of each point.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>

#include "backend_fixture.hpp"
#include "dtype_pair.hpp"
#include "row_norm_case.hpp"

namespace cunorm_test {

struct RowsCols {
  int64_t rows;
  int64_t cols;
};

using RowNormParam = std::tuple<cunormBackend_t, Norm, DtypePair, RowsCols, bool>;  // the last: affine

template <std::size_t N>
auto every_row_norm_param(const RowsCols (&shapes)[N]) {
  return ::testing::Combine(::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA),
                            ::testing::Values(Norm::kLayerNorm, Norm::kRmsNorm), ::testing::ValuesIn(kDtypePairs),
                            ::testing::ValuesIn(shapes), ::testing::Bool());
}

inline std::string row_norm_param_name(const ::testing::TestParamInfo<RowNormParam>& info) {
  const auto [backend, norm, dtypes, shape, affine] = info.param;
  return std::string(backend_label(backend)) + "_" + norm_label(norm) + "_" + dtypes.label() + "_R" +
         std::to_string(shape.rows) + "xC" + std::to_string(shape.cols) + (affine ? "_Affine" : "_Plain");
}

// The fixture of the forward and backward suites; make_case() builds the point's case (eps 1e-5)
// with data seeded from its shape, rows * seed_factor + cols.
class RowNormParamTest : public BackendParamTest<RowNormParam> {
 protected:
  cunormBackend_t backend() const { return std::get<0>(GetParam()); }
  RowNormCase make_case(int64_t seed_factor) const {
    const auto& [point_backend, norm, dtypes, shape, affine] = GetParam();
    return RowNormCase(norm, dtypes, shape.rows, shape.cols, affine, 1e-5f,
                       static_cast<uint64_t>(shape.rows * seed_factor + shape.cols));
  }
};

}  // namespace cunorm_test
