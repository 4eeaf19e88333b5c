// The gallery: enrolled people and their templates, in a GalleryStore: one
// SQLite file (the default) or a PostgreSQL database shared by many processes
// (facerec/gallery_store.h says how each is chosen and what each guarantees).
//
// Guarantees
// - Every write (enrolling a person's batch, remove, rename, import) is one
//   transaction: a crash or Ctrl-C leaves the person entirely there or not at
//   all, never half-written. The database runs in WAL mode with full sync.
// - The gallery records the embedder (model id, sha256, dimension) it was
//   built with; opening it with another embedder is kMismatch.
// - Identity names are stored as given (spaces, unicode, '/', '..' are fine)
//   and never used as file names by the gallery. validate_identity_name()
//   rejects only what cannot be a name: empty, control characters (C0, DEL,
//   C1), invalid UTF-8, over 256 bytes, leading or trailing whitespace.
// Thread safety: one Gallery per thread; the database serialises writers
// between processes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "facerec/gallery_store.h"
#include "facerec/status.h"

namespace facerec {

struct EmbedderInfo {
  std::string model_id;
  std::string sha256;
  int dim = 0;
};

struct NewTemplate {
  std::vector<float> unit;   // L2-normalised, dim long
  float norm = 0.f;          // raw feature norm (MagFace quality)
  std::string source;        // where it came from (file path as given)
  std::string source_sha256; // content hash of the source file: the duplicate key
  float det_score = 0.f;
};

struct StoredTemplate {
  int64_t id = 0;
  int64_t person_id = 0;
  std::vector<float> unit;
  float norm = 0.f;
  std::string source;
  std::string source_sha256;
  float det_score = 0.f;
  int64_t created_at = 0;  // unix seconds
};

struct PersonInfo {
  int64_t id = 0;
  std::string name;
  int templates = 0;
};

struct EnrollOutcome {
  int added = 0;
  int duplicates = 0;  // same person + same source_sha256 already stored
  // One per template given, in order: its new row id, or 0 for a duplicate.
  std::vector<int64_t> template_ids;
};

Status validate_identity_name(const std::string& name);

class Gallery {
 public:
  // Opens or creates the gallery at `path` (a SQLite path or a postgres URI).
  // A new gallery takes `embedder` as its embedder; an existing one must
  // match it (kMismatch otherwise, nothing written). A file that is not a
  // facerec gallery is kDatabase; "corrupt" is said only when SQLite's
  // integrity_check fails. Read-only storage is kIo saying "read-only".
  static Result<std::unique_ptr<Gallery>> open(const std::string& path, const EmbedderInfo& embedder);
  // Opens an existing gallery without checking the embedder (remove/rename).
  static Result<std::unique_ptr<Gallery>> open_existing(const std::string& path);
  // Opens an existing gallery for reading only (list, identify, export):
  // works on a read-only file, folder or mount; writes are kIo "read-only".
  // With `expected`, another embedder is kMismatch.
  static Result<std::unique_ptr<Gallery>> open_read_only(const std::string& path,
                                                         const EmbedderInfo* expected = nullptr);
  // Over a store already open (tests, gallery copy).
  explicit Gallery(std::unique_ptr<GalleryStore> store);
  ~Gallery();

  const EmbedderInfo& embedder() const { return embedder_; }
  GalleryStore& store() const { return *store_; }
  // The change seq of this Gallery's last write (see GalleryStore).
  int64_t last_write_seq() const { return store_->last_write_seq(); }

  // Adds templates to a person (created if new), all in one transaction.
  // Templates whose source_sha256 the person already has are skipped.
  // Every template is checked first (dim == embedder dim, finite, |unit|
  // within 1e-3 of 1); one bad template or an empty list is
  // kInvalidArgument and nothing is written.
  Result<EnrollOutcome> enroll(const std::string& name, const std::vector<NewTemplate>& templates);
  Result<std::vector<PersonInfo>> list_people() const;
  Result<std::vector<StoredTemplate>> templates() const;  // all, ordered by id
  Status remove_person(const std::string& name);           // kNotFound if absent
  Status rename_person(const std::string& from, const std::string& to);  // kInvalidArgument if `to` exists
  Result<std::string> person_name(int64_t person_id) const;

  // The original design's format: face_embdding.txt (one vector per line,
  // whitespace- or comma-separated floats, possibly unnormalised: the unit
  // vector and raw norm are stored) and label_map.json (either
  // {"0": "name", ...} by line index or {"name": [line indices]}). Import is
  // one transaction: a malformed line (kDecode) or a line of another dimension
  // (kMismatch) imports nothing, and the error names the line. Re-importing
  // the same vectors adds nothing. Returns the number of templates added.
  // Export writes unit * norm per line and the {"index": "name"} layout.
  Result<int> import_legacy(const std::string& embeddings_txt, const std::string& label_map_json);
  Status export_legacy(const std::string& embeddings_txt, const std::string& label_map_json) const;

  // Every template with the given ids (absent ids are skipped), by id.
  Result<std::vector<StoredTemplate>> templates_by_id(const std::vector<int64_t>& ids) const;

 private:
  static Result<std::unique_ptr<Gallery>> open_as(const std::string& path, GalleryAccess access,
                                                  const EmbedderInfo* expected);
  std::unique_ptr<GalleryStore> store_;
  EmbedderInfo embedder_;
};

// facerec gallery copy: every person and template of `from` written into
// `to` (created when absent, with from's embedder; an existing `to` must have
// the same embedder and no person of `from`'s names), in ONE transaction,
// then every count re-read and compared: people, templates, and the vectors
// byte for byte (kInternal when anything differs). Either may be SQLite or
// PostgreSQL.
struct CopyReport {
  int64_t people = 0, templates = 0;
  EmbedderInfo embedder;
};
Result<CopyReport> copy_gallery(const std::string& from, const std::string& to);

}  // namespace facerec
