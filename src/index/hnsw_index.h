// Private to src/index: the HNSW graph behind SearchIndex's approximate mode
// (facerec/search.h, IndexMode::kHnsw). hnswlib is included by hnsw_index.cc
// only: its header defines non-inline functions, so it may appear in one
// translation unit of a binary.
//
// The graph proposes candidates; SearchIndex re-scores them exactly:
// - kMean / kMeanScore: one point per person, the vector whose dot product
//   with a query is the person's score (normalised weighted mean template, or
//   the weighted mean template). The graph's order is the exact order, up to
//   the graph's misses and float rounding.
// - kMax / kTop2Mean: one point per template; the people owning the nearest
//   templates are the candidates.
// Labels are stable ids (hnswlib's labeltype); label_slot_ maps them back to
// the person's slot in the SearchIndex (-1 once deleted), whose per-slot row
// lists re-scoring reads and whose slot names the saved file records. Every update costs
// the person's points only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "facerec/search.h"

namespace facerec {

// Dot product of two float vectors of length n. The plain loop, and the
// dispatched kernel (AVX-512 or AVX2+FMA when the CPU has them, else the
// plain loop) that the graph uses; tested against each other.
float inner_product_plain(const float* a, const float* b, size_t n);
float inner_product_fast(const float* a, const float* b, size_t n);

class ApproxIndex {
 public:
  ~ApproxIndex();
  // The graph over everything `index` holds.
  static std::unique_ptr<ApproxIndex> build(const SearchIndex& index, const HnswOptions& options);
  // Loads `path` for `index`. kNotFound: no file. kHashMismatch: the file is
  // damaged (checksum, layout). kMismatch: intact but stale (other content,
  // rule, dim or build options). Never returns a graph it cannot trust.
  static Result<std::unique_ptr<ApproxIndex>> load(const std::string& path, const SearchIndex& index,
                                                   const HnswOptions& options, const std::string& content_sha256);
  // Writes the graph of `index` to path + ".tmp", then renames over path.
  // load() and save() throw nothing (kInternal).
  Status save(const SearchIndex& index, const std::string& path, const std::string& content_sha256);

  // `query` holds dim floats. build(), search() and the on_*() updates may
  // throw (hnswlib's std::runtime_error, std::bad_alloc): SearchIndex
  // catches at its public calls.
  std::vector<Candidate> search(const SearchIndex& index, const float* query, int top_k) const;

  // After SearchIndex appended rows [first_row, first_row + n) to the person
  // in `slot` (and updated their norm).
  void on_add(const SearchIndex& index, int32_t slot, size_t first_row, size_t n);
  // When SearchIndex drops the person in `slot` (before the slot is freed).
  void on_remove(int32_t slot);
  // After SearchIndex renamed a person (the slot, and so its labels, stay).
  void on_rename();

  size_t live_points() const { return live_; }
  size_t deleted_points() const { return label_slot_.size() - live_; }
  bool people_points() const { return people_points_; }
  bool dirty() const { return dirty_; }
  void set_dirty() { dirty_ = true; }
  // Bytes the graph holds (vectors, links, label tables), for the benchmark.
  size_t memory_bytes() const;

 private:
  struct Graph;  // hnswlib's space and HierarchicalNSW
  static Result<std::unique_ptr<ApproxIndex>> load_unguarded(const std::string& path, const SearchIndex& index,
                                                             const HnswOptions& options,
                                                             const std::string& content_sha256);
  Status save_unguarded(const SearchIndex& index, const std::string& path, const std::string& content_sha256);
  ApproxIndex(const SearchIndex& index, const HnswOptions& options);
  std::vector<float> person_point(const SearchIndex& index, int32_t slot) const;
  std::vector<uint64_t>& labels_of(int32_t slot);
  std::vector<std::string> label_names(const SearchIndex& index) const;
  void add_point(const float* v, uint64_t label);

  int dim_ = 0;
  bool people_points_ = true;
  TemplateRule rule_ = TemplateRule::kMean;
  HnswOptions options_;
  std::unique_ptr<Graph> graph_;
  std::vector<int32_t> label_slot_;                // -1 once deleted
  std::vector<std::vector<uint64_t>> labels_of_;   // per SearchIndex slot
  size_t live_ = 0;
  bool dirty_ = false;
};

}  // namespace facerec
