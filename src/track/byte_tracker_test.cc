// ByteTracker on synthetic trajectories: crossing paths, occlusions, entries
// and exits, with ID switches counted against the known ground truth.
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "facerec/track.h"

namespace facerec {
namespace {

// One synthetic face: a box moving at constant velocity while visible.
struct Walker {
  int first_frame, last_frame;  // inclusive
  cv::Point2f start, velocity;  // pixels, pixels per frame
  float size = 60.f;
  float score = 0.9f;
  cv::Rect2f box(int frame) const {
    const cv::Point2f c = start + velocity * static_cast<float>(frame - first_frame);
    return {c.x - size / 2, c.y - size / 2, size, size};
  }
};

struct RunStats {
  int id_switches = 0;           // times a walker's track id changed while tracked
  int frames_unmatched = 0;      // visible walker frames without a confirmed track
  std::set<int> started, ended;  // every id from started / ended
  std::map<int, std::vector<int>> ids;  // walker -> the ids it got, in order, deduplicated
};

// Runs the tracker over the walkers; `hidden(w, frame)` drops a detection,
// `weak(w, frame)` gives it a low score. Detections are shuffled and jittered
// by up to `jitter` pixels, as a detector's are.
template <class Hidden, class Weak>
RunStats run(const std::vector<Walker>& walkers, int frames, Hidden hidden, Weak weak, float jitter = 1.5f,
             TrackerOptions opt = {}) {
  ByteTracker tracker(opt);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> noise(-jitter, jitter);
  RunStats s;
  std::map<int, int> last_id;
  for (int f = 0; f < frames; ++f) {
    std::vector<TrackerDetection> dets;
    std::vector<int> owner;
    for (int w = 0; w < static_cast<int>(walkers.size()); ++w) {
      const auto& wk = walkers[w];
      if (f < wk.first_frame || f > wk.last_frame || hidden(w, f)) continue;
      cv::Rect2f b = wk.box(f);
      b.x += noise(rng); b.y += noise(rng); b.width += noise(rng); b.height += noise(rng);
      dets.push_back({b, weak(w, f) ? 0.35f : wk.score});
      owner.push_back(w);
    }
    // Detectors return faces sorted by score, not by identity: shuffle.
    std::vector<int> order(dets.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<TrackerDetection> shuffled;
    std::vector<int> shuffled_owner;
    for (int i : order) { shuffled.push_back(dets[i]); shuffled_owner.push_back(owner[i]); }
    const TrackerUpdate u = tracker.update(shuffled);
    s.started.insert(u.started.begin(), u.started.end());
    s.ended.insert(u.ended.begin(), u.ended.end());
    std::map<int, int> walker_track;
    for (const auto& t : u.tracks)
      if (t.detection >= 0) walker_track[shuffled_owner[t.detection]] = t.id;
    for (int w : shuffled_owner) {
      auto it = walker_track.find(w);
      if (it == walker_track.end()) { ++s.frames_unmatched; continue; }
      auto& v = s.ids[w];
      if (v.empty() || v.back() != it->second) {
        if (!v.empty()) ++s.id_switches;
        v.push_back(it->second);
      }
    }
  }
  for (int id : tracker.finish()) s.ended.insert(id);
  return s;
}

auto never = [](int, int) { return false; };

TEST(ByteTracker, StraightWalkKeepsOneId) {
  const RunStats s = run({{0, 99, {50, 100}, {4, 0}}}, 100, never, never);
  EXPECT_EQ(s.id_switches, 0);
  EXPECT_EQ(s.started.size(), 1u);
  EXPECT_EQ(s.ended, s.started);
  EXPECT_EQ(s.frames_unmatched, 0);  // the first frame confirms at once
}

TEST(ByteTracker, CrossingPathsDoNotSwapIds) {
  // Two faces walk towards each other and overlap heavily (IoU up to ~0.5)
  // mid-way; a second pair crosses on diagonals, one face nearer the camera
  // (larger) than the other. Two identical boxes on the same spot would be
  // one detection after NMS, so the paths are offset as real faces' are.
  std::vector<Walker> w = {{0, 119, {40, 200}, {5, 0}},
                           {0, 119, {640, 220}, {-5, 0}},
                           {10, 119, {100, 60}, {4, 3}, 70.f},
                           {10, 119, {500, 85}, {-4, 3}, 50.f}};
  const RunStats s = run(w, 120, never, never);
  EXPECT_LE(s.id_switches, 0) << "crossing faces swapped ids";
  EXPECT_EQ(s.started.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s.ids.at(i).size(), 1u) << "walker " << i;
}

TEST(ByteTracker, ShortOcclusionKeepsTheId) {
  // Hidden for 12 frames (shorter than the 30-frame buffer) while moving:
  // the Kalman prediction carries the box to where the face reappears.
  auto hidden = [](int, int f) { return f >= 40 && f < 52; };
  const RunStats s = run({{0, 99, {50, 150}, {3, 1}}}, 100, hidden, never);
  EXPECT_EQ(s.id_switches, 0);
  EXPECT_EQ(s.started.size(), 1u);
  EXPECT_EQ(s.frames_unmatched, 0);
}

TEST(ByteTracker, OcclusionLongerThanTheBufferEndsTheTrack) {
  TrackerOptions opt;
  opt.track_buffer = 10;
  auto hidden = [](int, int f) { return f >= 30 && f < 60; };
  const RunStats s = run({{0, 99, {300, 150}, {0, 0}}}, 100, hidden, never, 1.5f, opt);
  EXPECT_EQ(s.started.size(), 2u);  // a new track after the long gap
  EXPECT_EQ(s.ended.size(), 2u);
}

TEST(ByteTracker, LowScoreDetectionsExtendTracksButDoNotStartThem) {
  // Walker 0 turns weak for 15 frames (a half-hidden face): the second stage
  // keeps it matched. Walker 1 is weak throughout and never becomes a track.
  auto weak = [](int w, int f) { return w == 1 || (f >= 20 && f < 35); };
  const RunStats s = run({{0, 59, {100, 100}, {2, 0}}, {0, 59, {400, 300}, {0, 0}}}, 60, never, weak);
  EXPECT_EQ(s.id_switches, 0);
  EXPECT_EQ(s.started.size(), 1u);
  EXPECT_EQ(s.ids.count(1), 0u);
  EXPECT_EQ(s.frames_unmatched, 60);  // all of them walker 1's
}

TEST(ByteTracker, EntriesAndExits) {
  std::vector<Walker> w = {{0, 49, {100, 100}, {2, 0}},
                           {30, 99, {400, 100}, {-1, 1}},
                           {60, 129, {200, 300}, {0, -1}}};
  TrackerOptions opt;
  opt.track_buffer = 20;
  ByteTracker tracker(opt);
  std::map<int, int> started_at, ended_at;
  for (int f = 0; f < 160; ++f) {
    std::vector<TrackerDetection> dets;
    for (const auto& wk : w)
      if (f >= wk.first_frame && f <= wk.last_frame) dets.push_back({wk.box(f), 0.9f});
    const auto u = tracker.update(dets);
    for (int id : u.started) started_at[id] = f;
    for (int id : u.ended) ended_at[id] = f;
  }
  ASSERT_EQ(started_at.size(), 3u);
  // The first walker starts at once, later ones on their second frame.
  EXPECT_EQ(started_at.at(1), 0);
  EXPECT_EQ(started_at.at(2), 31);
  EXPECT_EQ(started_at.at(3), 61);
  // Each ends track_buffer + 1 frames after its last detection.
  EXPECT_EQ(ended_at.at(1), 49 + 21);
  EXPECT_EQ(ended_at.at(2), 99 + 21);
  EXPECT_EQ(ended_at.at(3), 129 + 21);
}

TEST(ByteTracker, SpuriousSingleDetectionStartsNothing) {
  ByteTracker tracker;
  std::vector<int> started;
  for (int f = 0; f < 20; ++f) {
    std::vector<TrackerDetection> dets;
    if (f == 5) dets.push_back({{10, 10, 50, 50}, 0.95f});
    if (f == 9) dets.push_back({{300, 10, 50, 50}, 0.95f});
    auto u = tracker.update(dets);
    started.insert(started.end(), u.started.begin(), u.started.end());
    EXPECT_TRUE(u.tracks.empty());
  }
  EXPECT_TRUE(started.empty());
}

TEST(ByteTracker, ManyRandomWalkersFewSwitches) {
  // 8 faces on random straight paths, each hidden in 5% of frames: the
  // bound allows a rare switch where two paths cross while one is hidden.
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> pos(50, 1200), vel(-3, 3);
  std::vector<Walker> w;
  for (int i = 0; i < 8; ++i) w.push_back({0, 199, {pos(rng), pos(rng) * 0.6f}, {vel(rng), vel(rng)}, 50.f});
  std::vector<std::vector<char>> hide(8, std::vector<char>(200));
  for (auto& h : hide)
    for (auto& x : h) x = std::uniform_real_distribution<float>(0, 1)(rng) < 0.05f;
  auto hidden = [&](int i, int f) { return hide[i][f] != 0; };
  const RunStats s = run(w, 200, hidden, never);
  EXPECT_LE(s.id_switches, 2);
  EXPECT_LE(s.started.size(), 10u);
}

TEST(GreedyAssign, TakesTheBestPairsFirst) {
  // rows x cols = 2 x 3
  const std::vector<float> m = {0.9f, 0.8f, 0.0f,
                                0.85f, 0.1f, 0.05f};
  const auto a = greedy_assign(m, 2, 3, 0.2f);
  EXPECT_EQ(a[0], 0);
  EXPECT_EQ(a[1], -1);  // its best column is taken and the others are under 0.2
  const auto b = greedy_assign(m, 2, 3, 0.01f);
  EXPECT_EQ(b[1], 1);  // column 0 is taken; 0.1 is the best left
  EXPECT_TRUE(greedy_assign({}, 0, 0, 0.1f).empty());
}

TEST(BoxKalman, LearnsConstantVelocity) {
  BoxKalman kf({100, 100, 40, 50});
  for (int f = 1; f <= 20; ++f) {
    kf.predict();
    kf.correct({100.f + 5.f * f, 100.f - 2.f * f, 40, 50});
  }
  kf.predict();
  const cv::Rect2f p = kf.box();
  EXPECT_NEAR(p.x, 205.f, 1.5f);
  EXPECT_NEAR(p.y, 58.f, 1.5f);
  EXPECT_NEAR(p.width, 40.f, 0.5f);
  EXPECT_NEAR(p.height, 50.f, 0.5f);
}

}  // namespace
}  // namespace facerec
