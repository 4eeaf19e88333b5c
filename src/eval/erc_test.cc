// The error-versus-reject curve on a case worked out by hand, its tie rule,
// and a random quality score, which must not beat random rejection.
#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "facerec/eval.h"

namespace facerec::eval {
namespace {

// Threshold 0.5. Same-person pairs as (quality, score):
//   (0.1, 0.2) miss   (0.2, 0.4) miss   (0.3, 0.9) hit   (0.3, 0.3) miss
//   (0.5, 0.8) hit    (0.9, 0.7) hit
// and one different-person pair, which ERC ignores. 3 misses of 6: FNMR 0.5.
std::vector<QualityPair> hand_case() {
  return {{0.2f, true, 0.1f}, {0.4f, true, 0.2f}, {0.9f, true, 0.3f}, {0.3f, true, 0.3f},
          {0.8f, true, 0.5f}, {0.7f, true, 0.9f}, {0.9f, false, 0.0f}};
}

TEST(Erc, HandComputedCurve) {
  const std::vector<QualityPair> pairs = hand_case();
  const std::vector<double> r = {0.0, 1.0 / 6, 0.5, 2.0 / 3};
  const ErcCurve c = erc(pairs, 0.5f, r);
  EXPECT_EQ(c.genuine, 6);
  EXPECT_DOUBLE_EQ(c.fnmr0, 0.5);
  ASSERT_EQ(c.points.size(), 4u);
  EXPECT_DOUBLE_EQ(c.points[0].fnmr, 0.5);
  // 1 rejected, the miss at quality 0.1: 2 misses of 5.
  EXPECT_DOUBLE_EQ(c.points[1].fnmr, 0.4);
  // 3 rejected: 0.1 and 0.2 (both misses) and half of the 0.3 tie group
  // (1 miss in 2): 3 - 2.5 misses expected among 3 kept.
  EXPECT_NEAR(c.points[2].fnmr, 0.5 / 3, 1e-12);
  // 4 rejected: the whole 0.3 group; both kept pairs are hits.
  EXPECT_DOUBLE_EQ(c.points[3].fnmr, 0.0);
  EXPECT_FLOAT_EQ(c.quality_at_cut[2], 0.3f);
  // Trapezoids: 1/6*(0.5+0.4)/2 + 1/3*(0.4+1/6)/2 + 1/6*(1/6+0)/2 = 0.18333..., over a span of 2/3.
  EXPECT_NEAR(c.mean_fnmr, 0.275, 1e-12);
  EXPECT_NEAR(c.gain(), 0.45, 1e-12);
}

TEST(Erc, InputOrderDoesNotMatterInsideATie) {
  std::vector<QualityPair> pairs = hand_case();
  const std::vector<double> r = {0.0, 0.5};
  const double expected = erc(pairs, 0.5f, r).points[1].fnmr;
  std::swap(pairs[2], pairs[3]);
  EXPECT_DOUBLE_EQ(erc(pairs, 0.5f, r).points[1].fnmr, expected);
  std::reverse(pairs.begin(), pairs.end());
  EXPECT_DOUBLE_EQ(erc(pairs, 0.5f, r).points[1].fnmr, expected);
}

TEST(Erc, ConstantQualityIsRandomRejection) {
  std::vector<QualityPair> pairs = hand_case();
  for (auto& p : pairs) p.quality = 1.f;
  const std::vector<double> r = {0.0, 0.2, 0.5};
  const ErcCurve c = erc(pairs, 0.5f, r);
  for (const auto& p : c.points) EXPECT_DOUBLE_EQ(p.fnmr, 0.5);
  EXPECT_NEAR(c.gain(), 0.0, 1e-12);
}

TEST(Erc, IndependentRandomQualityDoesNotBeatRandomRejection) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<QualityPair> pairs(20000);
  for (auto& p : pairs) p = {u(rng), true, u(rng)};
  std::vector<double> r;
  for (int i = 0; i <= 20; ++i) r.push_back(i * 0.01);
  const ErcCurve c = erc(pairs, 0.3f, r);
  EXPECT_NEAR(c.fnmr0, 0.3, 0.02);
  EXPECT_LT(std::abs(c.gain()), 0.05);
  // ...while a quality that is the score itself rejects the misses first:
  // FNMR(r) = (0.3 - r) / (1 - r), whose mean over r in [0, 0.2] is 0.219,
  // a gain of 1 - 0.219 / 0.3 = 0.27.
  for (auto& p : pairs) p.quality = p.score;
  EXPECT_NEAR(erc(pairs, 0.3f, r).gain(), 0.27, 0.03);
}

TEST(Erc, NoSamePersonPairIsNaN) {
  const std::vector<QualityPair> pairs = {{0.9f, false, 0.5f}};
  const std::vector<double> r = {0.0, 0.1};
  const ErcCurve c = erc(pairs, 0.5f, r);
  EXPECT_TRUE(std::isnan(c.fnmr0));
  EXPECT_TRUE(std::isnan(c.points[0].fnmr));
}

}  // namespace
}  // namespace facerec::eval
