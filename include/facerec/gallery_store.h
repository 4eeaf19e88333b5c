// GalleryStore: where a gallery lives. One interface, two backends.
//
// - SQLite (the default): one file, no server. Any --db value that is not a
//   postgres URI is a SQLite path.
// - PostgreSQL (libpq): `postgresql://user@host:port/dbname` or
//   `postgres://...` (libpq's URI syntax; `?host=/socket/dir` works too).
//   Several processes on several machines may share one such gallery.
//
// Guarantees, the same on both backends
// - Every write is one transaction: an enrolment batch, a remove, a rename, a
//   legacy import (enroll_batch). A crash leaves it whole or absent.
// - The gallery records its embedder (model id, sha256, dimension); opening
//   it with another is kMismatch, and nothing is written.
// - Names are stored as text (UTF-8) exactly as given (validation and
//   normalisation are the Gallery's job, before the store is called).
// - Vectors are float32 little-endian bytes (BLOB / bytea), bit-exact.
// - The schema carries a version (table schema_version, one row per applied
//   migration). Opening for writing runs the missing migrations, each in its
//   own transaction; opening read-only reads any version up to the current
//   one and writes nothing.
// - Every write also appends one row to the change log (table changes,
//   seq increasing in commit order: writers take one lock for the whole
//   transaction), so a process holding an in-memory index can apply other
//   processes' changes (changes_since) instead of reloading. PostgreSQL also
//   sends the change as a NOTIFY on channel "facerec_gallery" at commit.
//
// Thread safety: one store per thread (a connection is not shared); the
// databases serialise writers between processes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "facerec/status.h"

namespace facerec {

struct EmbedderInfo;
struct NewTemplate;
struct StoredTemplate;
struct PersonInfo;
struct EnrollOutcome;

// The schema version this build writes (both backends). v1: meta, people,
// templates (the SQLite layout before stores existed); v2: schema_version and
// the change log.
inline constexpr int kGallerySchemaVersion = 2;

enum class GalleryAccess {
  kCreate,     // read-write; a missing gallery is created (needs the embedder)
  kReadWrite,  // read-write; the gallery must exist
  kReadOnly,   // reads only: nothing is ever written, no migration runs
};

// One committed write, as recorded in the change log.
struct GalleryChange {
  enum class Kind { kEnroll, kRemove, kRename };
  int64_t seq = 0;
  Kind kind = Kind::kEnroll;
  std::string name;                   // the person (rename: the old name)
  std::string new_name;               // rename only
  std::vector<int64_t> template_ids;  // enrol only: the rows added
};
const char* to_string(GalleryChange::Kind kind);  // "enroll", "remove", "rename"

// Everything in one read transaction (a consistent snapshot).
struct GallerySnapshot {
  std::vector<PersonInfo> people;
  std::vector<StoredTemplate> templates;  // ordered by id
  int64_t last_seq = 0;                   // the change log's head at that moment
};

class GalleryStore {
 public:
  virtual ~GalleryStore() = default;
  virtual const char* backend() const = 0;        // "sqlite" or "postgresql"
  virtual const std::string& location() const = 0;  // the path, or the URI without any password
  virtual const EmbedderInfo& embedder() const = 0;
  virtual int schema_version() const = 0;         // as found on open (after migrations)
  virtual bool read_only() const = 0;

  // Writes. Templates are already validated by the caller (dim, finite,
  // unit length). A template whose source_sha256 the person already has is a
  // duplicate (its id is 0). Each call is one transaction and one change.
  virtual Result<EnrollOutcome> enroll(const std::string& name, const std::vector<NewTemplate>& templates) = 0;
  // Several people in ONE transaction (one change per person).
  virtual Result<std::vector<EnrollOutcome>> enroll_batch(
      const std::vector<std::pair<std::string, std::vector<NewTemplate>>>& people) = 0;
  virtual Status remove_person(const std::string& name) = 0;                    // kNotFound if absent
  virtual Status rename_person(const std::string& from, const std::string& to) = 0;  // kInvalidArgument if `to` exists
  // The change seq of this store's last successful write (0 before any).
  virtual int64_t last_write_seq() const = 0;

  // Reads.
  virtual Result<std::vector<PersonInfo>> list_people() const = 0;
  virtual Result<std::vector<StoredTemplate>> templates() const = 0;  // ordered by id
  virtual Result<std::vector<StoredTemplate>> templates_by_id(const std::vector<int64_t>& ids) const = 0;
  virtual Result<std::string> person_name(int64_t person_id) const = 0;
  virtual Result<GallerySnapshot> snapshot() const = 0;
  // The change log: every change with seq > after, in seq order; and its head.
  virtual Result<std::vector<GalleryChange>> changes_since(int64_t after) const = 0;
  virtual Result<int64_t> head_seq() const = 0;
};

// Waits for other processes' changes. PostgreSQL: LISTEN on its own
// connection. SQLite: polls the change log's head (no server to push).
class GalleryListener {
 public:
  virtual ~GalleryListener() = default;
  // Blocks at most `timeout` for a notification. Returns the newest change
  // seq announced (nullopt: none came). A lost connection is kDatabase; the
  // next call reconnects (and the caller must then catch up with
  // changes_since, since notifications sent meanwhile are lost).
  virtual Result<std::optional<int64_t>> wait(std::chrono::milliseconds timeout) = 0;
};

// True for postgresql:// and postgres:// URIs.
bool is_postgres_uri(const std::string& location);
// The URI with any password replaced by "***" (for messages and logs).
std::string redact_uri(const std::string& location);

// Opens the store at `location` (dispatching on is_postgres_uri). `expected`:
// the embedder in use (null: read it from the gallery; kCreate needs it).
// Errors: kNotFound (no gallery, unless kCreate), kMismatch (another
// embedder), kDatabase (not a gallery, corrupt, or unreachable server: the
// message says which), kIo ("read-only" / "disk full"), kInvalidArgument (a
// malformed URI).
Result<std::unique_ptr<GalleryStore>> open_gallery_store(const std::string& location, GalleryAccess access,
                                                         const EmbedderInfo* expected);
// A listener on the gallery at `location` (its own connection).
Result<std::unique_ptr<GalleryListener>> open_gallery_listener(const std::string& location);

}  // namespace facerec
