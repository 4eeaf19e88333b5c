// The records a gallery stores and hands to the search index: a person and
// one of their templates, as read back. Plain data, shared by the gallery
// (facerec/gallery.h) and the index (facerec/search.h) so that the index
// needs nothing else of the gallery.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace facerec {

// One stored template (a row of the gallery).
struct StoredTemplate {
  int64_t id = 0;
  int64_t person_id = 0;
  std::vector<float> unit;  // L2-normalised, the embedder's dimension long
  float norm = 0.f;         // raw feature norm (MagFace quality)
  std::string source;
  std::string source_sha256;
  float det_score = 0.f;
  int64_t created_at = 0;  // unix seconds
};

// One enrolled person.
struct PersonInfo {
  int64_t id = 0;
  std::string name;
  int templates = 0;
};

}  // namespace facerec
