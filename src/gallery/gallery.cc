// SQLite implementation of the gallery (see facerec/gallery.h).
//
// Storage: vectors are float32 BLOBs in the machine's byte order, which is
// required to be little-endian (checked at compile time) so a gallery file is
// portable between the x86-64 and arm64 hosts we run on.
//
// Opening is read-only until the file is known to be a facerec gallery: the
// 16-byte SQLite header is checked before SQLite sees the file, and the meta
// table is read before any PRAGMA that could write (journal_mode). So a text
// file, a random SQLite database or a corrupt gallery is reported, never
// changed.
#include "facerec/gallery.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <charconv>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string_view>
#include <system_error>

#include "facerec/names.h"
#include "gallery/legacy.h"

namespace fs = std::filesystem;

namespace facerec {

static_assert(std::endian::native == std::endian::little,
              "gallery vectors are stored as little-endian float32 BLOBs");
static_assert(sizeof(float) == 4);

namespace {

constexpr const char* kFormatName = "facerec-gallery";
constexpr int kFormatVersion = 1;
// How long a writer waits for another process's transaction before giving up.
constexpr int kBusyTimeoutMs = 10000;
// A stored or enrolled unit vector must have |v| within this of 1.
constexpr double kUnitTolerance = 1e-3;

// ---- small RAII wrappers -------------------------------------------------------

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s); }
};

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

Status db_error(sqlite3* db, const std::string& path, const std::string& what) {
  int code = sqlite3_extended_errcode(db);
  std::string msg = "gallery " + path + ": " + what + ": " + sqlite3_errmsg(db);
  if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
    msg += " (another process holds the gallery; try again)";
  return Status(ErrorCode::kDatabase, msg);
}

Status prepare(sqlite3* db, const std::string& path, const char* sql, Stmt& st) {
  if (sqlite3_prepare_v2(db, sql, -1, &st.s, nullptr) != SQLITE_OK)
    return db_error(db, path, std::string("preparing \"") + sql + "\"");
  return Status::Ok();
}

Status exec(sqlite3* db, const std::string& path, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status(ErrorCode::kDatabase, "gallery " + path + ": " + sql + ": " + msg);
  }
  return Status::Ok();
}

std::string column_text(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  int n = sqlite3_column_bytes(s, col);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(n)) : std::string();
}

void bind_text(sqlite3_stmt* s, int idx, const std::string& v) {
  sqlite3_bind_text(s, idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

// Rolls back unless commit() succeeded, so every early return and exception
// path leaves the database as it was before begin().
class Transaction {
 public:
  Transaction(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~Transaction() {
    if (active_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Status begin(bool write) {
    // IMMEDIATE takes the write lock up front: no deadlock-prone upgrade from
    // a read lock halfway through, and busy_timeout applies to the wait.
    FACEREC_RETURN_IF_ERROR(exec(db_, path_, write ? "BEGIN IMMEDIATE" : "BEGIN"));
    active_ = true;
    return Status::Ok();
  }
  Status commit() {
    Status s = exec(db_, path_, "COMMIT");
    // A failed COMMIT leaves the transaction open; the destructor rolls back.
    if (s.ok()) active_ = false;
    return s;
  }

 private:
  sqlite3* db_;
  std::string path_;
  bool active_ = false;
};

double l2_norm(const float* v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return std::sqrt(s);
}

// facerec_nfc(text): the NFC form, for name lookups (facerec/names.h).
void sql_nfc(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const unsigned char* t = sqlite3_value_text(argv[0]);
  if (!t) return sqlite3_result_null(ctx);
  const std::string out = to_nfc(std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_value_bytes(argv[0]))));
  sqlite3_result_text(ctx, out.data(), static_cast<int>(out.size()), SQLITE_TRANSIENT);
}

Status check_template(const NewTemplate& t, int dim, size_t index) {
  std::string where = "template " + std::to_string(index);
  if (static_cast<int>(t.unit.size()) != dim)
    return Status(ErrorCode::kInvalidArgument, where + " has " + std::to_string(t.unit.size()) +
                                                   " values; the gallery's embedder has dimension " +
                                                   std::to_string(dim));
  for (size_t i = 0; i < t.unit.size(); ++i)
    if (!std::isfinite(t.unit[i]))
      return Status(ErrorCode::kInvalidArgument, where + " has a non-finite value at " + std::to_string(i));
  double n = l2_norm(t.unit.data(), t.unit.size());
  if (std::abs(n - 1.0) > kUnitTolerance)
    return Status(ErrorCode::kInvalidArgument,
                  where + " is not L2-normalised (|v| = " + std::to_string(n) + ")");
  if (!std::isfinite(t.norm) || t.norm < 0)
    return Status(ErrorCode::kInvalidArgument, where + " has an invalid norm");
  if (!std::isfinite(t.det_score))
    return Status(ErrorCode::kInvalidArgument, where + " has a non-finite detection score");
  return Status::Ok();
}

}  // namespace

// ---- Gallery::Impl ------------------------------------------------------------------

struct Gallery::Impl {
  sqlite3* db = nullptr;
  std::string path;
  int dim = 0;

  ~Impl() {
    // sqlite3_close_v2 defers the close until the last statement is finalised;
    // all of ours are scoped, so this closes (and checkpoints the WAL) now.
    if (db) sqlite3_close_v2(db);
  }

  // Looks up or creates the person inside the caller's transaction. `name` is
  // NFC; a stored name matches if it or its NFC form is equal (names stored
  // before normalisation may be NFD), the exact one first.
  Result<int64_t> person_id(const std::string& name, bool create) {
    for (const char* sql : {"SELECT id FROM people WHERE name = ?1",
                            "SELECT id FROM people WHERE name GLOB '*[^ -~]*' AND facerec_nfc(name) = ?1 "
                            "ORDER BY id LIMIT 1"}) {
      Stmt sel;
      FACEREC_RETURN_IF_ERROR(prepare(db, path, sql, sel));
      bind_text(sel.s, 1, name);
      int rc = sqlite3_step(sel.s);
      if (rc == SQLITE_ROW) return static_cast<int64_t>(sqlite3_column_int64(sel.s, 0));
      if (rc != SQLITE_DONE) return db_error(db, path, "looking up " + in_quotes(name));
    }
    if (!create) return Status(ErrorCode::kNotFound, "no person named " + in_quotes(name) + " in " + path);
    Stmt ins;
    FACEREC_RETURN_IF_ERROR(prepare(db, path, "INSERT INTO people(name) VALUES(?1)", ins));
    bind_text(ins.s, 1, name);
    if (sqlite3_step(ins.s) != SQLITE_DONE) return db_error(db, path, "adding person " + in_quotes(name));
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db));
  }

  // Inserts already-validated templates inside the caller's transaction.
  Result<EnrollOutcome> insert_templates(int64_t pid, const std::vector<NewTemplate>& templates) {
    Stmt ins;
    // The conflict target names the partial unique index, so only a repeated
    // non-empty source_sha256 for this person is skipped; every other
    // constraint failure is still an error.
    FACEREC_RETURN_IF_ERROR(prepare(
        db, path,
        "INSERT INTO templates(person_id, vector, norm, source, source_sha256, det_score, created_at) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
        "ON CONFLICT(person_id, source_sha256) WHERE source_sha256 <> '' DO NOTHING",
        ins));
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    EnrollOutcome out;
    for (const NewTemplate& t : templates) {
      sqlite3_reset(ins.s);
      sqlite3_bind_int64(ins.s, 1, pid);
      sqlite3_bind_blob(ins.s, 2, t.unit.data(), static_cast<int>(t.unit.size() * sizeof(float)),
                        SQLITE_STATIC);
      sqlite3_bind_double(ins.s, 3, t.norm);
      bind_text(ins.s, 4, t.source);
      bind_text(ins.s, 5, t.source_sha256);
      sqlite3_bind_double(ins.s, 6, t.det_score);
      sqlite3_bind_int64(ins.s, 7, now);
      if (sqlite3_step(ins.s) != SQLITE_DONE) return db_error(db, path, "inserting a template");
      if (sqlite3_changes(db) == 1) {
        ++out.added;
        out.template_ids.push_back(static_cast<int64_t>(sqlite3_last_insert_rowid(db)));
      } else {
        ++out.duplicates;
        out.template_ids.push_back(0);
      }
    }
    return out;
  }
};

namespace {

Status create_schema(sqlite3* db, const std::string& path, const EmbedderInfo& e) {
  FACEREC_RETURN_IF_ERROR(exec(db, path,
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE people("
      "  id INTEGER PRIMARY KEY,"
      "  name TEXT NOT NULL UNIQUE);"
      "CREATE TABLE templates("
      "  id INTEGER PRIMARY KEY,"
      "  person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,"
      "  vector BLOB NOT NULL,"          // float32 little-endian, dim values, unit length
      "  norm REAL NOT NULL,"            // raw feature norm before normalisation
      "  source TEXT NOT NULL DEFAULT '',"
      "  source_sha256 TEXT NOT NULL DEFAULT '',"
      "  det_score REAL NOT NULL DEFAULT 0,"
      "  created_at INTEGER NOT NULL);"  // unix seconds
      "CREATE UNIQUE INDEX templates_person_source ON templates(person_id, source_sha256)"
      "  WHERE source_sha256 <> '';"
      // For ON DELETE CASCADE and per-person counts without a table scan.
      "CREATE INDEX templates_person ON templates(person_id);"));
  Stmt ins;
  FACEREC_RETURN_IF_ERROR(prepare(db, path, "INSERT INTO meta(key, value) VALUES(?1, ?2)", ins));
  const std::pair<std::string, std::string> rows[] = {
      {"format", kFormatName},
      {"format_version", std::to_string(kFormatVersion)},
      {"embedder_model_id", e.model_id},
      {"embedder_sha256", e.sha256},
      {"embedder_dim", std::to_string(e.dim)},
  };
  for (const auto& [k, v] : rows) {
    sqlite3_reset(ins.s);
    bind_text(ins.s, 1, k);
    bind_text(ins.s, 2, v);
    if (sqlite3_step(ins.s) != SQLITE_DONE) return db_error(db, path, "writing meta");
  }
  return Status::Ok();
}

// Reads and checks the meta table without writing anything.
Result<EmbedderInfo> read_meta(sqlite3* db, const std::string& path) {
  const std::string not_gallery = path + " is not a facerec gallery";
  Stmt has;
  // The first read of the file: a corrupt or truncated database fails here.
  if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &has.s, nullptr) !=
      SQLITE_OK)
    return Status(ErrorCode::kDatabase, not_gallery + " (or is corrupt): " + sqlite3_errmsg(db));
  std::set<std::string> tables;
  int rc;
  while ((rc = sqlite3_step(has.s)) == SQLITE_ROW) tables.insert(column_text(has.s, 0));
  if (rc != SQLITE_DONE)
    return Status(ErrorCode::kDatabase, not_gallery + " (or is corrupt): " + sqlite3_errmsg(db));
  if (!tables.count("meta")) return Status(ErrorCode::kDatabase, not_gallery + " (no meta table)");
  if (!tables.count("people") || !tables.count("templates"))
    return Status(ErrorCode::kDatabase, not_gallery + " (people or templates table missing)");

  Stmt sel;
  if (sqlite3_prepare_v2(db, "SELECT key, value FROM meta", -1, &sel.s, nullptr) != SQLITE_OK)
    return Status(ErrorCode::kDatabase, not_gallery + " (unreadable meta table): " + sqlite3_errmsg(db));
  std::map<std::string, std::string> meta;
  while ((rc = sqlite3_step(sel.s)) == SQLITE_ROW) meta[column_text(sel.s, 0)] = column_text(sel.s, 1);
  if (rc != SQLITE_DONE)
    return Status(ErrorCode::kDatabase, not_gallery + " (unreadable meta table): " + sqlite3_errmsg(db));
  if (meta["format"] != kFormatName) return Status(ErrorCode::kDatabase, not_gallery + " (wrong format tag)");
  if (meta["format_version"] != std::to_string(kFormatVersion))
    return Status(ErrorCode::kDatabase, path + ": unsupported gallery format version " +
                                            in_quotes(meta["format_version"]) + " (this build reads version " +
                                            std::to_string(kFormatVersion) + ")");
  EmbedderInfo e;
  e.model_id = meta["embedder_model_id"];
  e.sha256 = meta["embedder_sha256"];
  const std::string& d = meta["embedder_dim"];
  auto [ptr, ec] = std::from_chars(d.data(), d.data() + d.size(), e.dim);
  if (ec != std::errc() || ptr != d.data() + d.size() || e.dim <= 0)
    return Status(ErrorCode::kDatabase, path + ": corrupt gallery meta (embedder_dim " + in_quotes(d) + ")");
  return e;
}

std::string describe(const EmbedderInfo& e) {
  return in_quotes(e.model_id) + " (sha256 " + (e.sha256.empty() ? std::string("unknown") : e.sha256) + ", dim " +
         std::to_string(e.dim) + ")";
}

enum class FileKind { kMissing, kEmpty, kSqlite, kOther, kNotRegular };

FileKind classify(const std::string& path, std::string& why) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FileKind::kMissing;
  if (!S_ISREG(st.st_mode)) return FileKind::kNotRegular;
  if (st.st_size == 0) return FileKind::kEmpty;
  static const char kMagic[16] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f', 'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};
  char head[16] = {};
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    why = "cannot be read";
    return FileKind::kOther;
  }
  f.read(head, sizeof head);
  if (f.gcount() != static_cast<std::streamsize>(sizeof head) || std::memcmp(head, kMagic, sizeof head) != 0) {
    why = "is not a SQLite database";
    return FileKind::kOther;
  }
  return FileKind::kSqlite;
}

}  // namespace

// ---- open ---------------------------------------------------------------------------

namespace {

// `expected` null: open_existing (no embedder check, no creation).
Result<std::unique_ptr<Gallery::Impl>> open_impl(const std::string& path, const EmbedderInfo* expected,
                                                 EmbedderInfo& stored) {
  std::string why;
  FileKind kind = classify(path, why);
  switch (kind) {
    case FileKind::kNotRegular:
      return Status(ErrorCode::kDatabase, path + " is not a regular file, so not a facerec gallery");
    case FileKind::kOther:
      return Status(ErrorCode::kDatabase, path + " " + why + ", so not a facerec gallery; refusing to touch it");
    case FileKind::kMissing:
      if (!expected) return Status(ErrorCode::kNotFound, "no gallery at " + path);
      break;
    case FileKind::kEmpty:
      // An empty file holds nothing to lose (e.g. made by mktemp); SQLite
      // itself treats it as an empty database.
      if (!expected) return Status(ErrorCode::kDatabase, path + " is an empty file, not a facerec gallery");
      break;
    case FileKind::kSqlite:
      break;
  }
  const bool fresh = kind == FileKind::kMissing || kind == FileKind::kEmpty;
  if (fresh && (expected->dim <= 0 || expected->model_id.empty()))
    return Status(ErrorCode::kInvalidArgument,
                  "cannot create gallery " + path + ": the embedder needs a model id and a positive dimension");

  auto impl = std::make_unique<Gallery::Impl>();
  impl->path = path;
  int flags = SQLITE_OPEN_READWRITE | (fresh ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &impl->db, flags, nullptr) != SQLITE_OK) {
    std::string msg = impl->db ? sqlite3_errmsg(impl->db) : "out of memory";
    return Status(ErrorCode::kDatabase, "cannot open gallery " + path + ": " + msg);
  }
  sqlite3* db = impl->db;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (sqlite3_create_function(db, "facerec_nfc", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, &sql_nfc, nullptr,
                              nullptr) != SQLITE_OK)
    return db_error(db, path, "registering facerec_nfc");
  // A connection-level setting: it neither reads nor writes the file.
  FACEREC_RETURN_IF_ERROR(exec(db, path, "PRAGMA foreign_keys = ON"));

  if (fresh) {
    FACEREC_RETURN_IF_ERROR(exec(db, path, "PRAGMA synchronous = FULL"));
    // Switching an empty database to WAL only records the mode; the file
    // header is first written by the schema transaction below.
    FACEREC_RETURN_IF_ERROR(exec(db, path, "PRAGMA journal_mode = WAL"));
    Transaction tx(db, path);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    // Another process may have created the gallery between our stat() and
    // our write lock; then it is validated like any existing gallery.
    Stmt count;
    FACEREC_RETURN_IF_ERROR(prepare(db, path, "SELECT count(*) FROM sqlite_master", count));
    if (sqlite3_step(count.s) != SQLITE_ROW) return db_error(db, path, "reading the schema");
    if (sqlite3_column_int64(count.s, 0) == 0) {
      FACEREC_RETURN_IF_ERROR(create_schema(db, path, *expected));
      FACEREC_RETURN_IF_ERROR(tx.commit());
    }
  }

  auto meta = read_meta(db, path);
  if (!meta.ok()) return meta.status();
  stored = meta.value();
  if (expected && (stored.model_id != expected->model_id || stored.sha256 != expected->sha256 ||
                   stored.dim != expected->dim))
    return Status(ErrorCode::kMismatch, "gallery " + path + " was built with embedder " + describe(stored) +
                                            ", but the embedder in use is " + describe(*expected) +
                                            "; use the gallery's embedder or enroll into a new gallery");
  // Only now that the file is known to be ours (these read the file, so their
  // errors would hide the clearer ones above). Our galleries are already WAL,
  // so journal_mode is a no-op unless someone switched the mode back.
  FACEREC_RETURN_IF_ERROR(exec(db, path, "PRAGMA synchronous = FULL"));
  Stmt jm;
  FACEREC_RETURN_IF_ERROR(prepare(db, path, "PRAGMA journal_mode = WAL", jm));
  if (sqlite3_step(jm.s) != SQLITE_ROW) return db_error(db, path, "enabling WAL");
  impl->dim = stored.dim;
  return impl;
}

}  // namespace

// Both public openers: `expected` null skips the embedder check.
Result<std::unique_ptr<Gallery>> Gallery::open_checked(const std::string& path, const EmbedderInfo* expected) {
  try {
    EmbedderInfo stored;
    auto impl = open_impl(path, expected, stored);
    if (!impl.ok()) return impl.status();
    std::unique_ptr<Gallery> g(new Gallery());
    g->impl_ = std::move(impl.value());
    g->embedder_ = stored;
    return g;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "opening gallery " + path + ": " + e.what());
  }
}

Result<std::unique_ptr<Gallery>> Gallery::open(const std::string& path, const EmbedderInfo& embedder) {
  return open_checked(path, &embedder);
}

Result<std::unique_ptr<Gallery>> Gallery::open_existing(const std::string& path) {
  return open_checked(path, nullptr);
}

Gallery::~Gallery() = default;

// ---- writes ---------------------------------------------------------------------------

Result<EnrollOutcome> Gallery::enroll(const std::string& given_name, const std::vector<NewTemplate>& templates) {
  try {
    FACEREC_ASSIGN_OR_RETURN(const std::string name, normalize_identity_name(given_name));
    if (templates.empty())
      return Status(ErrorCode::kInvalidArgument, "nothing to enroll for " + in_quotes(name) + ": no templates");
    // Everything is checked before the transaction starts, so a bad template
    // costs no lock and writes nothing.
    for (size_t i = 0; i < templates.size(); ++i)
      FACEREC_RETURN_IF_ERROR(check_template(templates[i], impl_->dim, i));

    Transaction tx(impl_->db, impl_->path);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    auto pid = impl_->person_id(name, /*create=*/true);
    if (!pid.ok()) return pid.status();
    auto out = impl_->insert_templates(pid.value(), templates);
    if (!out.ok()) return out.status();
    FACEREC_RETURN_IF_ERROR(tx.commit());
    return out.value();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "enrolling " + in_quotes(given_name) + ": " + e.what());
  }
}

Status Gallery::remove_person(const std::string& given_name) {
  try {
    // Not validated: a name stored before today's rules must stay removable.
    // Every stored form with this NFC goes (facerec/names.h).
    const std::string name = to_nfc(given_name);
    sqlite3* db = impl_->db;
    Stmt del;
    // One statement is one transaction; the templates go with the person
    // through ON DELETE CASCADE.
    FACEREC_RETURN_IF_ERROR(prepare(db, impl_->path, "DELETE FROM people WHERE name = ?1 OR "
                                    "(name GLOB '*[^ -~]*' AND facerec_nfc(name) = ?1)", del));
    bind_text(del.s, 1, name);
    if (sqlite3_step(del.s) != SQLITE_DONE) return db_error(db, impl_->path, "removing " + in_quotes(name));
    if (sqlite3_changes(db) == 0)
      return Status(ErrorCode::kNotFound, "no person named " + in_quotes(name) + " in " + impl_->path);
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "removing " + in_quotes(given_name) + ": " + e.what());
  }
}

Status Gallery::rename_person(const std::string& given_from, const std::string& given_to) {
  try {
    FACEREC_ASSIGN_OR_RETURN(const std::string to, normalize_identity_name(given_to));
    const std::string from = to_nfc(given_from);
    sqlite3* db = impl_->db;
    Transaction tx(db, impl_->path);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    auto pid = impl_->person_id(from, /*create=*/false);
    if (!pid.ok()) return pid.status();
    auto other = impl_->person_id(to, /*create=*/false);
    // The same person (to == from, or its stored NFD form): the update below
    // only stores the NFC form.
    if (other.ok() && other.value() != pid.value())
      return Status(ErrorCode::kInvalidArgument, "cannot rename " + in_quotes(from) + " to " + in_quotes(to) +
                                                     ": a person with that name already exists");
    if (!other.ok() && other.status().code() != ErrorCode::kNotFound) return other.status();
    Stmt upd;
    FACEREC_RETURN_IF_ERROR(prepare(db, impl_->path, "UPDATE people SET name = ?1 WHERE id = ?2", upd));
    bind_text(upd.s, 1, to);
    sqlite3_bind_int64(upd.s, 2, pid.value());
    if (sqlite3_step(upd.s) != SQLITE_DONE) return db_error(db, impl_->path, "renaming " + in_quotes(from));
    return tx.commit();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "renaming " + in_quotes(given_from) + ": " + e.what());
  }
}

// ---- reads ------------------------------------------------------------------------------

Result<std::vector<PersonInfo>> Gallery::list_people() const {
  try {
    sqlite3* db = impl_->db;
    Stmt sel;
    FACEREC_RETURN_IF_ERROR(prepare(db, impl_->path,
                                    "SELECT p.id, p.name, count(t.id) FROM people p "
                                    "LEFT JOIN templates t ON t.person_id = p.id "
                                    "GROUP BY p.id ORDER BY p.name",
                                    sel));
    std::vector<PersonInfo> out;
    int rc;
    while ((rc = sqlite3_step(sel.s)) == SQLITE_ROW) {
      PersonInfo p;
      p.id = sqlite3_column_int64(sel.s, 0);
      p.name = to_nfc(column_text(sel.s, 1));
      p.templates = sqlite3_column_int(sel.s, 2);
      out.push_back(std::move(p));
    }
    if (rc != SQLITE_DONE) return db_error(db, impl_->path, "listing people");
    return out;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("listing people: ") + e.what());
  }
}

Result<std::vector<StoredTemplate>> Gallery::templates() const {
  try {
    sqlite3* db = impl_->db;
    Stmt sel;
    FACEREC_RETURN_IF_ERROR(prepare(db, impl_->path,
                                    "SELECT id, person_id, vector, norm, source, source_sha256, det_score, "
                                    "created_at FROM templates ORDER BY id",
                                    sel));
    const size_t bytes = static_cast<size_t>(impl_->dim) * sizeof(float);
    std::vector<StoredTemplate> out;
    int rc;
    while ((rc = sqlite3_step(sel.s)) == SQLITE_ROW) {
      StoredTemplate t;
      t.id = sqlite3_column_int64(sel.s, 0);
      t.person_id = sqlite3_column_int64(sel.s, 1);
      const void* blob = sqlite3_column_blob(sel.s, 2);
      if (static_cast<size_t>(sqlite3_column_bytes(sel.s, 2)) != bytes || !blob)
        return Status(ErrorCode::kDatabase, "gallery " + impl_->path + ": template " + std::to_string(t.id) +
                                                " has " + std::to_string(sqlite3_column_bytes(sel.s, 2)) +
                                                " bytes, expected " + std::to_string(bytes) + " (corrupt)");
      t.unit.resize(static_cast<size_t>(impl_->dim));
      std::memcpy(t.unit.data(), blob, bytes);
      t.norm = static_cast<float>(sqlite3_column_double(sel.s, 3));
      t.source = column_text(sel.s, 4);
      t.source_sha256 = column_text(sel.s, 5);
      t.det_score = static_cast<float>(sqlite3_column_double(sel.s, 6));
      t.created_at = sqlite3_column_int64(sel.s, 7);
      out.push_back(std::move(t));
    }
    if (rc != SQLITE_DONE) return db_error(db, impl_->path, "reading templates");
    return out;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("reading templates: ") + e.what());
  }
}

Result<std::string> Gallery::person_name(int64_t person_id) const {
  try {
    Stmt sel;
    FACEREC_RETURN_IF_ERROR(prepare(impl_->db, impl_->path, "SELECT name FROM people WHERE id = ?1", sel));
    sqlite3_bind_int64(sel.s, 1, person_id);
    int rc = sqlite3_step(sel.s);
    if (rc == SQLITE_ROW) return to_nfc(column_text(sel.s, 0));
    if (rc == SQLITE_DONE)
      return Status(ErrorCode::kNotFound, "no person with id " + std::to_string(person_id) + " in " + impl_->path);
    return db_error(impl_->db, impl_->path, "looking up person " + std::to_string(person_id));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("looking up a person: ") + e.what());
  }
}

// ---- legacy format -----------------------------------------------------------------------

// Parsing, checks and the duplicate rule live in legacy.cc; here, only the
// one write transaction.
Result<LegacyImportReport> Gallery::import_legacy(const std::string& embeddings_txt,
                                                  const std::string& label_map_json) {
  try {
    FACEREC_ASSIGN_OR_RETURN(legacy::Parsed parsed, legacy::read_and_parse(embeddings_txt, label_map_json, impl_->dim));
    LegacyImportReport report;
    report.layout = parsed.layout;
    report.notes = std::move(parsed.notes);
    Transaction tx(impl_->db, impl_->path);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    auto stored = templates();
    if (!stored.ok()) return stored.status();
    auto by_person = legacy::drop_stored_vectors(parsed.entries, *stored, impl_->dim, report.already_present);
    for (const auto& [name, ts] : by_person) {
      auto pid = impl_->person_id(name, /*create=*/true);
      if (!pid.ok()) return pid.status();
      auto out = impl_->insert_templates(pid.value(), ts);
      if (!out.ok()) return out.status();
      report.added += out->added;
      report.already_present += out->duplicates;
    }
    FACEREC_RETURN_IF_ERROR(tx.commit());
    return report;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "importing " + embeddings_txt + ": " + e.what());
  }
}

Status Gallery::export_legacy(const std::string& embeddings_txt, const std::string& label_map_json) const {
  try {
    // One read transaction, so templates and names come from the same snapshot.
    Transaction tx(impl_->db, impl_->path);
    FACEREC_RETURN_IF_ERROR(tx.begin(false));
    auto ts = templates();
    if (!ts.ok()) return ts.status();
    auto people = list_people();
    if (!people.ok()) return people.status();
    FACEREC_RETURN_IF_ERROR(tx.commit());
    std::map<int64_t, std::string> names;
    for (const PersonInfo& p : people.value()) names[p.id] = p.name;
    std::string text, labels;
    Status s = legacy::format(*ts, names, text, labels);
    if (!s.ok()) return Status(s.code(), "gallery " + impl_->path + ": " + s.message());
    FACEREC_RETURN_IF_ERROR(legacy::write_file_atomically(embeddings_txt, text));
    return legacy::write_file_atomically(label_map_json, labels);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "exporting to " + embeddings_txt + ": " + e.what());
  }
}

}  // namespace facerec
