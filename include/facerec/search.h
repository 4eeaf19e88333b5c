// Exact cosine 1:N search over all gallery templates.
//
// The matrix of templates is searched with one BLAS sgemv/sgemm. Each person
// scores as their best template, or, when the index has row weights, as the
// cosine to their quality-weighted mean template (see the constructor).
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
  SearchIndex(int dim, std::vector<std::string> row_identity, std::vector<float> rows,
              std::vector<float> row_weight = {});
  // weight_by_norm: weight every template by its stored raw norm, which is
  // the face quality for embedders flagged quality: magnitude (MagFace).
  // Other embedders' norms are not a quality; leave it false for them.
  static Result<SearchIndex> from_gallery(const Gallery& gallery, bool weight_by_norm = false);
  bool weighted() const { return !person_inv_norm_.empty(); }

  int dim() const { return dim_; }
  size_t size() const { return row_person_.size(); }
  size_t people() const { return names_.size(); }

  // Top-k people for one unit query, best first (each person = max over templates).
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
  std::vector<Candidate> top_people(const float* scores, int top_k) const;
  std::vector<Candidate> rank_people(std::vector<float> person_score, int top_k) const;
  void update_person_norm(int32_t person);
  int dim_ = 0;
  std::vector<float> row_weight_;      // empty = unweighted (max over templates)
  std::vector<float> person_inv_norm_; // 1 / |sum_r w_r u_r| per person, when weighted
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
