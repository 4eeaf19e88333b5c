// LFW verification (eval_lfw.h) on synthetic photos and the fake runtime:
// the folds, the metrics on separable people, the centre-crop accounting,
// the cache, cancellation and bad input. Offline.
#include <filesystem>

#include <gtest/gtest.h>

#include "facerec/eval_lfw.h"
#include "facerec/eval_open_set.h"
#include "protocol_test_support.h"

namespace fs = std::filesystem;

namespace facerec::eval {
namespace {

using testing_support::EvalEnv;
using testing_support::person_colour;
using testing_support::write_black;
using testing_support::write_photo;

std::string rel(int person, int image) {
  return "P" + std::to_string(person) + "/P" + std::to_string(person) + "_" + std::to_string(image) + ".png";
}

// An LFW-like tree under root/images: 4 people, 3 photos each; 2 folds, each
// with 2 same-person pairs and 2 different-person pairs.
std::vector<LfwPair> make_lfw(const fs::path& root) {
  for (int p = 0; p < 4; ++p)
    for (int i = 1; i <= 3; ++i) write_photo(root / "images" / rel(p, i), person_colour(p), p * 10 + i);
  std::vector<LfwPair> pairs;
  for (int f = 0; f < 2; ++f) {
    pairs.push_back({rel(2 * f, 1), rel(2 * f, 2), true, f});
    pairs.push_back({rel(2 * f + 1, 1), rel(2 * f + 1, 3), true, f});
    pairs.push_back({rel(2 * f, 3), rel(2 * f + 1, 2), false, f});
    pairs.push_back({rel(2 * f, 2), rel((2 * f + 2) % 4, 1), false, f});
  }
  return pairs;
}

TEST(LfwVerification, SeparablePeopleAreVerifiedPerfectlyAcrossFolds) {
  EvalEnv env("lfw_ok");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("lfw_tree");
  const auto pairs = make_lfw(root);
  LfwVerificationOptions opt;
  opt.root = root.string();  // the parent: images/ is found by the first pair's person
  auto r = run_lfw_verification(env.analyzer(), {}, pairs, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->scored.size(), pairs.size());
  EXPECT_EQ(r->folds, (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1}));
  for (size_t i = 0; i < pairs.size(); ++i) {
    EXPECT_EQ(r->scored[i].same, pairs[i].same);
    if (pairs[i].same) {
      EXPECT_GT(r->scored[i].score, 0.99f) << i;
    } else {
      EXPECT_LT(r->scored[i].score, 0.9f) << i;
    }
  }
  EXPECT_EQ(r->images, 12u);
  ASSERT_EQ(r->kfold.folds.size(), 2u);
  EXPECT_TRUE(r->kfold.cross_validated);
  EXPECT_DOUBLE_EQ(r->kfold.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(r->auc, 1.0);
  EXPECT_DOUBLE_EQ(r->tar_at_far_1e3.tar, 1.0);
  EXPECT_DOUBLE_EQ(r->eer.eer, 0.0);
  EXPECT_EQ(r->retried + r->center_cropped, 0u);
  EXPECT_EQ(r->center_crop_pairs, 0);
}

TEST(LfwVerification, ImagesWithoutAFaceAreCentreCroppedAndCounted) {
  EvalEnv env("lfw_crop");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("lfw_crop_tree");
  auto pairs = make_lfw(root);
  write_black(root / "images" / rel(0, 2));  // in fold 0's first same-person pair and a different-person pair
  LfwVerificationOptions opt;
  opt.root = (root / "images").string();
  auto r = run_lfw_verification(env.analyzer(), {}, pairs, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->center_cropped, 1u);
  EXPECT_EQ(r->retried, 0u);
  EXPECT_EQ(r->center_crop_pairs, 2);
  // The black crop is no longer the same person as P0_1: that pair is a miss.
  EXPECT_LT(r->scored[0].score, 0.9f);
  // Misclassified at their own fold's threshold (chosen on the other fold).
  int wrong = 0;
  for (size_t i : {size_t{0}, size_t{3}})
    wrong += (r->scored[i].score >= r->kfold.folds[0].threshold) != pairs[i].same;
  EXPECT_EQ(r->center_crop_pairs_misclassified, wrong);
}

TEST(LfwVerification, CacheIsWrittenAndGivesTheSameScores) {
  EvalEnv env("lfw_cache");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("lfw_cache_tree");
  const auto pairs = make_lfw(root);
  LfwVerificationOptions opt;
  opt.root = (root / "images").string();
  opt.cache_file = (root / "templates.bin").string();
  auto first = run_lfw_verification(env.analyzer(), {}, pairs, opt);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  ASSERT_TRUE(fs::exists(opt.cache_file));
  auto cache = EmbeddingCache::load_any(opt.cache_file);
  ASSERT_TRUE(cache.ok()) << cache.status().to_string();
  EXPECT_EQ(cache->size(), 12u);
  // The second run reads every template from the cache: removing the photos
  // must not matter.
  fs::remove_all(root / "images");
  auto second = run_lfw_verification(env.analyzer(), {}, pairs, opt);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  for (size_t i = 0; i < pairs.size(); ++i) EXPECT_EQ(second->scored[i].score, first->scored[i].score);
}

TEST(LfwVerification, ReportsProgressAndStopsWhenCancelled) {
  EvalEnv env("lfw_cancel");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("lfw_cancel_tree");
  const auto pairs = make_lfw(root);
  LfwVerificationOptions opt;
  opt.root = root.string();
  size_t steps = 0, last_total = 0;
  ProtocolHooks hooks;
  hooks.progress = [&](const std::string&, size_t done, size_t total) { steps = done; last_total = total; };
  hooks.cancelled = [&] { return steps >= 5; };
  auto r = run_lfw_verification(env.analyzer(), {}, pairs, opt, hooks);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kCancelled);
  EXPECT_EQ(steps, 5u);
  EXPECT_EQ(last_total, 12u);
}

TEST(LfwVerification, BadInputIsAnError) {
  EvalEnv env("lfw_bad");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("lfw_bad_tree");
  auto pairs = make_lfw(root);
  LfwVerificationOptions opt;
  opt.root = root.string();
  auto none = run_lfw_verification(env.analyzer(), {}, std::vector<LfwPair>{}, opt);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), ErrorCode::kInvalidArgument);

  fs::remove(root / "images" / rel(3, 3));
  pairs.push_back({rel(3, 3), rel(3, 1), true, 1});
  auto missing = run_lfw_verification(env.analyzer(), {}, pairs, opt);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("P3_3.png"), std::string::npos) << missing.status().to_string();
}

}  // namespace
}  // namespace facerec::eval
