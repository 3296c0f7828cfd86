// The row-norm kernels read and write through functors (kernels/element_io.cuh), so that a fusion
// is a functor, not a kernel. Every forward and backward variant runs here with functors the
// library does not ship: x as a residual add (which also writes the sum it read), gamma as a
// (1 + gamma) scale, dy multiplied by a constant. Each must give bit for bit what the same kernel
// gives through the direct functors on inputs prepared beforehand in float32 (x + residual,
// 1 + gamma, dy * 0.5): that fails if a kernel reads or writes anything around its functors.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../ops/row_norm/row_norm_backward.cuh"
#include "simt/launch.hpp"

namespace {

namespace k = cunorm::kernels;
using k::Global;
using k::Pack;

// x + residual in float32, the sum also written to `sum` (the residual stream of a fused block).
struct ResidualAddLoad {
  using Cached = float;
  Global<const float> x;
  Global<const float> residual;
  Global<float> sum;

  template <int N>
  Pack<float, N> fetch(int64_t index) const {
    const Pack<float, N> a = k::load<N>(x, index);
    const Pack<float, N> b = k::load<N>(residual, index);
    Pack<float, N> s;
    for (int e = 0; e < N; ++e) s.elements[e] = a.elements[e] + b.elements[e];
    k::store<N>(sum, index, s);
    return s;
  }
  template <int N>
  static void unpack(const Pack<float, N>& pack, float (&values)[N]) {
    for (int e = 0; e < N; ++e) values[e] = pack.elements[e];
  }
};

// dy * 0.5 (a loss scale taken out as the gradient is read).
struct HalvedLoad {
  using Cached = float;
  k::DirectLoad<float> direct;

  template <int N>
  Pack<float, N> fetch(int64_t index) const {
    Pack<float, N> pack = direct.fetch<N>(index);
    for (int e = 0; e < N; ++e) pack.elements[e] *= 0.5f;
    return pack;
  }
  template <int N>
  static void unpack(const Pack<float, N>& pack, float (&values)[N]) {
    k::DirectLoad<float>::unpack<N>(pack, values);
  }
};

// gamma as 1 + gamma (the zero-centred scale of Gemma's RMSNorm); beta as given.
struct OffsetScale {
  k::AffineParameters<float> direct;

  template <int N>
  void scale(int64_t col, float (&values)[N]) const {
    direct.scale<N>(col, values);
    for (int e = 0; e < N; ++e) values[e] += 1.0f;
  }
  template <int N>
  void shift(int64_t col, float (&values)[N]) const {
    direct.shift<N>(col, values);
  }
};

constexpr int kVec = 4;

std::vector<float> random_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A variant's launch: block, grid and dynamic shared memory; the segments variant cooperative,
// with two segments per row, so that the cross-block merge runs.
simt::LaunchConfig config_of(const std::string& variant, int64_t rows, int64_t cols, std::size_t dynamic) {
  simt::LaunchConfig c;
  c.name = variant.c_str();
  c.dynamic_shared_bytes = dynamic;
  if (variant == "warp_rows") {
    c.block = dim3(k::kWarpRowsThreads);
    c.grid = dim3(2);
  } else if (variant == "block_registers") {
    c.block = dim3(static_cast<unsigned>(cols / (kVec * 2)));  // CHUNKS = 2
    c.grid = dim3(2);
  } else if (variant == "segments") {
    c.block = dim3(128);
    c.grid = dim3(static_cast<unsigned>(2 * rows));  // two segments per row, every row in one wave
    c.cooperative = true;
  } else {
    c.block = dim3(256);
    c.grid = dim3(2);
  }
  return c;
}

// Two segments per row, every row in one wave.
k::RowSegments segments_of(int64_t rows, int64_t cols, std::vector<float>& exchange) {
  exchange.assign(static_cast<std::size_t>(2 * rows * 2 * 4), 0.0f);  // 2 waves x slots x count x 4 floats
  return k::RowSegments{2, static_cast<int>(cols / kVec / 2), static_cast<int>(rows), 1,
                        Global<float>(exchange.data())};
}

// Runs a forward variant with the given functors (the engine's verdict asserted).
template <class Op, class Load, class Affine>
void forward(const std::string& variant, int64_t rows, int64_t cols, const Load& x, const Affine& affine,
             std::vector<float>& y, std::vector<float>& mean, std::vector<float>& rstd) {
  using Store = k::DirectStore<float>;
  y.assign(static_cast<std::size_t>(rows * cols), 0.0f);
  mean.assign(static_cast<std::size_t>(rows), 0.0f);
  rstd.assign(static_cast<std::size_t>(rows), 0.0f);
  const k::RowNormForwardArgs<Load, Affine, Store> a{x,
                                                     affine,
                                                     Store{Global<float>(y.data())},
                                                     Global<float>(Op::kCentered ? mean.data() : nullptr),
                                                     Global<float>(rstd.data()),
                                                     rows,
                                                     cols,
                                                     1e-5f};
  std::vector<float> exchange;
  simt::LaunchResult r;
  if (variant == "warp_rows") {
    const std::size_t smem = 2 * static_cast<std::size_t>(cols) * sizeof(float);
    r = simt::launch(config_of(variant, rows, cols, smem),
                     k::row_norm_forward_warp_rows<Op, Load, Affine, Store, kVec, 1>, a, static_cast<int>(cols / kVec));
  } else if (variant == "block_registers") {
    r = simt::launch(config_of(variant, rows, cols, 0),
                     k::row_norm_forward_block_registers<Op, Load, Affine, Store, kVec, 2>, a);
  } else if (variant == "segments") {
    const k::RowSegments seg = segments_of(rows, cols, exchange);
    const std::size_t smem = static_cast<std::size_t>(seg.packs_per_segment) * kVec * sizeof(float) * 3;
    r = simt::launch(config_of(variant, rows, cols, smem), k::row_norm_forward_segments<Op, Load, Affine, Store, kVec>,
                     a, seg);
  } else {
    r = simt::launch(config_of(variant, rows, cols, 0), k::row_norm_forward_uncached<Op, Load, Affine, Store, kVec>, a);
  }
  ASSERT_TRUE(r.ok) << variant << ": " << r.message;
}

// Runs a backward variant with the given dy functor and direct x, gamma and dx.
template <class Op, class DyLoad>
void backward(const std::string& variant, int64_t rows, int64_t cols, const DyLoad& dy, const std::vector<float>& x,
              const std::vector<float>& mean, const std::vector<float>& rstd, const std::vector<float>& gamma,
              std::vector<float>& dx, std::vector<float>& partial_dgamma) {
  using XLoad = k::DirectLoad<float>;
  using Affine = k::AffineParameters<float>;
  using Store = k::DirectStore<float>;
  dx.assign(static_cast<std::size_t>(rows * cols), 0.0f);
  partial_dgamma.assign(static_cast<std::size_t>(2 * rows * cols), 0.0f);  // at most one partial row per block
  std::vector<float> partial_dbeta(partial_dgamma.size(), 0.0f);
  const k::RowNormBackwardArgs<DyLoad, XLoad, Affine, Store> a{
      dy,
      XLoad{Global<const float>(x.data())},
      Global<const float>(Op::kCentered ? mean.data() : nullptr),
      Global<const float>(rstd.data()),
      Affine{Global<const float>(gamma.data()), Global<const float>()},
      Store{Global<float>(dx.data())},
      Global<float>(partial_dgamma.data()),
      Global<float>(Op::kCentered ? partial_dbeta.data() : nullptr),
      rows,
      cols};
  std::vector<float> exchange;
  simt::LaunchResult r;
  if (variant == "warp_rows") {
    const int width = static_cast<int>(cols / kVec);
    const std::size_t smem = (1 + 2 * (k::kWarpRowsThreads / width)) * static_cast<std::size_t>(cols) * sizeof(float);
    r = simt::launch(config_of(variant, rows, cols, smem),
                     k::row_norm_backward_warp_rows<Op, DyLoad, XLoad, Affine, Store, kVec, 1>, a, width);
  } else if (variant == "segments") {
    const k::RowSegments seg = segments_of(rows, cols, exchange);
    const std::size_t smem = static_cast<std::size_t>(seg.packs_per_segment) * kVec * sizeof(float) * 5;
    r = simt::launch(config_of(variant, rows, cols, smem),
                     k::row_norm_backward_segments<Op, DyLoad, XLoad, Affine, Store, kVec>, a, seg);
  } else {
    r = simt::launch(config_of(variant, rows, cols, 0),
                     k::row_norm_backward_uncached<Op, DyLoad, XLoad, Affine, Store, kVec>, a);
  }
  ASSERT_TRUE(r.ok) << variant << ": " << r.message;
}

// Rows per variant: more than one warp-rows block serves (8 groups of 16 lanes each), and more
// than the grid of two blocks elsewhere, so that the grid-stride loops take a second turn.
int64_t rows_of(const std::string& variant) { return variant == "warp_rows" ? 19 : 5; }

// Columns per variant: a row in one warp-rows group, in one block's registers (CHUNKS 2), in two
// segments of 128 packs, and past the register variants.
int64_t cols_of(const std::string& variant) {
  if (variant == "warp_rows") return 64;
  if (variant == "block_registers") return 2048;
  if (variant == "segments") return 1024;
  return 4096;
}

// A variant's sizes with two random tensors and a random parameter vector.
struct Problem {
  int64_t rows, cols;
  std::size_t n;
  std::vector<float> first, second, gamma;
};

Problem problem_of(const std::string& variant, unsigned seed) {
  const int64_t rows = rows_of(variant), cols = cols_of(variant);
  const std::size_t n = static_cast<std::size_t>(rows * cols);
  return Problem{rows,
                 cols,
                 n,
                 random_values(n, seed),
                 random_values(n, seed + 1),
                 random_values(static_cast<std::size_t>(cols), seed + 2)};
}

// x + residual and 1 + gamma through the functors against the direct functors on the sums.
template <class Op>
void forward_functors_match_prepared_inputs(const std::string& variant) {
  const Problem pr = problem_of(variant, 1);  // x, residual, gamma
  const std::vector<float> beta = random_values(static_cast<std::size_t>(pr.cols), 4);
  std::vector<float> sum(pr.n, 0.0f), summed(pr.n), offset_gamma(pr.gamma.size());
  for (std::size_t i = 0; i < pr.n; ++i) summed[i] = pr.first[i] + pr.second[i];
  for (std::size_t c = 0; c < pr.gamma.size(); ++c) offset_gamma[c] = 1.0f + pr.gamma[c];
  const Global<const float> beta_or_none = Op::kCentered ? Global<const float>(beta.data()) : Global<const float>();

  std::vector<float> y1, mean1, rstd1, y2, mean2, rstd2;
  forward<Op>(variant, pr.rows, pr.cols,
              ResidualAddLoad{Global<const float>(pr.first.data()), Global<const float>(pr.second.data()),
                              Global<float>(sum.data())},
              OffsetScale{k::AffineParameters<float>{Global<const float>(pr.gamma.data()), beta_or_none}}, y1, mean1,
              rstd1);
  forward<Op>(variant, pr.rows, pr.cols, k::DirectLoad<float>{Global<const float>(summed.data())},
              k::AffineParameters<float>{Global<const float>(offset_gamma.data()), beta_or_none}, y2, mean2, rstd2);
  EXPECT_EQ(sum, summed) << variant << ": the residual functor's sum";
  EXPECT_EQ(y1, y2) << variant;
  EXPECT_EQ(mean1, mean2) << variant;
  EXPECT_EQ(rstd1, rstd2) << variant;
}

// dy * 0.5 through a functor against the direct functor on the halved gradient.
template <class Op>
void backward_functor_matches_prepared_gradient(const std::string& variant) {
  const Problem pr = problem_of(variant, 5);  // x, dy, gamma
  std::vector<float> halved(pr.n), y, mean, rstd;
  for (std::size_t i = 0; i < pr.n; ++i) halved[i] = pr.second[i] * 0.5f;
  forward<Op>("uncached", pr.rows, pr.cols, k::DirectLoad<float>{Global<const float>(pr.first.data())},
              k::AffineParameters<float>{Global<const float>(pr.gamma.data()), Global<const float>()}, y, mean, rstd);

  std::vector<float> dx1, dgamma1, dx2, dgamma2;
  backward<Op>(variant, pr.rows, pr.cols, HalvedLoad{k::DirectLoad<float>{Global<const float>(pr.second.data())}},
               pr.first, mean, rstd, pr.gamma, dx1, dgamma1);
  backward<Op>(variant, pr.rows, pr.cols, k::DirectLoad<float>{Global<const float>(halved.data())}, pr.first, mean,
               rstd, pr.gamma, dx2, dgamma2);
  EXPECT_EQ(dx1, dx2) << variant;
  EXPECT_EQ(dgamma1, dgamma2) << variant << ": the partial parameter gradients";
}

TEST(RowNormFunctors, ForwardVariantsReadAndWriteOnlyThroughTheirFunctors) {
  for (const char* variant : {"warp_rows", "block_registers", "segments", "uncached"}) {
    forward_functors_match_prepared_inputs<k::LayerNormOp>(variant);
    forward_functors_match_prepared_inputs<k::RmsNormOp>(variant);
  }
}

TEST(RowNormFunctors, BackwardVariantsReadDyOnlyThroughItsFunctor) {
  for (const char* variant : {"warp_rows", "segments", "uncached"}) {
    backward_functor_matches_prepared_gradient<k::LayerNormOp>(variant);
    backward_functor_matches_prepared_gradient<k::RmsNormOp>(variant);
  }
}

}  // namespace
