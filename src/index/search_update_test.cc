// The in-place index updates against the oracle: an index built from scratch
// over the same rows, after every step of a random sequence of enrolments,
// removals and renames, weighted and unweighted.
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "facerec/search.h"

namespace facerec {
namespace {

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
  SearchIndex live = weighted ? SearchIndex(dim, {}, {}, TemplateRule::kMean) : SearchIndex();
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
    const SearchIndex rebuilt(dim, ids, rows, weights);
    ASSERT_EQ(live.size(), rebuilt.size());
    ASSERT_EQ(live.people(), rebuilt.people());
    for (int q = 0; q < 5; ++q) {
      const auto a = live.search(queries.data() + q * dim, 100);
      const auto b = rebuilt.search(queries.data() + q * dim, 100);
      ASSERT_EQ(a.size(), b.size());
      for (size_t k = 0; k < a.size(); ++k) {
        EXPECT_EQ(a[k].identity, b[k].identity) << "step " << step;
        EXPECT_NEAR(a[k].similarity, b[k].similarity, 1e-5) << "step " << step;
      }
    }
  }
}
INSTANTIATE_TEST_SUITE_P(WeightedOrNot, IndexUpdate, ::testing::Bool());

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
}

}  // namespace
}  // namespace facerec
