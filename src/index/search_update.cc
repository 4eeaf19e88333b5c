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
#include <cstdint>
#include <exception>

#include "facerec/search.h"
#include "index/hnsw_index.h"

namespace facerec {

namespace {

// Room for `extra` more elements, growing geometrically (repeated adds stay
// amortised O(1) per element).
template <class V>
void make_room(V& v, size_t extra) {
  if (v.capacity() - v.size() < extra) v.reserve(std::max(v.size() + extra, 2 * v.capacity()));
}

}  // namespace

// Exception safety: every allocation an update needs is made before its first
// change, and nothing after that throws, so a refused or failed update
// (kInternal: out of memory) leaves the index as it was. The HNSW graph is
// maintained last; when that throws the graph is dropped (see search.h).
Status SearchIndex::add_person_rows(const std::string& name, std::span<const float> rows,
                                    std::span<const float> weights, int dim) {
  // A fresh, empty index takes its dimension from the first add.
  const int new_dim = dim_ == 0 && size() == 0 && dim > 0 ? dim : dim_;
  if (new_dim <= 0) return Status(ErrorCode::kInvalidArgument, "add to an index without a dimension");
  if (dim > 0 && dim != new_dim)
    return Status(ErrorCode::kInvalidArgument, "add: rows of dimension " + std::to_string(dim) +
                                                   " to an index of dimension " + std::to_string(new_dim));
  const size_t d = static_cast<size_t>(new_dim);
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

  auto it = slot_of_.find(name);
  const bool new_person = it == slot_of_.end();
  std::string new_name;
  std::vector<uint32_t> new_slot_rows;  // a new slot's row list
  std::vector<double> scratch;          // update_person_norm's sum
  try {
    make_room(rows_, rows.size());
    make_room(row_person_, n);
    if (want_weights) make_room(row_weight_, n);
    if (new_person) {
      new_name = name;
      if (free_slots_.empty()) {
        make_room(slot_name_, 1);
        make_room(slot_rows_, 1);
        new_slot_rows.reserve(n);
      } else {
        slot_rows_[static_cast<size_t>(free_slots_.back())].reserve(n);
      }
    } else {
      make_room(slot_rows_[static_cast<size_t>(it->second)], n);
    }
    if (want_weights) {
      const size_t slots = slot_name_.size() + (new_person && free_slots_.empty() ? 1 : 0);
      if (person_inv_norm_.size() < slots) make_room(person_inv_norm_, slots - person_inv_norm_.size());
      if (rule_ == TemplateRule::kMean) scratch.resize(d);
    }
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("add: ") + e.what());
  }

  int32_t slot;
  if (!new_person) {
    slot = it->second;
  } else {
    slot = free_slots_.empty() ? static_cast<int32_t>(slot_name_.size()) : free_slots_.back();
    try {
      slot_of_.emplace(name, slot);  // the first change; nothing below throws
    } catch (const std::exception& e) {
      return Status(ErrorCode::kInternal, std::string("add: ") + e.what());
    }
    if (!free_slots_.empty()) {
      free_slots_.pop_back();
    } else {
      slot_name_.emplace_back();
      slot_rows_.push_back(std::move(new_slot_rows));
    }
    slot_name_[static_cast<size_t>(slot)] = std::move(new_name);
  }
  dim_ = new_dim;
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
    update_person_norm(slot, scratch);
  }
  try {
    if (ann_) ann_->on_add(*this, slot, first_row, n);
  } catch (const std::exception&) {
    ann_.reset();
  }
  update_auto_mode();
  return Status::Ok();
}

Status SearchIndex::remove_person(const std::string& name) {
  auto it = slot_of_.find(name);
  if (it == slot_of_.end()) return Status(ErrorCode::kNotFound, "no person '" + name + "' in the index");
  try {
    make_room(free_slots_, 1);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("remove: ") + e.what());
  }
  const int32_t slot = it->second;
  auto& mine = slot_rows_[static_cast<size_t>(slot)];
  for (uint32_t r : mine) row_person_[r] = -1;
  live_rows_ -= mine.size();
  try {
    if (ann_) ann_->on_remove(slot);
  } catch (const std::exception&) {
    ann_.reset();
  }
  std::vector<uint32_t>().swap(mine);  // an empty list marks the slot free
  slot_of_.erase(it);
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
  std::string key, slot_name;  // copied first: nothing below throws
  try {
    key = to;
    slot_name = to;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("rename: ") + e.what());
  }
  // The slot stays; only the name (and so the tie order) changes.
  auto node = slot_of_.extract(it);
  node.key() = std::move(key);
  const int32_t slot = node.mapped();
  slot_of_.insert(std::move(node));
  slot_name_[static_cast<size_t>(slot)] = std::move(slot_name);
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

}  // namespace facerec
