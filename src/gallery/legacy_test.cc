// The original design's face_embdding.txt + label_map.json: the real file's
// "<label> v1..vD" layout (issue 12 §3) and fault 18's refusals (issue 11).
// Each refusal names the line (or key) and the reason, and imports nothing.
#include "gallery/legacy.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "test_support.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

constexpr int kDim = 4;
const EmbedderInfo kEmbedder{"test_embedder", std::string(64, '2'), kDim};

void write(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

std::unique_ptr<Gallery> gallery(const std::string& dir, const EmbedderInfo& e = kEmbedder) {
  auto g = Gallery::open(dir + "/g.db", e);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? std::move(g.value()) : nullptr;
}

// The original's own layout, as embedding_feat.py writes it: label first, a trailing space.
const std::string kLabelled = "0 1 2 3 4 \n1 -1 0.5 0.25 2 \n0 3 3 3 1 \n";

TEST(LegacyLayout, LabelledLinesAreNamedByLabel) {
  const std::string dir = testing::temp_dir("legacy_layout");
  write(dir + "/face_embdding.txt", kLabelled);
  write(dir + "/names.json", R"({"0": "Alice", "1": "Bob"})");
  auto g = gallery(dir);
  auto r = g->import_legacy(dir + "/face_embdding.txt", dir + "/names.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->layout, "labelled");
  EXPECT_EQ(r->added, 3);
  auto people = g->list_people();
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].name, "Alice");
  EXPECT_EQ((*people)[0].templates, 2);
  EXPECT_EQ((*people)[1].name, "Bob");
  // The stored vector is the line without its label.
  auto ts = g->templates();
  const double n = std::sqrt(1 + 4 + 9 + 16.0);
  EXPECT_NEAR(ts->at(0).norm, n, 1e-4);
  EXPECT_NEAR(ts->at(0).unit[0], 1 / n, 1e-6);
}

TEST(LegacyLayout, WithoutALabelMapPeopleAreLabelN) {
  const std::string dir = testing::temp_dir("legacy_layout");
  write(dir + "/face_embdding.txt", kLabelled);
  auto g = gallery(dir);
  auto r = g->import_legacy(dir + "/face_embdding.txt", "");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto people = g->list_people();
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].name, "label_0");
  EXPECT_EQ((*people)[1].name, "label_1");
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_NE(r->notes[0].find("label_<n>"), std::string::npos) << r->notes[0];
  // label_map.json beside the file is found and used (and said).
  write(dir + "/label_map.json", R"({"0": "Alice", "1": "Bob"})");
  const std::string dir2 = testing::temp_dir("legacy_layout");
  auto h = gallery(dir2);
  auto r2 = h->import_legacy(dir + "/face_embdding.txt", "");
  ASSERT_TRUE(r2.ok()) << r2.status().to_string();
  EXPECT_EQ(h->list_people()->at(0).name, "Alice");
  ASSERT_FALSE(r2->notes.empty());
  EXPECT_NE(r2->notes[0].find("label_map.json"), std::string::npos);
  // The vectors-only layout has no labels to fall back on.
  write(dir2 + "/v.txt", "1 2 3 4\n");
  auto r3 = h->import_legacy(dir2 + "/v.txt", "");
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r3.status().message().find("give label_map.json"), std::string::npos) << r3.status().message();
}

struct Refusal {
  std::string label, txt, json;
  ErrorCode code;
  std::vector<std::string> must_mention;
};

// Imports the case's files into g: refused, with the case's code and words,
// and saying nothing was imported.
void expect_refused(Gallery& g, const std::string& dir, const Refusal& c) {
  write(dir + "/e.txt", c.txt);
  write(dir + "/m.json", c.json);
  auto r = g.import_legacy(dir + "/e.txt", dir + "/m.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), c.code) << r.status().to_string();
  for (const auto& m : c.must_mention) EXPECT_NE(r.status().message().find(m), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("nothing imported"), std::string::npos) << r.status().message();
}

TEST(LegacyLayout, AmbiguousOrMixedLinesAreRefusedWithTheLine) {
  const std::vector<Refusal> cases = {
      {"mixed layouts", "0 1 2 3 4\n1 2 3 4\n", R"({"0": "A"})", ErrorCode::kDecode, {"line 2", "mixes"}},
      {"D+1 values, first not an integer", "0.5 1 2 3 4\n", R"({"0": "A"})", ErrorCode::kDecode,
       {"line 1", "not a non-negative integer label"}},
      {"negative label", "-1 1 2 3 4\n", R"({"0": "A"})", ErrorCode::kDecode, {"line 1", "integer label"}},
      {"neither count", "1 2 3 4 5 6\n", R"({"0": "A"})", ErrorCode::kMismatch, {"line 1", "6 values", "4", "5"}},
      {"label with no name", "0 1 2 3 4\n7 1 2 3 4\n", R"({"0": "A"})", ErrorCode::kDecode, {"line 2", "label 7"}},
  };
  const std::string dir = testing::temp_dir("legacy_layout");
  auto g = gallery(dir);
  for (const Refusal& c : cases) {
    SCOPED_TRACE(c.label);
    ASSERT_NO_FATAL_FAILURE(expect_refused(*g, dir, c));
    EXPECT_TRUE(g->list_people()->empty());
  }
}

// Fault 18: each bad input is refused with the line and the reason.
TEST(LegacyFaults, BadDataIsRefusedWithTheLineAndTheReason) {
  const std::string l = "1 2 3 4\n";
  const std::vector<Refusal> cases = {
      {"duplicate JSON key", l + l, R"({"0": "A", "0": "B", "1": "C"})", ErrorCode::kDecode, {"key '0' appears twice"}},
      {"norm overflows float32", l + "3e38 3e38 3e38 3e38\n", R"({"0": "A", "1": "B"})", ErrorCode::kDecode,
       {"line 2", "overflows float32"}},
      {"value beyond float32", l + "1 2 4e38 1\n", R"({"0": "A", "1": "B"})", ErrorCode::kDecode,
       {"line 2", "outside the float32 range"}},
      {"right-to-left override", l + l, "{\"0\": \"A\", \"1\": \"Eve\\u202Eevil\"}", ErrorCode::kInvalidArgument,
       {"index 1 (line 2)", "U+202E"}},
      {"zero-width space", l + l, "{\"0\": \"A\", \"1\": \"A\\u200B\"}", ErrorCode::kInvalidArgument,
       {"index 1 (line 2)", "U+200B"}},
      {"index 2^64-1 by name", l + l, R"({"A": [0, 18446744073709551615], "B": [1]})", ErrorCode::kDecode,
       {"index 18446744073709551615"}},
      {"index 2^64-1 as key", l + l, R"({"0": "A", "18446744073709551615": "B"})", ErrorCode::kDecode,
       {"index 18446744073709551615"}},
      {"index beyond 2^64-1", l + l, R"({"0": "A", "18446744073709551616": "B"})", ErrorCode::kDecode,
       {"18446744073709551616", "beyond 2^64-1"}},
      {"negative index", l + l, R"({"A": [0, -1], "B": [1]})", ErrorCode::kDecode, {"index -1", "negative"}},
  };
  const std::string dir = testing::temp_dir("legacy_faults");
  auto g = gallery(dir);
  ASSERT_TRUE(g->enroll("Existing", {NewTemplate{{1, 0, 0, 0}, 1, "x", "x", 0}}).ok());
  for (const Refusal& c : cases) {
    SCOPED_TRACE(c.label);
    ASSERT_NO_FATAL_FAILURE(expect_refused(*g, dir, c));
    EXPECT_EQ(g->list_people()->size(), 1u);
    EXPECT_EQ(g->templates()->size(), 1u);
  }
}

TEST(LegacyFaults, NonRegularAndOversizedFilesAreRefusedBeforeReading) {
  const std::string dir = testing::temp_dir("legacy_faults");
  auto g = gallery(dir);
  write(dir + "/m.json", R"({"0": "A"})");
  auto zero = g->import_legacy("/dev/zero", dir + "/m.json");
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("/dev/zero is a character device, not a regular file"), std::string::npos)
      << zero.status().message();
  auto d = g->import_legacy(dir, dir + "/m.json");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("is a directory"), std::string::npos) << d.status().message();
  // A sparse file one byte over the limit: refused from its size, never read.
  const std::string big = dir + "/big.txt";
  write(big, "");
  ASSERT_EQ(::truncate(big.c_str(), static_cast<off_t>(legacy::kMaxEmbeddingsBytes + 1)), 0);
  auto b = g->import_legacy(big, dir + "/m.json");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), ErrorCode::kTooLarge);
  EXPECT_NE(b.status().message().find("1024 MiB"), std::string::npos) << b.status().message();
  EXPECT_TRUE(g->list_people()->empty());
}

// Fault 18: export then import into the same gallery adds nothing, also for
// templates enrolled from images (whose duplicate key is the image's hash).
TEST(LegacyFaults, ExportThenImportIntoTheSameGalleryAddsNothing) {
  const std::string dir = testing::temp_dir("legacy_faults");
  auto g = gallery(dir);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (int p = 0; p < 3; ++p) {
    std::vector<NewTemplate> ts;
    for (int i = 0; i < 4; ++i) {
      NewTemplate t;
      double s = 0;
      for (int k = 0; k < kDim; ++k) {
        t.unit.push_back(nd(rng));
        s += double(t.unit.back()) * t.unit.back();
      }
      for (float& x : t.unit) x = static_cast<float>(x / std::sqrt(s));
      t.norm = 10.f + 13.37f * static_cast<float>(i);
      t.source = "photo" + std::to_string(p) + std::to_string(i) + ".jpg";
      t.source_sha256 = "image-sha-" + std::to_string(p * 10 + i);
      ts.push_back(t);
    }
    ASSERT_TRUE(g->enroll("Person " + std::to_string(p), ts).ok());
  }
  ASSERT_TRUE(g->export_legacy(dir + "/out.txt", dir + "/out.json").ok());
  auto r = g->import_legacy(dir + "/out.txt", dir + "/out.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->added, 0);
  EXPECT_EQ(r->already_present, 12);
  EXPECT_EQ(g->templates()->size(), 12u);
  // A file that repeats a line adds it once.
  const std::string dir2 = testing::temp_dir("legacy_faults");
  auto h = gallery(dir2);
  write(dir2 + "/e.txt", "1 2 3 4\n1 2 3 4\n2 2 3 4\n");
  write(dir2 + "/m.json", R"({"0": "A", "1": "A", "2": "A"})");
  auto r2 = h->import_legacy(dir2 + "/e.txt", dir2 + "/m.json");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->added, 2);
  EXPECT_EQ(r2->already_present, 1);
}

// Issue 12 §3: the original repository's own file, against a 512-D embedder.
TEST(LegacyRealFile, OriginalFaceEmbddingTxtImportsFourPeopleAnd37Templates) {
  FACEREC_REQUIRE_SHARED();
  const std::string real = testing::shared_dir() + "/data/seed/face_embdding.txt";
  const std::string dir = testing::temp_dir("legacy_real");
  write(dir + "/label_map.json", R"({"0": "Ben Afflek", "1": "Elton John", "2": "Jerry Seinfield", "3": "Madonna"})");
  auto g = gallery(dir, {"fr_feature", std::string(64, '3'), 512});
  auto r = g->import_legacy(real, dir + "/label_map.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->layout, "labelled");
  EXPECT_EQ(r->added, 37);
  auto people = g->list_people();
  ASSERT_EQ(people->size(), 4u);
  const std::pair<std::string, int> want[] = {{"Ben Afflek", 10}, {"Elton John", 12}, {"Jerry Seinfield", 7}, {"Madonna", 8}};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*people)[i].name, want[i].first);
    EXPECT_EQ((*people)[i].templates, want[i].second);
  }
  // Against the wrong dimension, the refusal says what a line must hold.
  const std::string dir2 = testing::temp_dir("legacy_real");
  auto h = gallery(dir2, {"other", std::string(64, '4'), 128});
  auto bad = h->import_legacy(real, dir + "/label_map.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(bad.status().message().find("line 1 has 513 values"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("128 (the vector) or 129"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace facerec

namespace facerec {
namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FACEREC_LEGACY_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FACEREC_LEGACY_TEST_ASAN 1
#endif

long vm_size_kib() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmSize:", 0) == 0) return std::stol(line.substr(7));
  return -1;
}

// A 20 MB label map parsed in a process with 48 MiB of address space to
// spare: a Status (kTooLarge, "out of memory"), never std::terminate from a
// bad_alloc inside nlohmann::json's parse and unwind (json_headroom.h).
TEST(LegacyLayout, AHugeLabelMapUnderAMemoryLimitIsAnErrorNotAnAbort) {
#ifdef FACEREC_LEGACY_TEST_ASAN
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply";
#else
  std::string map = "{";
  for (int i = 0; i < 700000; ++i) map += (i ? ",\"" : "\"") + std::to_string(i) + "\": \"Person " + std::to_string(i) + "\"";
  map += "}";
  ASSERT_GT(map.size(), 15u << 20);
  const std::string txt = "0 1 2 3 4\n";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const long kib = vm_size_kib();
    if (kib <= 0) _exit(3);
    rlimit lim{};
    lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(kib + 48 * 1024) * 1024;
    if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(4);
    auto r = legacy::parse(txt, map, kDim, "e.txt", "label_map.json");
    if (r.ok()) _exit(5);
    if (r.status().code() != ErrorCode::kTooLarge || r.status().message().find("out of memory") == std::string::npos) _exit(6);
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << "the child died of signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0)
                             << " (std::terminate: SIGABRT = 6)";
  EXPECT_EQ(WEXITSTATUS(st), 0) << "3/4: no limit set; 5: parsed; 6: another error";
#endif
}

// A refused label map quotes its bad key or name escaped and clipped: a 1 MB
// name with a bidi override makes a short, inert message.
TEST(LegacyLayout, ARefusalQuotesAHugeOrControlNameShortAndEscaped) {
  const std::string name = "\xE2\x80\xAE" + std::string(1 << 20, 'x');
  const std::string map = "{\"0\": \"" + name + "\"}";
  auto r = legacy::parse("0 1 2 3 4\n", map, kDim, "e.txt", "label_map.json");
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 400u) << r.status().message().size();
  EXPECT_EQ(r.status().message().find("\xE2\x80\xAE"), std::string::npos);
}

}  // namespace
}  // namespace facerec
