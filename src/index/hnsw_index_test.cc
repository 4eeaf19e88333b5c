// The HNSW index against its oracle, exact search: recall on 100k templates
// derived from real embeddings (LFW photos in ../shared), the exact scores of
// what it returns under every template rule, in-place add / delete / rename,
// and the file beside the gallery (round trip, damage, staleness).
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "facerec/recognizer.h"
#include "facerec/search.h"
#include "index/derived_set.h"
#include "index/hnsw_index.h"
#include "test_support.h"

namespace facerec {
namespace {

namespace fs = std::filesystem;
using derived::Bases;

// Real bases: the default pipeline's templates of LFW photos, the first two
// photos of the first `people` LFW folders (by name) that hold two or more
// (detect, align, embed: about 25 ms of CPU per photo).
Bases lfw_bases(size_t people) {
  Bases b;
  RecognizerConfig config;
  config.gallery = GalleryMode::kNone;
  config.threads = 1;
  auto rec = FaceRecognizer::create(testing::runtime(), testing::manifest(), config);
  if (!rec.ok()) return b;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(testing::shared_dir() + "/data/lfw/images"))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  int label = 0;
  for (const fs::path& dir : dirs) {
    if (static_cast<size_t>(label) >= people) break;
    const auto photos = testing::photos(dir, 2);
    if (photos.size() < 2) continue;
    int got = 0;
    for (const auto& photo : photos) {
      auto img = (*rec)->load(photo.string());
      if (!img.ok()) continue;
      auto face = (*rec)->analyze_largest(*img);
      if (!face.ok()) continue;
      if (b.dim == 0) b.dim = static_cast<int>(face->embedding.unit.size());
      b.unit.insert(b.unit.end(), face->embedding.unit.begin(), face->embedding.unit.end());
      b.label.push_back(label);
      ++got;
    }
    label += got > 0;
  }
  return b;
}

// Random bases (no real data): for the tests of behaviour, not of recall.
Bases random_bases(int n, int dim, uint64_t seed) {
  Bases b;
  b.dim = dim;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  for (int i = 0; i < n; ++i) {
    std::vector<float> v(dim);
    for (float& x : v) x = g(rng);
    derived::normalize(v.data(), dim);
    b.unit.insert(b.unit.end(), v.begin(), v.end());
    b.label.push_back(i / 2);
  }
  return b;
}

derived::Spread spread_for_random(int dim) {
  derived::Spread s;
  s.genuine = 0.6;
  s.impostor = 0.35;
  s.sigma_template = derived::sigma_for_cosine(s.genuine, dim);
  s.sigma_identity = derived::sigma_for_cosine(s.impostor, dim);
  return s;
}

SearchIndex make_index(const derived::Set& set, TemplateRule rule) {
  auto index = SearchIndex::create(set.dim, set.row_identity, set.rows, rule);
  EXPECT_TRUE(index.ok()) << index.status().to_string();
  return index.ok() ? std::move(index).value() : SearchIndex(rule);
}

// A query's answer; a failed query fails the test and answers nothing.
template <class T>
T answer(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : T{};
}

// The best candidate's name ("" when none).
std::string top1(Result<std::vector<Candidate>> r) {
  const auto c = answer(std::move(r));
  return c.empty() ? std::string() : c[0].identity;
}

// Row i of a row-major matrix of dim-float rows.
std::span<const float> row(const std::vector<float>& m, size_t i, int dim) {
  return std::span<const float>(m).subspan(i * static_cast<size_t>(dim), static_cast<size_t>(dim));
}

// Every candidate's similarity is its exact score; top-1 agreement and
// top-10 overlap with the exact search, for enrolled people's probes and for
// strangers' separately. The oracle is `exact`, an exact-mode index over the
// same rows, asked for its top 64 in one batch (sgemm), so the exact score of
// every returned person is at hand (one not in the oracle's top 64 counts as
// a score mismatch).
struct Agreement {
  double recall1 = 0, recall10 = 0;
  double recall1_enrolled = 0, recall1_strangers = 0;
  float worst_score_gap = 0;
};
Agreement compare(const SearchIndex& index, const SearchIndex& exact, const derived::Set& set, size_t queries) {
  EXPECT_FALSE(exact.approximate());
  Agreement a;
  std::vector<std::span<const float>> q;
  for (size_t i = 0; i < queries; ++i) q.push_back(row(set.queries, i, set.dim));
  const auto oracle = answer(exact.search_batch(q, 64));
  if (oracle.size() != queries) return a;
  size_t hit1 = 0, hit10 = 0, enrolled = 0, hit_enrolled = 0;
  for (size_t i = 0; i < queries; ++i) {
    const auto approx = answer(index.search(q[i], 10));
    const auto& truth = oracle[i];
    const bool top1 = !approx.empty() && !truth.empty() && approx[0].identity == truth[0].identity;
    hit1 += top1;
    const bool is_enrolled = set.query_identity[i] >= 0;
    enrolled += is_enrolled;
    hit_enrolled += is_enrolled && top1;
    std::map<std::string, float> exact_score;
    std::set<std::string> top10;
    for (size_t k = 0; k < truth.size(); ++k) {
      exact_score[truth[k].identity] = truth[k].similarity;
      if (k < 10) top10.insert(truth[k].identity);
    }
    for (const auto& c : approx) {
      hit10 += top10.count(c.identity);
      auto it = exact_score.find(c.identity);
      a.worst_score_gap = std::max(a.worst_score_gap, it == exact_score.end() ? 1.f : std::abs(it->second - c.similarity));
    }
  }
  a.recall1 = double(hit1) / double(queries);
  a.recall10 = double(hit10) / double(queries * 10);
  a.recall1_enrolled = enrolled ? double(hit_enrolled) / double(enrolled) : 1.0;
  a.recall1_strangers = queries > enrolled ? double(hit1 - hit_enrolled) / double(queries - enrolled) : 1.0;
  return a;
}

TEST(HnswKernel, MatchesThePlainLoop) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  for (size_t n : {1, 7, 8, 15, 16, 17, 31, 128, 511, 512, 513}) {
    std::vector<float> a(n), b(n);
    for (auto& x : a) x = g(rng);
    for (auto& x : b) x = g(rng);
    const float plain = inner_product_plain(a.data(), b.data(), n);
    EXPECT_NEAR(inner_product_fast(a.data(), b.data(), n), plain, 1e-4f * (1.f + std::abs(plain))) << n;
  }
}

TEST(HnswIndex, ParsesModes) {
  EXPECT_EQ(parse_index_mode("hnsw").value(), IndexMode::kHnsw);
  EXPECT_EQ(parse_index_mode("exact").value(), IndexMode::kExact);
  EXPECT_EQ(parse_index_mode("auto").value(), IndexMode::kAuto);
  EXPECT_EQ(parse_index_mode("ivf").status().code(), ErrorCode::kInvalidArgument);
  ConfigLayer flags;
  flags.index = "faiss";
  EXPECT_EQ(resolve_config(flags).status().code(), ErrorCode::kInvalidArgument);
  flags.index = "hnsw";
  EXPECT_EQ(resolve_config(flags).value().index, IndexMode::kHnsw);
  EXPECT_EQ(resolve_config(ConfigLayer{}).value().index, IndexMode::kAuto);
  SearchIndex empty;
  HnswOptions bad;
  bad.m = 1;
  EXPECT_EQ(empty.set_mode(IndexMode::kHnsw, "", bad).code(), ErrorCode::kInvalidArgument);
}

// The acceptance test: recall@1 >= 0.99 against exact search on 100k
// templates derived from real embeddings, under the default rule (kMean).
// The derivation (src/index/derived_set.h) grows about 20k identities from
// the bases, so the fewer the bases, the more crowded each one's neighbourhood.
constexpr size_t kLfwPeople = 100;
TEST(HnswIndex, RecallOn100kRealDerivedTemplates) {
  FACEREC_REQUIRE_SHARED();
  const Bases bases = lfw_bases(kLfwPeople);
  ASSERT_GE(bases.size(), kLfwPeople) << "LFW photos embedded";
  const derived::Spread spread = derived::measure_spread(bases);
  ASSERT_GT(spread.genuine, spread.impostor);
  const derived::Set set = derived::make_set(bases, spread, 100000, 5, 300, 0.1, 42);
  SearchIndex index = make_index(set, kDefaultTemplateRule);
  const SearchIndex exact = make_index(set, kDefaultTemplateRule);
  std::string what;
  ASSERT_TRUE(index.set_mode(IndexMode::kAuto, "", {}, &what).ok());
  EXPECT_TRUE(index.approximate()) << "100k templates are above kAutoHnswTemplates";
  const Agreement a = compare(index, exact, set, 300);
  std::printf("[ hnsw ] 100k templates, %zu people, genuine %.3f impostor(p99) %.3f: recall@1 %.4f (enrolled %.4f, "
              "strangers %.4f) recall@10 %.4f, worst score gap %.2g\n",
              index.people(), spread.genuine, spread.impostor, a.recall1, a.recall1_enrolled, a.recall1_strangers,
              a.recall10, a.worst_score_gap);
  EXPECT_GE(a.recall1, 0.99);
  EXPECT_GE(a.recall10, 0.95);
  EXPECT_LT(a.worst_score_gap, 1e-5f);
}

// Every rule: the graph's candidates carry exactly the exact scores, and the
// top-1 agrees with exact search. kMax and kTop2Mean index templates, kMean
// and kMeanScore people.
TEST(HnswIndex, EveryRuleScoresItsCandidatesExactly) {
  const Bases bases = random_bases(40, 64, 5);
  const derived::Set set = derived::make_set(bases, spread_for_random(64), 4000, 3, 200, 0.1, 9);
  for (TemplateRule rule : {TemplateRule::kMax, TemplateRule::kMean, TemplateRule::kTop2Mean, TemplateRule::kMeanScore}) {
    SearchIndex index = make_index(set, rule);
    const SearchIndex exact = make_index(set, rule);
    ASSERT_TRUE(index.set_mode(IndexMode::kHnsw).ok());
    ASSERT_TRUE(index.approximate());
    const Agreement a = compare(index, exact, set, 200);
    EXPECT_GE(a.recall1, 0.97) << to_string(rule);
    EXPECT_LT(a.worst_score_gap, 1e-5f) << to_string(rule);
    // Small indexes stay exact under auto.
    ASSERT_TRUE(index.set_mode(IndexMode::kAuto).ok());
    EXPECT_FALSE(index.approximate());
  }
}

TEST(HnswIndex, AddDeleteAndRenameInPlace) {
  const Bases bases = random_bases(40, 64, 11);
  const derived::Set set = derived::make_set(bases, spread_for_random(64), 3000, 3, 100, 0.0, 13);
  for (TemplateRule rule : {TemplateRule::kMean, TemplateRule::kMax}) {
    SearchIndex index = make_index(set, rule);
    SearchIndex exact = make_index(set, rule);  // the oracle, given the same updates
    ASSERT_TRUE(index.set_mode(IndexMode::kHnsw).ok());
    // Probes of people the index does not hold yet, then adds them (new
    // people, and more templates for an enrolled one).
    const derived::Set more = derived::make_set(bases, spread_for_random(64), 300, 3, 0, 0.0, 17);
    std::map<std::string, std::vector<float>> added;
    for (size_t r = 0; r < more.row_identity.size(); ++r)
      added["new_" + more.row_identity[r]].insert(added["new_" + more.row_identity[r]].end(),
                                                  more.rows.begin() + r * 64, more.rows.begin() + (r + 1) * 64);
    for (const auto& [name, rows] : added) {
      ASSERT_TRUE(index.add_person_rows(name, rows).ok());
      ASSERT_TRUE(exact.add_person_rows(name, rows).ok());
    }
    ASSERT_TRUE(index.add_person_rows(set.row_identity[0], std::span<const float>(more.rows.data(), 64)).ok());
    ASSERT_TRUE(exact.add_person_rows(set.row_identity[0], std::span<const float>(more.rows.data(), 64)).ok());
    // Each added person's own template finds them, with their exact score.
    for (const auto& [name, rows] : added) {
      // Their first template (rows holds all of theirs).
      const auto approx = answer(index.search(row(rows, 0, 64), 1));
      const auto exact = answer(index.search_exact(row(rows, 0, 64), 1));
      ASSERT_EQ(approx.size(), 1u);
      ASSERT_EQ(exact.size(), 1u);
      EXPECT_EQ(approx[0].identity, exact[0].identity) << to_string(rule);
      EXPECT_NEAR(approx[0].similarity, exact[0].similarity, 1e-5f);
    }
    // Delete half the new people: never returned again, whatever the probe.
    int removed = 0;
    for (const auto& [name, rows] : added) {
      if (removed++ % 2) continue;
      ASSERT_TRUE(index.remove_person(name).ok());
      ASSERT_TRUE(exact.remove_person(name).ok());
      for (const auto& c : answer(index.search(row(rows, 0, 64), 10))) EXPECT_NE(c.identity, name);
    }
    // Rename: the person is found under the new name only.
    const auto& [first_name, first_rows] = *std::next(added.begin());
    ASSERT_TRUE(index.rename_person(first_name, "renamed").ok());
    ASSERT_TRUE(exact.rename_person(first_name, "renamed").ok());
    const auto r = answer(index.search(row(first_rows, 0, 64), 1));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].identity, "renamed");
    // Still the exact search's answers overall, over the same content.
    EXPECT_EQ(index.content_sha256(), exact.content_sha256());
    const Agreement a = compare(index, exact, set, 100);
    EXPECT_GE(a.recall1, 0.97) << to_string(rule);
    EXPECT_LT(a.worst_score_gap, 1e-5f);
  }
}

TEST(HnswIndex, PersistsAndNeverTrustsADamagedOrStaleFile) {
  const Bases bases = random_bases(40, 64, 21);
  const derived::Set set = derived::make_set(bases, spread_for_random(64), 3000, 3, 100, 0.1, 23);
  const std::string path = testing::temp_dir("hnsw") + "/gallery.db.hnsw";
  std::string what;
  SearchIndex first = make_index(set, TemplateRule::kMean);
  ASSERT_TRUE(first.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  EXPECT_NE(what.find("missing"), std::string::npos) << what;
  ASSERT_TRUE(fs::exists(path));

  // Round trip: a fresh index over the same gallery loads the file and
  // answers exactly as the one that built it.
  SearchIndex second = make_index(set, TemplateRule::kMean);
  ASSERT_TRUE(second.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  EXPECT_EQ(what, "loaded " + path);
  for (size_t q = 0; q < 50; ++q) {
    const auto query = row(set.queries, q, set.dim);
    const auto a = answer(first.search(query, 5)), b = answer(second.search(query, 5));
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].identity, b[i].identity);
      EXPECT_EQ(a[i].similarity, b[i].similarity);
    }
  }

  // One flipped byte inside the graph: detected, rebuilt, replaced.
  const auto size = fs::file_size(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size / 2));
    char c;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.write(&c, 1);
  }
  SearchIndex third = make_index(set, TemplateRule::kMean);
  ASSERT_TRUE(third.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  EXPECT_NE(what.find("damaged"), std::string::npos) << what;
  const Agreement a = compare(third, make_index(set, TemplateRule::kMean), set, 100);
  EXPECT_GE(a.recall1, 0.97);
  EXPECT_LT(a.worst_score_gap, 1e-5f);
  SearchIndex fourth = make_index(set, TemplateRule::kMean);
  ASSERT_TRUE(fourth.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  EXPECT_EQ(what, "loaded " + path) << "the rebuilt graph replaced the damaged file";

  // A truncated file is damaged too.
  fs::resize_file(path, size - 100);
  SearchIndex fifth = make_index(set, TemplateRule::kMean);
  ASSERT_TRUE(fifth.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  EXPECT_NE(what.find("damaged"), std::string::npos) << what;

  // Stale: the gallery gained a person since the file was written, or the
  // rule differs.
  SearchIndex grown = make_index(set, TemplateRule::kMean);
  ASSERT_TRUE(grown.add_person_rows("late", std::span<const float>(set.queries.data(), 64)).ok());
  ASSERT_TRUE(grown.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  EXPECT_NE(what.find("stale"), std::string::npos) << what;
  EXPECT_EQ(top1(grown.search(row(set.queries, 0, 64), 1)), "late");
  SearchIndex other_rule = make_index(set, TemplateRule::kMax);
  ASSERT_TRUE(other_rule.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  EXPECT_NE(what.find("stale"), std::string::npos) << what;

  // In-place updates are saved on request and then load as current.
  SearchIndex live = make_index(set, TemplateRule::kMean);
  ASSERT_TRUE(live.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  ASSERT_TRUE(live.add_person_rows("later", std::span<const float>(set.queries.data() + 64, 64)).ok());
  ASSERT_TRUE(live.remove_person(set.row_identity[0]).ok());
  ASSERT_TRUE(live.save_if_dirty().ok());
  SearchIndex reopened = make_index(set, TemplateRule::kMean);
  ASSERT_TRUE(reopened.add_person_rows("later", std::span<const float>(set.queries.data() + 64, 64)).ok());
  ASSERT_TRUE(reopened.remove_person(set.row_identity[0]).ok());
  EXPECT_EQ(reopened.content_sha256(), live.content_sha256());
  ASSERT_TRUE(reopened.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  EXPECT_EQ(what, "loaded " + path);
  EXPECT_EQ(top1(reopened.search(row(set.queries, 1, 64), 1)), "later");
}

}  // namespace
}  // namespace facerec
