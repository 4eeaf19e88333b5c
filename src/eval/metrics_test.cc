// The metrics on small cases worked out by hand (the arithmetic is in the
// comments), each fast metric against its reference twin on random data with
// ties, and the dataset readers on hand-written and real files.
#include "facerec/eval.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "test_support.h"

namespace fs = std::filesystem;

namespace facerec::eval {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<ScoredPair> pairs_of(std::vector<float> same, std::vector<float> diff) {
  std::vector<ScoredPair> p;
  for (float s : same) p.push_back({s, true});
  for (float s : diff) p.push_back({s, false});
  return p;
}

// Scores quantised to 0.05 so that ties (within and across classes) are common.
std::vector<ScoredPair> random_pairs(std::mt19937& rng, int n) {
  std::uniform_int_distribution<int> q(0, 20);
  std::bernoulli_distribution same(0.5);
  std::vector<ScoredPair> p;
  for (int i = 0; i < n; ++i) {
    const bool s = same(rng);
    // Same-person pairs lean higher, so the curves are not trivial.
    p.push_back({static_cast<float>(std::min(20, q(rng) + (s ? 4 : 0))) * 0.05f, s});
  }
  return p;
}

// ----------------------------- Verification ---------------------------------

// same {0.9, 0.7, 0.5}, different {0.8, 0.5, 0.1}. Of the 9 (same, different)
// couples the same pair wins: 0.9 beats all 3; 0.7 beats 0.5 and 0.1 (2);
// 0.5 ties 0.5 (0.5) and beats 0.1 (1). AUC = 6.5 / 9.
TEST(EvalMetrics, AucOfAKnownScoreSetWithATie) {
  const auto p = pairs_of({0.9f, 0.7f, 0.5f}, {0.8f, 0.5f, 0.1f});
  EXPECT_NEAR(auc(p), 6.5 / 9.0, 1e-12);
  EXPECT_NEAR(auc_reference(p), 6.5 / 9.0, 1e-12);
  EXPECT_TRUE(std::isnan(auc(pairs_of({0.5f}, {}))));
}

// Same set. Descending: 0.9 S, 0.8 D, 0.7 S, 0.5 S+D (tied), 0.1 D.
TEST(EvalMetrics, RocOfAKnownScoreSet) {
  const auto curve = roc(pairs_of({0.9f, 0.7f, 0.5f}, {0.8f, 0.5f, 0.1f}));
  const double third = 1.0 / 3;
  const std::vector<RocPoint> want = {{kInf, 0, 0},        {0.9f, 0, third},         {0.8f, third, third},
                                      {0.7f, third, 2 * third}, {0.5f, 2 * third, 1.0}, {0.1f, 1.0, 1.0}};
  ASSERT_EQ(curve.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(curve[i].threshold, want[i].threshold) << i;
    EXPECT_NEAR(curve[i].far, want[i].far, 1e-12) << i;
    EXPECT_NEAR(curve[i].tar, want[i].tar, 1e-12) << i;
  }
}

// Same set; the different scores descending are 0.8, 0.5, 0.1.
// FAR <= 0: accept none of them: threshold just above 0.8, TAR 1/3 (0.9).
// FAR <= 1/3 (k = 1): just above 0.5; accepts S 0.9, 0.7 (not the tied 0.5),
// D 0.8: TAR 2/3, FAR 1/3. FAR <= 0.5 also allows only one (k = floor 1.5).
TEST(EvalMetrics, TarAtFarOfAKnownScoreSet) {
  const auto p = pairs_of({0.9f, 0.7f, 0.5f}, {0.8f, 0.5f, 0.1f});
  OperatingPoint op = tar_at_far(p, 0.0);
  EXPECT_EQ(op.threshold, std::nextafter(0.8f, kInf));
  EXPECT_NEAR(op.tar, 1.0 / 3, 1e-12);
  EXPECT_EQ(op.far, 0.0);
  for (double target : {1.0 / 3, 0.5}) {
    op = tar_at_far(p, target);
    EXPECT_EQ(op.threshold, std::nextafter(0.5f, kInf)) << target;
    EXPECT_NEAR(op.tar, 2.0 / 3, 1e-12) << target;
    EXPECT_NEAR(op.far, 1.0 / 3, 1e-12) << target;
  }
  op = tar_at_far(p, 1.0);
  EXPECT_EQ(op.threshold, -kInf);
  EXPECT_EQ(op.tar, 1.0);
}

// same {0.9, 0.6, 0.4}, different {0.7, 0.5}. ROC (threshold: FAR, FRR):
// 0.9: 0, 2/3; 0.7: 1/2, 2/3; 0.6: 1/2, 1/3. FAR - FRR goes -1/6 -> +1/6
// between 0.7 and 0.6, so halfway: EER 1/2 (FAR stays 1/2, FRR 2/3 -> 1/3),
// threshold 0.65.
TEST(EvalMetrics, EerInterpolatesBetweenRocPoints) {
  const EqualErrorRate e = eer(pairs_of({0.9f, 0.6f, 0.4f}, {0.7f, 0.5f}));
  EXPECT_NEAR(e.eer, 0.5, 1e-12);
  EXPECT_NEAR(e.threshold, 0.65f, 1e-6);
  // Separable: 0.9, 0.8 vs 0.3, 0.2. FAR reaches FRR = 0 at the point of
  // threshold 0.8 (FAR 0, FRR 0): EER 0.
  const EqualErrorRate z = eer(pairs_of({0.9f, 0.8f}, {0.3f, 0.2f}));
  EXPECT_NEAR(z.eer, 0.0, 1e-12);
  EXPECT_NEAR(z.threshold, 0.8f, 1e-6);
}

// S 0.9, 0.6, 0.4; D 0.5, 0.3, 0.1. Candidates and accuracy (of 6):
// <0.1: 3; 0.2: 4; 0.35: 5; 0.45: 4; 0.55: 5; 0.75: 4; >0.9: 3.
// Best 5/6, tied at 0.35 and 0.55: the lowest wins.
TEST(EvalMetrics, BestThresholdOfAKnownSet) {
  const auto p = pairs_of({0.9f, 0.6f, 0.4f}, {0.5f, 0.3f, 0.1f});
  const ThresholdChoice c = best_threshold(p);
  EXPECT_NEAR(c.threshold, 0.35f, 1e-6);
  EXPECT_NEAR(c.accuracy, 5.0 / 6, 1e-12);
  EXPECT_NEAR(accuracy_at(p, 0.55f), 5.0 / 6, 1e-12);
  const ThresholdChoice r = best_threshold_reference(p);
  EXPECT_EQ(r.threshold, c.threshold);
}

// Ten folds of one same and one different pair. Folds 0-8: S 0.9, D 0.1.
// Fold 9: S 0.3, D 0.2 (a hard same pair).
// - Fold 9's threshold comes from folds 0-8 only (scores 0.1 and 0.9): 0.5,
//   which rejects its S 0.3: accuracy 1/2. (Had fold 9 seen itself, 0.25
//   would separate everything.)
// - Folds 0-8 train on 8 x (0.9, 0.1) + (0.3, 0.2): 0.25 is perfect (18/18):
//   accuracy 1 each.
// Mean (9 + 0.5) / 10 = 0.95; population std sqrt((9 * 0.05^2 + 0.45^2) / 10)
// = sqrt(0.0225) = 0.15; mean threshold (9 * 0.25 + 0.5) / 10 = 0.275.
TEST(EvalMetrics, TenFoldChoosesEachThresholdOnTheOtherNine) {
  std::vector<ScoredPair> p;
  std::vector<int> fold;
  for (int f = 0; f < 10; ++f) {
    p.push_back({f < 9 ? 0.9f : 0.3f, true});
    p.push_back({f < 9 ? 0.1f : 0.2f, false});
    fold.insert(fold.end(), {f, f});
  }
  const KFoldResult r = kfold_accuracy(p, fold);
  ASSERT_EQ(r.folds.size(), 10u);
  EXPECT_TRUE(r.cross_validated);
  for (int f = 0; f < 9; ++f) {
    EXPECT_NEAR(r.folds[f].threshold, 0.25f, 1e-6) << f;
    EXPECT_EQ(r.folds[f].accuracy, 1.0) << f;
    EXPECT_EQ(r.folds[f].pairs, 2);
  }
  EXPECT_NEAR(r.folds[9].threshold, 0.5f, 1e-6);
  EXPECT_EQ(r.folds[9].accuracy, 0.5);
  EXPECT_NEAR(r.accuracy, 0.95, 1e-12);
  EXPECT_NEAR(r.accuracy_std, 0.15, 1e-9);
  EXPECT_NEAR(r.threshold, 0.275, 1e-6);
}

// A single fold cannot be cross-validated: the threshold comes from the same
// pairs, and the result says so.
TEST(EvalMetrics, OneFoldIsFlaggedAsNotCrossValidated) {
  const auto p = pairs_of({0.9f, 0.3f}, {0.2f, 0.1f});
  const std::vector<int> fold(p.size(), 0);
  const KFoldResult r = kfold_accuracy(p, fold);
  EXPECT_FALSE(r.cross_validated);
  EXPECT_EQ(r.accuracy, 1.0);  // threshold 0.25, between 0.2 and 0.3
  EXPECT_NEAR(r.threshold, 0.25, 1e-6);
}

TEST(EvalMetrics, FastVerificationMetricsMatchTheirReferences) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const auto p = random_pairs(rng, 1 + trial * 7);
    const double a = auc(p), ar = auc_reference(p);
    if (std::isnan(ar)) {
      EXPECT_TRUE(std::isnan(a));
      continue;
    }
    EXPECT_NEAR(a, ar, 1e-12) << trial;
    // The trapezoids under roc() are the same area (ties make diagonal steps).
    const auto curve = roc(p);
    double trap = 0;
    for (size_t i = 1; i < curve.size(); ++i)
      trap += (curve[i].far - curve[i - 1].far) * (curve[i].tar + curve[i - 1].tar) / 2;
    EXPECT_NEAR(trap, ar, 1e-12) << trial;
    for (double target : {0.0, 1e-3, 0.05, 0.1, 0.3, 1.0}) {
      const OperatingPoint f = tar_at_far(p, target), r = tar_at_far_reference(p, target);
      EXPECT_EQ(f.threshold, r.threshold) << trial << " " << target;
      EXPECT_EQ(f.tar, r.tar) << trial << " " << target;
      EXPECT_EQ(f.far, r.far) << trial << " " << target;
      EXPECT_LE(f.far, target + 1e-12);
    }
    const ThresholdChoice b = best_threshold(p), br = best_threshold_reference(p);
    EXPECT_EQ(b.threshold, br.threshold) << trial;
    EXPECT_EQ(b.accuracy, br.accuracy) << trial;
    EXPECT_EQ(accuracy_at(p, b.threshold), b.accuracy) << trial;
  }
}

// ----------------------------- Identification -------------------------------

// Three enrolled people A, B, C. Mated probes (truth, scores vs A B C):
//   p1 A [0.9 0.3 0.2]: rank 1, mate 0.9     p2 B [0.6 0.5 0.1]: rank 2
//   p3 C [0.4 0.4 0.4]: ties count against: rank 3
//   p4 A failed (no face): never a hit       p5 B [0.1 0.7 0.2]: rank 1, mate 0.7
// Unknown probes' top scores: 0.8, 0.65, 0.35 and one failure (-inf).
// CMC: rank 1 = 2/5, rank 2 = 3/5, rank 3 = 4/5, rank 4 = 4/5.
// FPIR <= 1% or 10% of 4 allows 0 false positives: threshold just above 0.8;
//   hits need rank 1 and mate >= it: p1 only: DIR 1/5.
// FPIR <= 25% allows 1: just above 0.65: p1 and p5: DIR 2/5, FPIR 1/4.
std::vector<SearchOutcome> toy_gallery() {
  using V = std::vector<float>;
  return {score_search(V{0.9f, 0.3f, 0.2f}, 0),       score_search(V{0.6f, 0.5f, 0.1f}, 1),
          score_search(V{0.4f, 0.4f, 0.4f}, 2),       score_search(V{}, 0, /*failed=*/true),
          score_search(V{0.1f, 0.7f, 0.2f}, 1),       score_search(V{0.65f, 0.2f, 0.1f}, -1),
          score_search(V{0.3f, 0.35f, 0.2f}, -1),     score_search(V{}, -1, /*failed=*/true),
          score_search(V{0.1f, 0.1f, 0.8f}, -1)};
}

TEST(EvalMetrics, RanksAndCmcOnAToyGallery) {
  const auto s = toy_gallery();
  EXPECT_EQ(s[0].rank, 1);
  EXPECT_EQ(s[1].rank, 2);
  EXPECT_EQ(s[2].rank, 3);
  EXPECT_EQ(s[3].rank, 0);
  EXPECT_TRUE(s[3].mated);
  EXPECT_EQ(s[4].rank, 1);
  EXPECT_FALSE(s[5].mated);
  EXPECT_EQ(s[5].top_score, 0.65f);
  EXPECT_EQ(s[7].top_score, -kInf);
  const auto c = cmc(s, 4);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_NEAR(c[0], 0.4, 1e-12);
  EXPECT_NEAR(c[1], 0.6, 1e-12);
  EXPECT_NEAR(c[2], 0.8, 1e-12);
  EXPECT_NEAR(c[3], 0.8, 1e-12);
  EXPECT_NEAR(rank_k(s, 1), 0.4, 1e-12);
  // A person enrolled without any template (truth beyond the scores): a miss.
  const SearchOutcome absent = score_search(std::vector<float>{0.5f, 0.4f}, 2);
  EXPECT_TRUE(absent.mated);
  EXPECT_EQ(absent.rank, 0);
  EXPECT_EQ(absent.top_score, 0.5f);
}

TEST(EvalMetrics, DirAtFpirOnAToyGallery) {
  const auto s = toy_gallery();
  for (double target : {0.01, 0.1}) {
    const OpenSetPoint p = dir_at_fpir(s, target);
    EXPECT_EQ(p.threshold, std::nextafter(0.8f, kInf)) << target;
    EXPECT_EQ(p.fpir, 0.0) << target;
    EXPECT_NEAR(p.dir, 0.2, 1e-12) << target;
  }
  const OpenSetPoint q = dir_at_fpir(s, 0.25);
  EXPECT_EQ(q.threshold, std::nextafter(0.65f, kInf));
  EXPECT_NEAR(q.fpir, 0.25, 1e-12);
  EXPECT_NEAR(q.dir, 0.4, 1e-12);
  // No unknown probes: open-set rates are undefined.
  const std::vector<SearchOutcome> closed(s.begin(), s.begin() + 5);
  EXPECT_TRUE(std::isnan(dir_at_fpir(closed, 0.01).dir));
}

TEST(EvalMetrics, DirAtFpirMatchesItsReference) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> q(0, 20), who(-1, 4);
  std::bernoulli_distribution fail(0.05);
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<SearchOutcome> s;
    for (int i = 0; i < 5 + trial * 5; ++i) {
      std::vector<float> scores(5);
      for (float& x : scores) x = q(rng) * 0.05f;
      s.push_back(score_search(scores, who(rng), fail(rng)));
    }
    for (double target : {0.0, 0.01, 0.1, 0.3}) {
      const OpenSetPoint f = dir_at_fpir(s, target), r = dir_at_fpir_reference(s, target);
      if (std::isnan(r.dir)) { EXPECT_TRUE(std::isnan(f.dir)); continue; }
      EXPECT_EQ(f.threshold, r.threshold) << trial << " " << target;
      EXPECT_EQ(f.dir, r.dir) << trial << " " << target;
      EXPECT_EQ(f.fpir, r.fpir) << trial << " " << target;
    }
  }
}

// ------------------------------- Detection ----------------------------------

// recall .2 .4 .4 .8, precision 1 .5 .8 .6. With sentinels the envelope is
// 1 1 .8 .8 .6 0 over recall 0 .2 .4 .4 .8 1, so
// AP = .2*1 + .2*.8 + .4*.6 + .2*0 = 0.6.
TEST(EvalMetrics, VocApOfAKnownPrecisionRecallSet) {
  const std::vector<double> rec{0.2, 0.4, 0.4, 0.8}, prec{1.0, 0.5, 0.8, 0.6};
  EXPECT_NEAR(voc_ap(rec, prec), 0.6, 1e-12);
  // A perfect detector: precision 1 up to recall 1.
  EXPECT_NEAR(voc_ap(std::vector<double>{0.5, 1.0}, std::vector<double>{1.0, 1.0}), 1.0, 1e-12);
}

TEST(EvalMetrics, WiderIouCountsPixelsInclusively) {
  // 10x10-pixel boxes (w = 9 spans 10 pixels) shifted by one: 9*10 / (200 - 90).
  EXPECT_NEAR(wider_iou({0, 0, 9, 9}, {1, 0, 9, 9}), 90.0 / 110.0, 1e-12);
  EXPECT_EQ(wider_iou({0, 0, 9, 9}, {10, 0, 9, 9}), 0.0);
  EXPECT_EQ(wider_iou({0, 0, 9, 9}, {0, 0, 9, 9}), 1.0);
}

// Image 1: kept G0 at x 0, ignored G1 at x 20, kept G2 at x 40 (10x10 px).
//   D0 1.0 on G0: found.           D1 .875 on G1: ignored, not a proposal.
//   D2 .75 on G0 again (IoU .82): a false positive.
//   D3 .625 on nothing: false positive.   D4 .5 on G2: found.
// Image 2: one kept face, no detections. Image 3: one ignored face and its
// detection at score 0. Kept faces: 3. Scores already span 0..1, so
// normalising changes nothing.
// With 4 thresholds (.75 .5 .25 0): proposals 2 4 4 4, found 1 2 2 2 ->
// precision .5 .5 .5 .5, recall 1/3 2/3 2/3 2/3 -> AP = 1/3*.5 + 1/3*.5 = 1/3.
std::vector<WiderImage> toy_wider() {
  WiderImage a;
  a.gt = {{0, 0, 9, 9}, {20, 0, 9, 9}, {40, 0, 9, 9}};
  a.keep = {1, 0, 1};
  a.detections = {{{40, 0, 9, 9}, 0.5f}, {{0, 0, 9, 9}, 1.0f}, {{60, 0, 9, 9}, 0.625f},
                  {{20, 0, 9, 9}, 0.875f}, {{1, 0, 9, 9}, 0.75f}};  // shuffled: the metric sorts
  WiderImage b;
  b.gt = {{0, 0, 19, 19}};
  b.keep = {1};
  WiderImage c;
  c.gt = {{0, 0, 9, 9}};
  c.keep = {0};
  c.detections = {{{0, 0, 9, 9}, 0.0f}};
  return {a, b, c};
}

TEST(EvalMetrics, WiderMatchingIgnoresFacesOutsideTheSubset) {
  const auto images = toy_wider();
  const std::vector<int> order{1, 3, 4, 2, 0};  // by descending score
  const ImageMatch m = wider_match_image(images[0], order, 0.5);
  EXPECT_EQ(m.found, (std::vector<int>{1, 1, 1, 1, 2}));
  EXPECT_EQ(m.proposal, (std::vector<uint8_t>{1, 0, 1, 1, 1}));
}

TEST(EvalMetrics, WiderPrCurveAndApOfAToySet) {
  const auto images = toy_wider();
  for (const PrCurve& c : {wider_pr_curve(images, 0.5, 4), wider_pr_curve_reference(images, 0.5, 4)}) {
    EXPECT_EQ(c.faces, 3);
    ASSERT_EQ(c.precision.size(), 4u);
    for (int t = 0; t < 4; ++t) EXPECT_NEAR(c.precision[t], 0.5, 1e-12) << t;
    EXPECT_NEAR(c.recall[0], 1.0 / 3, 1e-12);
    for (int t = 1; t < 4; ++t) EXPECT_NEAR(c.recall[t], 2.0 / 3, 1e-12) << t;
    EXPECT_NEAR(c.ap, 1.0 / 3, 1e-12);
  }
}

TEST(EvalMetrics, WiderPrCurveMatchesItsReference) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> pos(0, 200), size(8, 40), jitter(-4, 4);
  std::uniform_int_distribution<int> q(0, 50);
  for (int trial = 0; trial < 10; ++trial) {
    std::vector<WiderImage> images(8);
    for (auto& im : images) {
      const int n = q(rng) % 6;
      for (int g = 0; g < n; ++g) {
        im.gt.emplace_back(pos(rng), pos(rng), size(rng), size(rng));
        im.keep.push_back(q(rng) % 3 != 0);
        if (q(rng) % 4) {  // most faces get a detection, some two
          const auto& b = im.gt.back();
          im.detections.push_back({{b.x + jitter(rng), b.y + jitter(rng), b.width, b.height}, q(rng) / 50.f});
        }
      }
      for (int k = q(rng) % 3; k > 0; --k) im.detections.push_back({{pos(rng), pos(rng), 20, 20}, q(rng) / 50.f});
    }
    const PrCurve f = wider_pr_curve(images), r = wider_pr_curve_reference(images);
    ASSERT_EQ(f.precision.size(), 1000u);
    EXPECT_EQ(f.precision, r.precision) << trial;
    EXPECT_EQ(f.recall, r.recall) << trial;
    EXPECT_EQ(f.ap, r.ap) << trial;
  }
}

// -------------------------------- Readers -----------------------------------

std::string write_file(const std::string& name, const std::string& text) {
  const std::string p = testing::temp_dir("eval") + "/" + name;
  std::ofstream(p) << text;
  return p;
}

TEST(EvalReaders, LfwPairs) {
  auto p = read_lfw_pairs(write_file("pairs.txt", "2\t1\nA_B\t1\t4\nC\t2\tD_E\t10\n\nF\t3\t1\nG\t1\tH\t2\n"));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  ASSERT_EQ(p->size(), 4u);
  EXPECT_EQ((*p)[0].image1, "A_B/A_B_0001.jpg");
  EXPECT_EQ((*p)[0].image2, "A_B/A_B_0004.jpg");
  EXPECT_TRUE((*p)[0].same);
  EXPECT_EQ((*p)[1].image1, "C/C_0002.jpg");
  EXPECT_EQ((*p)[1].image2, "D_E/D_E_0010.jpg");
  EXPECT_FALSE((*p)[1].same);
  EXPECT_EQ((*p)[2].fold, 1);
  // One number: one fold.
  auto one = read_lfw_pairs(write_file("one.txt", "1\nA 1 2\nB 1 C 1\n"));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 2u);
  // A different-person line where a same-person line belongs; a short file.
  auto bad = read_lfw_pairs(write_file("bad.txt", "1 1\nA 1 B 2\nC 1 D 2\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(":2:"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(read_lfw_pairs(write_file("short.txt", "10 300\nA 1 2\n")).ok());
  EXPECT_EQ(read_lfw_pairs("/nonexistent/pairs.txt").status().code(), ErrorCode::kNotFound);
}

TEST(EvalReaders, WiderGroundTruthTxt) {
  auto g = read_wider_gt_txt(write_file("gt.txt",
                                        "0--Parade/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n5 6 7 8 2 0 0 0 1 0 \n"
                                        "1--X/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n1--X/c.jpg\n1\n9 9 9 9 0 0 0 0 0 0\n"));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_EQ(g->size(), 3u);
  EXPECT_EQ((*g)[0].path, "0--Parade/a.jpg");
  ASSERT_EQ((*g)[0].boxes.size(), 2u);
  EXPECT_EQ((*g)[0].boxes[1], cv::Rect2f(5, 6, 7, 8));
  EXPECT_TRUE((*g)[1].boxes.empty());
  EXPECT_EQ((*g)[2].boxes.size(), 1u);
  EXPECT_FALSE(read_wider_gt_txt(write_file("bad_gt.txt", "0--Parade/a.jpg\n3\n1 2 3 4\n")).ok());
  EXPECT_FALSE(read_wider_gt_txt(write_file("bad_gt2.txt", "0--Parade/a.jpg\n1\n1 2 x 4\n")).ok());
}

TEST(EvalReaders, WiderSubsetsFromTheOfficialMatFiles) {
  FACEREC_REQUIRE_SHARED();
  const std::string dir = testing::shared_dir() + "/data/wider_val_subset";
  auto g = read_wider_gt_txt(dir + "/wider_face_val_bbx_gt.txt");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_EQ(g->size(), 305u);  // the subset's README: 5 images from each of 61 events
  ASSERT_TRUE(read_wider_subsets(dir, *g).ok());
  int64_t faces = 0, kept[3] = {0, 0, 0};
  for (const auto& im : *g) {
    faces += static_cast<int64_t>(im.boxes.size());
    for (int s = 0; s < 3; ++s) {
      ASSERT_EQ(im.keep[s].size(), im.boxes.size());
      for (size_t b = 0; b < im.boxes.size(); ++b) {
        kept[s] += im.keep[s][b];
        // The official subsets are nested: easy within medium within hard.
        if (s > 0) {
          EXPECT_LE(im.keep[s - 1][b], im.keep[s][b]) << im.path << " face " << b;
        }
      }
    }
  }
  EXPECT_GT(kept[0], 0);
  EXPECT_LT(kept[0], kept[1]);
  EXPECT_LT(kept[1], kept[2]);
  EXPECT_LE(kept[2], faces);
  // An image the .mat files do not know, and a .mat that is not one.
  std::vector<WiderGtImage> stranger{{"0--Parade/nope.jpg", {}, {}}};
  EXPECT_EQ(read_wider_subsets(dir, stranger).code(), ErrorCode::kNotFound);
  const std::string junk = testing::temp_dir("mat");
  for (const char* f : {"wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat"})
    std::ofstream(junk + "/" + f) << "MATLAB 5.0 MAT-file, but not really";
  EXPECT_FALSE(read_wider_subsets(junk, *g).ok());
}

TEST(EvalPlot, WritesAReadablePng) {
  PlotSpec spec;
  spec.title = "ROC";
  spec.x_label = "false accept rate";
  spec.y_label = "true accept rate";
  spec.log_x = true;
  spec.x_min = 1e-4;
  spec.series.push_back({"model", {1e-4, 1e-3, 1e-2, 1.0}, {0.5, 0.8, 0.95, 1.0}, cv::Scalar(40, 39, 214)});
  const std::string path = testing::temp_dir("plot") + "/roc.png";
  ASSERT_TRUE(write_plot(spec, path).ok());
  const cv::Mat img = cv::imread(path);
  ASSERT_EQ(img.cols, spec.width);
  ASSERT_EQ(img.rows, spec.height);
  // The series' colour is on the canvas (the line and its legend swatch).
  int coloured = 0;
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) coloured += img.at<cv::Vec3b>(y, x) == cv::Vec3b(40, 39, 214);
  EXPECT_GT(coloured, 100);
  spec.x_min = 0;  // a log axis from 0 is refused
  EXPECT_FALSE(write_plot(spec, path).ok());
}

}  // namespace
}  // namespace facerec::eval
