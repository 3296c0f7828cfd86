// The call-free division and reciprocal square root of kernels/float_math.cuh are within one
// ulp of the correctly rounded result, over the ranges the kernels feed them, and handle the
// special values as IEEE arithmetic does.
#include "../kernels/float_math.cuh"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace {

using cunorm::kernels::divide_by_count;
using cunorm::kernels::reciprocal_sqrt;

// Distance in units of the last place between two finite floats of the same sign.
long ulps_apart(float a, float b) {
  return std::labs(static_cast<long>(cunorm::kernels::float_bits(a)) -
                   static_cast<long>(cunorm::kernels::float_bits(b)));
}

TEST(FloatMath, DivideByCountIsWithinOneUlp) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> exponent(-40.0, 40.0);
  long worst = 0;
  for (int i = 0; i < 200000; ++i) {
    const float n = static_cast<float>(1 + rng() % (i % 3 == 0 ? 2147483647ULL : 100000ULL));
    const float a = static_cast<float>((rng() % 2 ? -1.0 : 1.0) * std::pow(2.0, exponent(rng)));
    const float expected = static_cast<float>(static_cast<double>(a) / static_cast<double>(n));
    const long d = ulps_apart(divide_by_count(a, n), expected);
    worst = std::max(worst, d);
    ASSERT_LE(d, 1) << a << " / " << n;
  }
  EXPECT_LE(worst, 1);
  EXPECT_EQ(divide_by_count(0.0f, 7.0f), 0.0f);
  EXPECT_EQ(divide_by_count(12.0f, 3.0f), 4.0f);
  EXPECT_TRUE(std::isinf(divide_by_count(std::numeric_limits<float>::infinity(), 3.0f)));
  EXPECT_TRUE(std::isnan(divide_by_count(std::numeric_limits<float>::quiet_NaN(), 3.0f)));
}

TEST(FloatMath, ReciprocalSqrtIsWithinOneUlp) {
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> exponent(-149.0, 127.9);
  for (int i = 0; i < 200000; ++i) {
    const float x = static_cast<float>(std::pow(2.0, exponent(rng)));
    if (x == 0.0f) continue;
    const float expected = static_cast<float>(1.0 / std::sqrt(static_cast<double>(x)));
    ASSERT_LE(ulps_apart(reciprocal_sqrt(x), expected), 1) << x;
  }
  EXPECT_EQ(reciprocal_sqrt(4.0f), 0.5f);
  EXPECT_EQ(reciprocal_sqrt(0.25f), 2.0f);
  EXPECT_TRUE(std::isinf(reciprocal_sqrt(0.0f)));
  EXPECT_EQ(reciprocal_sqrt(std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_TRUE(std::isnan(reciprocal_sqrt(-1.0f)));
  EXPECT_TRUE(std::isnan(reciprocal_sqrt(std::numeric_limits<float>::quiet_NaN())));
}

}  // namespace
