// Open-set decisions on real LFW faces (issue 8): the default FPIR holds on
// held-out people, and a person's number of photos does not make them
// attract more strangers. Both need ../shared and skip loudly without it.
#include <algorithm>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "facerec/eval_open_set.h"
#include "facerec/image.h"
#include "facerec/open_set.h"
#include "facerec/pipeline.h"
#include "facerec/search.h"
#include "test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace facerec {
namespace {

std::vector<std::string> sorted_dirs(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> sorted_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The CLI's LFW open-set protocol on a slice of the test people (every 6th
// by name, none of them a calibration person): FPIR measured at the default
// --fpir, over 100 pooled 10-person galleries, lands in [0.5%, 1.5%].
TEST(OpenSetLfw, DefaultFpirHoldsForATenPersonGallery) {
  FACEREC_REQUIRE_SHARED();
  const fs::path lfw = fs::path(testing::shared_dir()) / "data/lfw/images";
  const fs::path dir = testing::temp_dir("open_set_lfw");
  int k = 0, images = 0;
  for (const auto& name : sorted_dirs(lfw)) {
    if (eval::is_calibration_person(name) || k++ % 6) continue;
    fs::create_directory_symlink(lfw / name, dir / name);
    images += static_cast<int>(sorted_files(lfw / name).size());
  }
  ASSERT_GT(images, 500);
  auto r = testing::run_cli({"eval", "identify", "--lfw-open-set", "--gallery", dir.string(), "--sizes", "10", "--rules",
                             "mean", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["rows"].size(), 1u);
  const json& row = j["rows"][0];
  EXPECT_EQ(row["gallery_people"], 10);
  EXPECT_EQ(row["decision"]["source"], "calibration") << row.dump();
  EXPECT_DOUBLE_EQ(row["decision"]["fpir"].get<double>(), kDefaultFpir);
  EXPECT_GT(row["unknown_searches"].get<int>(), 20000);
  const double fpir = row["fpir_measured"].get<double>();
  EXPECT_GE(fpir, 0.005) << row.dump();
  EXPECT_LE(fpir, 0.015) << row.dump();
  EXPECT_GT(row["dir"].get<double>(), 0.5) << row.dump();
}

// The LFW people with the most photos (15 to 18 here), enrolled from one
// photo and from all of them, against strangers (every 20th photo of
// everyone else), at a threshold that lets 5% of strangers through to the
// one-photo people. Measured with the default models: the mean template of
// all their photos lets through 18% more, the same as with 2 photos (it
// saturates); the best-template rule lets through 4x more; the mean of the
// template scores lets through fewer. On these 447 strangers the mean
// template's growth from 2 photos to all is within noise (191 -> 214). The default (the mean template) was
// chosen for its DIR; the strict "no more than one photo" holds only for the
// mean of scores, which costs DIR (BENCHMARKS.md, issue 8).
TEST(OpenSetLfw, TemplateGrowthDoesNotAttractStrangersUnderTheDefaultRule) {
  FACEREC_REQUIRE_SHARED();
  const fs::path lfw = fs::path(testing::shared_dir()) / "data/lfw/images";
  std::vector<std::string> enrolled;
  std::vector<std::string> stranger_paths;
  int k = 0;
  for (const auto& name : sorted_dirs(lfw)) {
    const auto files = sorted_files(lfw / name);
    if (files.size() >= 15) { enrolled.push_back(name); continue; }
    for (const auto& f : files)
      if (k++ % 20 == 0) stranger_paths.push_back(f);
  }
  ASSERT_GE(enrolled.size(), 5u);
  auto rt = create_onnxruntime();
  ASSERT_TRUE(rt.ok());
  auto manifest = Manifest::load(Manifest::default_path());
  ASSERT_TRUE(manifest.ok());
  auto analyzer = FaceAnalyzer::create(**rt, *manifest, {});
  ASSERT_TRUE(analyzer.ok()) << analyzer.status().to_string();
  auto embed = [&](const std::string& path) -> std::vector<float> {
    auto img = load_image(path);
    if (!img.ok()) return {};
    auto faces = (*analyzer)->detect(*img);
    if (!faces.ok() || faces->empty()) return {};
    auto e = (*analyzer)->embed_faces(*img, {(*faces)[most_central_face(*faces, img->size())]});
    if (!e.ok()) return {};
    return (*e)[0].embedding.unit;
  };
  const int dim = (*analyzer)->embedder().dim();
  std::map<std::string, std::vector<std::vector<float>>> photos;
  for (const auto& name : enrolled)
    for (const auto& f : sorted_files(lfw / name))
      if (auto u = embed(f); !u.empty()) photos[name].push_back(std::move(u));
  std::vector<std::vector<float>> strangers;
  for (const auto& p : stranger_paths)
    if (auto u = embed(p); !u.empty()) strangers.push_back(std::move(u));
  ASSERT_GT(strangers.size(), 300u);

  // Every stranger's score against each person, for one rule and one number
  // of templates per person (the first `count` photos; 0 = all).
  auto scores = [&](TemplateRule rule, size_t count) {
    std::vector<float> out;
    for (const auto& [name, units] : photos) {
      std::vector<std::string> ids;
      std::vector<float> rows;
      for (size_t i = 0; i < units.size() && (count == 0 || i < count); ++i) {
        ids.push_back(name);
        rows.insert(rows.end(), units[i].begin(), units[i].end());
      }
      auto index = SearchIndex::create(dim, ids, rows, rule);
      if (!index.ok()) {
        ADD_FAILURE() << index.status().to_string();
        return out;
      }
      for (const auto& s : strangers) {
        auto person = index->score_people(s);
        if (!person.ok() || person->empty()) {
          ADD_FAILURE() << person.status().to_string();
          return out;
        }
        out.push_back((*person)[0]);
      }
    }
    return out;
  };
  std::vector<float> one = scores(TemplateRule::kMean, 1);  // every rule is the same with one template
  std::vector<float> sorted = one;
  std::sort(sorted.begin(), sorted.end());
  const float t = sorted[static_cast<size_t>(0.95 * static_cast<double>(sorted.size()))];
  auto attracted = [t](const std::vector<float>& s) { return std::count_if(s.begin(), s.end(), [t](float x) { return x >= t; }); };
  const auto n_one = attracted(one);
  const auto n_mean = attracted(scores(TemplateRule::kMean, 0));
  const auto n_default = attracted(scores(kDefaultTemplateRule, 0));
  const auto n_default_two = attracted(scores(kDefaultTemplateRule, 2));
  const auto n_mean_score = attracted(scores(TemplateRule::kMeanScore, 0));
  const auto n_max = attracted(scores(TemplateRule::kMax, 0));
  const auto n_top2 = attracted(scores(TemplateRule::kTop2Mean, 0));
  std::fprintf(stderr, "strangers attracted at t=%.4f by %zu people x %zu strangers: 1 photo %ld; all photos: default (%s) %ld "
               "(2 photos: %ld), mean template %ld, mean of scores %ld, max %ld, top2 %ld\n", t, photos.size(), strangers.size(),
               static_cast<long>(n_one), to_string(kDefaultTemplateRule), static_cast<long>(n_default),
               static_cast<long>(n_default_two), static_cast<long>(n_mean), static_cast<long>(n_mean_score),
               static_cast<long>(n_max), static_cast<long>(n_top2));
  // The default: bounded (measured here: 179 with one photo, 191 with two,
  // 214 with all; on all 8925 strangers 5.0%, 5.8%, 5.9%), far below max.
  EXPECT_LE(n_default, n_one * 13 / 10);
  EXPECT_LT(n_default * 3, n_max);
  // The strict rule exists: more photos, no more strangers.
  EXPECT_LE(n_mean_score, n_one);
  EXPECT_GT(n_max, 2 * n_one);
}

// Every matching command states its decision once, in JSON too: the FPIR
// asked, the threshold, the gallery size, where the threshold came from.
TEST(OpenSetLfw, CliJsonCarriesTheDecision) {
  FACEREC_REQUIRE_SHARED();
  const fs::path lfw = fs::path(testing::shared_dir()) / "data/lfw/images";
  const std::string a = (lfw / "Aaron_Peirsol/Aaron_Peirsol_0001.jpg").string();
  const std::string b = (lfw / "Aaron_Peirsol/Aaron_Peirsol_0002.jpg").string();
  const std::string c = (lfw / "Abdullah_Gul/Abdullah_Gul_0001.jpg").string();
  auto v = testing::run_cli({"verify", a, b, "--json"});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  json j = json::parse(v.out);
  ASSERT_TRUE(j.contains("decision")) << v.out;
  EXPECT_EQ(j["decision"]["gallery_people"], 1);
  EXPECT_EQ(j["decision"]["source"], "calibration");
  EXPECT_DOUBLE_EQ(j["decision"]["fpir"].get<double>(), kDefaultFpir);
  EXPECT_FLOAT_EQ(j["decision"]["threshold"].get<float>(), j["threshold"].get<float>());
  const float one_to_one = j["threshold"].get<float>();
  v = testing::run_cli({"verify", a, b, "--json", "--threshold", "0.9"});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  j = json::parse(v.out);
  EXPECT_EQ(j["decision"]["source"], "threshold override");
  EXPECT_FLOAT_EQ(j["decision"]["threshold"].get<float>(), 0.9f);
  EXPECT_FALSE(j["same"].get<bool>() && j["similarity"].get<float>() < 0.9f);
  v = testing::run_cli({"verify", a, b, "--fpir", "1.5"});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.err.find("--fpir"), std::string::npos) << v.err;

  // identify against a two-person gallery: a stricter threshold than 1:1.
  const fs::path dir = testing::temp_dir("open_set_decision");
  fs::create_directories(dir / "people/Aaron");
  fs::create_directories(dir / "people/Abdullah");
  fs::copy_file(a, dir / "people/Aaron/1.jpg");
  fs::copy_file(c, dir / "people/Abdullah/1.jpg");
  const std::string db = (dir / "g.db").string();
  auto e = testing::run_cli({"enroll", (dir / "people").string(), "--db", db});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  auto id = testing::run_cli({"identify", b, "--db", db, "--json"});
  ASSERT_EQ(id.exit_code, 0) << id.err;
  json line = json::parse(id.out.substr(0, id.out.find('\n')));
  ASSERT_TRUE(line.contains("decision")) << id.out;
  EXPECT_EQ(line["decision"]["gallery_people"], 2);
  EXPECT_EQ(line["decision"]["rule"], to_string(kDefaultTemplateRule));
  EXPECT_GT(line["decision"]["threshold"].get<float>(), one_to_one);
  auto human = testing::run_cli({"identify", b, "--db", db, "--fpir", "0.001"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("decision: threshold"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("FPIR 0.1% for 2 people"), std::string::npos) << human.out;
}

}  // namespace
}  // namespace facerec
