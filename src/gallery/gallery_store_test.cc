// The same gallery suite over both GalleryStore backends (TEST_P): SQLite and
// a real PostgreSQL (tests/pg_support.h starts one; the PostgreSQL cases skip
// loudly when it is not installed). Then what only one backend has: SQLite's
// read-only and full-disk behaviour, PostgreSQL's bad URIs and refused
// connections, and gallery copy between the two.
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "facerec/gallery.h"
#include "gallery/store_common.h"
#include "pg_support.h"
#include "random_unit.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

constexpr int kDim = 16;
const EmbedderInfo kEmb{"arcface_test", std::string(64, 'a'), kDim};

std::vector<float> unit(uint32_t seed, int dim = kDim) { return testing::random_unit(dim, seed); }

NewTemplate tpl(uint32_t seed, const std::string& sha, int dim = kDim) {
  return {unit(seed, dim), 17.25f + static_cast<float>(seed % 5) / 3.f, "img_" + std::to_string(seed) + ".jpg", sha,
          0.875f};
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---- the parameterised suite ----------------------------------------------------------

class GalleryStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (pg()) {
      FACEREC_REQUIRE_POSTGRES();
      location_ = testing::pg_fresh_database("store");
    } else {
      location_ = testing::temp_dir("store") + "/g.db";
    }
  }
  bool pg() const { return GetParam() == "postgresql"; }
  std::unique_ptr<Gallery> open(const EmbedderInfo& e = kEmb) {
    auto g = Gallery::open(location_, e);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return g.ok() ? std::move(g).value() : nullptr;
  }
  // Raw SQL on the backend, for what the API does not expose.
  std::string sql_value(const std::string& sql) {
    if (pg()) return testing::pg_value(location_, sql);
    sqlite3* db = nullptr;
    std::string out = "<error>";
    if (sqlite3_open_v2(location_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(st, 0);
        out = t ? reinterpret_cast<const char*>(t) : "";
      }
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return out;
  }
  std::string sql_exec(const std::string& sql) {
    if (pg()) return testing::pg_exec(location_, sql);
    sqlite3* db = nullptr;
    sqlite3_open_v2(location_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    char* err = nullptr;
    std::string out;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) out = err ? err : "error";
    sqlite3_free(err);
    sqlite3_close(db);
    return out;
  }
  // Everything a write could change, as one string.
  std::string fingerprint() {
    return sql_value("SELECT count(*) FROM people") + "/" + sql_value("SELECT count(*) FROM templates") + "/" +
           sql_value("SELECT coalesce(max(seq), 0) FROM changes") + "/" +
           sql_value("SELECT coalesce(sum(length(vector)), 0) FROM templates");
  }
  std::string location_;
};

TEST_P(GalleryStoreTest, EnrolsAndReopensWithEverythingExact) {
  // Accents, CJK, an emoji and a '/' are all plain text. (An NFD spelling is
  // stored as its NFC form, the same person: names_test.cc and Gallery.)
  const std::vector<std::string> names = {"Jos\xC3\xA9", "Jose", "\xE5\xB1\xB1\xE7\x94\xB0 \xE5\xA4\xAA\xE9\x83\x8E",
                                          "\xF0\x9F\x99\x82 a/b", "Zo\xC3\xAB O'Neil"};
  std::vector<NewTemplate> all;
  {
    auto g = open();
    ASSERT_TRUE(g);
    EXPECT_EQ(g->store().backend(), std::string(pg() ? "postgresql" : "sqlite"));
    EXPECT_EQ(g->store().schema_version(), kGallerySchemaVersion);
    for (size_t i = 0; i < names.size(); ++i) {
      std::vector<NewTemplate> ts = {tpl(10 * i + 1, "s" + std::to_string(i) + "a"), tpl(10 * i + 2, "s" + std::to_string(i) + "b")};
      auto r = g->enroll(names[i], ts);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      EXPECT_EQ(r->added, 2);
      all.insert(all.end(), ts.begin(), ts.end());
    }
    // The same source again for the same person is a duplicate; for another person it is not.
    auto dup = g->enroll(names[0], {tpl(1, "s0a"), tpl(99, "new")});
    ASSERT_TRUE(dup.ok());
    EXPECT_EQ(dup->added, 1);
    EXPECT_EQ(dup->duplicates, 1);
    EXPECT_EQ(dup->template_ids.at(0), 0);
    all.push_back(tpl(99, "new"));
    EXPECT_EQ(g->enroll(names[1], {tpl(1, "s0a")})->added, 1);
    all.push_back(tpl(1, "s0a"));
  }
  auto g = Gallery::open_existing(location_);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ((*g)->embedder().model_id, kEmb.model_id);
  EXPECT_EQ((*g)->embedder().sha256, kEmb.sha256);
  EXPECT_EQ((*g)->embedder().dim, kDim);
  auto people = (*g)->list_people();
  ASSERT_TRUE(people.ok());
  ASSERT_EQ(people->size(), names.size());
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());  // byte order on both backends
  for (size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ((*people)[i].name, sorted[i]);
  auto ts = (*g)->templates();
  ASSERT_TRUE(ts.ok()) << ts.status().to_string();
  ASSERT_EQ(ts->size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ((*ts)[i].unit, all[i].unit) << i;  // bit-exact float32
    EXPECT_EQ((*ts)[i].norm, all[i].norm) << i;
    EXPECT_EQ((*ts)[i].det_score, all[i].det_score);
    EXPECT_EQ((*ts)[i].source, all[i].source);
    EXPECT_EQ((*ts)[i].source_sha256, all[i].source_sha256);
    if (i) EXPECT_LT((*ts)[i - 1].id, (*ts)[i].id);
  }
  EXPECT_EQ((*g)->person_name((*ts)[0].person_id).value(), names[0]);
  EXPECT_EQ((*g)->person_name(987654).status().code(), ErrorCode::kNotFound);
  auto some = (*g)->templates_by_id({(*ts)[3].id, 987654, (*ts)[1].id});
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ((*some)[0].unit, all[1].unit);
  EXPECT_EQ((*some)[1].unit, all[3].unit);
}

TEST_P(GalleryStoreTest, AnotherEmbedderIsRefusedAndNothingWritten) {
  auto g = open();
  ASSERT_TRUE(g);
  ASSERT_TRUE(g->enroll("A", {tpl(1, "a")}).ok());
  g.reset();
  const std::string before = fingerprint();
  EmbedderInfo other = kEmb;
  other.sha256 = std::string(64, 'b');
  for (EmbedderInfo e : {other, EmbedderInfo{"mobilefacenet", kEmb.sha256, kDim}, EmbedderInfo{kEmb.model_id, kEmb.sha256, 128}}) {
    auto o = Gallery::open(location_, e);
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.status().code(), ErrorCode::kMismatch) << o.status().to_string();
    EXPECT_NE(o.status().message().find(kEmb.model_id), std::string::npos) << o.status().message();
    auto ro = Gallery::open_read_only(location_, &e);
    EXPECT_EQ(ro.status().code(), ErrorCode::kMismatch);
  }
  EXPECT_EQ(fingerprint(), before);
}

// A rewritten model file of the same embedder (mobilefacenet_192's PReLU
// split) lists the file the gallery was made with as equivalent: the gallery
// opens and takes new templates; without the listing it is refused, and a
// listing never stands in for another model id or dimension.
TEST_P(GalleryStoreTest, AnEquivalentModelFileOfTheSameEmbedderOpensTheGallery) {
  auto g = open();
  ASSERT_TRUE(g);
  ASSERT_TRUE(g->enroll("A", {tpl(1, "a")}).ok());
  g.reset();
  EmbedderInfo rewritten = kEmb;
  rewritten.sha256 = std::string(64, 'c');
  {
    auto o = Gallery::open(location_, rewritten);
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.status().code(), ErrorCode::kMismatch);
  }
  rewritten.equivalent_sha256 = {std::string(64, 'd'), kEmb.sha256};
  {
    auto o = Gallery::open(location_, rewritten);
    ASSERT_TRUE(o.ok()) << o.status().to_string();
    ASSERT_TRUE((*o)->enroll("B", {tpl(2, "b")}).ok());
    auto ro = Gallery::open_read_only(location_, &rewritten);
    ASSERT_TRUE(ro.ok()) << ro.status().to_string();
    EXPECT_EQ((*ro)->list_people()->size(), 2u);
  }
  for (EmbedderInfo e : {EmbedderInfo{"other", rewritten.sha256, kDim, {kEmb.sha256}},
                         EmbedderInfo{kEmb.model_id, rewritten.sha256, 128, {kEmb.sha256}}}) {
    auto o = Gallery::open(location_, e);
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.status().code(), ErrorCode::kMismatch) << o.status().to_string();
  }
}

TEST_P(GalleryStoreTest, AFailureMidEnrolmentWritesNothing) {
  auto g = open();
  ASSERT_TRUE(g);
  ASSERT_TRUE(g->enroll("Keep", {tpl(1, "k")}).ok());
  // A database-side failure on the third row (a trigger: nothing in our code).
  if (pg()) {
    ASSERT_EQ(sql_exec("CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW.source = 'boom' THEN "
                       "RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql;"
                       "CREATE TRIGGER boom BEFORE INSERT ON templates FOR EACH ROW EXECUTE FUNCTION boom()"),
              "");
  } else {
    ASSERT_EQ(sql_exec("CREATE TRIGGER boom BEFORE INSERT ON templates WHEN NEW.source = 'boom' "
                       "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"),
              "");
  }
  const std::string before = fingerprint();
  NewTemplate boom = tpl(5, "b");
  boom.source = "boom";
  for (std::string who : {"Keep", "Newcomer"}) {
    auto r = g->enroll(who, {tpl(2, "x"), tpl(3, "y"), boom});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kDatabase);
    EXPECT_NE(r.status().message().find("injected failure"), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(fingerprint(), before);
  EXPECT_EQ(g->list_people()->size(), 1u);
  // Bad templates are refused before any store sees them.
  NewTemplate bad = tpl(6, "z");
  bad.unit[0] = NAN;
  EXPECT_EQ(g->enroll("Bad", {bad}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(g->enroll("", {tpl(7, "w")}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(fingerprint(), before);
  // The connection is still usable.
  EXPECT_TRUE(g->enroll("Newcomer", {tpl(8, "v")}).ok());
}

TEST_P(GalleryStoreTest, RemoveRenameAndTheChangeLog) {
  auto a = open();
  ASSERT_TRUE(a);
  auto r1 = a->enroll("Alice", {tpl(1, "a1"), tpl(2, "a2")});
  ASSERT_TRUE(r1.ok());
  const int64_t s1 = a->last_write_seq();
  EXPECT_GT(s1, 0);
  ASSERT_TRUE(a->enroll("Bob", {tpl(3, "b1")}).ok());
  ASSERT_TRUE(a->rename_person("Bob", "Robert").ok());
  EXPECT_EQ(a->rename_person("Bob", "X").code(), ErrorCode::kNotFound);
  EXPECT_EQ(a->rename_person("Alice", "Robert").code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(a->remove_person("Alice").ok());
  EXPECT_EQ(a->remove_person("Alice").code(), ErrorCode::kNotFound);
  EXPECT_EQ(a->templates()->size(), 1u);  // Alice's went with her

  // A second connection (another process's view) reads the same log.
  auto b = Gallery::open_read_only(location_);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  auto log = (*b)->store().changes_since(0);
  ASSERT_TRUE(log.ok()) << log.status().to_string();
  ASSERT_EQ(log->size(), 4u);
  EXPECT_EQ((*log)[0].kind, GalleryChange::Kind::kEnroll);
  EXPECT_EQ((*log)[0].name, "Alice");
  EXPECT_EQ((*log)[0].template_ids, r1->template_ids);
  EXPECT_EQ((*log)[0].seq, s1);
  EXPECT_EQ((*log)[2].kind, GalleryChange::Kind::kRename);
  EXPECT_EQ((*log)[2].name, "Bob");
  EXPECT_EQ((*log)[2].new_name, "Robert");
  EXPECT_EQ((*log)[3].kind, GalleryChange::Kind::kRemove);
  EXPECT_EQ((*log)[3].name, "Alice");
  for (size_t i = 1; i < log->size(); ++i) EXPECT_LT((*log)[i - 1].seq, (*log)[i].seq);
  EXPECT_EQ((*b)->store().head_seq().value(), (*log)[3].seq);
  EXPECT_EQ((*b)->store().changes_since((*log)[1].seq)->size(), 2u);
  // Read-only: every write is refused with the word, and nothing changes.
  const std::string before = fingerprint();
  Status w = (*b)->enroll("C", {tpl(9, "c")}).status();
  EXPECT_EQ(w.code(), ErrorCode::kIo);
  EXPECT_NE(w.message().find("read-only"), std::string::npos) << w.message();
  EXPECT_EQ((*b)->remove_person("Robert").code(), ErrorCode::kIo);
  EXPECT_EQ((*b)->rename_person("Robert", "Bob").code(), ErrorCode::kIo);
  EXPECT_EQ(fingerprint(), before);
  // A snapshot is consistent with the log's head.
  auto snap = (*b)->store().snapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->people.size(), 1u);
  EXPECT_EQ(snap->templates.size(), 1u);
  EXPECT_EQ(snap->last_seq, (*log)[3].seq);
}

TEST_P(GalleryStoreTest, ListenerHearsAnotherConnectionsWrite) {
  auto a = open();
  ASSERT_TRUE(a);
  auto l = open_gallery_listener(location_);
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  (void)(*l)->wait(std::chrono::milliseconds(10));  // SQLite: the first poll reads the head
  ASSERT_TRUE(a->enroll("Alice", {tpl(1, "a")}).ok());
  const int64_t seq = a->last_write_seq();
  std::optional<int64_t> heard;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!heard && std::chrono::steady_clock::now() < deadline) {
    auto w = (*l)->wait(std::chrono::milliseconds(200));
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    heard = *w;
  }
  ASSERT_TRUE(heard.has_value());
  EXPECT_EQ(*heard, seq);
}

TEST_P(GalleryStoreTest, LegacyImportAndExportGoThroughTheStore) {
  const std::string dir = testing::temp_dir("legacy");
  {
    std::ofstream(dir + "/e.txt") << "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n0.5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 -2\n"
                                     "3,1,4,1,5,9,2,6,5,3,5,8,9,7,9,3\n";
    std::ofstream(dir + "/l.json") << R"({"0": "Ann", "1": "B\u00f8b", "2": "Ann"})";
  }
  auto g = open();
  ASSERT_TRUE(g);
  auto n = g->import_legacy(dir + "/e.txt", dir + "/l.json");
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(n->added, 3);
  auto again = g->import_legacy(dir + "/e.txt", dir + "/l.json");
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->added, 0);  // nothing new
  EXPECT_EQ(again->already_present, 3);
  auto people = g->list_people();
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].name, "Ann");
  EXPECT_EQ((*people)[0].templates, 2);
  EXPECT_EQ((*people)[1].name, "B\xC3\xB8" "b");
  // One change per person for the import; the re-import writes nothing (its
  // vectors are all stored already), so it logs no change.
  auto log = g->store().changes_since(0);
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[0].template_ids.size(), 2u);
  ASSERT_TRUE(g->export_legacy(dir + "/out.txt", dir + "/out.json").ok());
  const std::string exported = slurp(dir + "/out.txt");
  EXPECT_EQ(std::count(exported.begin(), exported.end(), '\n'), 3) << exported;
}

TEST_P(GalleryStoreTest, MigratesFromSchemaVersion1) {
  // Version 1 as it exists: for SQLite, the layout every gallery had before
  // stores (written here by hand, as that code wrote it); for PostgreSQL the
  // store's own v1.
  const std::string vec(reinterpret_cast<const char*>(unit(5).data()), kDim * 4);
  if (pg()) {
    auto st = store::open_postgres_store(location_, GalleryAccess::kCreate, &kEmb, 1);
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    EXPECT_EQ((*st)->schema_version(), 1);
    ASSERT_EQ(sql_exec("INSERT INTO people(name) VALUES('Old Timer');"
                       "INSERT INTO templates(person_id, vector, norm, source, source_sha256, det_score, created_at) "
                       "SELECT id, decode(repeat('00', 60) || '0000803f', 'hex'), 3.5, 'old.jpg', 'oldsha', 0.5, 1 FROM people"),
              "");
  } else {
    ASSERT_EQ(sql_exec(
                  "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                  "CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
                  "CREATE TABLE templates(id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES people(id) ON "
                  "DELETE CASCADE, vector BLOB NOT NULL, norm REAL NOT NULL, source TEXT NOT NULL DEFAULT '', "
                  "source_sha256 TEXT NOT NULL DEFAULT '', det_score REAL NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
                  "CREATE UNIQUE INDEX templates_person_source ON templates(person_id, source_sha256) WHERE source_sha256 <> '';"
                  "CREATE INDEX templates_person ON templates(person_id);"
                  "INSERT INTO meta VALUES('format','facerec-gallery'),('format_version','1'),"
                  "('embedder_model_id','arcface_test'),('embedder_sha256','" + kEmb.sha256 + "'),('embedder_dim','16');"
                  "PRAGMA journal_mode=WAL;"
                  "INSERT INTO people(name) VALUES('Old Timer');"
                  "INSERT INTO templates(person_id, vector, norm, source, source_sha256, det_score, created_at) "
                  "SELECT id, zeroblob(60) || x'0000803f', 3.5, 'old.jpg', 'oldsha', 0.5, 1 FROM people"),
              "");
  }
  // Read-only: reads version 1 as it is, writes nothing.
  {
    auto ro = Gallery::open_read_only(location_);
    ASSERT_TRUE(ro.ok()) << ro.status().to_string();
    EXPECT_EQ((*ro)->store().schema_version(), 1);
    EXPECT_EQ((*ro)->list_people()->size(), 1u);
    EXPECT_EQ((*ro)->store().changes_since(0)->size(), 0u);
  }
  EXPECT_EQ(sql_value("SELECT value FROM meta WHERE key = 'format_version'"), "1");
  auto g = open();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->store().schema_version(), 2);
  EXPECT_EQ(sql_value("SELECT value FROM meta WHERE key = 'format_version'"), "2");
  EXPECT_EQ(sql_value("SELECT count(*) FROM schema_version"), "2");
  auto ts = g->templates();
  ASSERT_TRUE(ts.ok()) << ts.status().to_string();
  ASSERT_EQ(ts->size(), 1u);
  EXPECT_EQ((*ts)[0].unit[15], 1.f);
  EXPECT_EQ((*ts)[0].source_sha256, "oldsha");
  EXPECT_TRUE(g->enroll("Old Timer", {tpl(1, "n")}).ok());
  EXPECT_EQ(g->store().changes_since(0)->size(), 1u);
  g.reset();
  // A second open finds nothing to migrate.
  auto again = open();
  ASSERT_TRUE(again);
  EXPECT_EQ(sql_value("SELECT count(*) FROM schema_version"), "2");
  // A newer version than this build knows is refused, not guessed at.
  again.reset();
  ASSERT_EQ(sql_exec("UPDATE meta SET value = '9' WHERE key = 'format_version'"), "");
  auto newer = Gallery::open(location_, kEmb);
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.status().message().find("version"), std::string::npos) << newer.status().message();
}

INSTANTIATE_TEST_SUITE_P(Backends, GalleryStoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

// ---- PostgreSQL: bad input ------------------------------------------------------------------

TEST(PostgresGallery, BadUrisAndRefusedConnectionsAreClearErrors) {
  auto bad = Gallery::open("postgresql://[::1/db", kEmb);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument) << bad.status().to_string();
  EXPECT_NE(bad.status().message().find("URI"), std::string::npos) << bad.status().message();
  // Port 1 on loopback: nothing listens there.
  auto refused = Gallery::open("postgres://nobody:secret@127.0.0.1:1/gallery", kEmb);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kDatabase);
  EXPECT_NE(refused.status().message().find("cannot connect"), std::string::npos) << refused.status().message();
  EXPECT_EQ(refused.status().message().find("secret"), std::string::npos) << "password leaked: " << refused.status().message();
  EXPECT_EQ(redact_uri("postgresql://u:pw@h/db?password=x&sslmode=y"), "postgresql://u:***@h/db?password=***&sslmode=y");
}

TEST(PostgresGallery, NonGalleryDatabasesAreRefusedUntouched) {
  FACEREC_REQUIRE_POSTGRES();
  const std::string uri = testing::pg_fresh_database("other");
  ASSERT_EQ(testing::pg_exec(uri, "CREATE TABLE songs(id int); INSERT INTO songs VALUES (1)"), "");
  auto g = Gallery::open(uri, kEmb);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), ErrorCode::kDatabase);
  EXPECT_NE(g.status().message().find("not a facerec gallery"), std::string::npos) << g.status().message();
  EXPECT_EQ(testing::pg_value(uri, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "1");
  // An empty database is no gallery for readers, and stays empty.
  const std::string empty = testing::pg_fresh_database("empty");
  EXPECT_EQ(Gallery::open_existing(empty).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(Gallery::open_read_only(empty).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(testing::pg_value(empty, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "0");
}

// ---- copy between backends ------------------------------------------------------------------

TEST(GalleryCopy, RoundTripsSqlitePostgresSqlite) {
  FACEREC_REQUIRE_POSTGRES();
  const std::string dir = testing::temp_dir("copy");
  const std::string a = dir + "/a.db", c = dir + "/c.db";
  {
    auto g = Gallery::open(a, kEmb);
    ASSERT_TRUE(g.ok());
    for (int p = 0; p < 7; ++p) {
      std::vector<NewTemplate> ts;
      for (int i = 0; i <= p % 3; ++i) ts.push_back(tpl(p * 10 + i, "h" + std::to_string(p) + "_" + std::to_string(i)));
      ASSERT_TRUE((*g)->enroll("Person \xC3\xA9 " + std::to_string(p), ts).ok());
    }
  }
  const std::string pg = testing::pg_fresh_database("copy");
  auto r1 = copy_gallery(a, pg);
  ASSERT_TRUE(r1.ok()) << r1.status().to_string();
  EXPECT_EQ(r1->people, 7);
  EXPECT_EQ(r1->templates, 13);  // 1+2+3+1+2+3+1
  auto r2 = copy_gallery(pg, c);
  ASSERT_TRUE(r2.ok()) << r2.status().to_string();
  auto ga = Gallery::open_read_only(a), gc = Gallery::open_read_only(c);
  ASSERT_TRUE(ga.ok() && gc.ok());
  auto pa = (*ga)->list_people(), pc = (*gc)->list_people();
  ASSERT_EQ(pa->size(), pc->size());
  for (size_t i = 0; i < pa->size(); ++i) {
    EXPECT_EQ((*pa)[i].name, (*pc)[i].name);
    EXPECT_EQ((*pa)[i].templates, (*pc)[i].templates);
  }
  auto ta = (*ga)->templates(), tc = (*gc)->templates();
  ASSERT_EQ(ta->size(), tc->size());
  for (size_t i = 0; i < ta->size(); ++i) {
    EXPECT_EQ(0, std::memcmp((*ta)[i].unit.data(), (*tc)[i].unit.data(), kDim * 4));
    EXPECT_EQ((*ta)[i].norm, (*tc)[i].norm);
    EXPECT_EQ((*gc)->person_name((*tc)[i].person_id).value(), (*ga)->person_name((*ta)[i].person_id).value());
  }
  EXPECT_EQ((*gc)->embedder().sha256, kEmb.sha256);
  // Copying again into a gallery that has these people writes nothing.
  auto again = copy_gallery(a, pg);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(testing::pg_value(pg, "SELECT count(*) FROM templates"), "13");
  // Into a gallery of another embedder: refused, nothing written.
  const std::string other = dir + "/other.db";
  { ASSERT_TRUE(Gallery::open(other, EmbedderInfo{"other", "x", 8}).ok()); }
  const std::string bytes = slurp(other);
  auto mismatch = copy_gallery(pg, other);
  EXPECT_EQ(mismatch.status().code(), ErrorCode::kMismatch) << mismatch.status().to_string();
  EXPECT_TRUE(slurp(other) == bytes);
}

// ---- SQLite: read-only storage and a full disk (issue 11, fault 9) ----------------------------

std::string make_sqlite_gallery(const std::string& path, int people) {
  auto g = Gallery::open(path, kEmb);
  EXPECT_TRUE(g.ok());
  for (int p = 0; p < people; ++p) EXPECT_TRUE((*g)->enroll("P" + std::to_string(p), {tpl(p, "s" + std::to_string(p))}).ok());
  return path;
}

// Runs f in a child process; its exit code (f's return), 100+ on a crash.
template <class F>
int in_child(F&& f) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) _exit(f());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

// Read-only storage: a read-only file in a read-only folder. As root (CI)
// permissions do not apply, so the child drops to user nobody first.
TEST(SqliteGallery, ReadOnlyStorageIsReadableAndRefusesWritesByName) {
  const std::string dir = testing::temp_dir("ro");
  const std::string path = make_sqlite_gallery(dir + "/g.db", 3);
  const std::string bytes = slurp(path);
  ASSERT_FALSE(fs::exists(path + "-wal"));
  chmod(path.c_str(), 0444);
  chmod(dir.c_str(), 0555);
  chmod(fs::path(dir).parent_path().c_str(), 0711);  // the test's temporary root is 0700
  const int rc = in_child([&]() -> int {
    if (getuid() == 0) {
      const passwd* nobody = getpwnam("nobody");
      if (!nobody || setgid(nobody->pw_gid) != 0 || setuid(nobody->pw_uid) != 0) return 90;
    }
    if (access(path.c_str(), W_OK) == 0) return 91;  // the setup did not take
    auto ro = Gallery::open_read_only(path, &kEmb);
    if (!ro.ok()) return fprintf(stderr, "%s\n", ro.status().to_string().c_str()), 10;
    auto people = (*ro)->list_people();
    if (!people.ok() || people->size() != 3) return 11;
    if (!(*ro)->templates().ok()) return 12;
    auto w = Gallery::open(path, kEmb);
    if (w.ok()) {
      auto e = (*w)->enroll("New", {tpl(50, "n")});
      if (e.ok() || e.status().code() != ErrorCode::kIo || e.status().message().find("read-only") == std::string::npos)
        return fprintf(stderr, "%s\n", e.status().to_string().c_str()), 13;
    } else if (w.status().code() != ErrorCode::kIo || w.status().message().find("read-only") == std::string::npos) {
      return fprintf(stderr, "%s\n", w.status().to_string().c_str()), 14;
    }
    return 0;
  });
  chmod(dir.c_str(), 0755);
  chmod(path.c_str(), 0644);
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(slurp(path) == bytes) << "gallery changed";
  EXPECT_EQ(fs::directory_iterator(dir) == fs::directory_iterator(), false);
  EXPECT_FALSE(fs::exists(path + "-wal"));
}

// A full disk mid-enrolment: the file size limit (RLIMIT_FSIZE) is hit while
// the WAL grows. The error says "disk full" and the gallery is unchanged.
TEST(SqliteGallery, FullDiskSaysSoAndLeavesTheGalleryUnchanged) {
  const std::string dir = testing::temp_dir("full");
  const std::string path = make_sqlite_gallery(dir + "/g.db", 2);
  const std::string bytes = slurp(path);
  const int rc = in_child([&]() -> int {
    signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG
    auto g = Gallery::open(path, kEmb);
    if (!g.ok()) return 20;
    rlimit lim{static_cast<rlim_t>(bytes.size() + 4096), RLIM_INFINITY};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) return 21;
    std::vector<NewTemplate> big;
    for (int i = 0; i < 400; ++i) big.push_back(tpl(1000 + i, "big" + std::to_string(i), kDim));
    auto e = (*g)->enroll("Too Big", big);
    if (e.ok()) return 22;
    if (e.status().code() != ErrorCode::kIo || e.status().message().find("disk full") == std::string::npos)
      return fprintf(stderr, "%s\n", e.status().to_string().c_str()), 23;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  // Reopened by this process (no limit): exactly as before.
  auto g = Gallery::open_read_only(path);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ((*g)->list_people()->size(), 2u);
  EXPECT_EQ((*g)->templates()->size(), 2u);
  g->reset();
  auto w = Gallery::open(path, kEmb);  // replays/cleans any WAL left behind
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->templates()->size(), 2u);
}

// "Corrupt" is said only when SQLite's integrity check fails.
TEST(SqliteGallery, CorruptIsSaidOnlyAfterTheIntegrityCheck) {
  const std::string dir = testing::temp_dir("corrupt");
  const std::string path = make_sqlite_gallery(dir + "/g.db", 30);
  std::string bytes = slurp(path);
  ASSERT_GT(bytes.size(), 8192u);
  // Damage the second page (the schema's b-tree pages follow page 1).
  for (size_t i = 4096; i < 8192; ++i) bytes[i] = static_cast<char>(i * 7);
  { std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes; }
  auto g = Gallery::open_read_only(path);
  if (g.ok()) {
    // The damage may spare what open reads; reading everything must not.
    auto ts = (*g)->templates();
    EXPECT_FALSE(ts.ok() && ts->size() == 30u);
  } else {
    EXPECT_EQ(g.status().code(), ErrorCode::kDatabase);
    EXPECT_NE(g.status().message().find("integrity_check"), std::string::npos) << g.status().message();
  }
  // A healthy gallery is never called corrupt, even when it cannot be opened.
  const std::string ok = make_sqlite_gallery(dir + "/ok.db", 1);
  auto fine = Gallery::open_read_only(ok);
  ASSERT_TRUE(fine.ok());
}

}  // namespace
}  // namespace facerec
