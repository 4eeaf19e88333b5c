#include "facerec/gallery.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "random_unit.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

constexpr int kDim = 8;
const EmbedderInfo kEmbedder{"arcface_r100", "1111111111111111111111111111111111111111111111111111111111111111", kDim};

using testing::random_unit;

NewTemplate make_template(uint32_t seed, const std::string& sha, int dim = kDim) {
  NewTemplate t;
  t.unit = random_unit(dim, seed);
  t.norm = 20.f + static_cast<float>(seed % 7);
  t.source = "photos/img_" + std::to_string(seed) + ".jpg";
  t.source_sha256 = sha;
  t.det_score = 0.9f;
  return t;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

std::set<std::string> dir_listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

std::unique_ptr<Gallery> open_ok(const std::string& path, const EmbedderInfo& e = kEmbedder) {
  auto g = Gallery::open(path, e);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? std::move(g.value()) : nullptr;
}

// A single-value query through a raw connection, for what the API does not expose.
std::string sql_value(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out = "<error>";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
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

void sql_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// A gallery file with some content, closed (so the WAL is checkpointed).
std::string make_gallery(const std::string& dir, int people = 2, int per_person = 3) {
  std::string path = dir + "/gallery.db";
  auto g = open_ok(path);
  for (int p = 0; p < people; ++p) {
    std::vector<NewTemplate> ts;
    for (int i = 0; i < per_person; ++i)
      ts.push_back(make_template(p * 100 + i, "sha" + std::to_string(p) + "_" + std::to_string(i)));
    auto r = g->enroll("person " + std::to_string(p), ts);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
  }
  return path;
}

// ---- open ----------------------------------------------------------------------

TEST(Gallery, CreatesAndReopensWithEverythingStored) {
  std::string dir = testing::temp_dir("gallery");
  std::string path = dir + "/sub.db";
  ASSERT_FALSE(fs::exists(path));
  NewTemplate a = make_template(1, "aaa"), b = make_template(2, "bbb");
  int64_t before = std::time(nullptr);
  {
    auto g = open_ok(path);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->embedder().model_id, kEmbedder.model_id);
    EXPECT_EQ(g->embedder().dim, kDim);
    auto r = g->enroll("Alice", {a, b});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->added, 2);
    EXPECT_EQ(r->duplicates, 0);
  }
  int64_t after = std::time(nullptr);
  EXPECT_EQ(sql_value(path, "PRAGMA journal_mode"), "wal");

  auto g = open_ok(path);
  ASSERT_TRUE(g);
  auto people = g->list_people();
  ASSERT_TRUE(people.ok());
  ASSERT_EQ(people->size(), 1u);
  EXPECT_EQ((*people)[0].name, "Alice");
  EXPECT_EQ((*people)[0].templates, 2);
  auto ts = g->templates();
  ASSERT_TRUE(ts.ok()) << ts.status().to_string();
  ASSERT_EQ(ts->size(), 2u);
  const NewTemplate* want[] = {&a, &b};
  for (int i = 0; i < 2; ++i) {
    const StoredTemplate& t = (*ts)[i];
    EXPECT_EQ(t.unit, want[i]->unit);  // bit-exact float32 round trip
    EXPECT_FLOAT_EQ(t.norm, want[i]->norm);
    EXPECT_EQ(t.source, want[i]->source);
    EXPECT_EQ(t.source_sha256, want[i]->source_sha256);
    EXPECT_FLOAT_EQ(t.det_score, want[i]->det_score);
    EXPECT_GE(t.created_at, before);
    EXPECT_LE(t.created_at, after);
    EXPECT_EQ(t.person_id, (*people)[0].id);
  }
  EXPECT_LT((*ts)[0].id, (*ts)[1].id);
  auto name = g->person_name((*people)[0].id);
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name.value(), "Alice");
  EXPECT_EQ(g->person_name(9999).status().code(), ErrorCode::kNotFound);

  // open_existing reads the embedder from the file.
  auto e = Gallery::open_existing(path);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ((*e)->embedder().sha256, kEmbedder.sha256);
  EXPECT_EQ((*e)->embedder().dim, kDim);
}

TEST(Gallery, EmptyFileBecomesAGallery) {
  std::string path = testing::temp_dir("gallery") + "/empty.db";
  write(path, "");
  auto g = open_ok(path);
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->enroll("A", {make_template(1, "x")}).ok());
}

// A SQLite database without a table (what an enrolment killed while creating
// the gallery can leave) is like an empty file: enrolling creates the
// gallery; reading says there is none yet, and how to make one.
TEST(Gallery, ATablelessSqliteFileBecomesAGalleryAndReadsAsNoneYet) {
  std::string path = testing::temp_dir("gallery") + "/tableless.db";
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "PRAGMA journal_mode = WAL; CREATE TABLE t(x); DROP TABLE t;", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(h);
  }
  ASSERT_GT(std::filesystem::file_size(path), 0u);
  for (int ro = 0; ro < 2; ++ro) {
    auto r = ro ? Gallery::open_read_only(path) : Gallery::open_existing(path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << r.status().to_string();
    EXPECT_NE(r.status().message().find("enrol again"), std::string::npos) << r.status().message();
  }
  auto g = open_ok(path);
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->enroll("A", {make_template(1, "x")}).ok());
  g.reset();
  auto again = Gallery::open_existing(path);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ((*again)->list_people()->size(), 1u);
}

TEST(Gallery, OpenExistingNeedsAFileAndCreatesNothing) {
  std::string dir = testing::temp_dir("gallery");
  auto g = Gallery::open_existing(dir + "/missing.db");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(dir_listing(dir).empty());
  auto bad_dir = Gallery::open(dir + "/no/such/dir/g.db", kEmbedder);
  ASSERT_FALSE(bad_dir.ok());
  EXPECT_EQ(bad_dir.status().code(), ErrorCode::kDatabase);
  auto no_dim = Gallery::open(dir + "/g.db", EmbedderInfo{"m", "s", 0});
  ASSERT_FALSE(no_dim.ok());
  EXPECT_EQ(no_dim.status().code(), ErrorCode::kInvalidArgument);
}

TEST(Gallery, MismatchedEmbedderIsRefusedAndTheFileUnchanged) {
  std::string dir = testing::temp_dir("gallery");
  std::string path = make_gallery(dir);
  const std::string bytes = slurp(path);
  const auto listing = dir_listing(dir);

  EmbedderInfo other_id = kEmbedder, other_sha = kEmbedder, other_dim = kEmbedder;
  other_id.model_id = "mobilefacenet_128";
  other_sha.sha256 = "2222222222222222222222222222222222222222222222222222222222222222";
  other_dim.dim = 128;
  const EmbedderInfo others[] = {other_id, other_sha, other_dim};
  for (int k = 0; k < 3; ++k) {
    const EmbedderInfo& e = others[k];
    auto g = Gallery::open(path, e);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.status().code(), ErrorCode::kMismatch) << g.status().to_string();
    // The message names both embedders.
    EXPECT_NE(g.status().message().find(kEmbedder.model_id), std::string::npos) << g.status().message();
    EXPECT_NE(g.status().message().find(e.model_id), std::string::npos);
    EXPECT_NE(g.status().message().find(k == 1 ? other_sha.sha256 : kEmbedder.sha256), std::string::npos);
  }
  EXPECT_TRUE(slurp(path) == bytes) << "file modified";
  EXPECT_EQ(dir_listing(dir), listing);
  auto g = open_ok(path);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->list_people()->size(), 2u);
}

struct NotAGallery {
  std::string label;
  std::string path;
};

TEST(Gallery, NonGalleryFilesAreDatabaseErrorsAndLeftUntouched) {
  std::string dir = testing::temp_dir("gallery");
  std::vector<NotAGallery> files;
  auto add = [&](const std::string& label, const std::string& bytes) {
    std::string p = dir + "/" + label;
    write(p, bytes);
    files.push_back({label, p});
  };
  add("text.txt", "Alice,0.1,0.2\nBob,0.3,0.4\n");
  std::mt19937 rng(7);
  std::string random(8192, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  add("random.bin", random);
  // The SQLite magic followed by garbage.
  add("fake_header.db", std::string("SQLite format 3\0", 16) + random);

  {
    std::string gdir = testing::temp_dir("gallery_src");
    std::string full = slurp(make_gallery(gdir, 20, 30));
    ASSERT_GT(full.size(), 8192u);
    add("truncated_half.db", full.substr(0, full.size() / 2));
    add("truncated_tiny.db", full.substr(0, 60));
  }
  // Real SQLite databases that are not galleries.
  files.push_back({"other.db", dir + "/other.db"});
  sql_exec(dir + "/other.db", "CREATE TABLE songs(id INTEGER PRIMARY KEY, title TEXT); INSERT INTO songs(title) VALUES('x')");
  files.push_back({"no_tables.db", dir + "/no_tables.db"});
  sql_exec(dir + "/no_tables.db", "PRAGMA user_version = 7");
  files.push_back({"wrong_version.db", dir + "/wrong_version.db"});
  {
    std::string gdir = testing::temp_dir("gallery_src");
    fs::copy_file(make_gallery(gdir, 1, 1), dir + "/wrong_version.db");
    sql_exec(dir + "/wrong_version.db", "UPDATE meta SET value = '99' WHERE key = 'format_version'");
  }

  std::map<std::string, std::string> before;
  for (const auto& f : files) before[f.path] = slurp(f.path);
  ASSERT_GT(before[dir + "/no_tables.db"].size(), 0u);
  const auto listing = dir_listing(dir);

  for (const auto& f : files) {
    SCOPED_TRACE(f.label);
    auto g = Gallery::open(f.path, kEmbedder);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.status().code(), ErrorCode::kDatabase) << g.status().to_string();
    EXPECT_NE(g.status().message().find(f.path), std::string::npos) << g.status().message();
    auto e = Gallery::open_existing(f.path);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().code(), ErrorCode::kDatabase) << e.status().to_string();
    EXPECT_TRUE(slurp(f.path) == before[f.path]) << "file modified";
  }
  EXPECT_NE(Gallery::open(dir + "/wrong_version.db", kEmbedder).status().message().find("version"),
            std::string::npos);
  EXPECT_EQ(dir_listing(dir), listing) << "sidecar files left behind";
}

// ---- enroll -----------------------------------------------------------------------

TEST(Gallery, DuplicateSourcesAreSkippedPerPerson) {
  std::string path = testing::temp_dir("gallery") + "/g.db";
  auto g = open_ok(path);
  ASSERT_TRUE(g);
  auto r1 = g->enroll("Alice", {make_template(1, "a"), make_template(2, "b")});
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->added, 2);
  auto r2 = g->enroll("Alice", {make_template(1, "a"), make_template(3, "c"), make_template(3, "c")});
  ASSERT_TRUE(r2.ok()) << r2.status().to_string();
  EXPECT_EQ(r2->added, 1);
  EXPECT_EQ(r2->duplicates, 2);  // "a" from before, and the second "c" of this batch
  // The key is per person: Bob may have the same photo.
  auto r3 = g->enroll("Bob", {make_template(1, "a")});
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->added, 1);
  // No hash, no duplicate detection.
  auto r4 = g->enroll("Bob", {make_template(5, ""), make_template(5, "")});
  ASSERT_TRUE(r4.ok()) << r4.status().to_string();
  EXPECT_EQ(r4->added, 2);
  auto people = g->list_people();
  ASSERT_TRUE(people.ok());
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].templates, 3);
  EXPECT_EQ((*people)[1].templates, 3);
  EXPECT_EQ(g->templates()->size(), 6u);
}

TEST(Gallery, NamesAreStoredExactly) {
  std::string path = testing::temp_dir("gallery") + "/g.db";
  const std::vector<std::string> names = {"Zoë Saldaña", "李小龙", "../evil", "a/b", "..", "Mary Jane Watson",
                                          "O'Brien; DROP TABLE people;--", "🙂 x"};
  {
    auto g = open_ok(path);
    ASSERT_TRUE(g);
    uint32_t seed = 0;
    for (const auto& n : names) {
      ++seed;
      auto r = g->enroll(n, {make_template(seed, std::to_string(seed) + "s")});
      ASSERT_TRUE(r.ok()) << n << ": " << r.status().to_string();
    }
    // Same name again is the same person.
    ASSERT_TRUE(g->enroll("Zoë Saldaña", {make_template(99, "s99")}).ok());
  }
  auto g = open_ok(path);
  ASSERT_TRUE(g);
  auto people = g->list_people();
  ASSERT_TRUE(people.ok());
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());  // byte order, as the gallery lists them
  ASSERT_EQ(people->size(), sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    EXPECT_EQ((*people)[i].name, sorted[i]);
    EXPECT_EQ((*people)[i].templates, sorted[i] == "Zoë Saldaña" ? 2 : 1);
    EXPECT_EQ(g->person_name((*people)[i].id).value(), sorted[i]);
  }
  EXPECT_FALSE(fs::exists(fs::path(path).parent_path() / "a"));  // names are never paths
}

TEST(IdentityName, AcceptsRealNamesAndRejectsWhatCannotBeOne) {
  const std::vector<std::string> good = {"A", "Zoë Saldaña", "李小龙", "../evil", "a/b", "..", "x y z",
                                         "Ünïcödé-名前", std::string(256, 'x'), "\xF0\x9F\x99\x82"};
  for (const auto& n : good) EXPECT_TRUE(validate_identity_name(n).ok()) << n;
  const std::vector<std::string> bad = {
      "",                       // empty
      std::string(257, 'x'),    // too long
      " Alice", "Alice ",       // surrounding spaces
      "\xC2\xA0" "Alice",       // leading no-break space
      "Alice\xE3\x80\x80",      // trailing ideographic space
      "a\nb", "\tAlice", "a\rb", std::string("a\0b", 3), "a\x7f" "b", "\x1b[31mred",
      "a\xC2\x9B" "b",          // C1 CSI
      "\xFF", "Zo\xC3",         // invalid / truncated UTF-8
      "\xC0\xAF",               // overlong '/'
      "\xED\xA0\x80",           // UTF-16 surrogate
      "\xF4\x90\x80\x80",       // above U+10FFFF
  };
  for (const auto& n : bad) {
    Status s = validate_identity_name(n);
    EXPECT_FALSE(s.ok()) << ::testing::PrintToString(n);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(Gallery, InvalidNamesWriteNothing) {
  std::string dir = testing::temp_dir("gallery");
  std::string path = make_gallery(dir, 1, 1);
  const std::string bytes = slurp(path);
  {
    auto g = open_ok(path);
    ASSERT_TRUE(g);
    for (const std::string& n : {std::string(""), std::string(" x"), std::string("a\nb"), std::string("\xFF")}) {
      auto r = g->enroll(n, {make_template(1, "new")});
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    }
    EXPECT_EQ(g->list_people()->size(), 1u);
    EXPECT_EQ(g->templates()->size(), 1u);
  }
  EXPECT_TRUE(slurp(path) == bytes) << "file modified";
}

TEST(Gallery, BatchWithOneBadTemplateWritesNothing) {
  std::string dir = testing::temp_dir("gallery");
  std::string path = make_gallery(dir, 1, 2);
  const std::string bytes = slurp(path);
  {
    auto g = open_ok(path);
    ASSERT_TRUE(g);
    NewTemplate wrong_dim = make_template(10, "w", kDim + 1);
    NewTemplate nan = make_template(11, "n");
    nan.unit[3] = std::numeric_limits<float>::quiet_NaN();
    NewTemplate inf_norm = make_template(12, "i");
    inf_norm.norm = std::numeric_limits<float>::infinity();
    NewTemplate not_unit = make_template(13, "u");
    for (float& x : not_unit.unit) x *= 3;
    for (const NewTemplate& bad : {wrong_dim, nan, inf_norm, not_unit}) {
      for (std::string who : {"person 0", "Newcomer"}) {
        auto r = g->enroll(who, {make_template(20, "good1"), make_template(21, "good2"), bad});
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().to_string();
      }
    }
    auto empty = g->enroll("Newcomer", {});
    EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
    auto people = g->list_people();
    ASSERT_EQ(people->size(), 1u);
    EXPECT_EQ((*people)[0].templates, 2);
  }
  EXPECT_TRUE(slurp(path) == bytes) << "file modified";
}

// A database failure after some rows are inserted (forced by a test-only
// trigger on the file, not a hook in the code) rolls the whole enroll back,
// including the new person row.
TEST(Gallery, DatabaseFailureMidBatchRollsBackEverything) {
  std::string dir = testing::temp_dir("gallery");
  std::string path = make_gallery(dir, 1, 2);
  sql_exec(path,
           "CREATE TRIGGER boom BEFORE INSERT ON templates WHEN NEW.source = 'boom' "
           "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  const std::string bytes = slurp(path);
  {
    auto g = open_ok(path);
    ASSERT_TRUE(g);
    NewTemplate boom = make_template(30, "b");
    boom.source = "boom";
    for (std::string who : {"person 0", "Newcomer"}) {
      auto r = g->enroll(who, {make_template(31, "g1"), make_template(32, "g2"), boom});
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), ErrorCode::kDatabase);
      EXPECT_NE(r.status().message().find("injected failure"), std::string::npos) << r.status().message();
    }
    auto people = g->list_people();
    ASSERT_EQ(people->size(), 1u);
    EXPECT_EQ((*people)[0].templates, 2);
    EXPECT_EQ(g->templates()->size(), 2u);
    // The connection is still usable after the rollback.
    EXPECT_TRUE(g->enroll("Newcomer", {make_template(33, "g3")}).ok());
  }
  EXPECT_TRUE(slurp(path) != bytes);  // the comparison above can fail
}

// ---- crash safety --------------------------------------------------------------------

// A child process enrolls people in big batches and is SIGKILLed while it
// holds the write lock, i.e. inside an enroll transaction. Every person that
// survives must have a complete batch.
TEST(Gallery, KilledMidEnrolmentLeavesNoPartialPerson) {
  constexpr int kBatch = 300;
  constexpr int kCrashDim = 512;
  const EmbedderInfo emb{"crash_model", "abcd", kCrashDim};
  std::string path = testing::temp_dir("gallery_crash") + "/g.db";
  { ASSERT_TRUE(Gallery::open(path, emb).ok()); }

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: no gtest assertions, exit codes only.
    auto g = Gallery::open(path, emb);
    if (!g.ok()) _exit(2);
    std::vector<NewTemplate> batch;
    for (int i = 0; i < kBatch; ++i) batch.push_back(make_template(i, "", kCrashDim));
    for (int p = 0;; ++p) {
      for (int i = 0; i < kBatch; ++i) batch[i].source_sha256 = std::to_string(p) + "/" + std::to_string(i);
      if (!(*g)->enroll("person " + std::to_string(p), batch).ok()) _exit(3);
    }
  }

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(db, 0);
  bool killed_in_tx = false;
  int people_at_kill = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) break;  // child died on its own: fails below
    sqlite3_stmt* st = nullptr;
    int people = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM people", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      people = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (people >= 3) {
      // BUSY: the child holds the write lock, so it is mid-transaction.
      int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
      if ((rc & 0xff) == SQLITE_BUSY) {
        kill(pid, SIGKILL);
        killed_in_tx = true;
        people_at_kill = people;
        break;
      }
      if (rc == SQLITE_OK) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  sqlite3_close(db);
  if (!killed_in_tx) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(killed_in_tx) << "never caught the child inside a transaction";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child exited early, status " << status;

  EXPECT_EQ(sql_value(path, "PRAGMA integrity_check"), "ok");
  auto g = Gallery::open(path, emb);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  auto people = (*g)->list_people();
  ASSERT_TRUE(people.ok());
  EXPECT_GE(static_cast<int>(people->size()), people_at_kill);
  for (const PersonInfo& p : people.value()) EXPECT_EQ(p.templates, kBatch) << p.name;
  EXPECT_EQ((*g)->templates()->size(), people->size() * kBatch);
  // Still writable after recovery.
  EXPECT_TRUE((*g)->enroll("after crash", {make_template(1, "z", kCrashDim)}).ok());
  EXPECT_EQ(sql_value(path, "PRAGMA integrity_check"), "ok");
}

// ---- remove / rename ------------------------------------------------------------------

TEST(Gallery, RemoveAndRename) {
  std::string path = testing::temp_dir("gallery") + "/g.db";
  auto g = open_ok(path);
  ASSERT_TRUE(g);
  ASSERT_TRUE(g->enroll("Alice", {make_template(1, "a1"), make_template(2, "a2")}).ok());
  ASSERT_TRUE(g->enroll("Bob", {make_template(3, "b1")}).ok());
  ASSERT_TRUE(g->enroll("Carol", {make_template(4, "c1")}).ok());

  ASSERT_TRUE(g->remove_person("Alice").ok());
  EXPECT_EQ(g->remove_person("Alice").code(), ErrorCode::kNotFound);
  EXPECT_EQ(g->remove_person("Nobody").code(), ErrorCode::kNotFound);
  auto people = g->list_people();
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].name, "Bob");
  EXPECT_EQ(g->templates()->size(), 2u);  // Alice's templates went with her

  const int64_t bob_id = (*people)[0].id;
  ASSERT_TRUE(g->rename_person("Bob", "Robert Smith").ok());
  EXPECT_EQ(g->person_name(bob_id).value(), "Robert Smith");
  EXPECT_EQ(g->rename_person("Bob", "X").code(), ErrorCode::kNotFound);
  EXPECT_EQ(g->rename_person("Carol", "Robert Smith").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(g->rename_person("Carol", " bad").code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(g->rename_person("Carol", "Carol").ok());
  people = g->list_people();
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].name, "Carol");
  EXPECT_EQ((*people)[0].templates, 1);
  EXPECT_EQ((*people)[1].name, "Robert Smith");
  EXPECT_EQ((*people)[1].templates, 1);
  // A removed name can be enrolled afresh; the old duplicate keys are gone.
  auto r = g->enroll("Alice", {make_template(1, "a1")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->added, 1);
}

// ---- legacy format ---------------------------------------------------------------------

struct Legacy {
  std::string txt, json;
};

// Three unnormalised 8-d vectors, in the original Python layout.
const std::vector<std::vector<float>> kLegacyVectors = {
    {1, 2, 3, 4, 5, 6, 7, 8},
    {-0.5f, 0.25f, 0, 0, 1e-3f, 3.5f, -2, 10},
    {0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.2f},
};

Legacy write_legacy(const std::string& dir, const std::string& txt, const std::string& json) {
  Legacy l{dir + "/face_embdding.txt", dir + "/label_map.json"};
  write(l.txt, txt);
  write(l.json, json);
  return l;
}

std::string legacy_txt() {
  // Comma-separated, whitespace-separated, and mixed with CRLF.
  return "1,2,3,4,5,6,7,8\n"
         "-0.5 0.25 0 0 1e-3 3.5 -2 10\n"
         "0.1, 0.1,\t0.1 ,0.1, 0.1, 0.1, 0.1, 0.2\r\n\n";
}

void expect_legacy_people(Gallery& g) {
  auto people = g.list_people();
  ASSERT_TRUE(people.ok());
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].name, "Alice");
  EXPECT_EQ((*people)[0].templates, 2);
  EXPECT_EQ((*people)[1].name, "Bob");
  EXPECT_EQ((*people)[1].templates, 1);
  auto ts = g.templates();
  ASSERT_TRUE(ts.ok());
  ASSERT_EQ(ts->size(), 3u);
  const std::string line_owner[] = {"Alice", "Bob", "Alice"};
  for (const StoredTemplate& t : ts.value()) {
    // source ends in ":<line>", 1-based.
    int line = std::stoi(t.source.substr(t.source.rfind(':') + 1));
    ASSERT_GE(line, 1);
    ASSERT_LE(line, 3);
    const auto& v = kLegacyVectors[line - 1];
    EXPECT_EQ(g.person_name(t.person_id).value(), line_owner[line - 1]);
    double n = 0;
    for (float x : v) n += double(x) * x;
    n = std::sqrt(n);
    EXPECT_NEAR(t.norm, n, 1e-5 * n);
    for (size_t k = 0; k < v.size(); ++k) EXPECT_NEAR(t.unit[k], v[k] / n, 1e-6);
  }
}

TEST(Legacy, ImportsIndexToNameLayout) {
  std::string dir = testing::temp_dir("legacy");
  auto g = open_ok(dir + "/g.db");
  ASSERT_TRUE(g);
  Legacy l = write_legacy(dir, legacy_txt(), R"({"0": "Alice", "1": "Bob", "2": "Alice"})");
  auto n = g->import_legacy(l.txt, l.json);
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(n->added, 3);
  expect_legacy_people(*g);
  // Importing the same files again adds nothing.
  auto again = g->import_legacy(l.txt, l.json);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->added, 0);
  EXPECT_EQ(again->already_present, 3);
  EXPECT_EQ(g->templates()->size(), 3u);
}

TEST(Legacy, ImportsNameToIndicesLayout) {
  std::string dir = testing::temp_dir("legacy");
  auto g = open_ok(dir + "/g.db");
  ASSERT_TRUE(g);
  Legacy l = write_legacy(dir, legacy_txt(), R"({"Alice": [0, 2], "Bob": [1]})");
  auto n = g->import_legacy(l.txt, l.json);
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(n->added, 3);
  expect_legacy_people(*g);
}

TEST(Legacy, ExportThenImportRoundTrips) {
  std::string dir = testing::temp_dir("legacy");
  auto g = open_ok(dir + "/a.db");
  ASSERT_TRUE(g);
  Legacy l = write_legacy(dir, legacy_txt(), R"({"Alice": [0, 2], "Bob": [1]})");
  ASSERT_TRUE(g->import_legacy(l.txt, l.json).ok());
  // Plus names that must survive JSON, and enough rows for two-digit indices.
  for (uint32_t i = 0; i < 10; ++i)
    ASSERT_TRUE(g->enroll(i % 2 ? "Zoë Saldaña" : "李小龙", {make_template(i, "r" + std::to_string(i))}).ok());
  std::string out_txt = dir + "/out_embeddings.txt", out_json = dir + "/out_labels.json";
  Status s = g->export_legacy(out_txt, out_json);
  ASSERT_TRUE(s.ok()) << s.to_string();

  // The label map is the {"index": "name"} layout, in line order.
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(slurp(out_json));
  ASSERT_EQ(j.size(), 13u);
  int i = 0;
  for (auto it = j.begin(); it != j.end(); ++it, ++i) EXPECT_EQ(it.key(), std::to_string(i));
  EXPECT_EQ(j["0"], "Alice");
  EXPECT_EQ(j["1"], "Alice");
  EXPECT_EQ(j["2"], "Bob");
  EXPECT_EQ(j["3"], "李小龙");
  EXPECT_EQ(j["4"], "Zoë Saldaña");

  auto h = open_ok(dir + "/b.db");
  ASSERT_TRUE(h);
  auto n = h->import_legacy(out_txt, out_json);
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(n->added, 13);
  auto a_people = g->list_people(), b_people = h->list_people();
  ASSERT_EQ(a_people->size(), b_people->size());
  for (size_t k = 0; k < a_people->size(); ++k) {
    EXPECT_EQ((*a_people)[k].name, (*b_people)[k].name);
    EXPECT_EQ((*a_people)[k].templates, (*b_people)[k].templates);
  }
  // Import groups lines by person, so compare as sorted (name, vector) lists.
  auto sorted_templates = [](Gallery& gal) {
    std::vector<std::pair<std::string, StoredTemplate>> out;
    auto all = gal.templates();
    for (const StoredTemplate& t : all.value()) out.emplace_back(gal.person_name(t.person_id).value(), t);
    std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first < y.first : x.second.unit < y.second.unit;
    });
    return out;
  };
  auto a_ts = sorted_templates(*g), b_ts = sorted_templates(*h);
  ASSERT_EQ(a_ts.size(), b_ts.size());
  for (size_t k = 0; k < a_ts.size(); ++k) {
    const StoredTemplate &a = a_ts[k].second, &b = b_ts[k].second;
    EXPECT_EQ(a_ts[k].first, b_ts[k].first);
    EXPECT_NEAR(a.norm, b.norm, 1e-5 * a.norm);
    for (int d = 0; d < kDim; ++d) EXPECT_NEAR(a.unit[d], b.unit[d], 1e-6);
  }
}

TEST(Legacy, MalformedFilesImportNothing) {
  struct Case {
    std::string label, txt, json;
    ErrorCode code;
    std::string must_mention;
  };
  const std::string ok_json = R"({"0": "Alice", "1": "Bob", "2": "Alice"})";
  const std::string l1 = "1 2 3 4 5 6 7 8\n", l3 = "3 3 3 3 3 3 3 3\n";
  const std::vector<Case> cases = {
      {"not a number", l1 + "1 2 x 4 5 6 7 8\n" + l3, ok_json, ErrorCode::kDecode, "line 2"},
      {"wrong dim", l1 + "1 2 3 4 5 6 7 8\n" + "1 2 3\n", ok_json, ErrorCode::kMismatch, "line 3"},
      {"blank line inside", l1 + "\n" + l3, ok_json, ErrorCode::kDecode, "line 2"},
      {"nan", l1 + "1 2 3 nan 5 6 7 8\n" + l3, ok_json, ErrorCode::kDecode, "line 2"},
      {"trailing comma", l1 + "1,2,3,4,5,6,7,8,\n" + l3, ok_json, ErrorCode::kDecode, "line 2"},
      {"double comma", l1 + "1,2,,3,4,5,6,7,8\n" + l3, ok_json, ErrorCode::kDecode, "line 2"},
      {"zero vector", l1 + "0 0 0 0 0 0 0 0\n" + l3, ok_json, ErrorCode::kDecode, "line 2"},
      {"index past end", l1 + l1 + l3, R"({"0": "Alice", "1": "Bob", "3": "Alice"})", ErrorCode::kDecode,
       "index 3"},
      {"unlabelled line", l1 + l1 + l3, R"({"0": "Alice", "1": "Bob"})", ErrorCode::kDecode, "line 3"},
      {"labelled twice", l1 + l1 + l3, R"({"Alice": [0, 1], "Bob": [1, 2]})", ErrorCode::kDecode, "line 2"},
      {"bad json", l1 + l1 + l3, R"({"0": "Alice", )", ErrorCode::kDecode, "label_map.json"},
      {"not an object", l1 + l1 + l3, R"(["Alice", "Bob", "Alice"])", ErrorCode::kDecode, "object"},
      {"mixed layouts", l1 + l1 + l3, R"({"0": "Alice", "Bob": [1, 2]})", ErrorCode::kDecode, "mixes"},
      {"non-integer index", l1 + l1 + l3, R"({"Alice": [0, 1.5], "Bob": [2]})", ErrorCode::kDecode, "integer"},
      {"bad name", l1 + l1 + l3, R"({"0": "Alice", "1": " Bob", "2": "Alice"})", ErrorCode::kInvalidArgument,
       "Bob"},
  };
  std::string dir = testing::temp_dir("legacy");
  std::string path = make_gallery(dir, 1, 2);
  const std::string bytes = slurp(path);
  {
    auto g = open_ok(path);
    ASSERT_TRUE(g);
    for (const Case& c : cases) {
      SCOPED_TRACE(c.label);
      Legacy l = write_legacy(dir, c.txt, c.json);
      auto n = g->import_legacy(l.txt, l.json);
      ASSERT_FALSE(n.ok());
      EXPECT_EQ(n.status().code(), c.code) << n.status().to_string();
      EXPECT_NE(n.status().message().find(c.must_mention), std::string::npos) << n.status().message();
      EXPECT_EQ(g->templates()->size(), 2u);
      EXPECT_EQ(g->list_people()->size(), 1u);
    }
    auto missing = g->import_legacy(dir + "/nope.txt", dir + "/label_map.json");
    EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  }
  EXPECT_TRUE(slurp(path) == bytes) << "file modified";
}

}  // namespace
}  // namespace facerec
