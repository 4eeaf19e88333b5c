// 1:N identification on folder trees (eval_identification.h) with the fake
// runtime: the two-tree set, the seeded split, unknown probes, people
// without a gallery template, and the errors. Offline.
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "facerec/eval_identification.h"
#include "protocol_test_support.h"

namespace fs = std::filesystem;

namespace facerec::eval {
namespace {

using testing_support::EvalEnv;
using testing_support::person_colour;
using testing_support::write_black;
using testing_support::write_photo;

// gallery/<P>/ (2 photos) and probes/<P>/ (2 photos) for 3 people, and
// unknown/ with 3 photos of 3 other people.
fs::path make_trees(const std::string& tag) {
  const fs::path root = facerec::testing::temp_dir(tag);
  for (int p = 0; p < 3; ++p)
    for (int i = 0; i < 2; ++i) {
      write_photo(root / "gallery" / ("P" + std::to_string(p)) / ("g" + std::to_string(i) + ".png"), person_colour(p), 100 * p + i);
      write_photo(root / "probes" / ("P" + std::to_string(p)) / ("q" + std::to_string(i) + ".png"), person_colour(p), 100 * p + 50 + i);
    }
  for (int u = 0; u < 3; ++u) write_photo(root / "unknown" / ("u" + std::to_string(u) + ".png"), person_colour(3 + u), 900 + u);
  return root;
}

TEST(Identification, SeparablePeopleAreFoundAndStrangersRejected) {
  EvalEnv env("ident_ok");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = make_trees("ident_ok_tree");
  auto set = identification_set_from_folders((root / "gallery").string(), (root / "probes").string());
  ASSERT_TRUE(set.ok()) << set.status().to_string();
  ASSERT_TRUE(add_unknown_probes(*set, (root / "unknown").string()).ok());
  EXPECT_EQ(set->gallery.size(), 6u);
  EXPECT_EQ(set->probes.size(), 9u);
  IdentificationOptions opt;
  opt.keep_scores = true;
  auto r = run_identification(env.analyzer(), {}, *set, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->people, (std::vector<std::string>{"P0", "P1", "P2"}));
  EXPECT_EQ(r->enrolled_people(), 3);
  EXPECT_EQ(r->mated, 6u);
  EXPECT_EQ(r->unknown, 3u);
  EXPECT_EQ(r->gallery_images, 6u);
  EXPECT_DOUBLE_EQ(r->rank1, 1.0);
  EXPECT_DOUBLE_EQ(r->rank5, 1.0);
  // Three unknown probes: FPIR <= 10% allows no false positive, and every
  // mate still scores above every stranger.
  EXPECT_DOUBLE_EQ(r->at_fpir_10pct.fpir, 0.0);
  EXPECT_DOUBLE_EQ(r->at_fpir_10pct.dir, 1.0);
  ASSERT_EQ(r->probe_scores.size(), 9u);
  for (size_t k = 0; k < 9; ++k) {
    EXPECT_EQ(r->probe_scores[k].truth, k < 6 ? static_cast<int>(k / 2) : -1) << k;
    ASSERT_EQ(r->probe_scores[k].scores.size(), 3u);
    if (k < 6) {
      EXPECT_GT(r->probe_scores[k].scores[k / 2], 0.99f);
    }
  }
  EXPECT_EQ(r->gallery_failed + r->probe_failed + r->unknown_failed, 0);
}

TEST(Identification, APersonWithoutAGalleryTemplateMissesTheirProbes) {
  EvalEnv env("ident_notemplate");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = make_trees("ident_notemplate_tree");
  write_black(root / "gallery" / "P1" / "g0.png");
  write_black(root / "gallery" / "P1" / "g1.png");
  write_black(root / "unknown" / "u0.png");
  auto set = identification_set_from_folders((root / "gallery").string(), (root / "probes").string());
  ASSERT_TRUE(set.ok()) << set.status().to_string();
  ASSERT_TRUE(add_unknown_probes(*set, (root / "unknown").string()).ok());
  auto r = run_identification(env.analyzer(), {}, *set, {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->people, (std::vector<std::string>{"P0", "P2"}));
  EXPECT_EQ(r->people_without_template, 1);
  EXPECT_EQ(r->enrolled_people(), 3);
  EXPECT_EQ(r->gallery_failed, 2);
  EXPECT_EQ(r->unknown_failed, 1);
  EXPECT_NEAR(r->rank1, 4.0 / 6.0, 1e-12);  // P1's two probes are misses
  for (size_t k = 2; k < 4; ++k) EXPECT_EQ(r->outcomes[k].rank, 0) << k;
}

TEST(Identification, TheSplitIsSeededAndHoldsPeopleOut) {
  const fs::path root = facerec::testing::temp_dir("ident_split");
  for (int p = 0; p < 6; ++p)
    for (int i = 0; i < 4; ++i)
      write_photo(root / ("P" + std::to_string(p)) / (std::to_string(i) + ".png"), person_colour(p), 10 * p + i);
  IdentificationSplit split{root.string(), 7, 2, 2};
  auto a = split_identification_set(split);
  auto b = split_identification_set(split);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->gallery.size(), 8u);  // 4 enrolled people x 2
  EXPECT_EQ(a->probes.size(), 16u);  // 4 x 2 mated + 2 x 4 unknown
  int unknown = 0;
  std::set<std::string> enrolled;
  for (const auto& g : a->gallery) enrolled.insert(g.person);
  for (const auto& p : a->probes) {
    unknown += p.person.empty();
    if (!p.person.empty()) {
      EXPECT_TRUE(enrolled.count(p.person)) << p.person;
    }
  }
  EXPECT_EQ(unknown, 8);
  EXPECT_EQ(enrolled.size(), 4u);
  std::vector<std::string> ga, gb, gc;
  for (const auto& g : a->gallery) ga.push_back(g.path);
  for (const auto& g : b->gallery) gb.push_back(g.path);
  EXPECT_EQ(ga, gb);
  bool differs = false;  // another seed draws another split (one of several seeds must)
  for (uint64_t seed : {1, 2, 3, 4}) {
    auto c = split_identification_set({root.string(), seed, 2, 2});
    ASSERT_TRUE(c.ok());
    gc.clear();
    for (const auto& g : c->gallery) gc.push_back(g.path);
    differs |= gc != ga;
  }
  EXPECT_TRUE(differs);
  EXPECT_NE(a->split_note.find("seed 7"), std::string::npos) << a->split_note;
}

TEST(Identification, BadInputIsAnError) {
  const fs::path root = make_trees("ident_bad_tree");
  write_photo(root / "probes" / "Stranger" / "x.png", person_colour(9), 1);
  auto mismatch = identification_set_from_folders((root / "gallery").string(), (root / "probes").string());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(mismatch.status().message().find("Stranger"), std::string::npos);

  auto nofolder = identification_set_from_folders((root / "nope").string(), (root / "probes").string());
  ASSERT_FALSE(nofolder.ok());
  EXPECT_EQ(nofolder.status().code(), ErrorCode::kNotFound);

  auto everyone_out = split_identification_set({(root / "gallery").string(), 1, 1, 3});
  ASSERT_FALSE(everyone_out.ok());
  EXPECT_EQ(everyone_out.status().code(), ErrorCode::kInvalidArgument);
  auto zero_gallery = split_identification_set({(root / "gallery").string(), 1, 0, 0});
  ASSERT_FALSE(zero_gallery.ok());

  IdentificationSet set;
  EXPECT_EQ(add_unknown_probes(set, (root / "nope").string()).code(), ErrorCode::kNotFound);

  EvalEnv env("ident_bad");
  ASSERT_TRUE(env.recognizer);
  IdentificationSet blank;
  write_black(root / "blank" / "A" / "a.png");
  blank.gallery.push_back({"A", (root / "blank" / "A" / "a.png").string()});
  auto r = run_identification(env.analyzer(), {}, blank, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNoFace);
}

TEST(EvalProtocol, PersonFoldersAreSortedAndSkipEmptyOnes) {
  const fs::path root = facerec::testing::temp_dir("person_folders");
  write_photo(root / "Bob" / "b.png", person_colour(0), 1);
  write_photo(root / "Alice" / "sub" / "z.png", person_colour(1), 2);
  write_photo(root / "Alice" / "a.png", person_colour(1), 3);
  fs::create_directories(root / "Empty");
  auto people = person_folders(root.string());
  ASSERT_TRUE(people.ok()) << people.status().to_string();
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].name, "Alice");
  EXPECT_EQ((*people)[0].images, (std::vector<std::string>{(root / "Alice" / "a.png").string(),
                                                           (root / "Alice" / "sub" / "z.png").string()}));
  EXPECT_EQ((*people)[1].name, "Bob");
  auto empty = person_folders((root / "Empty").string());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(list_images((root / "missing").string()).empty());
}

}  // namespace
}  // namespace facerec::eval
