// The original design's face_embdding.txt + label_map.json (see
// Gallery::import_legacy in facerec/gallery.h): parsing and checking, the
// vector-based duplicate rule, and the export text. Internal to the library.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "facerec/gallery.h"

namespace facerec::legacy {

// The embeddings file is read whole; this bounds it (about 130,000 512-D
// vectors as Python writes them, ~8 kB a line).
inline constexpr uint64_t kMaxEmbeddingsBytes = uint64_t{1} << 30;
inline constexpr uint64_t kMaxLabelMapBytes = uint64_t{64} << 20;

struct Entry {
  std::string name;  // NFC, validated
  NewTemplate t;     // unit, norm, source "<file>:<line>", source_sha256 = vector_key(unit)
};

struct Parsed {
  std::vector<Entry> entries;  // in line order
  std::string layout;          // "labelled" or "vectors"
  std::vector<std::string> notes;
};

// Parses and checks both texts; nothing is written. `label_map` is nullopt
// when there is none. `txt_name`/`map_name` are used in messages only.
Result<Parsed> parse(std::string_view text, const std::optional<std::string>& label_map, int dim,
                     const std::string& txt_name, const std::string& map_name);

// Reads the files (regular files under the size limits) and parses them. An
// empty label_map_path means "none given": label_map.json beside the
// embeddings file is used if it exists, and the notes say so.
Result<Parsed> read_and_parse(const std::string& embeddings_txt, const std::string& label_map_path, int dim);

// The duplicate key stored for an imported vector: sha256 of the unit vector
// quantised to 1/1024.
std::string vector_key(const std::vector<float>& unit);

// Keeps the entries whose unit vector equals no stored template and no
// earlier entry within 1e-5 per value (an export/import round trip changes a
// value by about 1e-7; two photos of one face differ by far more). Groups
// them by person, in line order; `dropped` counts the rest.
std::map<std::string, std::vector<NewTemplate>> drop_stored_vectors(const std::vector<Entry>& entries,
                                                                   const std::vector<StoredTemplate>& stored,
                                                                   int dim, int& dropped);

// The export text: one line per template (unit * norm, shortest float text)
// and the {"index": "name"} label map.
Status format(const std::vector<StoredTemplate>& templates, const std::map<int64_t, std::string>& names,
              std::string& txt, std::string& label_map);

// Writes via a temporary file and rename(), so a reader never sees half a file.
Status write_file_atomically(const std::string& path, const std::string& data);

}  // namespace facerec::legacy
