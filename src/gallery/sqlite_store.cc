// The SQLite GalleryStore (see facerec/gallery_store.h): one file, no server.
//
// Storage: vectors are float32 BLOBs in the machine's byte order, which is
// required to be little-endian (checked at compile time) so a gallery file is
// portable between the x86-64 and arm64 hosts we run on.
//
// Opening is read-only until the file is known to be a facerec gallery: the
// 16-byte SQLite header is checked before SQLite sees the file, and the meta
// table is read before any PRAGMA that could write (journal_mode). So a text
// file, a random SQLite database or a corrupt gallery is reported, never
// changed. kReadOnly opens with SQLITE_OPEN_READONLY (and, on read-only
// media where SQLite cannot make its WAL index, as an immutable file), so a
// gallery on a read-only mount can be listed and searched.
//
// Failures are named for what they are: "read-only" (SQLITE_READONLY, EROFS,
// EACCES), "disk full" (SQLITE_FULL, ENOSPC, EFBIG, EDQUOT) and "corrupt"
// only after PRAGMA integrity_check has failed.
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "facerec/names.h"
#include "gallery/store_common.h"

namespace facerec::store {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "gallery vectors are stored as little-endian float32 BLOBs");
static_assert(sizeof(float) == 4);

namespace {

// How long a writer waits for another process's transaction before giving up.
constexpr int kBusyTimeoutMs = 10000;

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s); }
};

bool is_read_only_failure(int code, int sys_errno) {
  return (code & 0xff) == SQLITE_READONLY || sys_errno == EROFS || sys_errno == EACCES || sys_errno == EPERM;
}
bool is_full_failure(int code, int sys_errno) {
  return (code & 0xff) == SQLITE_FULL || sys_errno == ENOSPC || sys_errno == EFBIG || sys_errno == EDQUOT;
}

// Whether a failed write can be put down to a full disk: SQLite does not
// always keep the errno of a short write (ENOSPC, or EFBIG past RLIMIT_FSIZE),
// so the room left is looked at directly: under 1 MiB free on the gallery's
// file system, or the file (or its WAL) within 64 KiB of the size limit.
bool no_room_for(const std::string& path) {
  const fs::path p(path);
  struct statvfs v;
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  if (::statvfs(dir.c_str(), &v) == 0 && static_cast<double>(v.f_bavail) * v.f_frsize < 1024.0 * 1024.0) return true;
  rlimit lim;
  if (::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    for (const std::string& f : {path, path + "-wal", path + "-journal"}) {
      struct stat st;
      if (::stat(f.c_str(), &st) == 0 && static_cast<rlim_t>(st.st_size) + 65536 >= lim.rlim_cur) return true;
    }
  }
  return false;
}

// The one place a SQLite failure becomes a Status: read-only storage and a
// full disk are kIo with those words; everything else is kDatabase.
Status db_error(sqlite3* db, const std::string& path, const std::string& what) {
  const int code = sqlite3_extended_errcode(db);
  const int sys = sqlite3_system_errno(db);
  if (is_read_only_failure(code, sys) && (code & 0xff) != SQLITE_CANTOPEN)
    return Status(ErrorCode::kIo, "gallery " + path + " is read-only (" + what + ": " + sqlite3_errmsg(db) +
                                      "); nothing was written. Enrol into a writable copy, or use read-only "
                                      "commands (identify, gallery list)");
  if (is_full_failure(code, sys) || ((code & 0xff) == SQLITE_IOERR && no_room_for(path)))
    return Status(ErrorCode::kIo, "gallery " + path + ": disk full (" + what + ": " +
                                      (sys ? std::strerror(sys) : sqlite3_errmsg(db)) +
                                      "); the gallery is unchanged. Free some space and try again");
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
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return db_error(db, path, sql);
  return Status::Ok();
}

// facerec_nfc(text): the NFC form, for name lookups that also match names
// stored before normalisation (facerec/names.h).
void sql_nfc(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const unsigned char* t = sqlite3_value_text(argv[0]);
  if (!t) return sqlite3_result_null(ctx);
  const std::string out =
      to_nfc(std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_value_bytes(argv[0]))));
  sqlite3_result_text(ctx, out.data(), static_cast<int>(out.size()), SQLITE_TRANSIENT);
}

Status register_nfc(sqlite3* db, const std::string& path) {
  if (sqlite3_create_function(db, "facerec_nfc", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, &sql_nfc, nullptr,
                              nullptr) != SQLITE_OK)
    return db_error(db, path, "registering facerec_nfc");
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

// v1: the layout of every gallery written before stores existed.
constexpr const char* kSchemaV1 =
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
    "CREATE INDEX templates_person ON templates(person_id);";

// v2: the version table and the change log. AUTOINCREMENT: a seq is never
// reused, even after the newest change row is gone.
constexpr const char* kMigrationV2 =
    "CREATE TABLE schema_version(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);"
    "INSERT INTO schema_version(version, applied_at) VALUES(1, CAST(strftime('%s','now') AS INTEGER));"
    "CREATE TABLE changes("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL,"            // enroll | remove | rename
    "  name TEXT NOT NULL,"
    "  new_name TEXT NOT NULL DEFAULT '',"
    "  template_ids TEXT NOT NULL DEFAULT '',"  // enroll: "1,2,3"
    "  at INTEGER NOT NULL);";

enum class FileKind { kMissing, kEmpty, kSqlite, kOther, kNotRegular };

FileKind classify(const std::string& path, std::string& why) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return FileKind::kMissing;
    why = "cannot be read (" + std::string(std::strerror(errno)) + ")";
    return FileKind::kOther;
  }
  if (!S_ISREG(st.st_mode)) return FileKind::kNotRegular;
  if (st.st_size == 0) return FileKind::kEmpty;
  static const char kMagic[16] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f', 'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};
  char head[16] = {};
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    why = "cannot be read (" + std::string(std::strerror(errno)) + ")";
    return FileKind::kOther;
  }
  f.read(head, sizeof head);
  if (f.gcount() != static_cast<std::streamsize>(sizeof head) || std::memcmp(head, kMagic, sizeof head) != 0) {
    why = "is not a SQLite database";
    return FileKind::kOther;
  }
  return FileKind::kSqlite;
}

// "corrupt" only after SQLite's own integrity check has failed (or could not
// even run); read-only, I/O, lock and permission failures are said as such.
Status unreadable(sqlite3* db, const std::string& path, const std::string& what) {
  const int code = sqlite3_extended_errcode(db);
  const int primary = code & 0xff;
  if (primary != SQLITE_CORRUPT && primary != SQLITE_NOTADB && primary != SQLITE_ERROR)
    return db_error(db, path, what);
  const std::string first = sqlite3_errmsg(db);
  std::string verdict;
  Stmt ic;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check(5)", -1, &ic.s, nullptr) == SQLITE_OK) {
    int rc;
    while ((rc = sqlite3_step(ic.s)) == SQLITE_ROW)
      if (verdict.size() < 300) verdict += (verdict.empty() ? "" : "; ") + column_text(ic.s, 0);
    if (rc != SQLITE_DONE) verdict = sqlite3_errmsg(db);
  } else {
    verdict = sqlite3_errmsg(db);
  }
  if (verdict == "ok") return Status(ErrorCode::kDatabase, path + " is not a facerec gallery (" + what + ": " + first + ")");
  return Status(ErrorCode::kDatabase, path + " is not a facerec gallery, or is corrupt: " + what + ": " + first +
                                          "; integrity_check: " + verdict);
}

class SqliteStore final : public GalleryStore {
 public:
  ~SqliteStore() override {
    // sqlite3_close_v2 defers the close until the last statement is finalised;
    // all of ours are scoped, so this closes (and checkpoints the WAL) now.
    if (db_) sqlite3_close_v2(db_);
  }

  static Result<std::unique_ptr<GalleryStore>> open(const std::string& path, GalleryAccess access,
                                                    const EmbedderInfo* expected);

  const char* backend() const override { return "sqlite"; }
  const std::string& location() const override { return path_; }
  const EmbedderInfo& embedder() const override { return embedder_; }
  int schema_version() const override { return version_; }
  bool read_only() const override { return access_ == GalleryAccess::kReadOnly; }
  int64_t last_write_seq() const override { return last_write_seq_; }

  Result<EnrollOutcome> enroll(const std::string& name, const std::vector<NewTemplate>& templates) override {
    FACEREC_RETURN_IF_ERROR(writable());
    Transaction tx(db_, path_);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    FACEREC_ASSIGN_OR_RETURN(EnrollOutcome out, enroll_locked(name, templates));
    FACEREC_ASSIGN_OR_RETURN(int64_t seq, log_change("enroll", name, "", join_ids(out.template_ids)));
    FACEREC_RETURN_IF_ERROR(tx.commit());
    last_write_seq_ = seq;
    return out;
  }

  Result<std::vector<EnrollOutcome>> enroll_batch(
      const std::vector<std::pair<std::string, std::vector<NewTemplate>>>& people) override {
    FACEREC_RETURN_IF_ERROR(writable());
    Transaction tx(db_, path_);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    std::vector<EnrollOutcome> outs;
    int64_t seq = 0;
    for (const auto& [name, ts] : people) {
      FACEREC_ASSIGN_OR_RETURN(EnrollOutcome out, enroll_locked(name, ts));
      FACEREC_ASSIGN_OR_RETURN(seq, log_change("enroll", name, "", join_ids(out.template_ids)));
      outs.push_back(std::move(out));
    }
    FACEREC_RETURN_IF_ERROR(tx.commit());
    if (seq) last_write_seq_ = seq;
    return outs;
  }

  Status remove_person(const std::string& name) override {
    FACEREC_RETURN_IF_ERROR(writable());
    Transaction tx(db_, path_);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    Stmt del;
    // The templates go with the person through ON DELETE CASCADE.
    // Every stored form with this NFC goes (facerec/names.h).
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_, "DELETE FROM people WHERE name = ?1 OR "
                                    "(name GLOB '*[^ -~]*' AND facerec_nfc(name) = ?1)", del));
    bind_text(del.s, 1, name);
    if (sqlite3_step(del.s) != SQLITE_DONE) return db_error(db_, path_, "removing " + quoted(name));
    if (sqlite3_changes(db_) == 0)
      return Status(ErrorCode::kNotFound, "no person named " + quoted(name) + " in " + path_);
    FACEREC_ASSIGN_OR_RETURN(int64_t seq, log_change("remove", name, "", ""));
    FACEREC_RETURN_IF_ERROR(tx.commit());
    last_write_seq_ = seq;
    return Status::Ok();
  }

  Status rename_person(const std::string& from, const std::string& to) override {
    FACEREC_RETURN_IF_ERROR(writable());
    Transaction tx(db_, path_);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    FACEREC_ASSIGN_OR_RETURN(int64_t pid, person_id(from, false));
    if (from == to) return Status::Ok();
    auto other = person_id(to, false);
    if (other.ok())
      return Status(ErrorCode::kInvalidArgument, "cannot rename " + quoted(from) + " to " + quoted(to) +
                                                     ": a person with that name already exists");
    if (other.status().code() != ErrorCode::kNotFound) return other.status();
    Stmt upd;
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_, "UPDATE people SET name = ?1 WHERE id = ?2", upd));
    bind_text(upd.s, 1, to);
    sqlite3_bind_int64(upd.s, 2, pid);
    if (sqlite3_step(upd.s) != SQLITE_DONE) return db_error(db_, path_, "renaming " + quoted(from));
    FACEREC_ASSIGN_OR_RETURN(int64_t seq, log_change("rename", from, to, ""));
    FACEREC_RETURN_IF_ERROR(tx.commit());
    last_write_seq_ = seq;
    return Status::Ok();
  }

  Result<std::vector<PersonInfo>> list_people() const override {
    Stmt sel;
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_,
                                    "SELECT p.id, p.name, count(t.id) FROM people p "
                                    "LEFT JOIN templates t ON t.person_id = p.id "
                                    "GROUP BY p.id ORDER BY p.name",
                                    sel));
    std::vector<PersonInfo> out;
    int rc;
    while ((rc = sqlite3_step(sel.s)) == SQLITE_ROW) {
      PersonInfo p;
      p.id = sqlite3_column_int64(sel.s, 0);
      p.name = column_text(sel.s, 1);
      p.templates = sqlite3_column_int(sel.s, 2);
      out.push_back(std::move(p));
    }
    if (rc != SQLITE_DONE) return db_error(db_, path_, "listing people");
    return out;
  }

  Result<std::vector<StoredTemplate>> templates() const override { return read_templates(nullptr); }

  Result<std::vector<StoredTemplate>> templates_by_id(const std::vector<int64_t>& ids) const override {
    std::vector<int64_t> sorted(ids);
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    return read_templates(&sorted);
  }

  Result<std::string> person_name(int64_t person_id) const override {
    Stmt sel;
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_, "SELECT name FROM people WHERE id = ?1", sel));
    sqlite3_bind_int64(sel.s, 1, person_id);
    int rc = sqlite3_step(sel.s);
    if (rc == SQLITE_ROW) return column_text(sel.s, 0);
    if (rc == SQLITE_DONE)
      return Status(ErrorCode::kNotFound, "no person with id " + std::to_string(person_id) + " in " + path_);
    return db_error(db_, path_, "looking up person " + std::to_string(person_id));
  }

  Result<GallerySnapshot> snapshot() const override {
    // One read transaction, so templates and names come from the same snapshot.
    Transaction tx(db_, path_);
    FACEREC_RETURN_IF_ERROR(tx.begin(false));
    GallerySnapshot s;
    FACEREC_ASSIGN_OR_RETURN(s.people, list_people());
    FACEREC_ASSIGN_OR_RETURN(s.templates, templates());
    FACEREC_ASSIGN_OR_RETURN(s.last_seq, head_seq());
    FACEREC_RETURN_IF_ERROR(tx.commit());
    return s;
  }

  Result<std::vector<GalleryChange>> changes_since(int64_t after) const override {
    std::vector<GalleryChange> out;
    if (version_ < 2) return out;  // a v1 gallery opened read-only has no log
    Stmt sel;
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_,
                                    "SELECT seq, kind, name, new_name, template_ids FROM changes "
                                    "WHERE seq > ?1 ORDER BY seq",
                                    sel));
    sqlite3_bind_int64(sel.s, 1, after);
    int rc;
    while ((rc = sqlite3_step(sel.s)) == SQLITE_ROW) {
      GalleryChange c;
      c.seq = sqlite3_column_int64(sel.s, 0);
      if (!parse_kind(column_text(sel.s, 1), c.kind))
        return Status(ErrorCode::kDatabase, "gallery " + path_ + ": change " + std::to_string(c.seq) +
                                                " has an unknown kind " + quoted(column_text(sel.s, 1)));
      c.name = column_text(sel.s, 2);
      c.new_name = column_text(sel.s, 3);
      c.template_ids = split_ids(column_text(sel.s, 4));
      out.push_back(std::move(c));
    }
    if (rc != SQLITE_DONE) return db_error(db_, path_, "reading the change log");
    return out;
  }

  Result<int64_t> head_seq() const override {
    if (version_ < 2) return int64_t{0};
    Stmt sel;
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_, "SELECT coalesce(max(seq), 0) FROM changes", sel));
    if (sqlite3_step(sel.s) != SQLITE_ROW) return db_error(db_, path_, "reading the change log head");
    return static_cast<int64_t>(sqlite3_column_int64(sel.s, 0));
  }

 private:
  Status writable() const {
    if (access_ == GalleryAccess::kReadOnly)
      return Status(ErrorCode::kIo, "gallery " + path_ + " was opened read-only; nothing was written");
    return Status::Ok();
  }

  // Looks up or creates the person inside the caller's transaction. `name`
  // is NFC; a stored name matches if it or its NFC form is equal (names
  // stored before normalisation may be NFD, facerec/names.h), the exact one
  // first.
  Result<int64_t> person_id(const std::string& name, bool create) {
    for (const char* sql : {"SELECT id FROM people WHERE name = ?1",
                            "SELECT id FROM people WHERE name GLOB '*[^ -~]*' AND facerec_nfc(name) = ?1 "
                            "ORDER BY id LIMIT 1"}) {
      Stmt sel;
      FACEREC_RETURN_IF_ERROR(prepare(db_, path_, sql, sel));
      bind_text(sel.s, 1, name);
      int rc = sqlite3_step(sel.s);
      if (rc == SQLITE_ROW) return static_cast<int64_t>(sqlite3_column_int64(sel.s, 0));
      if (rc != SQLITE_DONE) return db_error(db_, path_, "looking up " + quoted(name));
    }
    if (!create) return Status(ErrorCode::kNotFound, "no person named " + quoted(name) + " in " + path_);
    Stmt ins;
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_, "INSERT INTO people(name) VALUES(?1)", ins));
    bind_text(ins.s, 1, name);
    if (sqlite3_step(ins.s) != SQLITE_DONE) return db_error(db_, path_, "adding person " + quoted(name));
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  }

  // Person + templates inside the caller's transaction.
  Result<EnrollOutcome> enroll_locked(const std::string& name, const std::vector<NewTemplate>& templates) {
    FACEREC_ASSIGN_OR_RETURN(int64_t pid, person_id(name, true));
    Stmt ins;
    // The conflict target names the partial unique index, so only a repeated
    // non-empty source_sha256 for this person is skipped; every other
    // constraint failure is still an error.
    FACEREC_RETURN_IF_ERROR(prepare(
        db_, path_,
        "INSERT INTO templates(person_id, vector, norm, source, source_sha256, det_score, created_at) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
        "ON CONFLICT(person_id, source_sha256) WHERE source_sha256 <> '' DO NOTHING",
        ins));
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    EnrollOutcome out;
    for (const NewTemplate& t : templates) {
      sqlite3_reset(ins.s);
      sqlite3_bind_int64(ins.s, 1, pid);
      sqlite3_bind_blob(ins.s, 2, t.unit.data(), static_cast<int>(t.unit.size() * sizeof(float)), SQLITE_STATIC);
      sqlite3_bind_double(ins.s, 3, t.norm);
      bind_text(ins.s, 4, t.source);
      bind_text(ins.s, 5, t.source_sha256);
      sqlite3_bind_double(ins.s, 6, t.det_score);
      sqlite3_bind_int64(ins.s, 7, now);
      if (sqlite3_step(ins.s) != SQLITE_DONE) return db_error(db_, path_, "inserting a template");
      if (sqlite3_changes(db_) == 1) {
        ++out.added;
        out.template_ids.push_back(static_cast<int64_t>(sqlite3_last_insert_rowid(db_)));
      } else {
        ++out.duplicates;
        out.template_ids.push_back(0);
      }
    }
    return out;
  }

  // Appends to the change log inside the caller's transaction; its seq.
  Result<int64_t> log_change(const char* kind, const std::string& name, const std::string& new_name,
                             const std::string& ids) {
    Stmt ins;
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_,
                                    "INSERT INTO changes(kind, name, new_name, template_ids, at) "
                                    "VALUES(?1, ?2, ?3, ?4, CAST(strftime('%s','now') AS INTEGER))",
                                    ins));
    bind_text(ins.s, 1, kind);
    bind_text(ins.s, 2, name);
    bind_text(ins.s, 3, new_name);
    bind_text(ins.s, 4, ids);
    if (sqlite3_step(ins.s) != SQLITE_DONE) return db_error(db_, path_, "writing the change log");
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  }

  Result<std::vector<StoredTemplate>> read_templates(const std::vector<int64_t>* ids) const {
    Stmt sel;
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_,
                                    ids ? "SELECT id, person_id, vector, norm, source, source_sha256, det_score, "
                                          "created_at FROM templates WHERE id = ?1"
                                        : "SELECT id, person_id, vector, norm, source, source_sha256, det_score, "
                                          "created_at FROM templates ORDER BY id",
                                    sel));
    const size_t bytes = static_cast<size_t>(embedder_.dim) * sizeof(float);
    std::vector<StoredTemplate> out;
    const size_t rounds = ids ? ids->size() : 1;
    for (size_t k = 0; k < rounds; ++k) {
      if (ids) {
        sqlite3_reset(sel.s);
        sqlite3_bind_int64(sel.s, 1, (*ids)[k]);
      }
      int rc;
      while ((rc = sqlite3_step(sel.s)) == SQLITE_ROW) {
        StoredTemplate t;
        t.id = sqlite3_column_int64(sel.s, 0);
        t.person_id = sqlite3_column_int64(sel.s, 1);
        const void* blob = sqlite3_column_blob(sel.s, 2);
        if (static_cast<size_t>(sqlite3_column_bytes(sel.s, 2)) != bytes || !blob)
          return Status(ErrorCode::kDatabase, "gallery " + path_ + ": template " + std::to_string(t.id) + " has " +
                                                  std::to_string(sqlite3_column_bytes(sel.s, 2)) +
                                                  " bytes, expected " + std::to_string(bytes) + " (corrupt)");
        t.unit.resize(static_cast<size_t>(embedder_.dim));
        std::memcpy(t.unit.data(), blob, bytes);
        t.norm = static_cast<float>(sqlite3_column_double(sel.s, 3));
        t.source = column_text(sel.s, 4);
        t.source_sha256 = column_text(sel.s, 5);
        t.det_score = static_cast<float>(sqlite3_column_double(sel.s, 6));
        t.created_at = sqlite3_column_int64(sel.s, 7);
        out.push_back(std::move(t));
      }
      if (rc != SQLITE_DONE) return db_error(db_, path_, "reading templates");
    }
    return out;
  }

  // Reads and checks the meta table without writing anything.
  Result<EmbedderInfo> read_meta() {
    const std::string not_gallery = path_ + " is not a facerec gallery";
    Stmt has;
    // The first read of the file: a damaged or unreadable database fails here.
    if (sqlite3_prepare_v2(db_, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &has.s, nullptr) !=
        SQLITE_OK)
      return unreadable(db_, path_, "reading the schema");
    std::set<std::string> tables;
    int rc;
    while ((rc = sqlite3_step(has.s)) == SQLITE_ROW) tables.insert(column_text(has.s, 0));
    if (rc != SQLITE_DONE) return unreadable(db_, path_, "reading the schema");
    if (!tables.count("meta")) return Status(ErrorCode::kDatabase, not_gallery + " (no meta table)");
    if (!tables.count("people") || !tables.count("templates"))
      return Status(ErrorCode::kDatabase, not_gallery + " (people or templates table missing)");
    Stmt sel;
    if (sqlite3_prepare_v2(db_, "SELECT key, value FROM meta", -1, &sel.s, nullptr) != SQLITE_OK)
      return unreadable(db_, path_, "reading the meta table");
    std::map<std::string, std::string> meta;
    while ((rc = sqlite3_step(sel.s)) == SQLITE_ROW) meta[column_text(sel.s, 0)] = column_text(sel.s, 1);
    if (rc != SQLITE_DONE) return unreadable(db_, path_, "reading the meta table");
    return embedder_from_meta(path_, meta, version_);
  }

  // Migrations from version_ to kGallerySchemaVersion, each in its own
  // write transaction; the version is re-read under the lock, since another
  // process may have migrated meanwhile.
  Status migrate() {
    while (version_ < kGallerySchemaVersion) {
      Transaction tx(db_, path_);
      FACEREC_RETURN_IF_ERROR(tx.begin(true));
      {
        Stmt sel;
        FACEREC_RETURN_IF_ERROR(prepare(db_, path_, "SELECT value FROM meta WHERE key = 'format_version'", sel));
        if (sqlite3_step(sel.s) != SQLITE_ROW) return db_error(db_, path_, "reading the schema version");
        version_ = std::stoi(column_text(sel.s, 0));
      }
      if (version_ >= kGallerySchemaVersion) break;
      const int next = version_ + 1;
      if (next == 2) FACEREC_RETURN_IF_ERROR(exec(db_, path_, kMigrationV2));
      Stmt v;
      FACEREC_RETURN_IF_ERROR(prepare(db_, path_,
                                      "INSERT INTO schema_version(version, applied_at) "
                                      "VALUES(?1, CAST(strftime('%s','now') AS INTEGER))",
                                      v));
      sqlite3_bind_int(v.s, 1, next);
      if (sqlite3_step(v.s) != SQLITE_DONE) return db_error(db_, path_, "recording the schema version");
      Stmt up;
      FACEREC_RETURN_IF_ERROR(prepare(db_, path_, "UPDATE meta SET value = ?1 WHERE key = 'format_version'", up));
      bind_text(up.s, 1, std::to_string(next));
      if (sqlite3_step(up.s) != SQLITE_DONE) return db_error(db_, path_, "recording the schema version");
      FACEREC_RETURN_IF_ERROR(tx.commit());
      version_ = next;
    }
    return Status::Ok();
  }

  Status create_v1(const EmbedderInfo& e) {
    FACEREC_RETURN_IF_ERROR(exec(db_, path_, kSchemaV1));
    Stmt ins;
    FACEREC_RETURN_IF_ERROR(prepare(db_, path_, "INSERT INTO meta(key, value) VALUES(?1, ?2)", ins));
    for (const auto& [k, v] : meta_rows_v1(e)) {
      sqlite3_reset(ins.s);
      bind_text(ins.s, 1, k);
      bind_text(ins.s, 2, v);
      if (sqlite3_step(ins.s) != SQLITE_DONE) return db_error(db_, path_, "writing meta");
    }
    return Status::Ok();
  }

  sqlite3* db_ = nullptr;
  std::string path_;
  GalleryAccess access_ = GalleryAccess::kReadWrite;
  EmbedderInfo embedder_;
  int version_ = 0;
  int64_t last_write_seq_ = 0;
};

Result<std::unique_ptr<GalleryStore>> SqliteStore::open(const std::string& path, GalleryAccess access,
                                                        const EmbedderInfo* expected) {
  std::string why;
  FileKind kind = classify(path, why);
  const bool may_create = access == GalleryAccess::kCreate;
  switch (kind) {
    case FileKind::kNotRegular:
      return Status(ErrorCode::kDatabase, path + " is not a regular file, so not a facerec gallery");
    case FileKind::kOther:
      return Status(ErrorCode::kDatabase, path + " " + why + ", so not a facerec gallery; refusing to touch it");
    case FileKind::kMissing:
      if (!may_create) return Status(ErrorCode::kNotFound, "no gallery at " + path);
      break;
    case FileKind::kEmpty:
      // An empty file holds nothing to lose (e.g. made by mktemp); SQLite
      // itself treats it as an empty database.
      if (!may_create) return Status(ErrorCode::kDatabase, path + " is an empty file, not a facerec gallery");
      break;
    case FileKind::kSqlite:
      break;
  }
  bool fresh = kind == FileKind::kMissing || kind == FileKind::kEmpty;
  if (fresh && (!expected || expected->dim <= 0 || expected->model_id.empty()))
    return Status(ErrorCode::kInvalidArgument,
                  "cannot create gallery " + path + ": the embedder needs a model id and a positive dimension");

  std::unique_ptr<SqliteStore> s(new SqliteStore());
  s->path_ = path;
  s->access_ = access;
  const bool ro = access == GalleryAccess::kReadOnly;
  int flags = (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | (fresh ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &s->db_, flags, nullptr) != SQLITE_OK) {
    const int sys = s->db_ ? sqlite3_system_errno(s->db_) : 0;
    std::string msg = s->db_ ? sqlite3_errmsg(s->db_) : "out of memory";
    if (!ro && is_read_only_failure(s->db_ ? sqlite3_extended_errcode(s->db_) : 0, sys))
      return Status(ErrorCode::kIo, "gallery " + path + " is read-only (" + msg + "); nothing was written");
    return Status(ErrorCode::kDatabase, "cannot open gallery " + path + ": " + msg);
  }
  sqlite3* db = s->db_;
  sqlite3_extended_result_codes(db, 1);
  FACEREC_RETURN_IF_ERROR(register_nfc(db, path));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // A connection-level setting: it neither reads nor writes the file.
  FACEREC_RETURN_IF_ERROR(exec(db, path, "PRAGMA foreign_keys = ON"));

  if (!fresh) {
    // A SQLite file with no table, user_version or application_id holds
    // nothing to lose, like an empty file: what `enroll` leaves when it is
    // killed while creating the gallery (Cli.KilledEnrolmentLeavesNoPartialPerson).
    // A user_version or application_id says another program owns the file
    // (refused below, untouched). A read error here is left to read_meta(),
    // whose messages are clearer.
    auto zero = [&](const char* sql) {
      Stmt q;
      return sqlite3_prepare_v2(db, sql, -1, &q.s, nullptr) == SQLITE_OK && sqlite3_step(q.s) == SQLITE_ROW &&
             sqlite3_column_int64(q.s, 0) == 0;
    };
    if (zero("SELECT count(*) FROM sqlite_master") && zero("PRAGMA user_version") && zero("PRAGMA application_id")) {
      if (!may_create)
        return Status(ErrorCode::kNotFound, "no gallery at " + path +
                                                " (an empty SQLite database: an enrolment stopped before it created the "
                                                "gallery; enrol again to create it)");
      if (!expected || expected->dim <= 0 || expected->model_id.empty())
        return Status(ErrorCode::kInvalidArgument,
                      "cannot create gallery " + path + ": the embedder needs a model id and a positive dimension");
      fresh = true;
    }
  }

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
      FACEREC_RETURN_IF_ERROR(s->create_v1(*expected));
      FACEREC_RETURN_IF_ERROR(tx.commit());
    }
  }

  auto meta = s->read_meta();
  if (!meta.ok() && ro && ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CANTOPEN ||
                            (sqlite3_extended_errcode(db) & 0xff) == SQLITE_READONLY)) {
    // Read-only media: SQLite cannot create the WAL index (-shm) beside the
    // file. A cleanly closed gallery has no WAL to replay, so it is read as
    // an immutable file (no locking: writers cannot exist on read-only
    // media). A WAL left by a crash cannot be replayed there, and is refused.
    std::error_code wal_ec;
    if (fs::exists(path + "-wal", wal_ec) && fs::file_size(path + "-wal", wal_ec) > 0)
      return Status(ErrorCode::kIo, "gallery " + path + " is on read-only storage with an unreplayed write-ahead log (" +
                                        path + "-wal, left by a crash): open it once where it is writable");
    sqlite3_close_v2(s->db_);
    s->db_ = nullptr;
    const std::string uri = "file:" + path + "?immutable=1";
    if (sqlite3_open_v2(uri.c_str(), &s->db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) != SQLITE_OK)
      return Status(ErrorCode::kDatabase, "cannot open gallery " + path + ": " +
                                              (s->db_ ? sqlite3_errmsg(s->db_) : "out of memory"));
    db = s->db_;
    sqlite3_extended_result_codes(db, 1);
    FACEREC_RETURN_IF_ERROR(register_nfc(db, path));
    meta = s->read_meta();
  }
  if (!meta.ok()) return meta.status();
  s->embedder_ = meta.value();
  FACEREC_RETURN_IF_ERROR(check_embedder(path, s->embedder_, expected));
  if (ro) return std::unique_ptr<GalleryStore>(std::move(s));
  // Only now that the file is known to be ours (these read the file, so their
  // errors would hide the clearer ones above). Our galleries are already WAL,
  // so journal_mode is a no-op unless someone switched the mode back.
  FACEREC_RETURN_IF_ERROR(exec(db, path, "PRAGMA synchronous = FULL"));
  {
    // Finalised before the migrations: an unfinished PRAGMA counts as a
    // writer and would block their COMMIT.
    Stmt jm;
    FACEREC_RETURN_IF_ERROR(prepare(db, path, "PRAGMA journal_mode = WAL", jm));
    if (sqlite3_step(jm.s) != SQLITE_ROW) return db_error(db, path, "enabling WAL");
  }
  FACEREC_RETURN_IF_ERROR(s->migrate());
  return std::unique_ptr<GalleryStore>(std::move(s));
}

// SQLite has no server to push changes: the listener polls the log's head.
class SqliteListener final : public GalleryListener {
 public:
  explicit SqliteListener(std::unique_ptr<GalleryStore> store) : store_(std::move(store)) {}
  Result<std::optional<int64_t>> wait(std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(200)));
    FACEREC_ASSIGN_OR_RETURN(int64_t head, store_->head_seq());
    if (head == last_) return std::optional<int64_t>();
    last_ = head;
    return std::optional<int64_t>(head);
  }

 private:
  std::unique_ptr<GalleryStore> store_;
  int64_t last_ = -1;
};

}  // namespace

Result<std::unique_ptr<GalleryStore>> open_sqlite_store(const std::string& path, GalleryAccess access,
                                                        const EmbedderInfo* expected) {
  try {
    return SqliteStore::open(path, access, expected);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "opening gallery " + path + ": " + e.what());
  }
}

Result<std::unique_ptr<GalleryListener>> open_sqlite_listener(const std::string& path) {
  FACEREC_ASSIGN_OR_RETURN(auto st, open_sqlite_store(path, GalleryAccess::kReadOnly, nullptr));
  return std::unique_ptr<GalleryListener>(new SqliteListener(std::move(st)));
}

}  // namespace facerec::store
