// Exact cosine 1:N search over all gallery templates.
//
// The matrix of templates is searched with one BLAS sgemv/sgemm; each person
// scores as their best template. search_reference() is the plain-loop twin
// the tests compare against.
// Thread safety: search() is const; the index is immutable after build.
#pragma once

#include <cstdint>
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
  SearchIndex(int dim, std::vector<std::string> row_identity, std::vector<float> rows);
  static Result<SearchIndex> from_gallery(const Gallery& gallery);

  int dim() const { return dim_; }
  size_t size() const { return row_person_.size(); }
  size_t people() const { return names_.size(); }

  // Top-k people for one unit query, best first (each person = max over templates).
  std::vector<Candidate> search(const float* query, int top_k) const;
  // Same for many queries at once (one sgemm).
  std::vector<std::vector<Candidate>> search_batch(const std::vector<const float*>& queries, int top_k) const;
  std::vector<Candidate> search_reference(const float* query, int top_k) const;

 private:
  std::vector<Candidate> top_people(const float* scores, int top_k) const;
  int dim_ = 0;
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
