// Cosine 1:N search over all gallery templates: exact, or through an HNSW
// graph whose candidates are re-scored exactly (IndexMode).
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
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "facerec/status.h"
#include "facerec/template_records.h"

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

// Which search answers queries (`--index exact|hnsw|auto`, config key "index").
//   kExact: every template is scored (BLAS), the oracle.
//   kHnsw:  an HNSW graph (hnswlib) proposes candidate people, and those are
//           re-scored exactly with the index's TemplateRule, so every returned
//           similarity is the exact one; only a person the graph misses can be
//           missing (recall, measured against kExact in BENCHMARKS.md).
//   kAuto:  kExact below kAutoHnswTemplates templates, kHnsw from there on,
//           switching as enrolment and removal cross it.
enum class IndexMode { kExact, kHnsw, kAuto };
const char* to_string(IndexMode mode);  // "exact", "hnsw", "auto"
// Parses "exact", "hnsw" or "auto" (kInvalidArgument otherwise, naming the options).
Result<IndexMode> parse_index_mode(const std::string& name);
// The gallery size (templates) from which kAuto uses HNSW. Chosen by
// measurement (BENCHMARKS.md, "Approximate index (issue 10, part 3)"): from
// here exact search costs more per query than the HNSW index's p99, and the
// one-off graph build stays short. Defined in src/index/hnsw_index.cc.
extern const size_t kAutoHnswTemplates;

// HNSW parameters (hnswlib's names). What the graph indexes follows the rule:
// kMean and kMeanScore index one point per person (the vector whose dot
// product with a query IS the person's score: the normalised mean template,
// or the plain weighted mean); kMax and kTop2Mean index every template.
struct HnswOptions {
  int m = 16;                 // links per node (32 on the base layer)
  int ef_construction = 100;  // candidate list while inserting
  int ef_search = 128;        // candidate list while searching (>= the points asked for)
  // People re-scored exactly per query: max(top_k, rerank). The graph is
  // asked for this many points.
  int rerank = 64;
};

struct Candidate {
  std::string identity;
  float similarity = 0.f;  // cosine, -1..1
};

class ApproxIndex;  // src/index/hnsw_index.h

class SearchIndex {
 public:
  // An empty index without a dimension (rule kMax): the first
  // add_person_rows() that gives a dim sets it.
  SearchIndex();
  // The same with an explicit template rule.
  explicit SearchIndex(TemplateRule rule);
  ~SearchIndex();
  SearchIndex(SearchIndex&&) noexcept;
  SearchIndex& operator=(SearchIndex&&) noexcept;
  // Move-only: the HNSW graph is not copied.
  SearchIndex(const SearchIndex&) = delete;
  SearchIndex& operator=(const SearchIndex&) = delete;

  // Builds from rows of unit vectors: row r, the floats
  // rows[r * dim, (r + 1) * dim), is a template of person row_identity[r].
  //
  // row_weight (optional; empty = every row weighs 1): one weight per row,
  // e.g. the face quality of each template, used by kMean and kMeanScore only
  // (the other rules ignore it). With weights a person is aggregated into one
  // template, t_p = sum_r w_r u_r / |sum_r w_r u_r|, and kMean scores
  // cos(query, t_p): good faces dominate the person, blurred or tiny ones
  // count little, instead of one lucky poor template deciding (the max).
  // Computed as sum_r w_r s_r / |sum_r w_r u_r| from the same row scores.
  //
  // kInvalidArgument, naming the problem, when dim <= 0, rows.size() is not
  // row_identity.size() * dim, a value is not finite, or (for kMean and
  // kMeanScore) row_weight is neither empty nor one finite weight > 0 per row.
  static Result<SearchIndex> create(int dim, std::vector<std::string> row_identity, std::vector<float> rows,
                                    TemplateRule rule = TemplateRule::kMax, std::vector<float> row_weight = {});
  // From a gallery's people and templates (read in one snapshot, so a
  // caller that needs them too reads the gallery once): templates of a
  // person not in `people` are skipped (removed between the reads).
  // weight_by_norm: weight every template by its stored raw norm, which is
  // the face quality for embedders flagged quality: magnitude (MagFace);
  // it only matters for kMean and kMeanScore, and other embedders' norms are
  // not a quality (leave it false for them). A norm of 0 or NaN (an imported
  // text row) weighs as little as possible (1e-6).
  // kDatabase when a template's length is not `dim`; kInvalidArgument when
  // dim < 0 or create() refuses the rows (a non-finite value). dim == 0
  // without templates is an empty index without a dimension.
  static Result<SearchIndex> from_stored(int dim, const std::vector<PersonInfo>& people,
                                         const std::vector<StoredTemplate>& templates, TemplateRule rule,
                                         bool weight_by_norm);
  // Whether templates carry weights: the rules kMean and kMeanScore.
  bool weighted() const { return rule_ == TemplateRule::kMean || rule_ == TemplateRule::kMeanScore; }
  TemplateRule rule() const { return rule_; }

  int dim() const { return dim_; }
  size_t size() const { return live_rows_; }  // templates
  size_t people() const { return slot_of_.size(); }
  // The enrolled people, sorted by name: the order of score_people(). O(people).
  std::vector<std::string> person_names() const;

  // ---- Queries ----------------------------------------------------------------
  // A query is a unit vector of dim() floats. Every query call checks it:
  // kInvalidArgument when its length is not dim() (any length is accepted,
  // and answered with nothing, while the index has no dimension yet), or
  // top_k < 0. top_k 0 gives nothing. A NaN query ranks everyone last.
  // kInternal if the HNSW graph fails (hnswlib's exceptions stop here).
  //
  // Every person's score for one query under the index's rule, in
  // person_names() order (empty for an empty index).
  Result<std::vector<float>> score_people(std::span<const float> query) const;
  // The plain-loop twin of score_people().
  Result<std::vector<float>> score_people_reference(std::span<const float> query) const;
  // Top-k people, best first (each person scored by the rule; ties by
  // name). Through the HNSW graph when approximate() is true, else exact.
  Result<std::vector<Candidate>> search(std::span<const float> query, int top_k) const;
  // Always the exact search (the oracle), whatever the index mode.
  Result<std::vector<Candidate>> search_exact(std::span<const float> query, int top_k) const;
  // The plain-loop twin of search_exact().
  Result<std::vector<Candidate>> search_reference(std::span<const float> query, int top_k) const;
  // search() for many queries at once, one result per query in order (one
  // sgemm when exact; one graph query each when approximate). One query of
  // the wrong length fails the whole call, naming it.
  Result<std::vector<std::vector<Candidate>>> search_batch(std::span<const std::span<const float>> queries,
                                                           int top_k) const;

  // ---- In-place updates (src/index/search_update.cc) -------------------------
  // Each costs O(the person's rows * dim) plus O(log people) for the name,
  // whatever the gallery's size (amortised: the row matrix grows by doubling,
  // and a removal leaves holes that are closed in one O(rows) pass once they
  // pass 1/8 of the rows); with the HNSW graph, its insertions on top.
  // Nothing is re-read from the gallery. The result answers as an index built
  // from scratch over the same rows (tested against that).
  // A refused update (a Status) changes nothing. If the HNSW graph fails
  // while following an update (an exception from hnswlib, out of memory),
  // the graph is dropped and the update still holds: searches are exact
  // until the next update or set_mode() rebuilds it.
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
  // Rows of removed people not yet closed up (they cost search time, not answers).
  size_t holes() const { return row_person_.size() - live_rows_; }

  // ---- The approximate index (src/index/hnsw_index.cc) ------------------------
  // Chooses the search mode. For kHnsw, and kAuto at or above
  // kAutoHnswTemplates, the graph is loaded from `persist_path` when that file
  // is intact (its SHA-256 checks) and records this index's exact content
  // (content_sha256(), the rule, dim and the options), else built and, when
  // persist_path is not empty, saved there (written to a temporary file and
  // renamed). A damaged or stale file is never used: it is rebuilt and
  // replaced.
  // kInvalidArgument for bad options; kIo when the file cannot be written
  // (the built graph is used all the same: the index is then still searchable);
  // kInternal when the graph cannot be built (the index is then exact).
  // *what (optional) says what happened: "exact", "loaded <file>", "built",
  // or "rebuilt: <file> <reason>" (missing, damaged, stale).
  Status set_mode(IndexMode mode, const std::string& persist_path = "", const HnswOptions& options = {},
                  std::string* what = nullptr);
  IndexMode mode() const { return mode_; }
  // Whether search() goes through the HNSW graph now.
  bool approximate() const;
  // Writes the graph to its persist_path when in-place updates changed it
  // since it was loaded or saved (no-op otherwise, or without a graph).
  Status save_if_dirty();
  // SHA-256 (hex) of what the index holds: dim, rule, names, the rows'
  // people, the rows and the weights. Equal for an index updated in place and
  // one built from scratch over the same gallery.
  std::string content_sha256() const;

 private:
  SearchIndex(int dim, std::vector<std::string> row_identity, std::vector<float> rows, TemplateRule rule,
              std::vector<float> row_weight);
  // kInvalidArgument (prefixed by `what`) unless the query fits the index.
  Status check_query(std::span<const float> query, int top_k, const char* what) const;
  // The unchecked queries: `query` holds dim() floats.
  std::vector<Candidate> search_unchecked(const float* query, int top_k) const;
  std::vector<Candidate> search_exact_unchecked(const float* query, int top_k) const;
  std::vector<std::vector<Candidate>> search_batch_unchecked(const std::vector<const float*>& queries,
                                                             int top_k) const;
  void build_person_templates();
  std::vector<float> person_scores(const float* row_scores) const;
  std::vector<float> person_scores_reference(const float* query) const;
  std::vector<Candidate> top_people(const float* scores, int top_k) const;
  std::vector<Candidate> rank_people(std::vector<float> person_score, int top_k) const;
  std::vector<float> by_name_order(const std::vector<float>& slot_scores) const;
  void update_person_norm(int32_t slot, std::vector<double>& sum) noexcept;
  void compact();
  void update_auto_mode() noexcept;
  friend class ApproxIndex;
  // The exact score of the person in `slot` for a unit query, from their
  // rows (indices into rows_): what score_people() gives them. The HNSW path
  // re-scores its candidates with this.
  float score_person_rows(size_t slot, const uint32_t* rows, size_t n, const float* query) const;
  int dim_ = 0;
  IndexMode mode_ = IndexMode::kExact;
  std::unique_ptr<ApproxIndex> ann_;  // the graph, when one is built
  std::string ann_path_;
  HnswOptions ann_options_;
  TemplateRule rule_ = TemplateRule::kMax;
  // The rows, in enrolment order: a row-major matrix that may hold holes (the
  // rows of removed people, row_person_ -1) until compact() closes them,
  // keeping the order of the others.
  std::vector<float> rows_;           // row_person_.size() x dim
  std::vector<int32_t> row_person_;   // row -> person slot, -1 = hole
  std::vector<float> row_weight_;     // kMean, kMeanScore: one weight per row
  size_t live_rows_ = 0;
  // People by slot: a person keeps their slot while enrolled; a removed
  // person's slot is reused by a later one. Ties in a ranking go by name.
  std::vector<std::string> slot_name_;
  std::vector<std::vector<uint32_t>> slot_rows_;  // the person's rows, ascending; empty = a free slot
  // kMean: 1 / |sum_r w_r u_r| per slot; kMeanScore: 1 / sum_r w_r.
  std::vector<float> person_inv_norm_;
  std::vector<int32_t> free_slots_;
  std::map<std::string, int32_t> slot_of_;  // name -> slot, in name order
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
