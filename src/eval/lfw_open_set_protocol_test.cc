// The LFW open-set protocol (eval_lfw_open_set.h) and the impostor
// calibration (eval_calibration.h) end to end on a synthetic LFW-like tree
// and the fake runtime: rows per size and rule, the split between
// calibration and test people, and the errors. Offline.
#include <filesystem>

#include <gtest/gtest.h>

#include "facerec/eval_calibration.h"
#include "facerec/eval_lfw_open_set.h"
#include "protocol_test_support.h"

namespace fs = std::filesystem;

namespace facerec::eval {
namespace {

using testing_support::EvalEnv;
using testing_support::person_colour;
using testing_support::write_photo;

struct Tree {
  fs::path root;
  int test_people = 0, test_images = 0, candidates = 0, calibration_people = 0, calibration_images = 0;
};

// images/<Name>/<Name>_000i.png: 8 test people with 3 photos, 2 with one,
// and 5 calibration people with 2 photos (names picked by the protocol's hash).
Tree make_tree(const std::string& tag) {
  Tree t;
  t.root = facerec::testing::temp_dir(tag);
  int colour = 0;
  for (int k = 0; t.test_people < 10 || t.calibration_people < 5; ++k) {
    const std::string name = "Person_" + std::to_string(k);
    const bool cal = is_calibration_person(name);
    int photos = 0;
    if (cal && t.calibration_people < 5) {
      photos = 2;
      ++t.calibration_people;
      t.calibration_images += photos;
    } else if (!cal && t.test_people < 10) {
      photos = t.test_people < 8 ? 3 : 1;
      ++t.test_people;
      t.test_images += photos;
      t.candidates += photos >= 2;
    }
    for (int i = 1; i <= photos; ++i)
      write_photo(t.root / "images" / name / (name + "_000" + std::to_string(i) + ".png"), person_colour(colour), 10 * k + i);
    colour += photos > 0;
  }
  return t;
}

TEST(LfwOpenSet, OneRowPerSizeAndRuleOverTheTestPeople) {
  EvalEnv env("openset_ok");
  ASSERT_TRUE(env.recognizer);
  const Tree t = make_tree("openset_tree");
  LfwOpenSetOptions opt;
  opt.root = t.root.string();
  opt.sizes = {3, 0};
  opt.rules = {"max", "qmean"};
  opt.fpir = 0.1;
  auto r = run_lfw_open_set(env.analyzer(), {}, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->test_people, static_cast<size_t>(t.test_people));
  EXPECT_EQ(r->test_images, static_cast<size_t>(t.test_images));
  EXPECT_EQ(r->calibration_people, static_cast<size_t>(t.calibration_people));
  EXPECT_EQ(r->calibration_images, static_cast<size_t>(t.calibration_images));
  EXPECT_EQ(r->failed, 0u);
  ASSERT_EQ(r->rows.size(), 4u);
  EXPECT_EQ(r->rows[0].rule, "max");
  EXPECT_EQ(r->rows[1].rule, "qmean");
  EXPECT_EQ(r->rows[0].people, 3);
  EXPECT_EQ(r->rows[0].trials, trials_for_size(3));
  EXPECT_EQ(r->rows[2].size, 0);
  EXPECT_EQ(r->rows[2].people, t.candidates);
  for (const auto& row : r->rows) {
    // Every candidate enrolled: the mated probes are each gallery person's
    // other photos, the unknown ones everyone else's.
    const int64_t mated_per_trial = row.people * 2;
    EXPECT_EQ(row.at_policy.mated, mated_per_trial * row.trials) << row.rule;
    EXPECT_GT(row.at_policy.unknown, 0);
    // Distinct colours: each probe's own person ranks first.
    EXPECT_DOUBLE_EQ(row.rank1, 1.0) << row.rule;
    EXPECT_EQ(row.policy.fpir, 0.1);
    // The fake embedder has no impostor calibration: its threshold (0.9)
    // decides, and every mate (cosine near 1) is accepted at it.
    EXPECT_EQ(row.policy.source, PolicySource::kFallback) << row.rule;
    EXPECT_FLOAT_EQ(row.policy.threshold, 0.9f) << row.rule;
    EXPECT_DOUBLE_EQ(row.at_policy.dir, 1.0) << row.rule;
    EXPECT_EQ(row.at_policy.hits, row.at_policy.mated) << row.rule;
  }
  EXPECT_NE(r->protocol.find(std::to_string(t.test_people) + " test people"), std::string::npos) << r->protocol;
}

TEST(LfwOpenSet, AThresholdOverrideIsUsedAsGiven) {
  EvalEnv env("openset_override");
  ASSERT_TRUE(env.recognizer);
  const Tree t = make_tree("openset_override_tree");
  LfwOpenSetOptions opt;
  opt.root = t.root.string();
  opt.sizes = {0};
  opt.rules = {"mean"};
  opt.threshold_override = -1.f;  // the lowest cosine: every search accepted
  auto r = run_lfw_open_set(env.analyzer(), {}, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0].policy.threshold, -1.f);
  EXPECT_EQ(r->rows[0].policy.source, PolicySource::kOverride);
  EXPECT_GT(r->rows[0].at_policy.unknown, 0);
  EXPECT_EQ(r->rows[0].at_policy.false_positives, r->rows[0].at_policy.unknown);
  EXPECT_DOUBLE_EQ(r->rows[0].at_policy.fpir, 1.0);
  EXPECT_DOUBLE_EQ(r->rows[0].at_policy.dir, 1.0);
}

TEST(LfwOpenSet, BadOptionsAreErrors) {
  EvalEnv env("openset_bad");
  ASSERT_TRUE(env.recognizer);
  const Tree t = make_tree("openset_bad_tree");
  LfwOpenSetOptions opt;
  opt.root = t.root.string();
  opt.sizes = {0};
  opt.rules = {"median"};
  EXPECT_EQ(run_lfw_open_set(env.analyzer(), {}, opt).status().code(), ErrorCode::kInvalidArgument);
  opt.rules = {"max"};
  opt.fpir = 1.0;
  EXPECT_EQ(run_lfw_open_set(env.analyzer(), {}, opt).status().code(), ErrorCode::kInvalidArgument);
  opt.fpir = 0.01;
  opt.sizes = {t.candidates + 1};  // more people than there are candidates
  EXPECT_EQ(run_lfw_open_set(env.analyzer(), {}, opt).status().code(), ErrorCode::kInvalidArgument);
  opt.sizes = {0};
  opt.root = (t.root / "nope").string();
  EXPECT_EQ(run_lfw_open_set(env.analyzer(), {}, opt).status().code(), ErrorCode::kNotFound);
}

TEST(Calibration, MeasuredOnTheCalibrationPeopleOnly) {
  EvalEnv env("calibration");
  ASSERT_TRUE(env.recognizer);
  const Tree t = make_tree("calibration_tree");
  CalibrationOptions opt;
  opt.root = t.root.string();
  opt.cache_file = (t.root / "cache.bin").string();
  auto r = run_calibration(env.analyzer(), {}, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->calibration_people, static_cast<size_t>(t.calibration_people));
  EXPECT_EQ(r->images, static_cast<size_t>(t.calibration_images));
  EXPECT_EQ(r->pool_people, t.calibration_people);
  EXPECT_TRUE(r->calibration.validate().ok()) << r->calibration.validate().to_string();
  // N above the smallest impostor pool (4 other people) is dropped from the grid.
  ASSERT_FALSE(r->calibration.people.empty());
  EXPECT_LE(r->calibration.people.back(), t.calibration_people - 1);
  EXPECT_EQ(r->calibration.provenance.detector, "fake_det");
  EXPECT_EQ(r->calibration.provenance.pool_people, r->pool_people);
  EXPECT_EQ(r->independence.size(), r->calibration.people.size());
  for (const auto& c : r->independence) EXPECT_EQ(c.threshold, r->calibration.threshold_for(0.01, c.people));
  // Only the calibration people's images were embedded (and cached).
  auto cache = EmbeddingCache::load_any(opt.cache_file);
  ASSERT_TRUE(cache.ok()) << cache.status().to_string();
  EXPECT_EQ(cache->size(), static_cast<size_t>(t.calibration_images));
}

}  // namespace
}  // namespace facerec::eval
