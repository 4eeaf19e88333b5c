// Exact cosine 1:N search (see facerec/search.h).
//
// All rows and queries are unit vectors, so cosine similarity is the dot
// product: one sgemv (one query) or sgemm (many) over the N x dim row-major
// template matrix gives every row's score; a person's score is the max over
// their rows, or with row weights the weighted sum of their row scores over
// the norm of their weighted template sum (the cosine to the weighted mean
// template, by linearity). search_reference() computes the same with plain
// loops, building each person's mean template explicitly.
#include "facerec/search.h"
#include "index/hnsw_index.h"

#include <cblas.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <unordered_map>

namespace facerec {

namespace {

// Caps the Q x N score matrix of one sgemm at 64 MiB of floats; larger
// batches are searched in chunks of queries.
constexpr size_t kMaxBatchScores = size_t{16} << 20;

// OpenBLAS 0.3.21 maps a 128 MiB work buffer the first time a thread calls
// it, and when that mmap fails (an address-space limit, `ulimit -v`) it
// retries forever at 100% CPU, deaf to SIGTERM (memory.c, blas_memory_alloc's
// do/while). Probe the same mapping first; when it cannot be had, score with
// plain loops instead (no large buffer), so a search never hangs.
bool blas_buffer_available() {
  thread_local bool available = false;
  if (available) return true;  // OpenBLAS keeps the buffer it mapped
  constexpr size_t kBuffer = (size_t{128} << 20) + (size_t{1} << 20);
  void* p = ::mmap(nullptr, kBuffer, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  ::munmap(p, kBuffer);
  available = true;
  return true;
}

// scores[i] = rows[i] . query, for n rows of dim floats.
void dot_rows(const float* rows, size_t n, size_t dim, const float* query, float* scores) {
  for (size_t i = 0; i < n; ++i) {
    const float* r = rows + i * dim;
    float acc = 0.f;
    for (size_t j = 0; j < dim; ++j) acc += r[j] * query[j];
    scores[i] = acc;
  }
}

// The template rules' per-person combination, shared by person_scores()
// (every row at once) and score_person_rows() (one person's rows, the HNSW
// re-scoring). NaN scores never win a comparison, so such people rank last.
constexpr float kNoScore = -std::numeric_limits<float>::infinity();

// kMax / kTop2Mean: keeps a person's two best row scores.
inline void keep_best_two(float s, float& best, float& second) {
  if (s > best) {
    second = best;
    best = s;
  } else if (s > second) {
    second = s;
  }
}

// kTop2Mean: the mean of the two best row scores (the best alone for one row).
inline float top2_mean(float best, float second) { return second != kNoScore ? 0.5f * (best + second) : best; }

// kMean / kMeanScore: the weighted row-score sum times the person's scale.
inline float weighted_score(double weighted_sum, float inv_norm) { return static_cast<float>(weighted_sum * inv_norm); }

}  // namespace

const char* to_string(TemplateRule rule) {
  switch (rule) {
    case TemplateRule::kMax: return "max";
    case TemplateRule::kMean: return "mean";
    case TemplateRule::kTop2Mean: return "top2";
    case TemplateRule::kMeanScore: return "meanscore";
  }
  return "?";
}

Result<TemplateRule> parse_template_rule(const std::string& name) {
  if (name == "max") return TemplateRule::kMax;
  if (name == "mean") return TemplateRule::kMean;
  if (name == "top2") return TemplateRule::kTop2Mean;
  if (name == "meanscore") return TemplateRule::kMeanScore;
  return Status(ErrorCode::kInvalidArgument, "unknown template rule '" + name + "' (expected max, mean, meanscore or top2)");
}

Result<SearchIndex> SearchIndex::create(int dim, std::vector<std::string> row_identity, std::vector<float> rows,
                                        TemplateRule rule, std::vector<float> row_weight) {
  auto bad = [](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "building the search index: " + why);
  };
  if (dim <= 0) return bad("the dimension must be positive, not " + std::to_string(dim));
  const size_t d = static_cast<size_t>(dim);
  const size_t n = row_identity.size();
  if (rows.size() / d != n || rows.size() % d != 0)
    return bad(std::to_string(rows.size()) + " values are not " + std::to_string(n) + " rows (one per identity) of " +
               std::to_string(dim));
  if (n > size_t{UINT32_MAX}) return bad("the index holds at most 2^32 - 1 rows");
  for (size_t i = 0; i < rows.size(); ++i)
    if (!std::isfinite(rows[i])) return bad("row " + std::to_string(i / d) + " holds a non-finite value");
  const bool weighted = rule == TemplateRule::kMean || rule == TemplateRule::kMeanScore;
  if (weighted && !row_weight.empty()) {
    if (row_weight.size() != n)
      return bad(std::to_string(row_weight.size()) + " weights for " + std::to_string(n) + " rows");
    // A weight <= 0 or NaN would leave a person's template undefined.
    for (size_t r = 0; r < n; ++r)
      if (!(row_weight[r] > 0.f && std::isfinite(row_weight[r])))
        return bad("the weight of row " + std::to_string(r) + " must be finite and > 0");
  }
  try {
    return SearchIndex(dim, std::move(row_identity), std::move(rows), rule, std::move(row_weight));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("building the search index: ") + e.what());
  }
}

// The arguments are checked by create().
SearchIndex::SearchIndex(int dim, std::vector<std::string> row_identity, std::vector<float> rows, TemplateRule rule,
                         std::vector<float> row_weight)
    : dim_(dim), rule_(rule), rows_(std::move(rows)) {
  // A fresh index gives the people slots in name order.
  slot_name_ = row_identity;
  std::sort(slot_name_.begin(), slot_name_.end());
  slot_name_.erase(std::unique(slot_name_.begin(), slot_name_.end()), slot_name_.end());
  for (size_t i = 0; i < slot_name_.size(); ++i)
    slot_of_.emplace_hint(slot_of_.end(), slot_name_[i], static_cast<int32_t>(i));
  std::unordered_map<std::string, int32_t> index;
  index.reserve(slot_name_.size());
  for (size_t i = 0; i < slot_name_.size(); ++i) index.emplace(slot_name_[i], static_cast<int32_t>(i));
  slot_rows_.resize(slot_name_.size());
  row_person_.reserve(row_identity.size());
  for (const std::string& name : row_identity) {
    const int32_t p = index.at(name);
    slot_rows_[static_cast<size_t>(p)].push_back(static_cast<uint32_t>(row_person_.size()));
    row_person_.push_back(p);
  }
  live_rows_ = row_person_.size();
  if (!weighted()) return;
  if (row_weight.empty()) row_weight.assign(row_identity.size(), 1.f);
  row_weight_ = std::move(row_weight);
  build_person_templates();
}

void SearchIndex::build_person_templates() {
  person_inv_norm_.assign(slot_name_.size(), 0.f);
  std::vector<double> scratch(rule_ == TemplateRule::kMean ? static_cast<size_t>(dim_) : 0);
  for (size_t p = 0; p < slot_name_.size(); ++p)
    if (!slot_rows_[p].empty()) update_person_norm(static_cast<int32_t>(p), scratch);
}

// Allocates nothing: `sum` holds dim() doubles for kMean.
void SearchIndex::update_person_norm(int32_t slot, std::vector<double>& sum) noexcept {
  // Over the person's rows in row order, in double: the same sums whether
  // the index was built at once or grew by updates.
  const size_t d = static_cast<size_t>(dim_);
  const auto& rows = slot_rows_[static_cast<size_t>(slot)];
  float& inv = person_inv_norm_[static_cast<size_t>(slot)];
  if (rule_ == TemplateRule::kMeanScore) {  // 1 / sum_r w_r
    double total = 0;
    for (uint32_t r : rows) total += row_weight_[r];
    inv = total > 0 ? static_cast<float>(1.0 / total) : 0.f;
    return;
  }
  std::fill(sum.begin(), sum.end(), 0.0);  // kMean: 1 / |sum_r w_r u_r|
  for (uint32_t r : rows) {
    const float* u = rows_.data() + size_t{r} * d;
    const double w = row_weight_[r];
    for (size_t i = 0; i < d; ++i) sum[i] += w * u[i];
  }
  double n2 = 0;
  for (size_t i = 0; i < d; ++i) n2 += sum[i] * sum[i];
  // Templates that cancel exactly (opposite faces) leave no direction: score 0.
  inv = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.f;
}

Result<SearchIndex> SearchIndex::from_stored(int dim, const std::vector<PersonInfo>& people,
                                             const std::vector<StoredTemplate>& templates, TemplateRule rule,
                                             bool weight_by_norm) {
  weight_by_norm = weight_by_norm && (rule == TemplateRule::kMean || rule == TemplateRule::kMeanScore);
  try {
    if (dim < 0) return Status(ErrorCode::kInvalidArgument, "building the search index: negative dimension");
    std::unordered_map<int64_t, std::string> names;
    for (const PersonInfo& p : people) names.emplace(p.id, p.name);

    std::vector<std::string> row_identity;
    std::vector<float> rows, weights;
    row_identity.reserve(templates.size());
    rows.reserve(templates.size() * static_cast<size_t>(dim));
    for (const StoredTemplate& t : templates) {
      auto it = names.find(t.person_id);
      if (it == names.end()) continue;  // removed between the two reads
      if (static_cast<int>(t.unit.size()) != dim)
        return Status(ErrorCode::kDatabase, "template " + std::to_string(t.id) + " has " +
                                                std::to_string(t.unit.size()) + " values, expected " +
                                                std::to_string(dim));
      row_identity.push_back(it->second);
      rows.insert(rows.end(), t.unit.begin(), t.unit.end());
      // A stored norm of 0 or NaN (an imported text row) must not be refused
      // by create(): it weighs as little as possible instead.
      if (weight_by_norm) weights.push_back(std::isfinite(t.norm) && t.norm > 1e-6f ? t.norm : 1e-6f);
    }
    if (dim == 0 && row_identity.empty()) return SearchIndex(rule);
    return create(dim, std::move(row_identity), std::move(rows), rule, std::move(weights));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("building the search index: ") + e.what());
  }
}

std::vector<std::string> SearchIndex::person_names() const {
  std::vector<std::string> out;
  out.reserve(slot_of_.size());
  for (const auto& [name, slot] : slot_of_) out.push_back(name);
  return out;
}

std::vector<float> SearchIndex::by_name_order(const std::vector<float>& slot_scores) const {
  std::vector<float> out;
  out.reserve(slot_of_.size());
  for (const auto& [name, slot] : slot_of_) out.push_back(slot_scores[static_cast<size_t>(slot)]);
  return out;
}

// Per slot (free slots: whatever their empty sums give; rank_people skips them).
std::vector<float> SearchIndex::person_scores(const float* scores) const {
  const size_t n_slots = slot_name_.size();
  const size_t n_rows = row_person_.size();
  if (rule_ == TemplateRule::kMean || rule_ == TemplateRule::kMeanScore) {
    std::vector<double> acc(n_slots, 0.0);
    for (size_t r = 0; r < n_rows; ++r)
      if (row_person_[r] >= 0) acc[static_cast<size_t>(row_person_[r])] += double(row_weight_[r]) * scores[r];
    std::vector<float> score(n_slots);
    for (size_t p = 0; p < n_slots; ++p) score[p] = weighted_score(acc[p], person_inv_norm_[p]);
    return score;
  }
  std::vector<float> best(n_slots, kNoScore);
  if (rule_ == TemplateRule::kMax) {
    for (size_t r = 0; r < n_rows; ++r) {
      if (row_person_[r] < 0) continue;
      float& b = best[static_cast<size_t>(row_person_[r])];
      if (scores[r] > b) b = scores[r];
    }
    return best;
  }
  // kTop2Mean: keep each person's two best row scores.
  std::vector<float> second(n_slots, kNoScore);
  for (size_t r = 0; r < n_rows; ++r) {
    if (row_person_[r] < 0) continue;
    const size_t p = static_cast<size_t>(row_person_[r]);
    keep_best_two(scores[r], best[p], second[p]);
  }
  for (size_t p = 0; p < n_slots; ++p) best[p] = top2_mean(best[p], second[p]);
  return best;
}

float SearchIndex::score_person_rows(size_t slot, const uint32_t* rows, size_t n, const float* query) const {
  const size_t d = static_cast<size_t>(dim_);
  auto dot = [&](uint32_t r) { return cblas_sdot(dim_, rows_.data() + size_t{r} * d, 1, query, 1); };
  if (rule_ == TemplateRule::kMean || rule_ == TemplateRule::kMeanScore) {
    double acc = 0;
    for (size_t i = 0; i < n; ++i) acc += double(row_weight_[rows[i]]) * dot(rows[i]);
    return weighted_score(acc, person_inv_norm_[slot]);
  }
  float best = kNoScore, second = kNoScore;
  for (size_t i = 0; i < n; ++i) keep_best_two(dot(rows[i]), best, second);
  return rule_ == TemplateRule::kTop2Mean ? top2_mean(best, second) : best;
}

std::vector<Candidate> SearchIndex::top_people(const float* scores, int top_k) const {
  return rank_people(person_scores(scores), top_k);
}

std::vector<Candidate> SearchIndex::rank_people(std::vector<float> best, int top_k) const {
  // The enrolled people's slots (free slots left out).
  std::vector<int32_t> order;
  order.reserve(slot_of_.size());
  for (size_t p = 0; p < slot_rows_.size(); ++p)
    if (!slot_rows_[p].empty()) order.push_back(static_cast<int32_t>(p));
  // A NaN (NaN query) would break the strict weak order below: rank it last.
  for (float& b : best)
    if (std::isnan(b)) b = -std::numeric_limits<float>::infinity();
  const size_t k = std::min(order.size(), static_cast<size_t>(top_k));
  // Higher similarity first; equal similarity by name.
  auto better = [&](int32_t a, int32_t b) {
    return best[a] > best[b] || (best[a] == best[b] && slot_name_[a] < slot_name_[b]);
  };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), better);
  std::vector<Candidate> out;
  out.reserve(k);
  for (size_t i = 0; i < k; ++i) out.push_back({slot_name_[order[i]], best[order[i]]});
  return out;
}

Status SearchIndex::check_query(std::span<const float> query, int top_k, const char* what) const {
  if (top_k < 0) return Status(ErrorCode::kInvalidArgument, std::string(what) + ": top_k must not be negative");
  if (dim_ > 0 && query.size() != static_cast<size_t>(dim_))
    return Status(ErrorCode::kInvalidArgument, std::string(what) + ": the query has " + std::to_string(query.size()) +
                                                   " values, the index holds " + std::to_string(dim_) + "-D rows");
  return Status::Ok();
}

namespace {

// Runs a query; an exception (hnswlib's, or out of memory) becomes kInternal.
template <class F>
auto guarded_query(const char* what, F&& f) -> Result<decltype(f())> {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string(what) + ": " + e.what());
  }
}

}  // namespace

Result<std::vector<Candidate>> SearchIndex::search(std::span<const float> query, int top_k) const {
  FACEREC_RETURN_IF_ERROR(check_query(query, top_k, "search"));
  return guarded_query("search", [&] { return search_unchecked(query.data(), top_k); });
}

Result<std::vector<Candidate>> SearchIndex::search_exact(std::span<const float> query, int top_k) const {
  FACEREC_RETURN_IF_ERROR(check_query(query, top_k, "search_exact"));
  return guarded_query("search_exact", [&] { return search_exact_unchecked(query.data(), top_k); });
}

Result<std::vector<Candidate>> SearchIndex::search_reference(std::span<const float> query, int top_k) const {
  FACEREC_RETURN_IF_ERROR(check_query(query, top_k, "search_reference"));
  return guarded_query("search_reference", [&]() -> std::vector<Candidate> {
    if (size() == 0 || top_k <= 0 || dim_ <= 0) return {};
    return rank_people(person_scores_reference(query.data()), top_k);
  });
}

Result<std::vector<std::vector<Candidate>>> SearchIndex::search_batch(
    std::span<const std::span<const float>> queries, int top_k) const {
  std::vector<const float*> q;
  q.reserve(queries.size());
  for (size_t i = 0; i < queries.size(); ++i) {
    const Status s = check_query(queries[i], top_k, "search_batch");
    if (!s.ok()) return Status(s.code(), s.message() + " (query " + std::to_string(i) + ")");
    q.push_back(queries[i].data());
  }
  return guarded_query("search_batch", [&] { return search_batch_unchecked(q, top_k); });
}

Result<std::vector<float>> SearchIndex::score_people(std::span<const float> query) const {
  FACEREC_RETURN_IF_ERROR(check_query(query, 0, "score_people"));
  return guarded_query("score_people", [&]() -> std::vector<float> {
    if (size() == 0 || dim_ <= 0) return {};
    const size_t n = row_person_.size();
    std::vector<float> scores(n);
    if (blas_buffer_available())
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(n), dim_, 1.0f, rows_.data(), dim_, query.data(),
                  1, 0.0f, scores.data(), 1);
    else
      dot_rows(rows_.data(), n, static_cast<size_t>(dim_), query.data(), scores.data());
    return by_name_order(person_scores(scores.data()));
  });
}

Result<std::vector<float>> SearchIndex::score_people_reference(std::span<const float> query) const {
  FACEREC_RETURN_IF_ERROR(check_query(query, 0, "score_people_reference"));
  return guarded_query("score_people_reference", [&]() -> std::vector<float> {
    if (size() == 0 || dim_ <= 0) return {};
    return by_name_order(person_scores_reference(query.data()));
  });
}

std::vector<Candidate> SearchIndex::search_unchecked(const float* query, int top_k) const {
  // A non-finite query (NaN) would break the graph's ordering: exact ranks it.
  if (ann_ && top_k > 0 && std::all_of(query, query + dim_, [](float v) { return std::isfinite(v); }))
    return ann_->search(*this, query, top_k);
  return search_exact_unchecked(query, top_k);
}

std::vector<Candidate> SearchIndex::search_exact_unchecked(const float* query, int top_k) const {
  if (size() == 0 || top_k <= 0 || dim_ <= 0) return {};
  const size_t n = row_person_.size();  // holes included: their scores are ignored
  std::vector<float> scores(n);
  // scores = rows_ (N x dim) * query (dim).
  if (!blas_buffer_available()) {
    dot_rows(rows_.data(), n, static_cast<size_t>(dim_), query, scores.data());
    return top_people(scores.data(), top_k);
  }
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(n), dim_, 1.0f, rows_.data(), dim_, query, 1,
              0.0f, scores.data(), 1);
  return top_people(scores.data(), top_k);
}

std::vector<std::vector<Candidate>> SearchIndex::search_batch_unchecked(const std::vector<const float*>& queries,
                                                                        int top_k) const {
  std::vector<std::vector<Candidate>> out(queries.size());
  if (size() == 0 || top_k <= 0 || dim_ <= 0 || queries.empty()) return out;
  if (ann_) {
    for (size_t i = 0; i < queries.size(); ++i) out[i] = search_unchecked(queries[i], top_k);
    return out;
  }
  const size_t n = row_person_.size();  // holes included: their scores are ignored
  const size_t d = static_cast<size_t>(dim_);
  const size_t chunk = std::max<size_t>(1, kMaxBatchScores / n);
  std::vector<float> q, scores;
  for (size_t start = 0; start < queries.size(); start += chunk) {
    const size_t m = std::min(chunk, queries.size() - start);
    // The queries are separate buffers; sgemm wants one m x dim matrix.
    q.resize(m * d);
    for (size_t i = 0; i < m; ++i) std::copy(queries[start + i], queries[start + i] + d, q.begin() + i * d);
    scores.resize(m * n);
    // scores (m x N) = q (m x dim) * rows_^T (dim x N).
    if (blas_buffer_available()) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m), static_cast<blasint>(n), dim_,
                  1.0f, q.data(), dim_, rows_.data(), dim_, 0.0f, scores.data(), static_cast<blasint>(n));
    } else {
      for (size_t i = 0; i < m; ++i) dot_rows(rows_.data(), n, d, q.data() + i * d, scores.data() + i * n);
    }
    for (size_t i = 0; i < m; ++i) out[start + i] = top_people(scores.data() + i * n, top_k);
  }
  return out;
}

// The plain-loop twin of person_scores(): every live row's cosine from its
// own loop, per slot, and for kMean each person's mean template built
// explicitly.
std::vector<float> SearchIndex::person_scores_reference(const float* query) const {
  const size_t d = static_cast<size_t>(dim_);
  const size_t n_slots = slot_name_.size();
  const size_t n_rows = row_person_.size();
  if (rule_ == TemplateRule::kMeanScore) {
    // Each row's cosine, averaged per person with the row weights.
    std::vector<double> sum(n_slots, 0.0), weight(n_slots, 0.0);
    for (size_t r = 0; r < n_rows; ++r) {
      if (row_person_[r] < 0) continue;
      double s = 0;
      for (size_t i = 0; i < d; ++i) s += static_cast<double>(rows_[r * d + i]) * query[i];
      sum[static_cast<size_t>(row_person_[r])] += row_weight_[r] * s;
      weight[static_cast<size_t>(row_person_[r])] += row_weight_[r];
    }
    std::vector<float> score(n_slots, 0.f);
    for (size_t p = 0; p < n_slots; ++p)
      if (weight[p] > 0) score[p] = static_cast<float>(sum[p] / weight[p]);
    return score;
  }
  if (rule_ == TemplateRule::kMean) {
    // Independently of top_people(): build each person's weighted mean
    // template, normalise it, and take its cosine with the query.
    std::vector<double> t(n_slots * d, 0.0);
    for (size_t r = 0; r < n_rows; ++r) {
      if (row_person_[r] < 0) continue;
      double* tp = t.data() + static_cast<size_t>(row_person_[r]) * d;
      for (size_t i = 0; i < d; ++i) tp[i] += double(row_weight_[r]) * rows_[r * d + i];
    }
    std::vector<float> score(n_slots, 0.f);
    for (size_t p = 0; p < n_slots; ++p) {
      double n2 = 0, dot = 0;
      for (size_t i = 0; i < d; ++i) {
        n2 += t[p * d + i] * t[p * d + i];
        dot += t[p * d + i] * query[i];
      }
      score[p] = n2 > 0 ? static_cast<float>(dot / std::sqrt(n2)) : 0.f;
    }
    return score;
  }
  // Each person's row scores, sorted: the best, or the mean of the two best.
  std::vector<std::vector<float>> per_person(n_slots);
  for (size_t r = 0; r < n_rows; ++r) {
    if (row_person_[r] < 0) continue;
    double s = 0;
    for (size_t i = 0; i < d; ++i) s += static_cast<double>(rows_[r * d + i]) * query[i];
    per_person[static_cast<size_t>(row_person_[r])].push_back(static_cast<float>(s));
  }
  std::vector<float> score(n_slots, kNoScore);
  for (size_t p = 0; p < n_slots; ++p) {
    auto& v = per_person[p];
    if (v.empty()) continue;  // a free slot
    std::sort(v.begin(), v.end(), [](float a, float b) { return a > b; });
    if (rule_ == TemplateRule::kMax || v.size() == 1) score[p] = v[0];
    else score[p] = 0.5f * (v[0] + v[1]);
  }
  return score;
}

Decision decide(std::vector<Candidate> candidates, float threshold) {
  Decision d;
  // Do not rely on the order we were given: the best is the highest
  // similarity, ties by name as in search().
  auto best = std::max_element(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.similarity < b.similarity || (a.similarity == b.similarity && a.identity > b.identity);
  });
  if (best != candidates.end()) {
    d.similarity = best->similarity;
    // NaN similarity or threshold compares false: unknown.
    if (best->similarity >= threshold) d.identity = best->identity;
  }
  d.candidates = std::move(candidates);
  return d;
}

}  // namespace facerec
