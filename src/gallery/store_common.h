// Private to src/gallery: what both GalleryStore backends share (the meta
// keys, the embedder check and its message, the change-log encoding).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "facerec/gallery.h"
#include "facerec/gallery_store.h"

namespace facerec::store {

inline constexpr const char* kFormatName = "facerec-gallery";
// Every write transaction of both backends holds this lock (PostgreSQL:
// pg_advisory_xact_lock; SQLite: BEGIN IMMEDIATE), so change seqs are
// allocated in commit order and a reader of seq N has seen every seq < N.
inline constexpr int64_t kWriteLockKey = 0x66616365726563;  // "facerec"
// PostgreSQL's NOTIFY payload must stay under 8000 bytes.
inline constexpr size_t kMaxNotifyPayload = 7000;

inline std::string quoted(const std::string& s) { return "'" + s + "'"; }

inline std::string describe(const EmbedderInfo& e) {
  return quoted(e.model_id) + " (sha256 " + (e.sha256.empty() ? std::string("unknown") : e.sha256) + ", dim " +
         std::to_string(e.dim) + ")";
}

// kMismatch unless the stored embedder is the expected one.
inline Status check_embedder(const std::string& where, const EmbedderInfo& stored, const EmbedderInfo* expected) {
  const bool same_file =
      expected && (stored.sha256 == expected->sha256 ||
                   std::find(expected->equivalent_sha256.begin(), expected->equivalent_sha256.end(), stored.sha256) !=
                       expected->equivalent_sha256.end());
  if (expected && (stored.model_id != expected->model_id || !same_file || stored.dim != expected->dim))
    return Status(ErrorCode::kMismatch, "gallery " + where + " was built with embedder " + describe(stored) +
                                            ", but the embedder in use is " + describe(*expected) +
                                            "; use the gallery's embedder or enroll into a new gallery");
  return Status::Ok();
}

// The meta table's rows of a new (version 1) gallery; embedder_from_meta reads them.
inline std::vector<std::pair<std::string, std::string>> meta_rows_v1(const EmbedderInfo& e) {
  return {{"format", kFormatName},
          {"format_version", "1"},
          {"embedder_model_id", e.model_id},
          {"embedder_sha256", e.sha256},
          {"embedder_dim", std::to_string(e.dim)}};
}

// The embedder and schema version from a meta table's rows.
inline Result<EmbedderInfo> embedder_from_meta(const std::string& where, std::map<std::string, std::string>& meta,
                                               int& version) {
  const std::string not_gallery = where + " is not a facerec gallery";
  if (meta["format"] != kFormatName) return Status(ErrorCode::kDatabase, not_gallery + " (wrong format tag)");
  const std::string& v = meta["format_version"];
  auto [vp, vec] = std::from_chars(v.data(), v.data() + v.size(), version);
  if (vec != std::errc() || vp != v.data() + v.size() || version < 1)
    return Status(ErrorCode::kDatabase, where + ": corrupt gallery meta (format_version " + quoted(v) + ")");
  if (version > kGallerySchemaVersion)
    return Status(ErrorCode::kDatabase, where + ": unsupported gallery format version " + quoted(v) +
                                            " (this build reads versions 1 to " +
                                            std::to_string(kGallerySchemaVersion) + "; upgrade facerec)");
  EmbedderInfo e;
  e.model_id = meta["embedder_model_id"];
  e.sha256 = meta["embedder_sha256"];
  const std::string& d = meta["embedder_dim"];
  auto [ptr, ec] = std::from_chars(d.data(), d.data() + d.size(), e.dim);
  if (ec != std::errc() || ptr != d.data() + d.size() || e.dim <= 0)
    return Status(ErrorCode::kDatabase, where + ": corrupt gallery meta (embedder_dim " + quoted(d) + ")");
  return e;
}

// Template ids as "1,2,3" (SQLite's change log; PostgreSQL uses bigint[]).
inline std::string join_ids(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) {
    if (id == 0) continue;  // duplicates add no row
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}
inline std::vector<int64_t> split_ids(const std::string& s) {
  std::vector<int64_t> out;
  const char* p = s.data();
  const char* end = p + s.size();
  while (p < end) {
    int64_t v = 0;
    auto [q, ec] = std::from_chars(p, end, v);
    if (ec != std::errc()) break;
    out.push_back(v);
    p = q;
    while (p < end && (*p == ',' || *p == '{' || *p == '}' || *p == ' ')) ++p;
  }
  return out;
}

inline bool parse_kind(const std::string& s, GalleryChange::Kind& k) {
  if (s == "enroll") k = GalleryChange::Kind::kEnroll;
  else if (s == "remove") k = GalleryChange::Kind::kRemove;
  else if (s == "rename") k = GalleryChange::Kind::kRename;
  else return false;
  return true;
}

Result<std::unique_ptr<GalleryStore>> open_sqlite_store(const std::string& path, GalleryAccess access,
                                                        const EmbedderInfo* expected);
Result<std::unique_ptr<GalleryStore>> open_postgres_store(const std::string& uri, GalleryAccess access,
                                                          const EmbedderInfo* expected, int target_version);
Result<std::unique_ptr<GalleryListener>> open_sqlite_listener(const std::string& path);
Result<std::unique_ptr<GalleryListener>> open_postgres_listener(const std::string& uri);

}  // namespace facerec::store
