// Duplicate enrolments: the same photo, or the same face, enrolled under two
// different names. A common way galleries go wrong in practice (a photo filed
// in the wrong folder, one person enrolled under two spellings), and each
// such pair makes one of the two names wrong for that face.
//
// Two templates of different people are flagged when
// - their source files have the same content hash (source_sha256): the same
//   photo, whatever it looks like to the embedder; or
// - their cosine similarity is at or above the same-person threshold (the
//   embedder's measured FAR = 1e-3 point on LFW, ModelSpec::match_threshold):
//   the embedder itself would call them the same person.
// Templates of the same person are never flagged (several photos of one
// person are the point of enrolment).
//
// Thread safety: a DuplicateFinder is not synchronised; check() and
// all_pairs() are const and may run concurrently when nothing calls add().
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "facerec/gallery.h"
#include "facerec/status.h"

namespace facerec {

enum class DuplicateKind { kSamePhoto, kSameFace };
const char* to_string(DuplicateKind kind);  // "same photo", "same face"

// One already-known template that a checked template duplicates.
struct DuplicateMatch {
  std::string person;
  int64_t template_id = 0;  // 0: not stored yet (added during this run)
  std::string source;
  float similarity = 0.f;   // cosine, -1..1 (also for a same photo)
  DuplicateKind kind = DuplicateKind::kSameFace;
};

// One flagged pair of templates of two different people; a is the older
// template (lower id, or stored before b was added).
struct DuplicatePair {
  DuplicateMatch a, b;
  float similarity = 0.f;
  DuplicateKind kind = DuplicateKind::kSameFace;
};

class DuplicateFinder {
 public:
  // dim: the embedding dimension; threshold: the same-person cosine.
  DuplicateFinder(int dim, float threshold) : dim_(dim), threshold_(threshold) {}
  // Every template of the gallery, with its person's name.
  static Result<DuplicateFinder> from_gallery(const Gallery& gallery, float threshold);

  float threshold() const { return threshold_; }
  size_t size() const { return person_.size(); }

  // Remembers a template. unit must be dim floats (L2-normalised);
  // kInvalidArgument otherwise, and nothing is added.
  Status add(const std::string& person, int64_t template_id, const std::string& source, const std::string& sha256,
             std::span<const float> unit);
  // The remembered templates of people other than `person` that this one
  // duplicates: same photos first, then by similarity, descending. A plain
  // loop over every template.
  std::vector<DuplicateMatch> check(const std::string& person, const std::string& sha256, std::span<const float> unit) const;
  // Every flagged pair among the remembered templates, same photos first,
  // then by similarity, descending. Similarities come from blocked matrix
  // products (cv::gemm); check() is their plain twin.
  std::vector<DuplicatePair> all_pairs() const;

 private:
  DuplicateMatch match(size_t i, float similarity, DuplicateKind kind) const;
  int dim_;
  float threshold_;
  std::vector<std::string> person_, source_, sha256_;
  std::vector<int64_t> id_;
  std::vector<float> rows_;  // size() x dim
};

}  // namespace facerec
