#include <gtest/gtest.h>

#include "facerec/track_identity.h"

namespace facerec {
namespace {

IdentityVoteOptions opts() {
  IdentityVoteOptions o;
  o.threshold = 0.34f;
  return o;
}

TEST(TrackIdentity, StaysUnknownUntilEnoughEvidence) {
  TrackIdentity t(opts());
  // One match just over the threshold is not enough...
  EXPECT_FALSE(t.add("Alice", 0.36f, 0.8f).changed);
  EXPECT_FALSE(t.known());
  // ...a second one is.
  const auto c = t.add("Alice", 0.40f, 0.8f);
  EXPECT_TRUE(c.changed);
  EXPECT_EQ(c.previous, "");
  EXPECT_EQ(t.identity(), "Alice");
  EXPECT_NEAR(t.similarity(), 0.38f, 1e-5f);
}

TEST(TrackIdentity, AStrongSingleMatchNamesAtOnce) {
  TrackIdentity t(opts());
  EXPECT_TRUE(t.add("Alice", 0.60f, 0.5f).changed);
  EXPECT_EQ(t.identity(), "Alice");
}

TEST(TrackIdentity, BelowThresholdVotesForUnknown) {
  TrackIdentity t(opts());
  for (int i = 0; i < 10; ++i) t.add("Alice", 0.30f, 1.f);
  EXPECT_FALSE(t.known());
  EXPECT_NEAR(t.similarity(), 0.30f, 1e-5f);
  // A gallery with nobody in it never names anyone.
  TrackIdentity e(opts());
  for (int i = 0; i < 3; ++i) e.add("", 0.f, 1.f);
  EXPECT_FALSE(e.known());
}

TEST(TrackIdentity, QualityWeightsTheVote) {
  // Two low-quality matches for Bob against two high-quality unknowns: Bob
  // holds a small share of the weight and stays unnamed.
  TrackIdentity t(opts());
  t.add("", 0.1f, 0.9f);
  t.add("Bob", 0.40f, 0.1f);
  t.add("", 0.2f, 0.9f);
  t.add("Bob", 0.40f, 0.1f);
  EXPECT_FALSE(t.known());
  // The same votes with the qualities swapped name him.
  TrackIdentity u(opts());
  u.add("", 0.1f, 0.1f);
  u.add("Bob", 0.40f, 0.9f);
  u.add("", 0.2f, 0.1f);
  u.add("Bob", 0.40f, 0.9f);
  EXPECT_EQ(u.identity(), "Bob");
}

TEST(TrackIdentity, HysteresisStopsFlicker) {
  TrackIdentity t(opts());
  t.add("Alice", 0.5f, 1.f);
  t.add("Alice", 0.5f, 1.f);
  ASSERT_EQ(t.identity(), "Alice");
  // Alternating rival and unknown votes: the name holds while Alice keeps a
  // share above min_share - hysteresis, and no rival leads by the margin.
  int changes = 0;
  for (int i = 0; i < 6; ++i) {
    changes += t.add(i % 2 ? "Carol" : "Alice", 0.45f, 1.f).changed;
    changes += t.add("", 0.2f, 0.3f).changed;
  }
  EXPECT_EQ(changes, 0);
  EXPECT_EQ(t.identity(), "Alice");
}

TEST(TrackIdentity, ARivalWithClearlyMoreEvidenceTakesOver) {
  TrackIdentity t(opts());
  t.add("Alice", 0.5f, 1.f);
  t.add("Alice", 0.5f, 1.f);
  ASSERT_EQ(t.identity(), "Alice");
  std::string seen;
  for (int i = 0; i < 8; ++i) {
    auto c = t.add("Dave", 0.6f, 1.f);
    if (c.changed) { seen = t.identity(); break; }
  }
  EXPECT_EQ(seen, "Dave");
  EXPECT_NEAR(t.similarity(), 0.6f, 1e-5f);
}

TEST(TrackIdentity, FallsBackToUnknownWhenEvidenceTurns) {
  TrackIdentity t(opts());
  t.add("Alice", 0.5f, 1.f);
  t.add("Alice", 0.5f, 1.f);
  int steps = 0;
  while (t.known() && steps < 20) { t.add("", 0.1f, 1.f); ++steps; }
  EXPECT_FALSE(t.known());
  EXPECT_GE(steps, 3);  // not on the first contrary vote
}

TEST(EmbedSchedule, EmbedsAtStartOnBetterViewsAndOnRefresh) {
  EmbedScheduleOptions o;
  o.refresh_frames = 30;
  o.unknown_refresh_frames = 10;
  o.better_view_ratio = 1.3f;
  o.min_gap_frames = 3;
  EmbedSchedule s(o);
  EXPECT_TRUE(s.due(0, 0.3f, false));
  s.embedded(0, 0.3f);
  EXPECT_FALSE(s.due(1, 0.9f, false));   // too soon even for a better view
  EXPECT_TRUE(s.due(3, 0.9f, false));    // clearly better
  EXPECT_FALSE(s.due(5, 0.35f, false));  // not clearly better
  EXPECT_TRUE(s.due(10, 0.1f, false));   // unknown: refresh every 10
  EXPECT_FALSE(s.due(10, 0.1f, true));   // named: every 30
  EXPECT_TRUE(s.due(30, 0.1f, true));
  s.embedded(3, 0.9f);
  EXPECT_FALSE(s.due(8, 0.95f, true));   // 0.95 is not clearly better than 0.9
  EXPECT_EQ(s.count(), 2);
}

TEST(ViewScore, FrontalLargeBeatsProfileAndSmall) {
  Face frontal;
  frontal.landmarks = {cv::Point2f(100, 100), cv::Point2f(150, 100), cv::Point2f(125, 125), cv::Point2f(105, 150),
                       cv::Point2f(145, 150)};
  Face profile = frontal;
  profile.landmarks[kNose] = {148, 125};
  Face small = frontal;
  for (auto& p : small.landmarks) p *= 0.3f;
  EXPECT_NEAR(view_score(frontal), 1.f, 1e-5f);
  EXPECT_LT(view_score(profile), 0.2f);
  EXPECT_NEAR(view_score(small), 15.f / 40.f, 1e-3f);
  EXPECT_EQ(view_score(Face{}), 0.f);
}

}  // namespace
}  // namespace facerec
