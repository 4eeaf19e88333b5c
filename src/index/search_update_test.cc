// The in-place index updates against the oracle: an index built from scratch
// over the same rows, after every step of a random sequence of enrolments,
// removals and renames, weighted and unweighted.
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "facerec/search.h"
#include "test_support.h"

namespace facerec {
namespace {

// A query's answer; a failed query fails the test and answers nothing.
template <class T>
T answer(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : T{};
}

// SearchIndex::create(), which the test expects to succeed.
SearchIndex build(int dim, std::vector<std::string> ids, std::vector<float> rows, TemplateRule rule,
                  std::vector<float> weights) {
  auto index = SearchIndex::create(dim, std::move(ids), std::move(rows), rule, std::move(weights));
  EXPECT_TRUE(index.ok()) << index.status().to_string();
  return index.ok() ? std::move(index).value() : SearchIndex(rule);
}

std::vector<float> unit_rows(std::mt19937& rng, int n, int dim) {
  std::normal_distribution<float> g;
  std::vector<float> v(static_cast<size_t>(n) * dim);
  for (int r = 0; r < n; ++r) {
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += double(v[r * dim + i] = g(rng)) * v[r * dim + i];
    for (int i = 0; i < dim; ++i) v[r * dim + i] = static_cast<float>(v[r * dim + i] / std::sqrt(ss));
  }
  return v;
}

class IndexUpdate : public ::testing::TestWithParam<bool> {};

TEST_P(IndexUpdate, MatchesARebuildAfterEveryStep) {
  const bool weighted = GetParam();
  const int dim = 16;
  std::mt19937 rng(7);
  struct Person { std::vector<float> rows, weights; };
  std::map<std::string, Person> truth;  // the oracle's data
  // The weighted index scores by the (weighted) mean template, the plain one by the best template.
  SearchIndex live = weighted ? SearchIndex(TemplateRule::kMean) : SearchIndex();
  std::uniform_real_distribution<float> w(0.5f, 3.f);
  const std::vector<float> queries = unit_rows(rng, 5, dim);
  int next = 0;
  for (int step = 0; step < 60; ++step) {
    const int op = step < 8 ? 0 : static_cast<int>(rng() % 4);
    if (op <= 1 || truth.empty()) {  // add rows to a new or an existing person
      std::string name = (op == 1 && !truth.empty()) ? std::next(truth.begin(), rng() % truth.size())->first
                                                     : "p" + std::to_string(next++ * 7919 % 1000);
      const int n = 1 + static_cast<int>(rng() % 3);
      auto rows = unit_rows(rng, n, dim);
      std::vector<float> ws;
      if (weighted) for (int i = 0; i < n; ++i) ws.push_back(w(rng));
      ASSERT_TRUE(live.add_person_rows(name, rows, ws, dim).ok());
      auto& p = truth[name];
      p.rows.insert(p.rows.end(), rows.begin(), rows.end());
      p.weights.insert(p.weights.end(), ws.begin(), ws.end());
    } else if (op == 2) {
      auto it = std::next(truth.begin(), rng() % truth.size());
      ASSERT_TRUE(live.remove_person(it->first).ok());
      truth.erase(it);
    } else {
      auto it = std::next(truth.begin(), rng() % truth.size());
      const std::string to = "r" + std::to_string(next++);
      ASSERT_TRUE(live.rename_person(it->first, to).ok());
      auto node = truth.extract(it);
      node.key() = to;
      truth.insert(std::move(node));
    }
    std::vector<std::string> ids;
    std::vector<float> rows, weights;
    for (const auto& [name, p] : truth) {
      for (size_t r = 0; r < p.rows.size() / dim; ++r) ids.push_back(name);
      rows.insert(rows.end(), p.rows.begin(), p.rows.end());
      weights.insert(weights.end(), p.weights.begin(), p.weights.end());
    }
    const SearchIndex rebuilt = build(dim, ids, rows, weighted ? TemplateRule::kMean : TemplateRule::kMax, weights);
    ASSERT_EQ(live.size(), rebuilt.size());
    ASSERT_EQ(live.people(), rebuilt.people());
    for (int q = 0; q < 5; ++q) {
      const std::span<const float> query(queries.data() + q * dim, dim);
      const auto a = answer(live.search(query, 100));
      const auto b = answer(rebuilt.search(query, 100));
      ASSERT_EQ(a.size(), b.size());
      for (size_t k = 0; k < a.size(); ++k) {
        EXPECT_EQ(a[k].identity, b[k].identity) << "step " << step;
        EXPECT_NEAR(a[k].similarity, b[k].similarity, 1e-5) << "step " << step;
      }
    }
  }
}
INSTANTIATE_TEST_SUITE_P(WeightedOrNot, IndexUpdate, ::testing::Bool());

// Many people enrolled, extended, removed (enough to close the holes several
// times) and re-enrolled one call at a time, against an index built at once
// from the surviving rows in the same order: the same content hash, the same
// ranking, the same scores; the plain twin agrees on the updated index; a
// removed person is never returned. Every template rule, exact and HNSW.
struct Churn {
  int dim = 24;
  std::vector<std::string> ids;  // live rows in enrolment order
  std::vector<float> rows, weights;
  std::map<std::string, std::vector<float>> removed;  // name -> one of their rows
};

// Applies a random sequence to `live` and records in `c` what a fresh build needs.
void churn(SearchIndex& live, Churn& c, TemplateRule rule, uint64_t seed, int steps) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> w(0.5f, 3.f);
  const bool weighted = rule == TemplateRule::kMean || rule == TemplateRule::kMeanScore;
  std::vector<std::string> people;  // enrolled now
  int next = 0;
  for (int step = 0; step < steps; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op < 6 || people.size() < 5) {  // a new person (sometimes a removed name back)
      std::string name = "p" + std::to_string((next++ * 7919) % 100003);
      if (op == 0 && !c.removed.empty()) {
        name = c.removed.begin()->first;
        c.removed.erase(c.removed.begin());
      }
      const int n = 1 + static_cast<int>(rng() % 4);
      const auto rows = unit_rows(rng, n, c.dim);
      std::vector<float> ws;
      if (weighted) for (int i = 0; i < n; ++i) ws.push_back(w(rng));
      ASSERT_TRUE(live.add_person_rows(name, rows, ws, c.dim).ok());
      people.push_back(name);
      for (int i = 0; i < n; ++i) c.ids.push_back(name);
      c.rows.insert(c.rows.end(), rows.begin(), rows.end());
      c.weights.insert(c.weights.end(), ws.begin(), ws.end());
    } else if (op < 8) {  // more templates for an enrolled person
      const std::string& name = people[rng() % people.size()];
      const auto rows = unit_rows(rng, 1, c.dim);
      std::vector<float> ws;
      if (weighted) ws.push_back(w(rng));
      ASSERT_TRUE(live.add_person_rows(name, rows, ws).ok());
      c.ids.push_back(name);
      c.rows.insert(c.rows.end(), rows.begin(), rows.end());
      c.weights.insert(c.weights.end(), ws.begin(), ws.end());
    } else {  // remove a person
      const size_t k = rng() % people.size();
      const std::string name = people[k];
      people.erase(people.begin() + static_cast<std::ptrdiff_t>(k));
      ASSERT_TRUE(live.remove_person(name).ok());
      std::vector<std::string> ids;
      std::vector<float> rows, weights;
      for (size_t r = 0; r < c.ids.size(); ++r) {
        if (c.ids[r] == name) {
          if (!c.removed.count(name))
            c.removed[name].assign(c.rows.begin() + static_cast<std::ptrdiff_t>(r * c.dim),
                                   c.rows.begin() + static_cast<std::ptrdiff_t>((r + 1) * c.dim));
          continue;
        }
        ids.push_back(c.ids[r]);
        rows.insert(rows.end(), c.rows.begin() + static_cast<std::ptrdiff_t>(r * c.dim),
                    c.rows.begin() + static_cast<std::ptrdiff_t>((r + 1) * c.dim));
        if (weighted) weights.push_back(c.weights[r]);
      }
      c.ids = std::move(ids);
      c.rows = std::move(rows);
      c.weights = std::move(weights);
    }
  }
}

// Probes: noisy copies of live rows (a clear best person) and random directions.
std::vector<float> probes(const Churn& c, int n, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> g(0.f, 0.05f);
  std::vector<float> out = unit_rows(rng, n, c.dim);
  for (int q = 0; q < n / 2; ++q) {
    const size_t r = rng() % c.ids.size();
    double ss = 0;
    for (int i = 0; i < c.dim; ++i) ss += double(out[q * c.dim + i] = c.rows[r * c.dim + i] + g(rng)) * out[q * c.dim + i];
    for (int i = 0; i < c.dim; ++i) out[q * c.dim + i] = static_cast<float>(out[q * c.dim + i] / std::sqrt(ss));
  }
  return out;
}

class IndexChurn : public ::testing::TestWithParam<TemplateRule> {};

TEST_P(IndexChurn, ExactEqualsAFreshBuildAndForgetsTheRemoved) {
  const TemplateRule rule = GetParam();
  SearchIndex live(rule);
  Churn c;
  churn(live, c, rule, 31, 1500);
  ASSERT_GT(c.removed.size(), 50u);  // enough removals to have closed the holes several times
  const SearchIndex fresh = build(c.dim, c.ids, c.rows, rule, c.weights);
  ASSERT_EQ(live.size(), fresh.size());
  ASSERT_EQ(live.people(), fresh.people());
  EXPECT_EQ(live.person_names(), fresh.person_names());
  EXPECT_EQ(live.people_rows(), fresh.people_rows());
  EXPECT_EQ(live.content_sha256(), fresh.content_sha256());
  const int nq = 60;
  const std::vector<float> q = probes(c, nq, 5);
  for (int i = 0; i < nq; ++i) {
    const std::span<const float> query(q.data() + i * c.dim, c.dim);
    const auto a = answer(live.search(query, 20)), b = answer(fresh.search(query, 20));
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) {
      EXPECT_EQ(a[k].identity, b[k].identity) << "probe " << i << " rank " << k;
      EXPECT_NEAR(a[k].similarity, b[k].similarity, 1e-6) << "probe " << i << " rank " << k;
    }
    // The plain twin on the updated index (holes and reused slots included).
    const auto fast = answer(live.score_people(query)), ref = answer(live.score_people_reference(query));
    ASSERT_EQ(fast.size(), live.people());
    ASSERT_EQ(ref.size(), live.people());
    for (size_t p = 0; p < fast.size(); ++p) EXPECT_NEAR(fast[p], ref[p], 1e-5) << p;
    const auto rref = answer(live.search_reference(query, 20));
    ASSERT_EQ(rref.size(), a.size());
    for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(rref[k].similarity, a[k].similarity, 1e-5);
  }
  // A removed person is never returned, not even for their own template.
  for (const auto& [name, row] : c.removed)
    for (const auto& cand : answer(live.search(row, static_cast<int>(live.people()))))
      ASSERT_NE(cand.identity, name);
}

TEST_P(IndexChurn, HnswAnswersAsAFreshBuildAndForgetsTheRemoved) {
  const TemplateRule rule = GetParam();
  // Starts approximate (kHnsw) and stays so through every update.
  SearchIndex live(rule);
  Churn c;
  std::vector<float> seed_rows;
  {
    std::mt19937 rng(3);
    seed_rows = unit_rows(rng, 1, c.dim);
  }
  const std::vector<float> w1 = {1.f};
  const bool weighted = rule == TemplateRule::kMean || rule == TemplateRule::kMeanScore;
  ASSERT_TRUE(live.add_person_rows("seed", seed_rows, weighted ? std::span<const float>(w1) : std::span<const float>(),
                                   c.dim).ok());
  c.ids.push_back("seed");
  c.rows = seed_rows;
  if (weighted) c.weights.push_back(1.f);
  const std::string path = testing::temp_dir("churn") + "/g.db.hnsw";
  ASSERT_TRUE(live.set_mode(IndexMode::kHnsw, path).ok());
  ASSERT_TRUE(live.approximate());
  churn(live, c, rule, 47, 1200);
  ASSERT_TRUE(live.approximate());
  ASSERT_GT(c.removed.size(), 50u);
  SearchIndex fresh = build(c.dim, c.ids, c.rows, rule, c.weights);
  EXPECT_EQ(live.content_sha256(), fresh.content_sha256());
  const int nq = 60;
  const std::vector<float> q = probes(c, nq, 9);
  size_t same10 = 0;
  for (int i = 0; i < nq; ++i) {
    const std::span<const float> query(q.data() + i * c.dim, c.dim);
    const auto a = answer(live.search(query, 10)), b = answer(fresh.search(query, 10));  // graph vs exact
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a[0].identity, b[0].identity) << "probe " << i;
    EXPECT_NEAR(a[0].similarity, b[0].similarity, 1e-5) << "probe " << i;
    std::set<std::string> truth;
    for (const auto& x : b) truth.insert(x.identity);
    for (const auto& x : a) same10 += truth.count(x.identity);
  }
  // A few hundred points, ef_search 128 and 64 people re-scored: the graph
  // finds the exact top 10 (all but a near-tie, at most).
  EXPECT_GE(double(same10) / (nq * 10.0), 0.99);
  for (const auto& [name, row] : c.removed)
    for (const auto& cand : answer(live.search(row, 10))) ASSERT_NE(cand.identity, name);
  // The graph updated in place is saved and loads as current for the fresh
  // index over the same rows, answering as it did.
  ASSERT_TRUE(live.save_if_dirty().ok());
  std::string what;
  ASSERT_TRUE(fresh.set_mode(IndexMode::kHnsw, path, {}, &what).ok());
  EXPECT_EQ(what, "loaded " + path);
  for (int i = 0; i < nq; ++i) {
    const std::span<const float> query(q.data() + i * c.dim, c.dim);
    const auto a = answer(live.search(query, 10)), b = answer(fresh.search(query, 10));
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) {
      EXPECT_EQ(a[k].identity, b[k].identity);
      EXPECT_NEAR(a[k].similarity, b[k].similarity, 1e-6);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, IndexChurn,
                         ::testing::Values(TemplateRule::kMax, TemplateRule::kMean, TemplateRule::kMeanScore,
                                           TemplateRule::kTop2Mean),
                         [](const ::testing::TestParamInfo<TemplateRule>& i) { return std::string(to_string(i.param)); });

TEST(IndexUpdateErrors, AreStatusesNotAborts) {
  SearchIndex idx;
  std::vector<float> row(4, 0.5f);
  EXPECT_EQ(idx.add_person_rows("a", row).code(), ErrorCode::kInvalidArgument);  // no dim yet
  ASSERT_TRUE(idx.add_person_rows("a", row, {}, 4).ok());
  EXPECT_EQ(idx.add_person_rows("a", std::vector<float>(3, 0.f)).code(), ErrorCode::kInvalidArgument);
  std::vector<float> w = {1.f};
  EXPECT_EQ(idx.add_person_rows("b", row, w).code(), ErrorCode::kInvalidArgument);  // unweighted index
  std::vector<float> nan(4, std::nanf(""));
  EXPECT_EQ(idx.add_person_rows("b", nan).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(idx.remove_person("zz").code(), ErrorCode::kNotFound);
  ASSERT_TRUE(idx.add_person_rows("b", row).ok());
  EXPECT_EQ(idx.rename_person("a", "b").code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(idx.rename_person("q", "c").code(), ErrorCode::kNotFound);
  // The checked search refuses a query of the wrong length.
  std::vector<float> q3(3, 0.f), q4(4, 0.5f);
  EXPECT_EQ(idx.search(std::span<const float>(q3), 5).status().code(), ErrorCode::kInvalidArgument);
  auto ok = idx.search(std::span<const float>(q4), 5);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 2u);
  auto rows = idx.people_rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::pair<std::string, int>("a", 1)));
  // A refused update changes nothing: rows of another dimension, and a
  // fresh index whose first add is refused keeps no dimension.
  const std::string before = idx.content_sha256();
  EXPECT_EQ(idx.add_person_rows("c", row, {}, 8).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(idx.content_sha256(), before);
  EXPECT_EQ(idx.people(), 2u);
  SearchIndex fresh;
  EXPECT_EQ(fresh.add_person_rows("a", nan, {}, 4).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(fresh.dim(), 0);
  EXPECT_EQ(fresh.people(), 0u);
}

}  // namespace
}  // namespace facerec
