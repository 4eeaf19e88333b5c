// The LFW open-set protocol and the impostor calibration's data (see
// facerec/eval_open_set.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include <cblas.h>

#include "facerec/eval_open_set.h"

namespace facerec::eval {

namespace {

// Fisher-Yates with mt19937_64 (whose output the standard fixes), so a seed
// gives the same split with every standard library.
template <class T>
void seeded_shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(rng() % i)]);
}

}  // namespace

bool is_calibration_person(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h % 3 == 0;
}

int trials_for_size(int gallery_size) {
  if (gallery_size <= 0 || gallery_size >= 1000) return 1;
  return std::clamp(1000 / gallery_size, 1, 100);
}

Result<OpenSetTrial> draw_open_set_trial(const std::vector<PersonImages>& people, int gallery_size,
                                         int templates_per_person, uint64_t seed) {
  if (templates_per_person < 1) return Status(ErrorCode::kInvalidArgument, "templates per person must be >= 1");
  std::vector<int> candidates;
  for (size_t p = 0; p < people.size(); ++p)
    if (static_cast<int>(people[p].images.size()) > templates_per_person) candidates.push_back(static_cast<int>(p));
  if (gallery_size < 0 || gallery_size > static_cast<int>(candidates.size()))
    return Status(ErrorCode::kInvalidArgument, "a gallery of " + std::to_string(gallery_size) + " people needs that many with >= " +
                                                   std::to_string(templates_per_person + 1) + " photos; there are " +
                                                   std::to_string(candidates.size()));
  std::mt19937_64 rng(seed);
  seeded_shuffle(candidates, rng);
  if (gallery_size > 0) candidates.resize(static_cast<size_t>(gallery_size));
  std::sort(candidates.begin(), candidates.end());
  std::vector<char> enrolled(people.size(), 0);
  OpenSetTrial t;
  for (int p : candidates) {
    enrolled[static_cast<size_t>(p)] = 1;
    std::vector<int> imgs = people[static_cast<size_t>(p)].images;
    seeded_shuffle(imgs, rng);
    const int slot = static_cast<int>(t.gallery.size());
    t.gallery.emplace_back(p, std::vector<int>(imgs.begin(), imgs.begin() + templates_per_person));
    for (size_t k = static_cast<size_t>(templates_per_person); k < imgs.size(); ++k) t.mated.emplace_back(imgs[k], slot);
  }
  for (size_t p = 0; p < people.size(); ++p)
    if (!enrolled[p])
      for (int i : people[p].images) t.unknown.push_back(i);
  return t;
}

Result<std::vector<SearchOutcome>> run_open_set_trial(const OpenSetTrial& trial, std::span<const ProbeTemplate> templates,
                                                      int dim, TemplateRule rule, bool quality_weighted) {
  // Gallery slots are named by zero-padded slot numbers, so the index's
  // name order is slot order and a score vector maps straight onto slots.
  auto slot_name = [](size_t s) {
    char b[32];
    std::snprintf(b, sizeof b, "%09zu", s);
    return std::string(b);
  };
  std::vector<std::string> ids;
  std::vector<float> rows, weights;
  std::vector<int> slot_of_person;  // index position -> slot
  std::vector<char> has_template(trial.gallery.size(), 0);
  for (size_t s = 0; s < trial.gallery.size(); ++s)
    for (int img : trial.gallery[s].second) {
      const ProbeTemplate& t = templates[static_cast<size_t>(img)];
      if (t.unit.empty()) continue;
      has_template[s] = 1;
      ids.push_back(slot_name(s));
      rows.insert(rows.end(), t.unit.begin(), t.unit.end());
      weights.push_back(std::max(t.quality, 1e-6f));
    }
  const bool weighted = (rule == TemplateRule::kMean || rule == TemplateRule::kMeanScore) && quality_weighted;
  FACEREC_ASSIGN_OR_RETURN(SearchIndex index,
                           SearchIndex::create(dim, ids, rows, rule, weighted ? weights : std::vector<float>{}));
  // Index position -> slot; slots without a template sit after them (their
  // probes are then misses, as score_search() counts a missing person).
  std::vector<int> position(trial.gallery.size());
  {
    int k = 0;
    for (size_t s = 0; s < trial.gallery.size(); ++s)
      if (has_template[s]) position[s] = k++;
    for (size_t s = 0; s < trial.gallery.size(); ++s)
      if (!has_template[s]) position[s] = k++;
  }
  // All probes in one batched search (sgemm), every person ranked; the
  // candidates' names give back each person's slot.
  std::vector<int> order;  // probe images: mated first, then unknown
  std::vector<int> truth;
  for (const auto& [img, slot] : trial.mated) {
    order.push_back(img);
    truth.push_back(position[static_cast<size_t>(slot)]);
  }
  for (int img : trial.unknown) {
    order.push_back(img);
    truth.push_back(-1);
  }
  std::vector<std::span<const float>> queries;
  std::vector<size_t> query_of;  // probe -> query index, or SIZE_MAX when failed
  for (int img : order) {
    const ProbeTemplate& t = templates[static_cast<size_t>(img)];
    query_of.push_back(t.unit.empty() ? SIZE_MAX : queries.size());
    if (!t.unit.empty()) queries.push_back(t.unit);
  }
  const int people = static_cast<int>(index.people());
  FACEREC_ASSIGN_OR_RETURN(const auto results, index.search_batch(queries, people));
  std::vector<SearchOutcome> out;
  out.reserve(order.size());
  std::vector<float> scores(static_cast<size_t>(people));
  for (size_t i = 0; i < order.size(); ++i) {
    if (query_of[i] == SIZE_MAX) {
      out.push_back(score_search({}, truth[i], /*failed=*/true));
      continue;
    }
    for (const Candidate& c : results[query_of[i]]) {
      const size_t slot = static_cast<size_t>(std::stoul(c.identity));
      scores[static_cast<size_t>(position[slot])] = c.similarity;
    }
    out.push_back(score_search(scores, truth[i]));
  }
  return out;
}

RatesAtThreshold rates_at_threshold(std::span<const SearchOutcome> searches, float t) {
  RatesAtThreshold r;
  for (const SearchOutcome& s : searches) {
    if (s.mated) {
      ++r.mated;
      r.hits += s.rank == 1 && s.mate_score >= t;
    } else {
      ++r.unknown;
      r.false_positives += s.top_score >= t;
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.fpir = r.unknown ? double(r.false_positives) / double(r.unknown) : nan;
  r.dir = r.mated ? double(r.hits) / double(r.mated) : nan;
  return r;
}

std::vector<std::vector<float>> impostor_scores(const std::vector<PersonImages>& people,
                                                std::span<const ProbeTemplate> templates, int dim, uint64_t seed,
                                                int64_t* pool_people) {
  std::mt19937_64 rng(seed);
  // The pool: one template per person (a seeded pick among the usable images).
  std::vector<int> pool_person;
  std::vector<float> pool;
  for (size_t p = 0; p < people.size(); ++p) {
    std::vector<int> usable;
    for (int i : people[p].images)
      if (!templates[static_cast<size_t>(i)].unit.empty()) usable.push_back(i);
    if (usable.empty()) continue;
    const int pick = usable[static_cast<size_t>(rng() % usable.size())];
    pool_person.push_back(static_cast<int>(p));
    const auto& u = templates[static_cast<size_t>(pick)].unit;
    pool.insert(pool.end(), u.begin(), u.end());
  }
  if (pool_people) *pool_people = static_cast<int64_t>(pool_person.size());
  const int m = static_cast<int>(pool_person.size());
  std::vector<std::vector<float>> out;
  std::vector<float> s(static_cast<size_t>(m));
  for (size_t p = 0; p < people.size(); ++p)
    for (int i : people[p].images) {
      const auto& u = templates[static_cast<size_t>(i)].unit;
      if (u.empty() || m == 0) continue;
      cblas_sgemv(CblasRowMajor, CblasNoTrans, m, dim, 1.f, pool.data(), dim, u.data(), 1, 0.f, s.data(), 1);
      std::vector<float> row;
      row.reserve(s.size());
      for (int k = 0; k < m; ++k)
        if (pool_person[static_cast<size_t>(k)] != static_cast<int>(p)) row.push_back(s[static_cast<size_t>(k)]);
      out.push_back(std::move(row));
    }
  return out;
}

}  // namespace facerec::eval
