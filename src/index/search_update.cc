// In-place updates of a SearchIndex (see facerec/search.h): enrolment and
// removal change the rows of one person without rebuilding from the gallery.
// The scoring itself (search.cc) is untouched; these keep its invariants:
// names_ sorted, row_person_ indexing names_, and for a weighted index one
// 1/|sum w u| per person computed exactly as the constructor does.
#include <algorithm>
#include <cmath>

#include "facerec/search.h"
#include "index/hnsw_index.h"

namespace facerec {

void SearchIndex::update_person_norm(int32_t person) {
  const size_t d = static_cast<size_t>(dim_);
  if (rule_ == TemplateRule::kMeanScore) {  // 1 / sum_r w_r, as build_person_templates()
    double total = 0;
    for (size_t r = 0; r < row_person_.size(); ++r)
      if (row_person_[r] == person) total += row_weight_[r];
    person_inv_norm_[static_cast<size_t>(person)] = total > 0 ? static_cast<float>(1.0 / total) : 0.f;
    return;
  }
  std::vector<double> sum(d, 0.0);
  for (size_t r = 0; r < row_person_.size(); ++r) {
    if (row_person_[r] != person) continue;
    for (size_t i = 0; i < d; ++i) sum[i] += double(row_weight_[r]) * rows_[r * d + i];
  }
  double n2 = 0;
  for (size_t i = 0; i < d; ++i) n2 += sum[i] * sum[i];
  person_inv_norm_[static_cast<size_t>(person)] = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.f;
}

Status SearchIndex::add_person_rows(const std::string& name, std::span<const float> rows,
                                    std::span<const float> weights, int dim) {
  if (dim_ == 0 && size() == 0 && dim > 0) dim_ = dim;
  if (dim_ <= 0) return Status(ErrorCode::kInvalidArgument, "add to an index without a dimension");
  const size_t d = static_cast<size_t>(dim_);
  if (rows.empty() || rows.size() % d != 0)
    return Status(ErrorCode::kInvalidArgument, "add: " + std::to_string(rows.size()) +
                                                   " values are not a whole number of " + std::to_string(d) +
                                                   "-D rows");
  const size_t n = rows.size() / d;
  // kMean and kMeanScore keep one weight per row (1 when none is given);
  // kMax and kTop2Mean use none.
  const bool want_weights = rule_ == TemplateRule::kMean || rule_ == TemplateRule::kMeanScore;
  if (!want_weights && !weights.empty())
    return Status(ErrorCode::kInvalidArgument, std::string("add: this index's rule (") + to_string(rule_) +
                                                   ") uses no weights; give none");
  if (!weights.empty() && weights.size() != n)
    return Status(ErrorCode::kInvalidArgument, "add: one weight per row is required");
  for (float w : weights)
    if (!(w > 0.f && std::isfinite(w))) return Status(ErrorCode::kInvalidArgument, "add: weights must be > 0");
  const std::vector<float> ones(weights.empty() && want_weights ? n : 0, 1.f);
  if (weights.empty()) weights = ones;
  for (float v : rows)
    if (!std::isfinite(v)) return Status(ErrorCode::kInvalidArgument, "add: non-finite value in a row");

  auto it = std::lower_bound(names_.begin(), names_.end(), name);
  const int32_t person = static_cast<int32_t>(it - names_.begin());
  if (it == names_.end() || *it != name) {
    names_.insert(it, name);
    for (int32_t& p : row_person_)
      if (p >= person) ++p;
    if (want_weights) person_inv_norm_.insert(person_inv_norm_.begin() + person, 0.f);
  }
  const size_t first_row = row_person_.size();
  rows_.insert(rows_.end(), rows.begin(), rows.end());
  row_person_.insert(row_person_.end(), n, person);
  if (want_weights) {
    row_weight_.insert(row_weight_.end(), weights.begin(), weights.end());
    if (person_inv_norm_.size() != names_.size()) person_inv_norm_.resize(names_.size(), 0.f);
    update_person_norm(person);
  }
  if (ann_) ann_->on_add(*this, name, first_row, n);
  update_auto_mode();
  return Status::Ok();
}

Status SearchIndex::remove_person(const std::string& name) {
  auto it = std::lower_bound(names_.begin(), names_.end(), name);
  if (it == names_.end() || *it != name) return Status(ErrorCode::kNotFound, "no person '" + name + "' in the index");
  const int32_t person = static_cast<int32_t>(it - names_.begin());
  const size_t d = static_cast<size_t>(dim_);
  size_t out = 0;
  for (size_t r = 0; r < row_person_.size(); ++r) {
    if (row_person_[r] == person) continue;
    if (out != r) {
      std::copy(rows_.begin() + r * d, rows_.begin() + (r + 1) * d, rows_.begin() + out * d);
      row_person_[out] = row_person_[r];
      if (!row_weight_.empty()) row_weight_[out] = row_weight_[r];
    }
    row_person_[out] -= row_person_[out] > person ? 1 : 0;
    ++out;
  }
  rows_.resize(out * d);
  row_person_.resize(out);
  if (!row_weight_.empty()) row_weight_.resize(out);
  names_.erase(it);
  if (!person_inv_norm_.empty()) person_inv_norm_.erase(person_inv_norm_.begin() + person);
  if (ann_) ann_->on_remove(*this, name);
  update_auto_mode();
  return Status::Ok();
}

Status SearchIndex::rename_person(const std::string& from, const std::string& to) {
  auto it = std::lower_bound(names_.begin(), names_.end(), from);
  if (it == names_.end() || *it != from) return Status(ErrorCode::kNotFound, "no person '" + from + "' in the index");
  if (from == to) return Status::Ok();
  if (std::binary_search(names_.begin(), names_.end(), to))
    return Status(ErrorCode::kAlreadyExists, "a person named '" + to + "' is already in the index");
  // Re-slot the name so that names_ stays sorted (tie order = name order).
  const int32_t old_p = static_cast<int32_t>(it - names_.begin());
  names_.erase(it);
  auto jt = std::lower_bound(names_.begin(), names_.end(), to);
  const int32_t new_p = static_cast<int32_t>(jt - names_.begin());
  names_.insert(jt, to);
  float inv = person_inv_norm_.empty() ? 0.f : person_inv_norm_[static_cast<size_t>(old_p)];
  if (!person_inv_norm_.empty()) {
    person_inv_norm_.erase(person_inv_norm_.begin() + old_p);
    person_inv_norm_.insert(person_inv_norm_.begin() + new_p, inv);
  }
  for (int32_t& p : row_person_) {
    if (p == old_p) p = new_p;
    else if (old_p < new_p && p > old_p && p <= new_p) --p;
    else if (new_p < old_p && p >= new_p && p < old_p) ++p;
  }
  if (ann_) ann_->on_rename(from, to);
  return Status::Ok();
}

std::vector<std::pair<std::string, int>> SearchIndex::people_rows() const {
  std::vector<std::pair<std::string, int>> out(names_.size());
  for (size_t i = 0; i < names_.size(); ++i) out[i].first = names_[i];
  for (int32_t p : row_person_) ++out[static_cast<size_t>(p)].second;
  return out;
}

Result<std::vector<Candidate>> SearchIndex::search(std::span<const float> query, int top_k) const {
  if (size() > 0 && query.size() != static_cast<size_t>(dim_))
    return Status(ErrorCode::kInvalidArgument, "search: query has " + std::to_string(query.size()) +
                                                   " values, the index holds " + std::to_string(dim_) + "-D rows");
  if (top_k < 0) return Status(ErrorCode::kInvalidArgument, "search: top_k must not be negative");
  return search(query.data(), top_k);
}

}  // namespace facerec
