// ERC of face-quality scores on LFW pairs (eval_erc_protocol.h) with the
// fake runtime: the candidates, the pair counts, the measurement cache,
// cancellation and bad input. Offline.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "facerec/eval_erc_protocol.h"
#include "protocol_test_support.h"

namespace fs = std::filesystem;

namespace facerec::eval {
namespace {

using testing_support::EvalEnv;
using testing_support::person_colour;
using testing_support::write_photo;

std::string rel(int person, int image) {
  return "Q" + std::to_string(person) + "/Q" + std::to_string(person) + "_" + std::to_string(image) + ".png";
}

// 5 people with 2 photos: 5 same-person pairs and 5 different-person pairs.
std::vector<LfwPair> make_pairs(const fs::path& root) {
  std::vector<LfwPair> pairs;
  for (int p = 0; p < 5; ++p) {
    for (int i = 1; i <= 2; ++i) write_photo(root / rel(p, i), person_colour(p), 10 * p + i);
    pairs.push_back({rel(p, 1), rel(p, 2), true, 0});
  }
  // p and p + 2: colours whose fake embeddings are far apart (cosine below 0.2).
  for (int p = 0; p < 5; ++p) pairs.push_back({rel(p, 1), rel((p + 2) % 5, 2), false, 0});
  return pairs;
}

TEST(ErcProtocol, EveryCandidateGetsACurveAndTheCacheIsReused) {
  EvalEnv env("erc_ok");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("erc_tree");
  const auto pairs = make_pairs(root);
  ErcOptions opt;
  opt.root = root.string();
  opt.cache_file = (root / "erc.cache").string();
  opt.threshold = 0.9f;
  opt.max_reject = 0.2;
  size_t steps = 0;
  ProtocolHooks hooks;
  hooks.progress = [&](const std::string& what, size_t, size_t total) { ++steps; EXPECT_EQ(total, 10u); EXPECT_EQ(what, "measuring"); };
  auto r = run_erc_protocol(env.analyzer(), {}, pairs, opt, hooks);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(steps, 10u);
  EXPECT_EQ(r->cached, 0u);
  ASSERT_EQ(r->rows.size(), 7u);  // no pose or eye model
  EXPECT_EQ(r->rows[0].name, "fallback (size x frontal x sharpness, before)");
  EXPECT_EQ(r->genuine, 5);
  EXPECT_EQ(r->impostors, 5);
  EXPECT_EQ(r->false_matches, 0);  // distinct colours
  EXPECT_DOUBLE_EQ(r->fmr, 0.0);
  EXPECT_EQ(r->centre_crops, 0);
  EXPECT_FALSE(r->eyes_measured);
  for (const auto& row : r->rows) {
    EXPECT_EQ(row.curve.points.size(), 21u) << row.name;  // 0, 0.01, ..., 0.20
    EXPECT_DOUBLE_EQ(row.curve.fnmr0, 0.0) << row.name;   // every mate matches
    EXPECT_FALSE(row.kept) << row.name;                    // nothing to gain over random
  }
  std::ifstream f(opt.cache_file);
  std::string header;
  ASSERT_TRUE(std::getline(f, header));
  EXPECT_EQ(header, "# facerec eval erc cache v1 detector=fake_det embedder=fake_emb probe_iod=0 pose=0 eye=0");

  // Second run: every measurement from the cache, the same numbers, and no
  // photo needed.
  fs::remove_all(root / "Q0");
  std::string note;
  hooks.progress = [&](const std::string&, size_t, size_t) { ADD_FAILURE() << "measured again"; };
  hooks.note = [&](const std::string& m) { note = m; };
  auto again = run_erc_protocol(env.analyzer(), {}, pairs, opt, hooks);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->cached, 10u);
  EXPECT_EQ(note, "read 10 cached measurements from " + opt.cache_file);
  for (size_t i = 0; i < r->rows.size(); ++i) EXPECT_EQ(again->rows[i].curve.mean_fnmr, r->rows[i].curve.mean_fnmr);
  EXPECT_EQ(again->random_gain_p95, r->random_gain_p95);

  // A degraded probe is another measurement: not in this cache.
  opt.probe_iod = 20.f;
  auto degraded = run_erc_protocol(env.analyzer(), {}, pairs, opt);
  ASSERT_FALSE(degraded.ok());  // Q0 is gone now
  EXPECT_NE(degraded.status().message().find("Q0/Q0_1.png"), std::string::npos) << degraded.status().to_string();
}

TEST(ErcProtocol, ALowThresholdCountsFalseMatches) {
  EvalEnv env("erc_fm");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("erc_fm_tree");
  const auto pairs = make_pairs(root);
  ErcOptions opt;
  opt.root = root.string();
  opt.threshold = -1.f;  // every pair matches
  auto r = run_erc_protocol(env.analyzer(), {}, pairs, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->false_matches, 5);
  EXPECT_DOUBLE_EQ(r->fmr, 1.0);
}

TEST(ErcProtocol, CancelledAndBadInputAreErrors) {
  EvalEnv env("erc_bad");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("erc_bad_tree");
  const auto pairs = make_pairs(root);
  ErcOptions opt;
  opt.root = root.string();
  opt.cache_file = (root / "erc.cache").string();
  opt.threshold = 0.5f;
  size_t done = 0;
  ProtocolHooks hooks;
  hooks.progress = [&](const std::string&, size_t d, size_t) { done = d; };
  hooks.cancelled = [&] { return done >= 3; };
  auto stopped = run_erc_protocol(env.analyzer(), {}, pairs, opt, hooks);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), ErrorCode::kCancelled);
  // What was measured before the stop is cached.
  auto resumed = run_erc_protocol(env.analyzer(), {}, pairs, opt);
  ASSERT_TRUE(resumed.ok()) << resumed.status().to_string();
  EXPECT_EQ(resumed->cached, 3u);

  EXPECT_EQ(run_erc_protocol(env.analyzer(), {}, std::vector<LfwPair>{}, opt).status().code(), ErrorCode::kInvalidArgument);
  opt.max_reject = 1.5;
  EXPECT_EQ(run_erc_protocol(env.analyzer(), {}, pairs, opt).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace facerec::eval
