// The PostgreSQL GalleryStore (see facerec/gallery_store.h), over libpq.
//
// Layout: the same tables as the SQLite store (meta, people, templates,
// schema_version, changes) in the connection's current schema. Vectors are
// bytea holding float32 little-endian (sent as binary parameters, so the
// bytes round-trip exactly); norms are double precision.
//
// Writers: every write transaction first takes one transaction-scoped
// advisory lock (store::kWriteLockKey), so writers from every node are
// serialised, change seqs are handed out in commit order, and a node that has
// read seq N has seen everything before it. Each write ends with
// pg_notify('facerec_gallery', <the change as JSON>), delivered at commit.
//
// Connections: each store owns one connection (application_name "facerec
// pid <pid>"). A lost connection is reconnected on the next call; a read
// that fails because the connection dropped is retried once on the new one.
// Writes are never retried (the caller gets the error; nothing half-written
// survives, since the server rolls back a transaction whose client vanished).
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <bit>
#include <charconv>
#include <cstring>
#include <ctime>
#include <thread>

#include <nlohmann/json.hpp>

#include "gallery/store_common.h"

namespace facerec::store {

static_assert(std::endian::native == std::endian::little,
              "gallery vectors are stored as little-endian float32 bytes");

namespace {

constexpr const char* kChannel = "facerec_gallery";

constexpr const char* kSchemaV1 =
    "CREATE TABLE meta(key text PRIMARY KEY, value text NOT NULL);"
    "CREATE TABLE people(id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);"
    "CREATE TABLE templates("
    "  id bigserial PRIMARY KEY,"
    "  person_id bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE,"
    "  vector bytea NOT NULL,"            // float32 little-endian, dim values, unit length
    "  norm double precision NOT NULL,"   // raw feature norm before normalisation
    "  source text NOT NULL DEFAULT '',"
    "  source_sha256 text NOT NULL DEFAULT '',"
    "  det_score double precision NOT NULL DEFAULT 0,"
    "  created_at bigint NOT NULL);"      // unix seconds
    "CREATE UNIQUE INDEX templates_person_source ON templates(person_id, source_sha256)"
    "  WHERE source_sha256 <> '';"
    "CREATE INDEX templates_person ON templates(person_id);";

constexpr const char* kMigrationV2 =
    "CREATE TABLE schema_version(version integer PRIMARY KEY, applied_at bigint NOT NULL);"
    "INSERT INTO schema_version(version, applied_at) VALUES(1, extract(epoch from now())::bigint);"
    "CREATE TABLE changes("
    "  seq bigserial PRIMARY KEY,"
    "  kind text NOT NULL,"
    "  name text NOT NULL,"
    "  new_name text NOT NULL DEFAULT '',"
    "  template_ids bigint[] NOT NULL DEFAULT '{}',"
    "  at bigint NOT NULL);";

struct PgResult {
  PGresult* r = nullptr;
  PgResult() = default;
  explicit PgResult(PGresult* p) : r(p) {}
  PgResult(PgResult&& o) noexcept : r(o.r) { o.r = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept {
    std::swap(r, o.r);
    return *this;
  }
  ~PgResult() { PQclear(r); }
  int rows() const { return PQntuples(r); }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
  }
  int64_t i64(int row, int col) const { return std::strtoll(PQgetvalue(r, row, col), nullptr, 10); }
  double f64(int row, int col) const { return std::strtod(PQgetvalue(r, row, col), nullptr); }
};

// One query parameter: text, or binary bytes (bytea).
struct Param {
  std::string value;
  bool binary = false;
};
Param bytes_param(const std::vector<float>& v) {
  return {std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)), true};
}
std::string num(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact round trip
  return std::string(buf, p);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea in the text protocol's hex form ("\x0a1b...") into floats.
bool decode_vector(const char* s, size_t n, int dim, std::vector<float>& out) {
  if (n < 2 || s[0] != '\\' || s[1] != 'x') return false;
  const size_t bytes = (n - 2) / 2;
  if ((n - 2) % 2 || bytes != static_cast<size_t>(dim) * sizeof(float)) return false;
  out.resize(static_cast<size_t>(dim));
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  for (size_t i = 0; i < bytes; ++i) {
    int hi = hex_value(s[2 + 2 * i]), lo = hex_value(s[3 + 2 * i]);
    if (hi < 0 || lo < 0) return false;
    dst[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Connects (libpq URI syntax). The URI's own settings win over our
// defaults (a 5 s connect timeout, UTF-8, our application_name).
Result<PGconn*> connect(const std::string& uri, const std::string& app) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(uri.c_str(), &err);
  if (!opts) {
    std::string m = err ? trim(err) : "out of memory";
    PQfreemem(err);
    return Status(ErrorCode::kInvalidArgument, "not a valid PostgreSQL URI " + quoted(redact_uri(uri)) + ": " + m +
                                                   " (expected postgresql://user@host:port/dbname)");
  }
  PQconninfoFree(opts);
  const char* keys[] = {"connect_timeout", "client_encoding", "application_name", "dbname", nullptr};
  const char* vals[] = {"5", "UTF8", app.c_str(), uri.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!c) return Status(ErrorCode::kDatabase, "cannot connect to PostgreSQL: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = trim(PQerrorMessage(c));
    PQfinish(c);
    return Status(ErrorCode::kDatabase, "cannot connect to the PostgreSQL gallery " + redact_uri(uri) + ": " + m);
  }
  return c;
}

class PgStore final : public GalleryStore {
 public:
  ~PgStore() override {
    if (conn_) PQfinish(conn_);
  }
  static Result<std::unique_ptr<GalleryStore>> open(const std::string& uri, GalleryAccess access,
                                                    const EmbedderInfo* expected, int target_version);

  const char* backend() const override { return "postgresql"; }
  const std::string& location() const override { return where_; }
  const EmbedderInfo& embedder() const override { return embedder_; }
  int schema_version() const override { return version_; }
  bool read_only() const override { return access_ == GalleryAccess::kReadOnly; }
  int64_t last_write_seq() const override { return last_write_seq_; }

  Result<EnrollOutcome> enroll(const std::string& name, const std::vector<NewTemplate>& templates) override {
    FACEREC_ASSIGN_OR_RETURN(auto outs, enroll_batch({{name, templates}}));
    return std::move(outs.at(0));
  }

  Result<std::vector<EnrollOutcome>> enroll_batch(
      const std::vector<std::pair<std::string, std::vector<NewTemplate>>>& people) override {
    FACEREC_RETURN_IF_ERROR(begin_write());
    Rollback guard{this};
    std::vector<EnrollOutcome> outs;
    std::vector<std::string> payloads;
    int64_t seq = 0;
    const std::string now = std::to_string(static_cast<int64_t>(std::time(nullptr)));
    for (const auto& [name, ts] : people) {
      FACEREC_RETURN_IF_ERROR(exec("INSERT INTO people(name) VALUES($1) ON CONFLICT(name) DO NOTHING", {{name}}));
      FACEREC_ASSIGN_OR_RETURN(PgResult pr, run("SELECT id FROM people WHERE name = $1", {{name}}));
      if (pr.rows() != 1) return Status(ErrorCode::kDatabase, "gallery " + where_ + ": person " + quoted(name) + " vanished");
      const std::string pid = pr.text(0, 0);
      EnrollOutcome out;
      for (const NewTemplate& t : ts) {
        FACEREC_ASSIGN_OR_RETURN(
            PgResult ir,
            run("INSERT INTO templates(person_id, vector, norm, source, source_sha256, det_score, created_at) "
                "VALUES($1, $2, $3, $4, $5, $6, $7) "
                "ON CONFLICT (person_id, source_sha256) WHERE source_sha256 <> '' DO NOTHING RETURNING id",
                {{pid}, bytes_param(t.unit), {num(t.norm)}, {t.source}, {t.source_sha256}, {num(t.det_score)}, {now}}));
        if (ir.rows() == 1) {
          ++out.added;
          out.template_ids.push_back(ir.i64(0, 0));
        } else {
          ++out.duplicates;
          out.template_ids.push_back(0);
        }
      }
      FACEREC_ASSIGN_OR_RETURN(seq, log_change("enroll", name, "", out.template_ids));
      outs.push_back(std::move(out));
    }
    FACEREC_RETURN_IF_ERROR(commit(guard));
    if (seq) last_write_seq_ = seq;
    return outs;
  }

  Status remove_person(const std::string& name) override {
    FACEREC_RETURN_IF_ERROR(begin_write());
    Rollback guard{this};
    FACEREC_ASSIGN_OR_RETURN(PgResult r, run("DELETE FROM people WHERE name = $1 RETURNING id", {{name}}));
    if (r.rows() == 0) return Status(ErrorCode::kNotFound, "no person named " + quoted(name) + " in " + where_);
    FACEREC_ASSIGN_OR_RETURN(int64_t seq, log_change("remove", name, "", {}));
    FACEREC_RETURN_IF_ERROR(commit(guard));
    last_write_seq_ = seq;
    return Status::Ok();
  }

  Status rename_person(const std::string& from, const std::string& to) override {
    FACEREC_RETURN_IF_ERROR(begin_write());
    Rollback guard{this};
    FACEREC_ASSIGN_OR_RETURN(PgResult a, run("SELECT id FROM people WHERE name = $1", {{from}}));
    if (a.rows() == 0) return Status(ErrorCode::kNotFound, "no person named " + quoted(from) + " in " + where_);
    if (from == to) return Status::Ok();
    FACEREC_ASSIGN_OR_RETURN(PgResult b, run("SELECT id FROM people WHERE name = $1", {{to}}));
    if (b.rows() != 0)
      return Status(ErrorCode::kInvalidArgument, "cannot rename " + quoted(from) + " to " + quoted(to) +
                                                     ": a person with that name already exists");
    FACEREC_RETURN_IF_ERROR(exec("UPDATE people SET name = $1 WHERE id = $2", {{to}, {a.text(0, 0)}}));
    FACEREC_ASSIGN_OR_RETURN(int64_t seq, log_change("rename", from, to, {}));
    FACEREC_RETURN_IF_ERROR(commit(guard));
    last_write_seq_ = seq;
    return Status::Ok();
  }

  Result<std::vector<PersonInfo>> list_people() const override {
    FACEREC_ASSIGN_OR_RETURN(PgResult r, read("SELECT p.id, p.name, count(t.id) FROM people p "
                                              "LEFT JOIN templates t ON t.person_id = p.id "
                                              "GROUP BY p.id ORDER BY p.name COLLATE \"C\"",
                                              {}));
    std::vector<PersonInfo> out(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      out[i].id = r.i64(i, 0);
      out[i].name = r.text(i, 1);
      out[i].templates = static_cast<int>(r.i64(i, 2));
    }
    return out;
  }

  Result<std::vector<StoredTemplate>> templates() const override {
    FACEREC_ASSIGN_OR_RETURN(PgResult r, read(std::string(kSelectTemplates) + " ORDER BY id", {}));
    return decode_templates(r);
  }

  Result<std::vector<StoredTemplate>> templates_by_id(const std::vector<int64_t>& ids) const override {
    // join_ids leaves out 0, which no bigserial id is.
    FACEREC_ASSIGN_OR_RETURN(PgResult r, read(std::string(kSelectTemplates) + " WHERE id = ANY($1::bigint[]) ORDER BY id",
                                              {{"{" + join_ids(ids) + "}"}}));
    return decode_templates(r);
  }

  Result<std::string> person_name(int64_t person_id) const override {
    FACEREC_ASSIGN_OR_RETURN(PgResult r, read("SELECT name FROM people WHERE id = $1", {{std::to_string(person_id)}}));
    if (r.rows() == 0)
      return Status(ErrorCode::kNotFound, "no person with id " + std::to_string(person_id) + " in " + where_);
    return r.text(0, 0);
  }

  Result<GallerySnapshot> snapshot() const override {
    // One REPEATABLE READ transaction: every read below sees the same state.
    auto* self = const_cast<PgStore*>(this);
    FACEREC_RETURN_IF_ERROR(self->ensure_connected());
    FACEREC_RETURN_IF_ERROR(self->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}));
    self->in_tx_ = true;  // a read that fails now must not be retried outside the snapshot
    Rollback guard{self};
    GallerySnapshot s;
    FACEREC_ASSIGN_OR_RETURN(s.people, list_people());
    FACEREC_ASSIGN_OR_RETURN(s.templates, templates());
    FACEREC_ASSIGN_OR_RETURN(s.last_seq, head_seq());
    FACEREC_RETURN_IF_ERROR(self->commit(guard));
    return s;
  }

  Result<std::vector<GalleryChange>> changes_since(int64_t after) const override {
    std::vector<GalleryChange> out;
    if (version_ < 2) return out;
    FACEREC_ASSIGN_OR_RETURN(PgResult r, read("SELECT seq, kind, name, new_name, array_to_string(template_ids, ',') "
                                              "FROM changes WHERE seq > $1 ORDER BY seq",
                                              {{std::to_string(after)}}));
    for (int i = 0; i < r.rows(); ++i) {
      GalleryChange c;
      c.seq = r.i64(i, 0);
      if (!parse_kind(r.text(i, 1), c.kind))
        return Status(ErrorCode::kDatabase, "gallery " + where_ + ": change " + std::to_string(c.seq) +
                                                " has an unknown kind " + quoted(r.text(i, 1)));
      c.name = r.text(i, 2);
      c.new_name = r.text(i, 3);
      c.template_ids = split_ids(r.text(i, 4));
      out.push_back(std::move(c));
    }
    return out;
  }

  Result<int64_t> head_seq() const override {
    if (version_ < 2) return int64_t{0};
    FACEREC_ASSIGN_OR_RETURN(PgResult r, read("SELECT coalesce(max(seq), 0) FROM changes", {}));
    return r.i64(0, 0);
  }

 private:
  static constexpr const char* kSelectTemplates =
      "SELECT id, person_id, vector, norm, source, source_sha256, det_score, created_at FROM templates";

  // Rolls back an open transaction unless commit() cleared it.
  struct Rollback {
    PgStore* s;
    bool active = true;
    ~Rollback() {
      if (active && s->conn_ && PQstatus(s->conn_) == CONNECTION_OK) PQclear(PQexec(s->conn_, "ROLLBACK"));
      s->in_tx_ = false;
    }
  };

  Status commit(Rollback& guard) {
    FACEREC_ASSIGN_OR_RETURN(auto r, run("COMMIT", {}));
    // A COMMIT of a failed transaction answers ROLLBACK, not an error.
    if (std::strcmp(PQcmdStatus(r.r), "COMMIT") != 0)
      return Status(ErrorCode::kDatabase, "gallery " + where_ + ": the transaction was rolled back; nothing written");
    guard.active = false;
    return Status::Ok();
  }

  Status ensure_connected() {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    if (conn_) PQreset(conn_);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK)
      return Status(ErrorCode::kDatabase, "lost the connection to the PostgreSQL gallery " + where_ + " and cannot " +
                                              "reconnect: " + (conn_ ? trim(PQerrorMessage(conn_)) : "no connection"));
    return session_setup();
  }

  Status session_setup() {
    if (access_ == GalleryAccess::kReadOnly)
      FACEREC_RETURN_IF_ERROR(exec("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", {}));
    return Status::Ok();
  }

  Status begin_write() {
    if (access_ == GalleryAccess::kReadOnly)
      return Status(ErrorCode::kIo, "gallery " + where_ + " was opened read-only; nothing was written");
    FACEREC_RETURN_IF_ERROR(ensure_connected());
    FACEREC_RETURN_IF_ERROR(exec("BEGIN", {}));
    in_tx_ = true;
    auto lock = run("SELECT pg_advisory_xact_lock(" + std::to_string(kWriteLockKey) + ")", {});
    if (!lock.ok()) {
      PQclear(PQexec(conn_, "ROLLBACK"));
      in_tx_ = false;
      return lock.status();
    }
    return Status::Ok();
  }

  Status pg_error(PGresult* r, const std::string& what) const {
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const std::string s = state ? state : "";
    std::string msg = trim(r ? PQresultErrorMessage(r) : "");
    if (msg.empty()) msg = trim(PQerrorMessage(conn_));
    if (PQstatus(conn_) != CONNECTION_OK)
      return Status(ErrorCode::kDatabase, "lost the connection to the PostgreSQL gallery " + where_ + " (" + what +
                                              "): " + msg + "; nothing was written by this call");
    if (s == "53100")
      return Status(ErrorCode::kIo, "gallery " + where_ + ": disk full on the PostgreSQL server (" + msg +
                                        "); the gallery is unchanged");
    if (s == "25006" || s == "42501")
      return Status(ErrorCode::kIo, "gallery " + where_ + " is read-only for this connection (" + msg +
                                        "); nothing was written");
    return Status(ErrorCode::kDatabase, "gallery " + where_ + ": " + what + ": " + msg);
  }

  Status exec(const std::string& sql, const std::vector<Param>& params) {
    auto r = run(sql, params);
    return r.ok() ? Status::Ok() : r.status();
  }

  // One statement with parameters ($1..$n); text results.
  Result<PgResult> run(const std::string& sql, const std::vector<Param>& params) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const Param& p : params) {
      values.push_back(p.value.data());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    // Text parameters must be NUL-terminated: std::string data() is. Without
    // parameters PQexec, which also takes several statements (the schema).
    PgResult r(params.empty() ? PQexec(conn_, sql.c_str())
                              : PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                                             values.data(), lengths.data(), formats.data(), 0));
    const ExecStatusType st = r.r ? PQresultStatus(r.r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      const size_t cut = sql.find(' ', 30);
      return pg_error(r.r, sql.substr(0, cut == std::string::npos ? sql.size() : cut));
    }
    return r;
  }

  // A read outside any transaction of ours: retried once after a reconnect.
  Result<PgResult> read(const std::string& sql, const std::vector<Param>& params) const {
    auto* self = const_cast<PgStore*>(this);
    FACEREC_RETURN_IF_ERROR(self->ensure_connected());
    auto r = self->run(sql, params);
    if (!r.ok() && !in_tx_ && PQstatus(conn_) != CONNECTION_OK) {
      FACEREC_RETURN_IF_ERROR(self->ensure_connected());
      r = self->run(sql, params);
    }
    return r;
  }

  Result<int64_t> log_change(const char* kind, const std::string& name, const std::string& new_name,
                             const std::vector<int64_t>& ids) {
    const std::string joined = join_ids(ids);
    FACEREC_ASSIGN_OR_RETURN(PgResult r, run("INSERT INTO changes(kind, name, new_name, template_ids, at) "
                                             "VALUES($1, $2, $3, $4::bigint[], extract(epoch from now())::bigint) "
                                             "RETURNING seq",
                                             {{kind}, {name}, {new_name}, {"{" + joined + "}"}}));
    const int64_t seq = r.i64(0, 0);
    // The change itself when it fits NOTIFY's payload limit, else its seq
    // only (a listener then reads it from the change log).
    nlohmann::json j = {{"seq", seq}, {"kind", kind}, {"name", name}};
    if (!new_name.empty()) j["new_name"] = new_name;
    if (!joined.empty()) j["template_ids"] = split_ids(joined);
    std::string payload = j.dump();
    if (payload.size() > kMaxNotifyPayload) payload = nlohmann::json({{"seq", seq}}).dump();
    FACEREC_RETURN_IF_ERROR(exec(std::string("SELECT pg_notify('") + kChannel + "', $1)", {{payload}}));
    return seq;
  }

  Result<std::vector<StoredTemplate>> decode_templates(const PgResult& r) const {
    std::vector<StoredTemplate> out(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      StoredTemplate& t = out[static_cast<size_t>(i)];
      t.id = r.i64(i, 0);
      t.person_id = r.i64(i, 1);
      if (!decode_vector(PQgetvalue(r.r, i, 2), static_cast<size_t>(PQgetlength(r.r, i, 2)), embedder_.dim, t.unit))
        return Status(ErrorCode::kDatabase, "gallery " + where_ + ": template " + std::to_string(t.id) +
                                                " is not " + std::to_string(embedder_.dim) + " float32 values (corrupt)");
      t.norm = static_cast<float>(r.f64(i, 3));
      t.source = r.text(i, 4);
      t.source_sha256 = r.text(i, 5);
      t.det_score = static_cast<float>(r.f64(i, 6));
      t.created_at = r.i64(i, 7);
    }
    return out;
  }

  Status create_v1(const EmbedderInfo& e) {
    FACEREC_RETURN_IF_ERROR(exec(kSchemaV1, {}));
    for (const auto& [k, v] : meta_rows_v1(e))
      FACEREC_RETURN_IF_ERROR(exec("INSERT INTO meta(key, value) VALUES($1, $2)", {{k}, {v}}));
    return Status::Ok();
  }

  Status migrate(int target) {
    while (version_ < target) {
      FACEREC_RETURN_IF_ERROR(begin_write());
      Rollback guard{this};
      FACEREC_ASSIGN_OR_RETURN(PgResult v, run("SELECT value FROM meta WHERE key = 'format_version'", {}));
      if (v.rows() != 1) return Status(ErrorCode::kDatabase, "gallery " + where_ + ": format_version vanished");
      version_ = std::stoi(v.text(0, 0));
      if (version_ >= target) break;
      const int next = version_ + 1;
      if (next == 2) FACEREC_RETURN_IF_ERROR(exec(kMigrationV2, {}));
      FACEREC_RETURN_IF_ERROR(exec("INSERT INTO schema_version(version, applied_at) "
                                  "VALUES($1, extract(epoch from now())::bigint)",
                                  {{std::to_string(next)}}));
      FACEREC_RETURN_IF_ERROR(
          exec("UPDATE meta SET value = $1 WHERE key = 'format_version'", {{std::to_string(next)}}));
      FACEREC_RETURN_IF_ERROR(commit(guard));
      version_ = next;
    }
    return Status::Ok();
  }

  PGconn* conn_ = nullptr;
  bool in_tx_ = false;  // inside one of our transactions (reads are then never retried)
  std::string where_;
  GalleryAccess access_ = GalleryAccess::kReadWrite;
  EmbedderInfo embedder_;
  int version_ = 0;
  int64_t last_write_seq_ = 0;
};

Result<std::unique_ptr<GalleryStore>> PgStore::open(const std::string& uri, GalleryAccess access,
                                                    const EmbedderInfo* expected, int target_version) {
  std::unique_ptr<PgStore> s(new PgStore());
  s->where_ = redact_uri(uri);
  s->access_ = access;
  FACEREC_ASSIGN_OR_RETURN(s->conn_, connect(uri, "facerec pid " + std::to_string(::getpid())));
  FACEREC_RETURN_IF_ERROR(s->session_setup());
  const std::string not_gallery = s->where_ + " is not a facerec gallery";
  // What is there, read before anything is written.
  auto probe = [&]() -> Result<PgResult> {
    return s->run("SELECT to_regclass('meta') IS NOT NULL, to_regclass('people') IS NOT NULL, "
                  "to_regclass('templates') IS NOT NULL, "
                  "(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                  " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'm', 'p'))",
                  {});
  };
  FACEREC_ASSIGN_OR_RETURN(PgResult p, probe());
  bool has_meta = p.text(0, 0) == "t";
  if (!has_meta) {
    if (p.i64(0, 3) > 0)
      return Status(ErrorCode::kDatabase, not_gallery + " (it holds other tables and no meta table); refusing to touch it");
    if (access != GalleryAccess::kCreate)
      return Status(ErrorCode::kNotFound, "no gallery in " + s->where_ + " (the database is empty)");
    if (!expected || expected->dim <= 0 || expected->model_id.empty())
      return Status(ErrorCode::kInvalidArgument, "cannot create gallery " + s->where_ +
                                                     ": the embedder needs a model id and a positive dimension");
    FACEREC_RETURN_IF_ERROR(s->begin_write());
    Rollback guard{s.get()};
    // Another node may have created it meanwhile: then it is validated below.
    FACEREC_ASSIGN_OR_RETURN(PgResult again, probe());
    if (again.text(0, 0) != "t") {
      if (again.i64(0, 3) > 0) return Status(ErrorCode::kDatabase, not_gallery + " (other tables appeared)");
      FACEREC_RETURN_IF_ERROR(s->create_v1(*expected));
    }
    FACEREC_RETURN_IF_ERROR(s->commit(guard));
    FACEREC_ASSIGN_OR_RETURN(p, probe());
  }
  if (p.text(0, 1) != "t" || p.text(0, 2) != "t")
    return Status(ErrorCode::kDatabase, not_gallery + " (people or templates table missing)");
  FACEREC_ASSIGN_OR_RETURN(PgResult m, s->run("SELECT key, value FROM meta", {}));
  std::map<std::string, std::string> meta;
  for (int i = 0; i < m.rows(); ++i) meta[m.text(i, 0)] = m.text(i, 1);
  FACEREC_ASSIGN_OR_RETURN(s->embedder_, embedder_from_meta(s->where_, meta, s->version_));
  FACEREC_RETURN_IF_ERROR(check_embedder(s->where_, s->embedder_, expected));
  if (access != GalleryAccess::kReadOnly) FACEREC_RETURN_IF_ERROR(s->migrate(target_version));
  return std::unique_ptr<GalleryStore>(std::move(s));
}

// LISTEN on a connection of its own; reconnects on the next wait() after a
// loss (the caller then catches up from the change log).
class PgListener final : public GalleryListener {
 public:
  explicit PgListener(std::string uri) : uri_(std::move(uri)) {}
  ~PgListener() override {
    if (conn_) PQfinish(conn_);
  }

  Status connect_and_listen() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    FACEREC_ASSIGN_OR_RETURN(conn_, connect(uri_, "facerec pid " + std::to_string(::getpid()) + " listen"));
    PgResult r(PQexec(conn_, (std::string("LISTEN ") + kChannel).c_str()));
    if (PQresultStatus(r.r) != PGRES_COMMAND_OK) {
      std::string m = trim(PQerrorMessage(conn_));
      PQfinish(conn_);
      conn_ = nullptr;
      return Status(ErrorCode::kDatabase, "LISTEN on " + redact_uri(uri_) + ": " + m);
    }
    return Status::Ok();
  }

  Result<std::optional<int64_t>> wait(std::chrono::milliseconds timeout) override {
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      Status s = connect_and_listen();
      if (!s.ok()) {
        std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(250)));
        return s;
      }
    }
    std::optional<int64_t> newest = drain();
    if (newest) return newest;
    pollfd pfd{PQsocket(conn_), POLLIN, 0};
    const int rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    if (rc < 0) return std::optional<int64_t>();  // EINTR: the caller loops
    if (rc > 0 && !PQconsumeInput(conn_)) {
      std::string m = trim(PQerrorMessage(conn_));
      PQfinish(conn_);
      conn_ = nullptr;
      return Status(ErrorCode::kDatabase, "lost the LISTEN connection to " + redact_uri(uri_) + ": " + m);
    }
    return drain();
  }

 private:
  std::optional<int64_t> drain() {
    std::optional<int64_t> newest;
    while (PGnotify* n = PQnotifies(conn_)) {
      auto j = nlohmann::json::parse(n->extra ? n->extra : "", nullptr, false);
      if (j.is_object() && j.contains("seq") && j["seq"].is_number_integer())
        newest = std::max(newest.value_or(0), j["seq"].get<int64_t>());
      else
        newest = newest.value_or(0);  // a change of unknown content: still a reason to catch up
      PQfreemem(n);
    }
    return newest;
  }

  std::string uri_;
  PGconn* conn_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<GalleryStore>> open_postgres_store(const std::string& uri, GalleryAccess access,
                                                          const EmbedderInfo* expected, int target_version) {
  try {
    return PgStore::open(uri, access, expected, target_version);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "opening gallery " + redact_uri(uri) + ": " + e.what());
  }
}

Result<std::unique_ptr<GalleryListener>> open_postgres_listener(const std::string& uri) {
  auto l = std::make_unique<PgListener>(uri);
  FACEREC_RETURN_IF_ERROR(l->connect_and_listen());
  return std::unique_ptr<GalleryListener>(std::move(l));
}

}  // namespace facerec::store
