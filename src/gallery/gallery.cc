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

#include <openssl/evp.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace facerec {

static_assert(std::endian::native == std::endian::little,
              "gallery vectors are stored as little-endian float32 BLOBs");
static_assert(sizeof(float) == 4);

namespace {

constexpr const char* kFormatName = "facerec-gallery";
constexpr int kFormatVersion = 1;
constexpr int kMaxNameBytes = 256;
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

std::string sha256_hex(const void* data, size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr) != 1) return {};
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// Decodes one UTF-8 code point at s[i]; advances i. Returns -1 on anything
// that is not well-formed UTF-8 (overlongs, surrogates, > U+10FFFF, truncation).
int32_t next_code_point(std::string_view s, size_t& i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  int len;
  int32_t cp;
  if (c < 0x80) { ++i; return c; }
  if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
  else return -1;
  if (i + len > s.size()) return -1;
  for (int k = 1; k < len; ++k) {
    unsigned char cc = b(i + k);
    if ((cc & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return -1;
  i += len;
  return cp;
}

// Unicode White_Space code points (the ASCII ones other than space are
// control characters and rejected anyway).
bool is_unicode_space(int32_t cp) {
  return cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
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

Status read_file(const std::string& path, std::string& out) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status(ErrorCode::kNotFound, path + ": no such file");
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorCode::kIo, path + ": cannot open for reading");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status(ErrorCode::kIo, path + ": read failed");
  out = ss.str();
  return Status::Ok();
}

// Writes via a temporary file and rename(), so a reader never sees half a file.
Status write_file_atomically(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Status(ErrorCode::kIo, tmp + ": cannot open for writing");
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.flush();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return Status(ErrorCode::kIo, tmp + ": write failed");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Status(ErrorCode::kIo, path + ": cannot write: " + ec.message());
  }
  return Status::Ok();
}

// Parses one line of face_embdding.txt: floats separated by whitespace and/or
// a single comma. Empty string on success, else what is wrong.
std::string parse_legacy_line(std::string_view line, std::vector<float>& out) {
  out.clear();
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
  };
  skip_ws();
  if (i == line.size()) return "empty line";
  while (true) {
    const char* begin = line.data() + i;
    const char* end = line.data() + line.size();
    if (*begin == '+') ++begin;  // Python never writes it, but other tools do
    float v = 0;
    auto [ptr, ec] = std::from_chars(begin, end, v);
    if (ec != std::errc() || ptr == begin)
      return "value " + std::to_string(out.size() + 1) + " is not a number";
    if (!std::isfinite(v)) return "value " + std::to_string(out.size() + 1) + " is not finite";
    out.push_back(v);
    i = static_cast<size_t>(ptr - line.data());
    size_t before = i;
    skip_ws();
    if (i == line.size()) return {};
    if (line[i] == ',') {
      ++i;
      skip_ws();
      if (i == line.size()) return "trailing comma";
    } else if (i == before) {
      return "unexpected character after value " + std::to_string(out.size());
    }
  }
}

// Strict non-negative decimal index, as written by Python's str(int).
bool parse_index(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  if (s.size() > 1 && s[0] == '0') return false;
  out = std::stoll(s);
  return true;
}

}  // namespace

// ---- names ------------------------------------------------------------------------

Status validate_identity_name(const std::string& name) {
  if (name.empty()) return Status(ErrorCode::kInvalidArgument, "identity name is empty");
  if (name.size() > static_cast<size_t>(kMaxNameBytes))
    return Status(ErrorCode::kInvalidArgument, "identity name is " + std::to_string(name.size()) +
                                                   " bytes; the limit is " + std::to_string(kMaxNameBytes));
  size_t i = 0;
  int32_t first = -1, last = -1;
  while (i < name.size()) {
    size_t at = i;
    int32_t cp = next_code_point(name, i);
    if (cp < 0)
      return Status(ErrorCode::kInvalidArgument,
                    "identity name is not valid UTF-8 (byte " + std::to_string(at) + ")");
    // C0, DEL and C1 controls: invisible, and some (ESC, CSI) drive terminals.
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
      return Status(ErrorCode::kInvalidArgument,
                    "identity name contains a control character (byte " + std::to_string(at) + ")");
    if (first < 0) first = cp;
    last = cp;
  }
  if (is_unicode_space(first) || is_unicode_space(last))
    return Status(ErrorCode::kInvalidArgument, "identity name has leading or trailing whitespace");
  return Status::Ok();
}

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

  // Looks up or creates the person inside the caller's transaction.
  Result<int64_t> person_id(const std::string& name, bool create) {
    if (create) {
      Stmt ins;
      FACEREC_RETURN_IF_ERROR(
          prepare(db, path, "INSERT INTO people(name) VALUES(?1) ON CONFLICT(name) DO NOTHING", ins));
      bind_text(ins.s, 1, name);
      if (sqlite3_step(ins.s) != SQLITE_DONE) return db_error(db, path, "adding person " + in_quotes(name));
    }
    Stmt sel;
    FACEREC_RETURN_IF_ERROR(prepare(db, path, "SELECT id FROM people WHERE name = ?1", sel));
    bind_text(sel.s, 1, name);
    int rc = sqlite3_step(sel.s);
    if (rc == SQLITE_ROW) return static_cast<int64_t>(sqlite3_column_int64(sel.s, 0));
    if (rc == SQLITE_DONE) return Status(ErrorCode::kNotFound, "no person named " + in_quotes(name) + " in " + path);
    return db_error(db, path, "looking up " + in_quotes(name));
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

Result<EnrollOutcome> Gallery::enroll(const std::string& name, const std::vector<NewTemplate>& templates) {
  try {
    FACEREC_RETURN_IF_ERROR(validate_identity_name(name));
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
    return Status(ErrorCode::kInternal, "enrolling " + in_quotes(name) + ": " + e.what());
  }
}

Status Gallery::remove_person(const std::string& name) {
  try {
    sqlite3* db = impl_->db;
    Stmt del;
    // One statement is one transaction; the templates go with the person
    // through ON DELETE CASCADE.
    FACEREC_RETURN_IF_ERROR(prepare(db, impl_->path, "DELETE FROM people WHERE name = ?1", del));
    bind_text(del.s, 1, name);
    if (sqlite3_step(del.s) != SQLITE_DONE) return db_error(db, impl_->path, "removing " + in_quotes(name));
    if (sqlite3_changes(db) == 0)
      return Status(ErrorCode::kNotFound, "no person named " + in_quotes(name) + " in " + impl_->path);
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "removing " + in_quotes(name) + ": " + e.what());
  }
}

Status Gallery::rename_person(const std::string& from, const std::string& to) {
  try {
    FACEREC_RETURN_IF_ERROR(validate_identity_name(to));
    sqlite3* db = impl_->db;
    Transaction tx(db, impl_->path);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    auto pid = impl_->person_id(from, /*create=*/false);
    if (!pid.ok()) return pid.status();
    if (from == to) return Status::Ok();
    auto other = impl_->person_id(to, /*create=*/false);
    if (other.ok())
      return Status(ErrorCode::kInvalidArgument, "cannot rename " + in_quotes(from) + " to " + in_quotes(to) +
                                                     ": a person with that name already exists");
    if (other.status().code() != ErrorCode::kNotFound) return other.status();
    Stmt upd;
    FACEREC_RETURN_IF_ERROR(prepare(db, impl_->path, "UPDATE people SET name = ?1 WHERE id = ?2", upd));
    bind_text(upd.s, 1, to);
    sqlite3_bind_int64(upd.s, 2, pid.value());
    if (sqlite3_step(upd.s) != SQLITE_DONE) return db_error(db, impl_->path, "renaming " + in_quotes(from));
    return tx.commit();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "renaming " + in_quotes(from) + ": " + e.what());
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
      p.name = column_text(sel.s, 1);
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
    if (rc == SQLITE_ROW) return column_text(sel.s, 0);
    if (rc == SQLITE_DONE)
      return Status(ErrorCode::kNotFound, "no person with id " + std::to_string(person_id) + " in " + impl_->path);
    return db_error(impl_->db, impl_->path, "looking up person " + std::to_string(person_id));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("looking up a person: ") + e.what());
  }
}

// ---- legacy format -----------------------------------------------------------------------

Result<int> Gallery::import_legacy(const std::string& embeddings_txt, const std::string& label_map_json) {
  try {
    const int dim = impl_->dim;
    // 1. Parse and check everything before touching the database.
    std::string text;
    FACEREC_RETURN_IF_ERROR(read_file(embeddings_txt, text));
    std::vector<std::vector<float>> raw;
    {
      std::vector<std::string_view> lines;
      std::string_view rest(text);
      while (!rest.empty()) {
        size_t nl = rest.find('\n');
        lines.push_back(rest.substr(0, nl));
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      }
      // Trailing blank lines are an artefact of how the file was written; a
      // blank line in the middle would shift every later index, so it is an error.
      while (!lines.empty() && lines.back().find_first_not_of(" \t\r") == std::string_view::npos)
        lines.pop_back();
      std::vector<float> v;
      for (size_t i = 0; i < lines.size(); ++i) {
        const std::string where = embeddings_txt + " line " + std::to_string(i + 1);
        std::string err = parse_legacy_line(lines[i], v);
        if (!err.empty()) return Status(ErrorCode::kDecode, where + ": " + err + "; nothing imported");
        if (static_cast<int>(v.size()) != dim)
          return Status(ErrorCode::kMismatch, where + " has " + std::to_string(v.size()) +
                                                  " values, but the gallery's embedder has dimension " +
                                                  std::to_string(dim) + "; nothing imported");
        if (l2_norm(v.data(), v.size()) == 0)
          return Status(ErrorCode::kDecode, where + " is the zero vector; nothing imported");
        raw.push_back(v);
      }
    }

    std::string json_text;
    FACEREC_RETURN_IF_ERROR(read_file(label_map_json, json_text));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(json_text);
    } catch (const nlohmann::json::exception& e) {
      return Status(ErrorCode::kDecode, label_map_json + " is not valid JSON: " + e.what() + "; nothing imported");
    }
    if (!j.is_object())
      return Status(ErrorCode::kDecode, label_map_json + " must be a JSON object; nothing imported");
    const int64_t n = static_cast<int64_t>(raw.size());
    std::vector<std::string> label(raw.size());
    auto assign = [&](int64_t idx, const std::string& name) -> Status {
      if (idx < 0 || idx >= n)
        return Status(ErrorCode::kDecode, label_map_json + ": index " + std::to_string(idx) + " (for " +
                                              in_quotes(name) + ") is not a line of " + embeddings_txt + " (" +
                                              std::to_string(n) + " lines, indices from 0); nothing imported");
      if (!label[idx].empty())
        return Status(ErrorCode::kDecode, label_map_json + ": line " + std::to_string(idx + 1) +
                                              " is labelled twice; nothing imported");
      Status s = validate_identity_name(name);
      if (!s.ok())
        return Status(ErrorCode::kInvalidArgument,
                      label_map_json + ": bad name " + in_quotes(name) + ": " + s.message() + "; nothing imported");
      label[idx] = name;
      return Status::Ok();
    };
    bool by_index = false, by_name = false;
    for (auto it = j.begin(); it != j.end(); ++it) {
      int64_t idx;
      if (it.value().is_array()) by_name = true;
      else by_index = true;
      if (by_index && by_name)
        return Status(ErrorCode::kDecode, label_map_json + " mixes the two layouts (\"index\": \"name\" and "
                                                           "\"name\": [indices]); nothing imported");
      if (it.value().is_string() && parse_index(it.key(), idx)) {
        // {"0": "Alice"}: line index -> name.
        FACEREC_RETURN_IF_ERROR(assign(idx, it.value().get<std::string>()));
      } else if (it.value().is_array()) {
        // {"Alice": [0, 2]}: name -> line indices.
        for (const auto& e : it.value()) {
          if (!e.is_number_integer())
            return Status(ErrorCode::kDecode, label_map_json + ": the indices for " + in_quotes(it.key()) +
                                                  " must be integers; nothing imported");
          FACEREC_RETURN_IF_ERROR(assign(e.get<int64_t>(), it.key()));
        }
      } else {
        return Status(ErrorCode::kDecode, label_map_json + ": entry " + in_quotes(it.key()) +
                                              " is neither \"index\": \"name\" nor \"name\": [indices]; "
                                              "nothing imported");
      }
    }
    for (size_t i = 0; i < label.size(); ++i)
      if (label[i].empty())
        return Status(ErrorCode::kDecode, embeddings_txt + " line " + std::to_string(i + 1) + " has no label in " +
                                              label_map_json + "; nothing imported");

    // 2. Group by person (in line order) and write everything in one transaction.
    std::map<std::string, std::vector<NewTemplate>> by_person;
    for (size_t i = 0; i < raw.size(); ++i) {
      const std::vector<float>& v = raw[i];
      NewTemplate t;
      double norm = l2_norm(v.data(), v.size());
      t.unit.resize(v.size());
      for (size_t k = 0; k < v.size(); ++k) t.unit[k] = static_cast<float>(v[k] / norm);
      t.norm = static_cast<float>(norm);
      t.source = embeddings_txt + ":" + std::to_string(i + 1);
      // No image is known, so the duplicate key is the vector itself: importing
      // the same file twice adds nothing the second time.
      std::string key = "facerec-legacy-v1:";
      key.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
      t.source_sha256 = sha256_hex(key.data(), key.size());
      by_person[label[i]].push_back(std::move(t));
    }
    Transaction tx(impl_->db, impl_->path);
    FACEREC_RETURN_IF_ERROR(tx.begin(true));
    int added = 0;
    for (const auto& [name, ts] : by_person) {
      auto pid = impl_->person_id(name, /*create=*/true);
      if (!pid.ok()) return pid.status();
      auto out = impl_->insert_templates(pid.value(), ts);
      if (!out.ok()) return out.status();
      added += out->added;
    }
    FACEREC_RETURN_IF_ERROR(tx.commit());
    return added;
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

    std::string text;
    // ordered_json keeps "0", "1", ..., "10" in line order rather than string order.
    nlohmann::ordered_json labels = nlohmann::ordered_json::object();
    char buf[64];
    for (size_t i = 0; i < ts->size(); ++i) {
      const StoredTemplate& t = (*ts)[i];
      auto it = names.find(t.person_id);
      if (it == names.end())
        return Status(ErrorCode::kDatabase, "gallery " + impl_->path + ": template " + std::to_string(t.id) +
                                                " belongs to no person (corrupt)");
      // The legacy file held raw network outputs: write unit * norm so a
      // re-import restores both. A zero norm (unknown) writes the unit vector.
      const float scale = t.norm > 0 ? t.norm : 1.f;
      for (size_t k = 0; k < t.unit.size(); ++k) {
        // Shortest text that reads back as the same float.
        auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, t.unit[k] * scale);
        FACEREC_ASSERT(ec == std::errc());
        if (k) text += ' ';
        text.append(buf, ptr);
      }
      text += '\n';
      labels[std::to_string(i)] = it->second;
    }
    FACEREC_RETURN_IF_ERROR(write_file_atomically(embeddings_txt, text));
    return write_file_atomically(label_map_json, labels.dump(2, ' ', /*ensure_ascii=*/false) + "\n");
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "exporting to " + embeddings_txt + ": " + e.what());
  }
}

}  // namespace facerec
