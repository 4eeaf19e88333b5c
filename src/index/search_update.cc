// In-place updates of a SearchIndex (see facerec/search.h): enrolment and
// removal change the rows of one person without rebuilding from the gallery.
// Each touches only that person's rows: a person keeps a slot (stable while
// enrolled) and the list of their rows, so nothing is renumbered when a name
// sorts before others; a removal leaves holes in the row matrix, closed by
// compact() in one order-keeping pass once they pass 1/8 of the rows
// (amortised O(dim) per removed row). The scoring (search.cc) reads the same
// per-person sums in the same row order as a fresh build.
#include <algorithm>
#include <cmath>

#include "facerec/search.h"
#include "index/hnsw_index.h"

namespace facerec {

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
  const bool want_weights = weighted();
  if (!want_weights && !weights.empty())
    return Status(ErrorCode::kInvalidArgument, std::string("add: this index's rule (") + to_string(rule_) +
                                                   ") uses no weights; give none");
  if (!weights.empty() && weights.size() != n)
    return Status(ErrorCode::kInvalidArgument, "add: one weight per row is required");
  for (float w : weights)
    if (!(w > 0.f && std::isfinite(w))) return Status(ErrorCode::kInvalidArgument, "add: weights must be > 0");
  for (float v : rows)
    if (!std::isfinite(v)) return Status(ErrorCode::kInvalidArgument, "add: non-finite value in a row");
  if (row_person_.size() + n > size_t{UINT32_MAX})
    return Status(ErrorCode::kInvalidArgument, "add: the index holds at most 2^32 - 1 rows");

  int32_t slot;
  if (auto it = slot_of_.find(name); it != slot_of_.end()) {
    slot = it->second;
  } else {
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = static_cast<int32_t>(slot_name_.size());
      slot_name_.emplace_back();
      slot_rows_.emplace_back();
    }
    slot_name_[static_cast<size_t>(slot)] = name;
    slot_of_.emplace(name, slot);
  }
  const size_t first_row = row_person_.size();
  rows_.insert(rows_.end(), rows.begin(), rows.end());
  row_person_.insert(row_person_.end(), n, slot);
  auto& mine = slot_rows_[static_cast<size_t>(slot)];
  for (size_t r = first_row; r < first_row + n; ++r) mine.push_back(static_cast<uint32_t>(r));
  live_rows_ += n;
  if (want_weights) {
    if (weights.empty()) row_weight_.insert(row_weight_.end(), n, 1.f);
    else row_weight_.insert(row_weight_.end(), weights.begin(), weights.end());
    if (person_inv_norm_.size() < slot_name_.size()) person_inv_norm_.resize(slot_name_.size(), 0.f);
    update_person_norm(slot);
  }
  if (ann_) ann_->on_add(*this, slot, first_row, n);
  update_auto_mode();
  return Status::Ok();
}

Status SearchIndex::remove_person(const std::string& name) {
  auto it = slot_of_.find(name);
  if (it == slot_of_.end()) return Status(ErrorCode::kNotFound, "no person '" + name + "' in the index");
  const int32_t slot = it->second;
  auto& mine = slot_rows_[static_cast<size_t>(slot)];
  for (uint32_t r : mine) row_person_[r] = -1;
  live_rows_ -= mine.size();
  std::vector<uint32_t>().swap(mine);  // an empty list marks the slot free
  slot_of_.erase(it);
  if (ann_) ann_->on_remove(slot);
  slot_name_[static_cast<size_t>(slot)].clear();
  if (!person_inv_norm_.empty()) person_inv_norm_[static_cast<size_t>(slot)] = 0.f;
  free_slots_.push_back(slot);
  if (holes() * 8 > row_person_.size()) compact();
  update_auto_mode();
  return Status::Ok();
}

void SearchIndex::compact() {
  const size_t d = static_cast<size_t>(dim_);
  size_t out = 0;
  for (size_t r = 0; r < row_person_.size(); ++r) {
    if (row_person_[r] < 0) continue;
    if (out != r) {
      std::copy_n(rows_.data() + r * d, d, rows_.data() + out * d);
      row_person_[out] = row_person_[r];
      if (!row_weight_.empty()) row_weight_[out] = row_weight_[r];
    }
    ++out;
  }
  rows_.resize(out * d);
  row_person_.resize(out);
  if (!row_weight_.empty()) row_weight_.resize(out);
  // The order is kept, so each person's list is rebuilt ascending.
  for (auto& list : slot_rows_) list.clear();
  for (size_t r = 0; r < out; ++r) slot_rows_[static_cast<size_t>(row_person_[r])].push_back(static_cast<uint32_t>(r));
}

Status SearchIndex::rename_person(const std::string& from, const std::string& to) {
  auto it = slot_of_.find(from);
  if (it == slot_of_.end()) return Status(ErrorCode::kNotFound, "no person '" + from + "' in the index");
  if (from == to) return Status::Ok();
  if (slot_of_.count(to))
    return Status(ErrorCode::kAlreadyExists, "a person named '" + to + "' is already in the index");
  // The slot stays; only the name (and so the tie order) changes.
  auto node = slot_of_.extract(it);
  node.key() = to;
  const int32_t slot = node.mapped();
  slot_of_.insert(std::move(node));
  slot_name_[static_cast<size_t>(slot)] = to;
  if (ann_) ann_->on_rename();
  return Status::Ok();
}

std::vector<std::pair<std::string, int>> SearchIndex::people_rows() const {
  std::vector<std::pair<std::string, int>> out;
  out.reserve(slot_of_.size());
  for (const auto& [name, slot] : slot_of_)
    out.emplace_back(name, static_cast<int>(slot_rows_[static_cast<size_t>(slot)].size()));
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
