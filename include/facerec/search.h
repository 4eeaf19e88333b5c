// Exact cosine 1:N search over all gallery templates.
//
// The matrix of templates is searched with one BLAS sgemv/sgemm. How a
// person's templates combine into one score is the index's TemplateRule: their
// best template (kMax), the cosine to their (quality-weighted) mean template
// (kMean), the (weighted) mean of their template scores (kMeanScore), or the
// mean of their two best template scores (kTop2Mean).
// search_reference() is the plain-loop twin the tests compare against.
// Thread safety: the const calls (search*) may run together from many
// threads; add_person/remove_person/rename_person mutate and need the caller
// to exclude readers (FaceRecognizer holds a std::shared_mutex: shared for
// search, exclusive for updates, as hnswlib documents add_items vs knn_query).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "facerec/gallery.h"
#include "facerec/types.h"

namespace facerec {

// How a person's templates combine into the person's score for a query. The
// rule decides how a stranger's chance of matching grows with the number of
// templates a person has (see facerec/open_set.h and BENCHMARKS.md, "Open-set
// identification (issue 8)"): with kMax a person enrolled from 20 photos is 20
// chances for a stranger; with kMean the person is one template however many
// photos they have.
enum class TemplateRule {
  kMax,       // the best single template's cosine (facerec's original rule)
  kMean,      // the cosine to the normalised (optionally quality-weighted) mean template
  kTop2Mean,  // the mean of the two best template cosines; a person with one template scores it
  // The (optionally weighted) mean of the template cosines: the dot product
  // with the mean template left unnormalised. Averaging thins the impostor
  // tail, so more photos never make a person attract more strangers; the
  // normalised mean (kMean) lets about 18% more through (BENCHMARKS.md).
  kMeanScore,
};
const char* to_string(TemplateRule rule);  // "max", "mean", "top2", "meanscore"
// Parses "max", "mean", "top2" or "meanscore" (kInvalidArgument otherwise, naming the options).
Result<TemplateRule> parse_template_rule(const std::string& name);

struct Candidate {
  std::string identity;
  float similarity = 0.f;  // cosine, -1..1
};

class SearchIndex {
 public:
  SearchIndex() = default;
  // Builds from (person name, unit vector) rows; every row must have `dim` floats.
  //
  // row_weight (optional; empty = none): one weight > 0 per row, e.g. the
  // face quality of each template. With weights a person is aggregated into
  // one template, t_p = sum_r w_r u_r / |sum_r w_r u_r|, and scores
  // cos(query, t_p): good faces dominate the person, blurred or tiny ones
  // count little, instead of one lucky poor template deciding (the max).
  // Computed as sum_r w_r s_r / |sum_r w_r u_r| from the same row scores.
  // The rule is kMean when row_weight is given, else kMax.
  SearchIndex(int dim, std::vector<std::string> row_identity, std::vector<float> rows,
              std::vector<float> row_weight = {});
  // The same with an explicit rule. row_weight is used by kMean and
  // kMeanScore only (empty: every template weighs 1, the plain mean); the
  // other rules ignore it.
  SearchIndex(int dim, std::vector<std::string> row_identity, std::vector<float> rows, TemplateRule rule,
              std::vector<float> row_weight = {});
  // weight_by_norm: weight every template by its stored raw norm, which is
  // the face quality for embedders flagged quality: magnitude (MagFace).
  // Other embedders' norms are not a quality; leave it false for them.
  static Result<SearchIndex> from_gallery(const Gallery& gallery, bool weight_by_norm = false);
  // With an explicit rule; weight_by_norm only matters for kMean and kMeanScore.
  static Result<SearchIndex> from_gallery(const Gallery& gallery, TemplateRule rule, bool weight_by_norm);
  bool weighted() const { return !person_inv_norm_.empty(); }
  TemplateRule rule() const { return rule_; }

  int dim() const { return dim_; }
  size_t size() const { return row_person_.size(); }
  size_t people() const { return names_.size(); }
  // The enrolled people, sorted by name: the order of score_people().
  const std::vector<std::string>& person_names() const { return names_; }
  // Every person's score for one unit query under the index's rule, in
  // person_names() order (empty for an empty index).
  std::vector<float> score_people(const float* query) const;
  // The plain-loop twin of score_people().
  std::vector<float> score_people_reference(const float* query) const;

  // Top-k people for one unit query, best first (each person scored by the rule).
  std::vector<Candidate> search(const float* query, int top_k) const;
  // Same for many queries at once (one sgemm).
  std::vector<std::vector<Candidate>> search_batch(const std::vector<const float*>& queries, int top_k) const;
  std::vector<Candidate> search_reference(const float* query, int top_k) const;
  // Checked form: a query whose length is not dim() is kInvalidArgument.
  Result<std::vector<Candidate>> search(std::span<const float> query, int top_k) const;

  // ---- In-place updates (src/index/search_update.cc) -------------------------
  // Each costs O(rows) index bookkeeping and, for add, O(added rows * dim)
  // copying; nothing is re-read from the gallery. The result equals an index
  // built from scratch over the same rows (tested against that).
  //
  // Appends unit rows (rows.size() == n * dim(); a fresh, empty index takes
  // its dim from the first add when dim() is 0 and `dim` is given) to a
  // person, created when new. weights: empty for an unweighted index, else one
  // weight > 0 per row (and the index must already be weighted or be empty).
  Status add_person_rows(const std::string& name, std::span<const float> rows, std::span<const float> weights = {},
                         int dim = 0);
  // Drops every row of a person. kNotFound when absent.
  Status remove_person(const std::string& name);
  // kNotFound when `from` is absent, kAlreadyExists when `to` is present.
  Status rename_person(const std::string& from, const std::string& to);
  // Rows per person, in name order.
  std::vector<std::pair<std::string, int>> people_rows() const;

 private:
  void build_person_templates();
  std::vector<float> person_scores(const float* row_scores) const;
  std::vector<float> person_scores_reference(const float* query) const;
  std::vector<Candidate> top_people(const float* scores, int top_k) const;
  std::vector<Candidate> rank_people(std::vector<float> person_score, int top_k) const;
  void update_person_norm(int32_t person);
  int dim_ = 0;
  TemplateRule rule_ = TemplateRule::kMax;
  std::vector<float> row_weight_;      // kMean, kMeanScore: one weight per row
  // kMean: 1 / |sum_r w_r u_r| per person; kMeanScore: 1 / sum_r w_r.
  std::vector<float> person_inv_norm_;
  std::vector<float> rows_;           // size() x dim, row-major
  std::vector<int32_t> row_person_;   // row -> index in names_
  std::vector<std::string> names_;
};

// The decision: the best candidate if its similarity >= threshold, else
// unknown (empty optional-like: identity empty).
struct Decision {
  std::string identity;  // empty = unknown
  float similarity = 0.f;  // the best candidate's, also when unknown; 0 without candidates
  std::vector<Candidate> candidates;
  bool known() const { return !identity.empty(); }
};
Decision decide(std::vector<Candidate> candidates, float threshold);

}  // namespace facerec
