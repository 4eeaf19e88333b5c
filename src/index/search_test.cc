#include "facerec/search.h"

#include <cmath>
#include <initializer_list>
#include <limits>
#include <map>
#include <random>
#include <span>

#include <gtest/gtest.h>

namespace facerec {
namespace {

// A query's answer; a failed query fails the test and answers nothing.
template <class T>
T answer(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : T{};
}

// Queries for search_batch, e.g. qs({q1, q2}).
std::vector<std::span<const float>> qs(std::initializer_list<std::span<const float>> queries) { return queries; }

// SearchIndex::create(), which the test expects to succeed.
SearchIndex build(int dim, std::vector<std::string> ids, std::vector<float> rows,
                  TemplateRule rule = TemplateRule::kMax, std::vector<float> weights = {}) {
  auto index = SearchIndex::create(dim, std::move(ids), std::move(rows), rule, std::move(weights));
  EXPECT_TRUE(index.ok()) << index.status().to_string();
  return index.ok() ? std::move(index).value() : SearchIndex(rule);
}

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
  SearchIndex index = build(kDim, ids, rows);
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
  const std::vector<std::span<const float>> qptrs(queries.begin(), queries.end());

  for (int k : {1, 5, kPeople}) {
    SCOPED_TRACE("k=" + std::to_string(k));
    auto batch = answer(index.search_batch(qptrs, k));
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
      auto ref = answer(index.search_reference(queries[i], k));
      ASSERT_EQ(ref.size(), static_cast<size_t>(k));
      expect_matches_reference(ref, ref, true_score);  // the reference itself vs the scores above
      expect_matches_reference(answer(index.search(queries[i], k)), ref, true_score);
      expect_matches_reference(batch[i], ref, true_score);
    }
  }
  // The noisy copy of row 500 finds its owner first.
  auto top = answer(index.search(queries[6], 1));
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].identity, ids[500]);
  EXPECT_GT(top[0].similarity, 0.9f);
}

// Alice has two rows, Bob one; a person's score is their best row, not a sum
// or mean.
TEST(SearchIndex, PersonScoreIsTheMaxOverTheirTemplates) {
  SearchIndex index = build(3, {"Alice", "Bob", "Alice"}, {1, 0, 0, 0.8f, 0.6f, 0, 0, 1, 0});
  EXPECT_EQ(index.people(), 2u);
  const float q1[] = {0, 1, 0}, q2[] = {0.6f, 0.8f, 0};
  for (const auto& res : {answer(index.search(q1, 5)), answer(index.search_reference(q1, 5)), answer(index.search_batch(qs({q1}), 5))[0]}) {
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].identity, "Alice");
    EXPECT_NEAR(res[0].similarity, 1.0f, 1e-6);
    EXPECT_EQ(res[1].identity, "Bob");
    EXPECT_NEAR(res[1].similarity, 0.6f, 1e-6);
  }
  // Alice's rows score 0.6 and 0.8 (sum 1.4), Bob's one row 0.96: Bob wins.
  for (const auto& res : {answer(index.search(q2, 5)), answer(index.search_reference(q2, 5)), answer(index.search_batch(qs({q2}), 5))[0]}) {
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].identity, "Bob");
    EXPECT_NEAR(res[0].similarity, 0.96f, 1e-6);
    EXPECT_EQ(res[1].identity, "Alice");
    EXPECT_NEAR(res[1].similarity, 0.8f, 1e-6);
  }
}

TEST(SearchIndex, TopKBoundsAndTies) {
  // "b" and "a" have identical rows: the tie goes to the name that sorts first.
  SearchIndex index = build(2, {"b", "c", "a"}, {1, 0, 0, 1, 1, 0});
  const float q[] = {1, 0};
  for (const auto& res : {answer(index.search(q, 10)), answer(index.search_reference(q, 10)), answer(index.search_batch(qs({q, q}), 10))[1]}) {
    ASSERT_EQ(res.size(), 3u);  // k larger than the number of people
    EXPECT_EQ(res[0].identity, "a");
    EXPECT_EQ(res[1].identity, "b");
    EXPECT_EQ(res[2].identity, "c");
    EXPECT_FLOAT_EQ(res[0].similarity, 1.f);
    EXPECT_FLOAT_EQ(res[2].similarity, 0.f);
  }
  EXPECT_EQ(answer(index.search(q, 1)).size(), 1u);
  EXPECT_TRUE(answer(index.search(q, 0)).empty());
  EXPECT_EQ(index.search(q, -3).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(answer(index.search_reference(q, 0)).empty());
}

TEST(SearchIndex, EmptyIndexReturnsNothing) {
  SearchIndex empty;
  const float q[] = {1, 0, 0};
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(answer(empty.search(q, 5)).empty());
  EXPECT_TRUE(answer(empty.search_reference(q, 5)).empty());
  auto batch = answer(empty.search_batch(qs({q, q}), 5));
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_TRUE(batch[0].empty());
  EXPECT_TRUE(batch[1].empty());
  SearchIndex no_rows = build(3, {}, {});
  EXPECT_TRUE(answer(no_rows.search(q, 5)).empty());
  EXPECT_TRUE(answer(no_rows.search_batch(qs({}), 5)).empty());
}

// from_stored(): the records a gallery snapshot gives (people and their
// templates, by id), without the gallery itself.
TEST(SearchIndex, BuildsFromStoredRecords) {
  constexpr int kDim = 16;
  std::mt19937 rng(3);
  std::vector<PersonInfo> people = {{1, "Zoë", 3}, {2, "李小龙", 3}};
  std::vector<StoredTemplate> templates;
  std::map<std::string, std::vector<float>> first_vector;
  int64_t id = 0;
  for (int64_t person : {1, 2, 3}) {  // person 3 was removed between the two reads
    for (int i = 0; i < 3; ++i) {
      StoredTemplate t;
      t.id = ++id;
      t.person_id = person;
      t.unit = random_unit(kDim, rng);
      t.norm = 1;
      if (i == 0 && person <= 2) first_vector[people[static_cast<size_t>(person - 1)].name] = t.unit;
      templates.push_back(std::move(t));
    }
  }
  auto index = SearchIndex::from_stored(kDim, people, templates, TemplateRule::kMax, false);
  ASSERT_TRUE(index.ok()) << index.status().to_string();
  EXPECT_EQ(index->dim(), kDim);
  EXPECT_EQ(index->size(), 6u);
  EXPECT_EQ(index->people(), 2u);
  for (const std::string name : {"Zoë", "李小龙"}) {
    auto res = answer(index->search(first_vector[name], 2));
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].identity, name);
    EXPECT_NEAR(res[0].similarity, 1.f, 1e-5);
    EXPECT_LT(res[1].similarity, 0.99f);
  }
  // A stored template of another length is a damaged database, not a crash.
  templates[4].unit.pop_back();
  EXPECT_EQ(SearchIndex::from_stored(kDim, people, templates, TemplateRule::kMax, false).status().code(),
            ErrorCode::kDatabase);
  EXPECT_EQ(SearchIndex::from_stored(-1, people, {}, TemplateRule::kMax, false).status().code(),
            ErrorCode::kInvalidArgument);
  // A gallery without a dimension and without templates: an empty index.
  auto empty = SearchIndex::from_stored(0, {}, {}, TemplateRule::kMean, true);
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_EQ(empty->rule(), TemplateRule::kMean);
}

// Quality weights: Alice has a good frontal template (x, quality 3) and a poor
// one (y, quality 1); Bob one template. Weighted, Alice is the unit vector of
// 3x + y and scores 1/sqrt(10) against y: her poor template alone no longer
// wins as it does under the max.
TEST(SearchIndex, QualityWeightedPersonTemplate) {
  const std::vector<float> rows = {1, 0, 0, 0, 1, 0, 0.6f, 0.8f, 0};
  SearchIndex plain = build(3, {"Alice", "Alice", "Bob"}, rows);
  SearchIndex weighted = build(3, {"Alice", "Alice", "Bob"}, rows, TemplateRule::kMean, {3, 1, 1});
  EXPECT_FALSE(plain.weighted());
  EXPECT_TRUE(weighted.weighted());
  const float y[] = {0, 1, 0}, x[] = {1, 0, 0};
  EXPECT_EQ(answer(plain.search(y, 1))[0].identity, "Alice");
  for (const auto& res : {answer(weighted.search(y, 5)), answer(weighted.search_reference(y, 5)), answer(weighted.search_batch(qs({x, y}), 5))[1]}) {
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].identity, "Bob");
    EXPECT_NEAR(res[0].similarity, 0.8f, 1e-6);
    EXPECT_EQ(res[1].identity, "Alice");
    EXPECT_NEAR(res[1].similarity, 1 / std::sqrt(10.f), 1e-6);
  }
  for (const auto& res : {answer(weighted.search(x, 5)), answer(weighted.search_reference(x, 5)), answer(weighted.search_batch(qs({x, y}), 5))[0]}) {
    EXPECT_EQ(res[0].identity, "Alice");
    EXPECT_NEAR(res[0].similarity, 3 / std::sqrt(10.f), 1e-6);
  }
  // Scaling every weight changes nothing: only relative quality matters.
  SearchIndex scaled = build(3, {"Alice", "Alice", "Bob"}, rows, TemplateRule::kMean, {30, 10, 0.5f});
  EXPECT_NEAR(answer(scaled.search(x, 1))[0].similarity, 3 / std::sqrt(10.f), 1e-6);
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
  SearchIndex index = build(kDim, ids, rows, TemplateRule::kMean, weights);
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 3; ++i) queries.push_back(random_unit(kDim, rng));
  queries.emplace_back(rows.begin() + 5 * kDim, rows.begin() + 6 * kDim);  // a stored row
  const std::vector<std::span<const float>> qptrs(queries.begin(), queries.end());
  auto batch = answer(index.search_batch(qptrs, kPeople));
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
    auto ref = answer(index.search_reference(queries[i], kPeople));
    expect_matches_reference(ref, ref, true_score);
    expect_matches_reference(answer(index.search(queries[i], kPeople)), ref, true_score);
    expect_matches_reference(batch[i], ref, true_score);
  }
}

TEST(SearchIndex, FromStoredWeightsByStoredNorm) {
  const std::vector<PersonInfo> people = {{1, "Alice", 2}, {2, "Bob", 1}};
  std::vector<StoredTemplate> templates(3);
  auto stored = [](int64_t id, int64_t person, std::vector<float> unit, float norm) {
    StoredTemplate t;
    t.id = id;
    t.person_id = person;
    t.unit = std::move(unit);
    t.norm = norm;
    return t;
  };
  templates[0] = stored(1, 1, {1, 0, 0}, 30);  // MagFace norms: a sharp face
  templates[1] = stored(2, 1, {0, 1, 0}, 10);  // a poor one
  // An imported row without a norm: weighs ~nothing, no crash.
  templates[2] = stored(3, 2, {0.6f, 0.8f, 0}, 0);
  auto plain = SearchIndex::from_stored(3, people, templates, TemplateRule::kMax, false);
  auto weighted = SearchIndex::from_stored(3, people, templates, TemplateRule::kMean, /*weight_by_norm=*/true);
  ASSERT_TRUE(plain.ok() && weighted.ok());
  EXPECT_FALSE(plain->weighted());
  ASSERT_TRUE(weighted->weighted());
  const float y[] = {0, 1, 0};
  EXPECT_EQ(answer(plain->search(y, 1))[0].identity, "Alice");
  auto res = answer(weighted->search(y, 2));
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].identity, "Bob");
  EXPECT_NEAR(res[1].similarity, 1 / std::sqrt(10.f), 1e-5);
}

// Caller errors are Statuses with the right code, never an abort.
TEST(SearchIndex, CreateRefusesBadRows) {
  auto code = [](Result<SearchIndex> r) { return r.status().code(); };
  EXPECT_EQ(code(SearchIndex::create(0, {"a"}, {})), ErrorCode::kInvalidArgument);      // no dimension
  EXPECT_EQ(code(SearchIndex::create(-3, {"a"}, {1, 0, 0})), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(SearchIndex::create(3, {"a"}, {1, 0})), ErrorCode::kInvalidArgument);  // short row
  EXPECT_EQ(code(SearchIndex::create(3, {"a", "b"}, {1, 0, 0})), ErrorCode::kInvalidArgument);  // rows < identities
  EXPECT_EQ(code(SearchIndex::create(3, {"a"}, {1, 0, 0, 0, 1, 0})), ErrorCode::kInvalidArgument);  // rows > identities
  EXPECT_EQ(code(SearchIndex::create(2, {"a"}, {std::nanf(""), 0})), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(SearchIndex::create(2, {"a"}, {std::numeric_limits<float>::infinity(), 0})),
            ErrorCode::kInvalidArgument);
  // Weights: one finite weight > 0 per row, for the rules that use them.
  EXPECT_EQ(code(SearchIndex::create(2, {"a", "b"}, {1, 0, 0, 1}, TemplateRule::kMean, {1})),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(SearchIndex::create(2, {"a", "b"}, {1, 0, 0, 1}, TemplateRule::kMeanScore, {1, 0})),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(SearchIndex::create(2, {"a", "b"}, {1, 0, 0, 1}, TemplateRule::kMean, {1, std::nanf("")})),
            ErrorCode::kInvalidArgument);
  auto bad = SearchIndex::create(3, {"a", "b"}, {1, 0, 0});
  EXPECT_NE(bad.status().message().find("3 values"), std::string::npos) << bad.status().message();
  // The rules without weights ignore them.
  EXPECT_TRUE(SearchIndex::create(2, {"a"}, {1, 0}, TemplateRule::kMax, {0}).ok());
  EXPECT_TRUE(SearchIndex::create(2, {}, {}).ok());  // an empty index with a dimension
}

TEST(SearchIndex, EveryQueryChecksItsDimension) {
  for (TemplateRule rule : {TemplateRule::kMax, TemplateRule::kMean}) {
    SearchIndex index = build(3, {"a", "b"}, {1, 0, 0, 0, 1, 0}, rule);
    for (IndexMode mode : {IndexMode::kExact, IndexMode::kHnsw}) {
      ASSERT_TRUE(index.set_mode(mode).ok());
      SCOPED_TRACE(std::string(to_string(rule)) + " " + to_string(mode));
      const std::vector<float> short_q = {1, 0}, long_q = {1, 0, 0, 0}, good = {1, 0, 0};
      for (const auto& q : {short_q, long_q, std::vector<float>{}}) {
        EXPECT_EQ(index.search(q, 1).status().code(), ErrorCode::kInvalidArgument);
        EXPECT_EQ(index.search_exact(q, 1).status().code(), ErrorCode::kInvalidArgument);
        EXPECT_EQ(index.search_reference(q, 1).status().code(), ErrorCode::kInvalidArgument);
        EXPECT_EQ(index.score_people(q).status().code(), ErrorCode::kInvalidArgument);
        EXPECT_EQ(index.score_people_reference(q).status().code(), ErrorCode::kInvalidArgument);
        // One bad query fails the batch, naming it.
        auto batch = index.search_batch(qs({good, q, good}), 1);
        EXPECT_EQ(batch.status().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(batch.status().message().find("query 1"), std::string::npos) << batch.status().message();
      }
      EXPECT_EQ(index.search(good, -1).status().code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(index.search_batch(qs({good}), -1).status().code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(answer(index.search(good, 1))[0].identity, "a");
      EXPECT_EQ(answer(index.search_batch(qs({good, good}), 1)).size(), 2u);
    }
  }
  // An index without a dimension yet answers any query with nothing.
  SearchIndex empty;
  const float q[] = {1, 0};
  EXPECT_TRUE(answer(empty.search(q, 3)).empty());
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
      SearchIndex index = build(kDim, ids, rows, rule, weighted ? weights : std::vector<float>{});
      EXPECT_EQ(index.rule(), rule);
      for (int q = 0; q < 5; ++q) {
        auto query = random_unit(kDim, rng);
        auto fast = answer(index.score_people(query));
        auto ref = answer(index.score_people_reference(query));
        ASSERT_EQ(fast.size(), static_cast<size_t>(kPeople));
        ASSERT_EQ(ref.size(), fast.size());
        for (size_t p = 0; p < fast.size(); ++p) EXPECT_NEAR(fast[p], ref[p], 1e-5) << index.person_names()[p];
        auto top = answer(index.search(query, 5));
        auto top_ref = answer(index.search_reference(query, 5));
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
  SearchIndex max_index = build(3, ids, rows, TemplateRule::kMax);
  auto r = answer(max_index.score_people(x));
  EXPECT_NEAR(r[0], 0.9f, 1e-6);
  EXPECT_NEAR(r[1], 0.6f, 1e-6);
  SearchIndex top2 = build(3, ids, rows, TemplateRule::kTop2Mean);
  r = answer(top2.score_people(x));
  EXPECT_NEAR(r[0], 0.7f, 1e-6);  // (0.9 + 0.5) / 2
  EXPECT_NEAR(r[1], 0.6f, 1e-6);  // one template: its score
  SearchIndex mean = build(3, ids, rows, TemplateRule::kMean);
  r = answer(mean.score_people(x));
  // cos(x, normalised sum of Alice's rows) = 1.5 / |sum|.
  const float sum[] = {1.5f, s - t, u};
  const float n = std::sqrt(sum[0] * sum[0] + sum[1] * sum[1] + sum[2] * sum[2]);
  EXPECT_NEAR(r[0], 1.5f / n, 1e-5);
  EXPECT_NEAR(r[1], 0.6f, 1e-6);
  EXPECT_EQ(answer(mean.search(x, 1))[0].identity, 1.5f / n >= 0.6f ? "Alice" : "Bob");
  SearchIndex mean_score = build(3, ids, rows, TemplateRule::kMeanScore);
  r = answer(mean_score.score_people(x));
  EXPECT_NEAR(r[0], 0.5f, 1e-6);  // (0.9 + 0.5 + 0.1) / 3
  EXPECT_NEAR(r[1], 0.6f, 1e-6);
  SearchIndex weighted_score = build(3, ids, rows, TemplateRule::kMeanScore, {2, 1, 1, 5});
  r = answer(weighted_score.score_people(x));
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
