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
// - Identity names are stored in NFC, otherwise as given (spaces, unicode,
//   '/', '..' are fine), and never used as file names by the gallery.
//   validate_identity_name() (facerec/names.h) rejects only what cannot be a
//   name. Every call taking a name normalises it to NFC; lookups (remove,
//   rename, enrolling into an existing person) also match stored names whose
//   NFC form is equal, and list_people()/person_name() return NFC. So a
//   gallery written before normalisation, holding "José" in NFD, still works;
//   if it holds the name in both forms, both list as one NFC name and
//   remove_person() removes both.
// Thread safety: one Gallery per thread; the database serialises writers
// between processes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "facerec/gallery_store.h"
#include "facerec/names.h"
#include "facerec/status.h"
#include "facerec/template_records.h"  // StoredTemplate, PersonInfo

namespace facerec {

// The embedder a gallery's templates were made with. A gallery opened with
// an expected EmbedderInfo refuses (kMismatch) unless model_id and dim are
// equal and its stored sha256 is `sha256` or one of `equivalent_sha256`.
namespace legacy {
struct Parsed;  // src/gallery/legacy.h
}  // namespace legacy

struct EmbedderInfo {
  std::string model_id;
  std::string sha256;
  int dim = 0;
  // Other files of the same model id that compute the same embeddings (the
  // manifest's "equivalent_sha256": e.g. a graph rewrite measured to give
  // identical LFW results), whose galleries this embedder reads and extends.
  std::vector<std::string> equivalent_sha256 = {};
};

struct ModelSpec;  // facerec/models.h
// The EmbedderInfo of a manifest embedder whose output has `dim` values: its
// id, its file's sha256 and the files it lists as equivalent. Every gallery
// opened for an embedder takes it from here.
EmbedderInfo embedder_info_for(const ModelSpec& spec, int dim);

struct NewTemplate {
  std::vector<float> unit;   // L2-normalised, dim long
  float norm = 0.f;          // raw feature norm (MagFace quality)
  std::string source;        // where it came from (file path as given)
  std::string source_sha256; // content hash of the source file: the duplicate key
  float det_score = 0.f;
};

struct EnrollOutcome {
  int added = 0;
  int duplicates = 0;  // same person + same source_sha256 already stored
  // One per template given, in order: its new row id, or 0 for a duplicate.
  std::vector<int64_t> template_ids;
};

// What Gallery::import_legacy did.
struct LegacyImportReport {
  int added = 0;
  // Lines whose vector is already stored (within 1e-5 per value of the unit
  // vector, under any name) or repeats an earlier line: not added.
  int already_present = 0;
  std::string layout;               // "labelled" (<label> v1..vD) or "vectors" (v1..vD)
  std::vector<std::string> notes;   // e.g. names made up as label_<n> (no label map)
};

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
  // People and templates from ONE read transaction, with the change log's
  // head at that moment (another process's enrolment is wholly in or out);
  // names in NFC, as list_people() gives them.
  Result<GallerySnapshot> snapshot() const;
  Status remove_person(const std::string& name);           // kNotFound if absent
  Status rename_person(const std::string& from, const std::string& to);  // kInvalidArgument if `to` exists
  Result<std::string> person_name(int64_t person_id) const;

  // The original design's format. face_embdding.txt holds one vector per
  // line (whitespace- or comma-separated floats, possibly unnormalised: the
  // unit vector and raw norm are stored), in one of two layouts told apart by
  // the count of values, D being the gallery embedder's dimension:
  //   D + 1, the first a non-negative integer: "<label> v1 .. vD" (what the
  //     original writes); label_map.json maps "<label>" to a name;
  //   D: the vector only; label_map.json maps the 0-based line index.
  // label_map.json is {"key": "name", ...} or {"name": [keys]}. Empty
  // label_map_json: label_map.json beside the embeddings file if there is
  // one, else (labelled layout only) people are named label_<n>; the notes
  // say which. Names are validated and NFC-normalised.
  // Refused, naming the line and the reason, with nothing imported: a
  // malformed or non-finite value (kDecode), a line of another count
  // (kMismatch), mixed layouts, a zero vector or one whose norm overflows
  // float32, a duplicated JSON key, an index or label that is out of range
  // (reported in full, up to 2^64-1), a line without a name, a bad name
  // (kInvalidArgument), an embeddings file that is not a regular file or is
  // over 1 GiB (kTooLarge; label map: 64 MiB). One transaction.
  // Duplicates are judged on the vector itself (see LegacyImportReport), so
  // re-importing a file, or importing a gallery's own export, adds nothing.
  // Export writes unit * norm per line and the {"index": "name"} layout.
  Result<LegacyImportReport> import_legacy(const std::string& embeddings_txt, const std::string& label_map_json);
  // The same into the gallery at `location`, created with `embedder` when
  // absent, only after both files have parsed and passed every check above:
  // a refused import leaves no new gallery behind (an empty one would tie the
  // path to the embedder).
  static Result<LegacyImportReport> import_legacy_into(const std::string& location, const EmbedderInfo& embedder,
                                                       const std::string& embeddings_txt,
                                                       const std::string& label_map_json);
  Status export_legacy(const std::string& embeddings_txt, const std::string& label_map_json) const;

  // Every template with the given ids (absent ids are skipped), by id.
  Result<std::vector<StoredTemplate>> templates_by_id(const std::vector<int64_t>& ids) const;

 private:
  static Result<std::unique_ptr<Gallery>> open_as(const std::string& path, GalleryAccess access,
                                                  const EmbedderInfo* expected);
  // The store transaction of an import whose files have been parsed.
  Result<LegacyImportReport> store_legacy(legacy::Parsed& parsed);
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
