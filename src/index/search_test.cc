#include "facerec/search.h"

#include <cmath>
#include <limits>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "test_support.h"

namespace facerec {
namespace {

std::vector<float> random_unit(int dim, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::vector<float> v(static_cast<size_t>(dim));
  double s = 0;
  for (float& x : v) {
    x = nd(rng);
    s += double(x) * x;
  }
  for (float& x : v) x = static_cast<float>(x / std::sqrt(s));
  return v;
}

// Checks a result against the reference: same length, the same similarity at
// every rank, and each reported person's similarity is their true score.
// (Identities at a rank may legitimately differ only on a near-tie.)
void expect_matches_reference(const std::vector<Candidate>& got, const std::vector<Candidate>& ref,
                              const std::map<std::string, float>& true_score) {
  ASSERT_EQ(got.size(), ref.size());
  for (size_t r = 0; r < got.size(); ++r) {
    EXPECT_NEAR(got[r].similarity, ref[r].similarity, 1e-5) << "rank " << r;
    auto it = true_score.find(got[r].identity);
    ASSERT_NE(it, true_score.end()) << got[r].identity;
    EXPECT_NEAR(got[r].similarity, it->second, 1e-5) << got[r].identity;
    if (r > 0) {
      EXPECT_GE(got[r - 1].similarity, got[r].similarity);
    }
  }
}

TEST(SearchIndex, BlasAgreesWithReferenceLoop) {
  constexpr int kRows = 1000, kDim = 512, kPeople = 50;
  std::mt19937 rng(42);
  std::vector<std::string> ids;
  std::vector<float> rows;
  for (int r = 0; r < kRows; ++r) {
    // Every person gets rows; the rest are spread at random.
    int p = r < kPeople ? r : static_cast<int>(rng() % kPeople);
    ids.push_back("person_" + std::to_string(p));
    auto v = random_unit(kDim, rng);
    rows.insert(rows.end(), v.begin(), v.end());
  }
  SearchIndex index(kDim, ids, rows);
  ASSERT_EQ(index.size(), static_cast<size_t>(kRows));
  ASSERT_EQ(index.people(), static_cast<size_t>(kPeople));
  ASSERT_EQ(index.dim(), kDim);

  // Random queries, and noisy copies of stored rows (high, well-separated scores).
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 4; ++i) queries.push_back(random_unit(kDim, rng));
  for (int row : {0, 17, 500, 999}) {
    std::vector<float> q(rows.begin() + row * kDim, rows.begin() + (row + 1) * kDim);
    auto noise = random_unit(kDim, rng);
    double s = 0;
    for (int d = 0; d < kDim; ++d) {
      q[d] += 0.3f * noise[d];
      s += double(q[d]) * q[d];
    }
    for (float& x : q) x = static_cast<float>(x / std::sqrt(s));
    queries.push_back(q);
  }
  std::vector<const float*> qptrs;
  for (const auto& q : queries) qptrs.push_back(q.data());

  for (int k : {1, 5, kPeople}) {
    SCOPED_TRACE("k=" + std::to_string(k));
    auto batch = index.search_batch(qptrs, k);
    ASSERT_EQ(batch.size(), queries.size());
    for (size_t i = 0; i < queries.size(); ++i) {
      SCOPED_TRACE("query " + std::to_string(i));
      // The true per-person score, computed here independently of the index.
      std::map<std::string, float> true_score;
      for (int r = 0; r < kRows; ++r) {
        double s = 0;
        for (int d = 0; d < kDim; ++d) s += double(rows[r * kDim + d]) * queries[i][d];
        auto [it, fresh] = true_score.emplace(ids[r], static_cast<float>(s));
        if (!fresh) it->second = std::max(it->second, static_cast<float>(s));
      }
      auto ref = index.search_reference(queries[i].data(), k);
      ASSERT_EQ(ref.size(), static_cast<size_t>(k));
      expect_matches_reference(ref, ref, true_score);  // the reference itself vs the scores above
      expect_matches_reference(index.search(queries[i].data(), k), ref, true_score);
      expect_matches_reference(batch[i], ref, true_score);
    }
  }
  // The noisy copy of row 500 finds its owner first.
  auto top = index.search(queries[6].data(), 1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].identity, ids[500]);
  EXPECT_GT(top[0].similarity, 0.9f);
}

// Alice has two rows, Bob one; a person's score is their best row, not a sum
// or mean.
TEST(SearchIndex, PersonScoreIsTheMaxOverTheirTemplates) {
  SearchIndex index(3, {"Alice", "Bob", "Alice"}, {1, 0, 0, 0.8f, 0.6f, 0, 0, 1, 0});
  EXPECT_EQ(index.people(), 2u);
  const float q1[] = {0, 1, 0}, q2[] = {0.6f, 0.8f, 0};
  for (const auto& res : {index.search(q1, 5), index.search_reference(q1, 5), index.search_batch({q1}, 5)[0]}) {
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].identity, "Alice");
    EXPECT_NEAR(res[0].similarity, 1.0f, 1e-6);
    EXPECT_EQ(res[1].identity, "Bob");
    EXPECT_NEAR(res[1].similarity, 0.6f, 1e-6);
  }
  // Alice's rows score 0.6 and 0.8 (sum 1.4), Bob's one row 0.96: Bob wins.
  for (const auto& res : {index.search(q2, 5), index.search_reference(q2, 5), index.search_batch({q2}, 5)[0]}) {
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].identity, "Bob");
    EXPECT_NEAR(res[0].similarity, 0.96f, 1e-6);
    EXPECT_EQ(res[1].identity, "Alice");
    EXPECT_NEAR(res[1].similarity, 0.8f, 1e-6);
  }
}

TEST(SearchIndex, TopKBoundsAndTies) {
  // "b" and "a" have identical rows: the tie goes to the name that sorts first.
  SearchIndex index(2, {"b", "c", "a"}, {1, 0, 0, 1, 1, 0});
  const float q[] = {1, 0};
  for (const auto& res : {index.search(q, 10), index.search_reference(q, 10), index.search_batch({q, q}, 10)[1]}) {
    ASSERT_EQ(res.size(), 3u);  // k larger than the number of people
    EXPECT_EQ(res[0].identity, "a");
    EXPECT_EQ(res[1].identity, "b");
    EXPECT_EQ(res[2].identity, "c");
    EXPECT_FLOAT_EQ(res[0].similarity, 1.f);
    EXPECT_FLOAT_EQ(res[2].similarity, 0.f);
  }
  EXPECT_EQ(index.search(q, 1).size(), 1u);
  EXPECT_TRUE(index.search(q, 0).empty());
  EXPECT_TRUE(index.search(q, -3).empty());
  EXPECT_TRUE(index.search_reference(q, 0).empty());
}

TEST(SearchIndex, EmptyIndexReturnsNothing) {
  SearchIndex empty;
  const float q[] = {1, 0, 0};
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(empty.search(q, 5).empty());
  EXPECT_TRUE(empty.search_reference(q, 5).empty());
  auto batch = empty.search_batch({q, q}, 5);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_TRUE(batch[0].empty());
  EXPECT_TRUE(batch[1].empty());
  SearchIndex no_rows(3, {}, {});
  EXPECT_TRUE(no_rows.search(q, 5).empty());
  EXPECT_TRUE(no_rows.search_batch({}, 5).empty());
}

TEST(SearchIndex, BuildsFromAGallery) {
  constexpr int kDim = 16;
  std::string path = testing::temp_dir("search") + "/g.db";
  auto g = Gallery::open(path, EmbedderInfo{"m", "s", kDim});
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  std::mt19937 rng(3);
  std::map<std::string, std::vector<float>> first_vector;
  for (const std::string name : {"Zoë", "李小龙", "Bob"}) {
    std::vector<NewTemplate> ts(3);
    for (int i = 0; i < 3; ++i) {
      ts[i].unit = random_unit(kDim, rng);
      ts[i].norm = 1;
      ts[i].source_sha256 = name + std::to_string(i);
    }
    first_vector[name] = ts[0].unit;
    ASSERT_TRUE((*g)->enroll(name, ts).ok());
  }
  ASSERT_TRUE((*g)->remove_person("Bob").ok());
  auto index = SearchIndex::from_gallery(**g);
  ASSERT_TRUE(index.ok()) << index.status().to_string();
  EXPECT_EQ(index->dim(), kDim);
  EXPECT_EQ(index->size(), 6u);
  EXPECT_EQ(index->people(), 2u);
  for (const std::string name : {"Zoë", "李小龙"}) {
    auto res = index->search(first_vector[name].data(), 2);
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].identity, name);
    EXPECT_NEAR(res[0].similarity, 1.f, 1e-5);
    EXPECT_LT(res[1].similarity, 0.99f);
  }
}

// Quality weights: Alice has a good frontal template (x, quality 3) and a poor
// one (y, quality 1); Bob one template. Weighted, Alice is the unit vector of
// 3x + y and scores 1/sqrt(10) against y: her poor template alone no longer
// wins as it does under the max.
TEST(SearchIndex, QualityWeightedPersonTemplate) {
  const std::vector<float> rows = {1, 0, 0, 0, 1, 0, 0.6f, 0.8f, 0};
  SearchIndex plain(3, {"Alice", "Alice", "Bob"}, rows);
  SearchIndex weighted(3, {"Alice", "Alice", "Bob"}, rows, {3, 1, 1});
  EXPECT_FALSE(plain.weighted());
  EXPECT_TRUE(weighted.weighted());
  const float y[] = {0, 1, 0}, x[] = {1, 0, 0};
  EXPECT_EQ(plain.search(y, 1)[0].identity, "Alice");
  for (const auto& res : {weighted.search(y, 5), weighted.search_reference(y, 5), weighted.search_batch({x, y}, 5)[1]}) {
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].identity, "Bob");
    EXPECT_NEAR(res[0].similarity, 0.8f, 1e-6);
    EXPECT_EQ(res[1].identity, "Alice");
    EXPECT_NEAR(res[1].similarity, 1 / std::sqrt(10.f), 1e-6);
  }
  for (const auto& res : {weighted.search(x, 5), weighted.search_reference(x, 5), weighted.search_batch({x, y}, 5)[0]}) {
    EXPECT_EQ(res[0].identity, "Alice");
    EXPECT_NEAR(res[0].similarity, 3 / std::sqrt(10.f), 1e-6);
  }
  // Scaling every weight changes nothing: only relative quality matters.
  SearchIndex scaled(3, {"Alice", "Alice", "Bob"}, rows, {30, 10, 0.5f});
  EXPECT_NEAR(scaled.search(x, 1)[0].similarity, 3 / std::sqrt(10.f), 1e-6);
}

TEST(SearchIndex, WeightedBlasAgreesWithReferenceLoop) {
  constexpr int kRows = 400, kDim = 128, kPeople = 30;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> ud(0.05f, 5.f);
  std::vector<std::string> ids;
  std::vector<float> rows, weights;
  for (int r = 0; r < kRows; ++r) {
    ids.push_back("p" + std::to_string(r < kPeople ? r : static_cast<int>(rng() % kPeople)));
    auto v = random_unit(kDim, rng);
    rows.insert(rows.end(), v.begin(), v.end());
    weights.push_back(ud(rng));
  }
  SearchIndex index(kDim, ids, rows, weights);
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 3; ++i) queries.push_back(random_unit(kDim, rng));
  queries.emplace_back(rows.begin() + 5 * kDim, rows.begin() + 6 * kDim);  // a stored row
  std::vector<const float*> qptrs;
  for (const auto& q : queries) qptrs.push_back(q.data());
  auto batch = index.search_batch(qptrs, kPeople);
  for (size_t i = 0; i < queries.size(); ++i) {
    SCOPED_TRACE("query " + std::to_string(i));
    // Each person's true score, from their weighted mean template built here.
    std::map<std::string, std::vector<double>> tmpl;
    for (int r = 0; r < kRows; ++r) {
      auto& t = tmpl.emplace(ids[r], std::vector<double>(kDim, 0.0)).first->second;
      for (int d = 0; d < kDim; ++d) t[d] += double(weights[r]) * rows[r * kDim + d];
    }
    std::map<std::string, float> true_score;
    for (const auto& [name, t] : tmpl) {
      double n2 = 0, dot = 0;
      for (int d = 0; d < kDim; ++d) {
        n2 += t[d] * t[d];
        dot += t[d] * queries[i][d];
      }
      true_score[name] = static_cast<float>(dot / std::sqrt(n2));
    }
    auto ref = index.search_reference(queries[i].data(), kPeople);
    expect_matches_reference(ref, ref, true_score);
    expect_matches_reference(index.search(queries[i].data(), kPeople), ref, true_score);
    expect_matches_reference(batch[i], ref, true_score);
  }
}

TEST(SearchIndex, FromGalleryWeightsByStoredNorm) {
  constexpr int kDim = 3;
  std::string path = testing::temp_dir("search_weighted") + "/g.db";
  auto g = Gallery::open(path, EmbedderInfo{"m", "s", kDim});
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  std::vector<NewTemplate> alice(2), bob(1);
  alice[0].unit = {1, 0, 0};
  alice[0].norm = 30;  // MagFace norms: a sharp face
  alice[0].source_sha256 = "a0";
  alice[1].unit = {0, 1, 0};
  alice[1].norm = 10;  // a poor one
  alice[1].source_sha256 = "a1";
  bob[0].unit = {0.6f, 0.8f, 0};
  bob[0].norm = 0;  // an imported row without a norm: weighs ~nothing, no crash
  bob[0].source_sha256 = "b0";
  ASSERT_TRUE((*g)->enroll("Alice", alice).ok());
  ASSERT_TRUE((*g)->enroll("Bob", bob).ok());
  auto plain = SearchIndex::from_gallery(**g);
  auto weighted = SearchIndex::from_gallery(**g, /*weight_by_norm=*/true);
  ASSERT_TRUE(plain.ok() && weighted.ok());
  EXPECT_FALSE(plain->weighted());
  ASSERT_TRUE(weighted->weighted());
  const float y[] = {0, 1, 0};
  EXPECT_EQ(plain->search(y, 1)[0].identity, "Alice");
  auto res = weighted->search(y, 2);
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].identity, "Bob");
  EXPECT_NEAR(res[1].similarity, 1 / std::sqrt(10.f), 1e-5);
}

TEST(SearchIndex, TemplateRulesAgreeWithTheirPlainTwin) {
  constexpr int kRows = 600, kDim = 128, kPeople = 40;
  std::mt19937 rng(7);
  std::vector<std::string> ids;
  std::vector<float> rows, weights;
  for (int r = 0; r < kRows; ++r) {
    int p = r < kPeople ? r : static_cast<int>(rng() % kPeople);
    ids.push_back("p" + std::to_string(p));
    auto v = random_unit(kDim, rng);
    rows.insert(rows.end(), v.begin(), v.end());
    weights.push_back(0.1f + static_cast<float>(rng() % 100) / 100.f);
  }
  for (TemplateRule rule : {TemplateRule::kMax, TemplateRule::kMean, TemplateRule::kTop2Mean, TemplateRule::kMeanScore}) {
    for (bool weighted : {false, true}) {
      SCOPED_TRACE(std::string(to_string(rule)) + (weighted ? " weighted" : ""));
      SearchIndex index(kDim, ids, rows, rule, weighted ? weights : std::vector<float>{});
      EXPECT_EQ(index.rule(), rule);
      for (int q = 0; q < 5; ++q) {
        auto query = random_unit(kDim, rng);
        auto fast = index.score_people(query.data());
        auto ref = index.score_people_reference(query.data());
        ASSERT_EQ(fast.size(), static_cast<size_t>(kPeople));
        ASSERT_EQ(ref.size(), fast.size());
        for (size_t p = 0; p < fast.size(); ++p) EXPECT_NEAR(fast[p], ref[p], 1e-5) << index.person_names()[p];
        auto top = index.search(query.data(), 5);
        auto top_ref = index.search_reference(query.data(), 5);
        ASSERT_EQ(top.size(), 5u);
        for (size_t k = 0; k < top.size(); ++k) EXPECT_NEAR(top[k].similarity, top_ref[k].similarity, 1e-5);
      }
    }
  }
}

TEST(SearchIndex, TemplateRulesByHand) {
  // Alice: three templates scoring 0.9, 0.5, 0.1 against x; Bob: one scoring 0.6.
  const float s = std::sqrt(1 - 0.9f * 0.9f), t = std::sqrt(1 - 0.5f * 0.5f), u = std::sqrt(1 - 0.1f * 0.1f);
  const float v = std::sqrt(1 - 0.6f * 0.6f);
  std::vector<std::string> ids{"Alice", "Alice", "Alice", "Bob"};
  std::vector<float> rows{0.9f, s, 0, 0.5f, -t, 0, 0.1f, 0, u, 0.6f, 0, -v};
  const float x[] = {1, 0, 0};
  SearchIndex max_index(3, ids, rows, TemplateRule::kMax);
  auto r = max_index.score_people(x);
  EXPECT_NEAR(r[0], 0.9f, 1e-6);
  EXPECT_NEAR(r[1], 0.6f, 1e-6);
  SearchIndex top2(3, ids, rows, TemplateRule::kTop2Mean);
  r = top2.score_people(x);
  EXPECT_NEAR(r[0], 0.7f, 1e-6);  // (0.9 + 0.5) / 2
  EXPECT_NEAR(r[1], 0.6f, 1e-6);  // one template: its score
  SearchIndex mean(3, ids, rows, TemplateRule::kMean);
  r = mean.score_people(x);
  // cos(x, normalised sum of Alice's rows) = 1.5 / |sum|.
  const float sum[] = {1.5f, s - t, u};
  const float n = std::sqrt(sum[0] * sum[0] + sum[1] * sum[1] + sum[2] * sum[2]);
  EXPECT_NEAR(r[0], 1.5f / n, 1e-5);
  EXPECT_NEAR(r[1], 0.6f, 1e-6);
  EXPECT_EQ(mean.search(x, 1)[0].identity, 1.5f / n >= 0.6f ? "Alice" : "Bob");
  SearchIndex mean_score(3, ids, rows, TemplateRule::kMeanScore);
  r = mean_score.score_people(x);
  EXPECT_NEAR(r[0], 0.5f, 1e-6);  // (0.9 + 0.5 + 0.1) / 3
  EXPECT_NEAR(r[1], 0.6f, 1e-6);
  SearchIndex weighted_score(3, ids, rows, TemplateRule::kMeanScore, {2, 1, 1, 5});
  r = weighted_score.score_people(x);
  EXPECT_NEAR(r[0], (2 * 0.9f + 0.5f + 0.1f) / 4, 1e-6);
  EXPECT_EQ(to_string(TemplateRule::kTop2Mean), std::string("top2"));
  EXPECT_EQ(parse_template_rule("mean").value(), TemplateRule::kMean);
  EXPECT_FALSE(parse_template_rule("median").ok());
}

TEST(SearchIndex, DecideAppliesTheThreshold) {
  const std::vector<Candidate> cands = {{"Alice", 0.6f}, {"Bob", 0.4f}};
  Decision d = decide(cands, 0.5f);
  EXPECT_TRUE(d.known());
  EXPECT_EQ(d.identity, "Alice");
  EXPECT_FLOAT_EQ(d.similarity, 0.6f);
  EXPECT_EQ(d.candidates.size(), 2u);

  d = decide(cands, 0.6f);  // >= threshold is a match
  EXPECT_EQ(d.identity, "Alice");

  d = decide(cands, 0.61f);
  EXPECT_FALSE(d.known());
  EXPECT_TRUE(d.identity.empty());
  EXPECT_FLOAT_EQ(d.similarity, 0.6f);  // the closest, for reporting
  ASSERT_EQ(d.candidates.size(), 2u);   // candidates are kept when unknown
  EXPECT_EQ(d.candidates[1].identity, "Bob");

  d = decide({}, 0.1f);
  EXPECT_FALSE(d.known());
  EXPECT_TRUE(d.candidates.empty());

  // The best is found even if the list is not sorted.
  d = decide({{"Bob", 0.4f}, {"Alice", 0.7f}}, 0.5f);
  EXPECT_EQ(d.identity, "Alice");

  d = decide(cands, std::numeric_limits<float>::quiet_NaN());
  EXPECT_FALSE(d.known());
}

}  // namespace
}  // namespace facerec
