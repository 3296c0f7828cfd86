// Every BatchNorm entry point against the float64 reference: backend x layout x dtype pair x
// (N, C, S) x affine. The training forward (with running statistics), its backward from the
// saved statistics, the inference forward and the inference backward; results bitwise identical
// across runs and (on SIMT) across the engine's three thread orders.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <tuple>

#include "support/backend_fixture.hpp"
#include "support/batch_norm_case.hpp"
#include "support/compare.hpp"
#include "support/orders.hpp"

namespace cunorm_test {
namespace {

struct Shape {
  int64_t n, c, s;
};

// N*S from 2 to 12,000; C from 1 to 2048; S = 1 (BatchNorm1d), odd and prime sizes.
const Shape kShapes[] = {{2, 1, 1},   {1, 3, 2},   {4, 2, 1},    {3, 5, 7},    {8, 16, 49},  {2, 64, 100}, {16, 3, 1},
                         {7, 129, 1}, {5, 33, 65}, {2, 2048, 3}, {1, 8, 4099}, {1000, 2, 1}, {3, 4, 2048}};

using Param = std::tuple<cunormBackend_t, cunormLayout_t, DtypePair, Shape, bool>;

class BatchNorm : public BackendParamTest<Param> {};

void expect_same(const TrainingResult& a, const TrainingResult& b, const char* what) {
  EXPECT_TRUE(a.y.bitwise_equal(b.y)) << "y differs in " << what;
  EXPECT_TRUE(bitwise_equal(a.saved_mean, b.saved_mean)) << what;
  EXPECT_TRUE(bitwise_equal(a.saved_invstd, b.saved_invstd)) << what;
  EXPECT_TRUE(bitwise_equal(a.running_mean, b.running_mean)) << what;
  EXPECT_TRUE(bitwise_equal(a.running_var, b.running_var)) << what;
}

void expect_same(const GradientResult& a, const GradientResult& b, const char* what) {
  EXPECT_TRUE(a.dx.bitwise_equal(b.dx)) << "dx differs in " << what;
  EXPECT_TRUE(a.dgamma.bitwise_equal(b.dgamma)) << "dgamma differs in " << what;
  EXPECT_TRUE(a.dbeta.bitwise_equal(b.dbeta)) << "dbeta differs in " << what;
}

TEST_P(BatchNorm, EveryEntryPointMatchesReferenceAndIsDeterministic) {
  const auto [backend, layout, dtypes, shape, affine] = GetParam();
  CUNORM_OPEN_BACKEND_OR_SKIP(backend);
  const uint64_t seed = static_cast<uint64_t>(shape.n * 7919 + shape.c * 131 + shape.s);
  BatchNormCase bn(layout, dtypes, shape.n, shape.c, shape.s, affine, 1e-5f, seed);
  const RunningStatistics running = random_running(shape.c, seed + 1);
  const TrainingResult trained = bn.training(handle_, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, &running);
  bn.expect_training_matches_reference(0.1f, CUNORM_RUNNING_VAR_UNBIASED, &running, trained);
  const GradientResult grads = bn.backward(handle_, trained.saved_mean, trained.saved_invstd, true, true);
  bn.expect_backward_matches_reference(trained.saved_mean, trained.saved_invstd, grads);
  const HostArray inferred = bn.inference(handle_, running);
  bn.expect_inference_matches_reference(running, inferred);
  const GradientResult frozen = bn.backward_inference(handle_, running, true, true);
  bn.expect_backward_inference_matches_reference(running, frozen);

  repeat_in_other_orders(backend, 4242, [&](const char* what) {
    expect_same(trained, bn.training(handle_, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, &running), what);
    expect_same(grads, bn.backward(handle_, trained.saved_mean, trained.saved_invstd, true, true), what);
    EXPECT_TRUE(inferred.bitwise_equal(bn.inference(handle_, running))) << what;
    expect_same(frozen, bn.backward_inference(handle_, running, true, true), what);
  });
}

std::string name(const ::testing::TestParamInfo<Param>& info) {
  const auto [backend, layout, dtypes, shape, affine] = info.param;
  return std::string(backend_label(backend)) + (layout == CUNORM_LAYOUT_NCHW ? "_NCHW_" : "_NHWC_") + dtypes.label() +
         "_N" + std::to_string(shape.n) + "C" + std::to_string(shape.c) + "S" + std::to_string(shape.s) +
         (affine ? "_Affine" : "_Plain");
}

INSTANTIATE_TEST_SUITE_P(All, BatchNorm,
                         ::testing::Combine(::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA),
                                            ::testing::Values(CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC),
                                            ::testing::ValuesIn(kDtypePairs), ::testing::ValuesIn(kShapes),
                                            ::testing::Bool()),
                         name);

}  // namespace
}  // namespace cunorm_test
