#include "facerec/duplicates.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <opencv2/core.hpp>

namespace facerec {

const char* to_string(DuplicateKind kind) { return kind == DuplicateKind::kSamePhoto ? "same photo" : "same face"; }

Result<DuplicateFinder> DuplicateFinder::from_gallery(const Gallery& gallery, float threshold) {
  try {
    // People and templates from ONE read transaction: another process
    // enrolling or removing meanwhile is wholly in or wholly out.
    FACEREC_ASSIGN_OR_RETURN(GallerySnapshot snap, gallery.snapshot());
    std::map<int64_t, std::string> names;
    for (const auto& p : snap.people) names[p.id] = p.name;
    DuplicateFinder f(gallery.embedder().dim, threshold);
    for (const auto& t : snap.templates) {
      auto it = names.find(t.person_id);
      if (it == names.end())
        return Status(ErrorCode::kDatabase, "gallery " + gallery.store().location() + ": template " +
                                                std::to_string(t.id) + " has no person");
      FACEREC_RETURN_IF_ERROR(f.add(it->second, t.id, t.source, t.source_sha256, t.unit));
    }
    return f;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("reading the gallery for duplicates: ") + e.what());
  }
}

Status DuplicateFinder::add(const std::string& person, int64_t template_id, const std::string& source,
                            const std::string& sha256, std::span<const float> unit) {
  if (static_cast<int>(unit.size()) != dim_)
    return Status(ErrorCode::kInvalidArgument, "duplicate check: a template of " + std::to_string(unit.size()) +
                                                   " floats, expected " + std::to_string(dim_));
  person_.push_back(person);
  id_.push_back(template_id);
  source_.push_back(source);
  sha256_.push_back(sha256);
  rows_.insert(rows_.end(), unit.begin(), unit.end());
  return Status::Ok();
}

DuplicateMatch DuplicateFinder::match(size_t i, float similarity, DuplicateKind kind) const {
  return {person_[i], id_[i], source_[i], similarity, kind};
}

namespace {
bool before(DuplicateKind ka, float sa, DuplicateKind kb, float sb) {
  if (ka != kb) return ka == DuplicateKind::kSamePhoto;
  return sa > sb;
}
}  // namespace

std::vector<DuplicateMatch> DuplicateFinder::check(const std::string& person, const std::string& sha256,
                                                   std::span<const float> unit) const {
  std::vector<DuplicateMatch> out;
  if (static_cast<int>(unit.size()) != dim_) return out;
  for (size_t i = 0; i < person_.size(); ++i) {
    if (person_[i] == person) continue;
    float dot = 0.f;
    const float* r = rows_.data() + i * static_cast<size_t>(dim_);
    for (int d = 0; d < dim_; ++d) dot += r[d] * unit[static_cast<size_t>(d)];
    const bool same_photo = !sha256.empty() && sha256 == sha256_[i];
    if (same_photo) out.push_back(match(i, dot, DuplicateKind::kSamePhoto));
    else if (dot >= threshold_) out.push_back(match(i, dot, DuplicateKind::kSameFace));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const DuplicateMatch& a, const DuplicateMatch& b) { return before(a.kind, a.similarity, b.kind, b.similarity); });
  return out;
}

std::vector<DuplicatePair> DuplicateFinder::all_pairs() const {
  std::vector<DuplicatePair> out;
  const int n = static_cast<int>(person_.size());
  if (n < 2) return out;
  const cv::Mat all(n, dim_, CV_32F, const_cast<float*>(rows_.data()));
  constexpr int kBlock = 512;  // 512 x n similarities at a time
  for (int b0 = 0; b0 < n; b0 += kBlock) {
    const int b1 = std::min(n, b0 + kBlock);
    cv::Mat sim;
    cv::gemm(all.rowRange(b0, b1), all, 1.0, cv::Mat(), 0.0, sim, cv::GEMM_2_T);
    for (int i = b0; i < b1; ++i) {
      const float* row = sim.ptr<float>(i - b0);
      for (int j = i + 1; j < n; ++j) {
        if (person_[static_cast<size_t>(i)] == person_[static_cast<size_t>(j)]) continue;
        const bool same_photo = !sha256_[static_cast<size_t>(i)].empty() && sha256_[static_cast<size_t>(i)] == sha256_[static_cast<size_t>(j)];
        if (!same_photo && row[j] < threshold_) continue;
        const DuplicateKind kind = same_photo ? DuplicateKind::kSamePhoto : DuplicateKind::kSameFace;
        out.push_back({match(static_cast<size_t>(i), row[j], kind), match(static_cast<size_t>(j), row[j], kind), row[j], kind});
      }
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const DuplicatePair& a, const DuplicatePair& b) { return before(a.kind, a.similarity, b.kind, b.similarity); });
  return out;
}

}  // namespace facerec
