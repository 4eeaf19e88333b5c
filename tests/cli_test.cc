// The CLI end to end on real photos: enrol, identify, verify, align, gallery
// edits, and every bad-input case the tool promises to handle.
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sqlite3.h>

#include "facerec/gallery.h"
#include "facerec/models.h"
#include "test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace facerec {
namespace {

using testing::run_cli;
using testing::celeb;
using testing::photos;
using testing::json_lines;

// A people tree under a temp dir: identity name -> photos copied from celeb5/train.
fs::path make_tree(const std::map<std::string, std::string>& name_to_train, size_t per_person) {
  fs::path root = testing::temp_dir("tree");
  for (const auto& [name, train] : name_to_train) {
    fs::create_directories(root / name);
    for (const auto& p : photos(celeb("train", train), per_person)) fs::copy_file(p, root / name / p.filename());
  }
  return root;
}

TEST(Cli, ModelsListShowsTheDefaultsReady) {
  auto r = run_cli({"models", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int ready_defaults = 0;
  for (const auto& j : json_lines(r.out))
    if (j["default"].get<bool>() && j["state"] == "ready") ++ready_defaults;
  EXPECT_EQ(ready_defaults, 2) << r.out;  // fr_detect and mobilefacenet_192
}

TEST(Cli, EnrollIdentifyWithOddNamesAndNoDuplicates) {
  FACEREC_REQUIRE_SHARED();
  // Spaces, unicode and shell/path characters in identity names.
  const std::map<std::string, std::string> people = {
      {"Ben Afflek", "Ben Afflek"}, {"Zoë 李 Saldaña", "Elton John"}, {"o'brien; rm -rf ..", "Madonna"}};
  fs::path tree = make_tree(people, 4);
  std::string db = testing::temp_dir("db") + "/g.db";
  auto r = run_cli({"enroll", tree.string(), "--db", db});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("enrolled 12 templates for 3 people"), std::string::npos) << r.out << r.err;

  auto again = run_cli({"enroll", tree.string(), "--db", db});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("enrolled 0 templates"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("12 already enrolled"), std::string::npos) << again.out;

  auto list = run_cli({"gallery", "list", "--db", db, "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::map<std::string, int> listed;
  for (const auto& j : json_lines(list.out)) listed[j["identity"]] = j["templates"];
  ASSERT_EQ(listed.size(), 3u);
  for (const auto& [name, train] : people) EXPECT_EQ(listed[name], 4) << name;

  // Identify a val photo of Elton John: named by his odd enrolled name.
  std::string annotate = testing::temp_dir("ann");
  fs::path probe = photos(celeb("val", "elton_john"), 1)[0];
  auto id = run_cli({"identify", probe.string(), "--db", db, "--json", "--top-k", "5", "--annotate", annotate});
  ASSERT_EQ(id.exit_code, 0) << id.err;
  auto lines = json_lines(id.out);
  ASSERT_EQ(lines.size(), 1u);
  const json& j = lines[0];
  EXPECT_EQ(j["image"], probe.string());
  EXPECT_GT(j["width"].get<int>(), 0);
  ASSERT_GE(j["faces"].size(), 1u);
  const json& f = j["faces"][0];
  for (const char* key : {"box", "score", "landmarks", "identity", "similarity", "quality", "candidates"})
    EXPECT_TRUE(f.contains(key)) << key;
  EXPECT_EQ(f["box"].size(), 4u);
  EXPECT_EQ(f["landmarks"].size(), 5u);
  EXPECT_EQ(f["identity"], "Zoë 李 Saldaña");
  EXPECT_EQ(f["candidates"].size(), 3u);  // top-5 capped at the 3 enrolled people
  // The annotated copy is in the annotate folder, and nothing else was written.
  std::vector<fs::path> written;
  for (const auto& e : fs::recursive_directory_iterator(annotate)) written.push_back(e.path());
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].filename(), probe.filename());
  EXPECT_FALSE(cv::imread(written[0].string()).empty());
}

TEST(Cli, StrangerIsUnknownButCandidatesAreFilled) {
  FACEREC_REQUIRE_SHARED();
  fs::path tree = make_tree({{"Ben Afflek", "Ben Afflek"}, {"Madonna", "Madonna"}}, 5);
  std::string db = testing::temp_dir("db") + "/g.db";
  ASSERT_EQ(run_cli({"enroll", tree.string(), "--db", db}).exit_code, 0);
  int unknown = 0, total = 0;
  auto r = run_cli({"identify", celeb("val", "mindy_kaling").string(), "--db", db, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& j : json_lines(r.out)) {
    if (!j.contains("faces") || j["faces"].empty()) continue;
    const json& f = j["faces"][0];
    ++total;
    if (f["identity"].is_null()) ++unknown;
    EXPECT_EQ(f["candidates"].size(), 2u);
  }
  ASSERT_GE(total, 4);
  EXPECT_GE(unknown, total - 1) << "strangers should come back unknown";
}

TEST(Cli, VerifySameAndDifferentPeople) {
  FACEREC_REQUIRE_SHARED();
  auto ben = photos(celeb("train", "Ben Afflek"), 2);
  auto mad = photos(celeb("train", "Madonna"), 1);
  auto same = run_cli({"verify", ben[0].string(), ben[1].string(), "--json"});
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_TRUE(json::parse(same.out)["same"].get<bool>()) << same.out;
  auto diff = run_cli({"verify", ben[0].string(), mad[0].string(), "--json"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  json d = json::parse(diff.out);
  EXPECT_FALSE(d["same"].get<bool>()) << diff.out;
  EXPECT_LT(d["similarity"].get<float>(), json::parse(same.out)["similarity"].get<float>());
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = testing::temp_dir("bad");
    fs::path face = photos(celeb("train", "Madonna"), 1)[0];
    cv::Mat img = cv::imread(face.string());
    fs::copy_file(face, dir / "good.jpg");
    std::ofstream(dir / "empty.jpg").close();
    std::ofstream(dir / "text.jpg") << "not an image at all";
    std::ifstream in(face, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir / "truncated.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    cv::imwrite((dir / "blank.png").string(), cv::Mat(300, 300, CV_8UC3, cv::Scalar(90, 120, 150)));
    cv::Mat grey;
    cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY);
    cv::imwrite((dir / "grey.png").string(), grey);
    cv::Mat rgba;
    cv::cvtColor(img, rgba, cv::COLOR_BGR2BGRA);
    cv::imwrite((dir / "alpha.png").string(), rgba);
    cv::Mat deep;
    img.convertTo(deep, CV_16UC3, 257.0);
    cv::imwrite((dir / "deep16.png").string(), deep);
    std::string tree = make_tree({{"Madonna", "Madonna"}}, 3).string();
    db = testing::temp_dir("db") + "/g.db";
    ASSERT_EQ(run_cli({"enroll", tree, "--db", db}).exit_code, 0);
  }
  fs::path dir;
  std::string db;
};

TEST_F(BadInput, BatchSkipsEachBadFileWithItsReasonAndGoesOn) {
  FACEREC_REQUIRE_SHARED();
  auto r = run_cli({"identify", dir.string(), "--db", db, "--json", "--max-pixels", "20000000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, json> by_name;
  for (const auto& j : json_lines(r.out)) by_name[fs::path(j["image"].get<std::string>()).filename()] = j;
  ASSERT_EQ(by_name.size(), 8u) << r.out;
  EXPECT_NE(by_name["empty.jpg"]["error"].get<std::string>().find("0 bytes"), std::string::npos);
  EXPECT_NE(by_name["text.jpg"]["error"].get<std::string>().find("decode"), std::string::npos);
  EXPECT_NE(by_name["truncated.jpg"]["error"].get<std::string>().find("truncated"), std::string::npos);
  EXPECT_TRUE(by_name["blank.png"]["faces"].empty());  // no face: reported as zero faces
  // Greyscale, alpha and 16-bit copies are converted, found and named.
  for (const char* n : {"good.jpg", "grey.png", "alpha.png", "deep16.png"}) {
    ASSERT_EQ(by_name[n]["faces"].size(), 1u) << n;
    EXPECT_EQ(by_name[n]["faces"][0]["identity"], "Madonna") << n;
  }
  EXPECT_NE(r.err.find("truncated.jpg"), std::string::npos);
}

TEST_F(BadInput, SingleFileErrorsExitNonZeroWithAClearMessage) {
  FACEREC_REQUIRE_SHARED();
  auto missing = run_cli({"identify", (dir / "nope.jpg").string(), "--db", db});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("No such file"), std::string::npos) << missing.err;
  auto huge = run_cli({"identify", (dir / "good.jpg").string(), "--db", db, "--max-pixels", "1000"});
  EXPECT_EQ(huge.exit_code, 1);
  EXPECT_NE(huge.err.find("exceeds the limit"), std::string::npos) << huge.err;
  auto noface = run_cli({"verify", (dir / "blank.png").string(), (dir / "good.jpg").string()});
  EXPECT_EQ(noface.exit_code, 1);
  EXPECT_NE(noface.err.find("no face"), std::string::npos) << noface.err;
  auto notimg = run_cli({"verify", (dir / "text.jpg").string(), (dir / "good.jpg").string()});
  EXPECT_EQ(notimg.exit_code, 1);
  EXPECT_NE(notimg.err.find("decode"), std::string::npos) << notimg.err;
}

TEST_F(BadInput, CorruptOrMismatchedModelsAreRefused) {
  FACEREC_REQUIRE_SHARED();
  std::string garbage = (dir / "garbage.onnx").string();
  std::ofstream(garbage) << "definitely not a protobuf";
  auto corrupt = run_cli({"verify", (dir / "good.jpg").string(), (dir / "good.jpg").string(), "--embedder",
                          "arcface:" + garbage});
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_NE(corrupt.err.find("model error"), std::string::npos) << corrupt.err;

  // A detector given as the embedder: its hash is known, but not as an embedder.
  auto wrong_task = run_cli({"verify", (dir / "good.jpg").string(), (dir / "good.jpg").string(), "--embedder",
                             "arcface:" + testing::shared_dir() + "/models/scrfd_500m_kps.onnx"});
  EXPECT_EQ(wrong_task.exit_code, 1);
  EXPECT_NE(wrong_task.err.find("embedder"), std::string::npos) << wrong_task.err;

  // A manifest whose hash does not match the file: refused before loading.
  std::ifstream in(std::string(FACEREC_SOURCE_DIR) + "/models/manifest.json");
  json man = json::parse(in);
  for (auto& m : man["models"])
    if (m["id"] == "mobilefacenet_128") m["sha256"] = std::string(64, '0');
  std::string man_path = (dir / "manifest.json").string();
  std::ofstream(man_path) << man.dump();
  auto bad_hash = run_cli({"verify", (dir / "good.jpg").string(), (dir / "good.jpg").string(), "--manifest", man_path,
                           "--embedder", "mobilefacenet_128", "--threshold", "0.3"});
  EXPECT_EQ(bad_hash.exit_code, 1);
  EXPECT_NE(bad_hash.err.find("hash mismatch"), std::string::npos) << bad_hash.err;
}

TEST_F(BadInput, GalleryFromAnotherEmbedderIsRefusedAndUnchanged) {
  FACEREC_REQUIRE_SHARED();
  auto before = testing::run_cli({"gallery", "list", "--db", db, "--json"});
  auto r = run_cli({"identify", (dir / "good.jpg").string(), "--db", db, "--embedder", "mobilefacenet_128",
                    "--threshold", "0.3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("mismatch"), std::string::npos) << r.err;
  fs::path tree = make_tree({{"Ben Afflek", "Ben Afflek"}}, 2);
  auto e = run_cli({"enroll", tree.string(), "--db", db, "--embedder", "mobilefacenet_128"});
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_EQ(testing::run_cli({"gallery", "list", "--db", db, "--json"}).out, before.out);
}

// A gallery enrolled with an earlier file of the default embedder (the
// manifest's equivalent_sha256: mobilefacenet_192 before its PReLU split)
// still serves identify, enroll and import through the CLI; an unlisted file
// is refused.
TEST_F(BadInput, GalleryOfAnEquivalentEarlierModelFileStillWorks) {
  FACEREC_REQUIRE_SHARED();
  auto man = Manifest::load_default();
  ASSERT_TRUE(man.ok()) << man.status().to_string();
  const ModelSpec* emb = man->find(man->default_embedder());
  ASSERT_NE(emb, nullptr);
  if (emb->equivalent_sha256.empty()) GTEST_SKIP() << "the default embedder lists no equivalent earlier file";
  const std::string db2 = testing::temp_dir("equiv") + "/g.db";
  fs::copy_file(db, db2);
  auto set_sha = [&](const std::string& sha) {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db2.c_str(), &h), SQLITE_OK);
    const std::string sql = "UPDATE meta SET value = '" + sha + "' WHERE key = 'embedder_sha256'";
    EXPECT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_changes(h), 1);
    sqlite3_close(h);
  };
  set_sha(emb->equivalent_sha256.front());
  auto r = run_cli({"identify", (dir / "good.jpg").string(), "--db", db2, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_lines(r.out)[0]["faces"][0]["identity"], "Madonna");
  fs::path tree = make_tree({{"Ben Afflek", "Ben Afflek"}}, 2);
  auto e = run_cli({"enroll", tree.string(), "--db", db2});
  EXPECT_EQ(e.exit_code, 0) << e.err;
  set_sha(std::string(64, '0'));
  auto refused = run_cli({"identify", (dir / "good.jpg").string(), "--db", db2});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("mismatch"), std::string::npos) << refused.err;
}

// A refused legacy import into a new gallery path leaves no file there (an
// empty gallery would tie the path to the embedder and say nothing).
TEST_F(BadInput, ARefusedImportLeavesNoNewGallery) {
  const fs::path d = testing::temp_dir("import_refused");
  std::ofstream(d / "e.txt") << "0 1 2 3\n";
  std::ofstream(d / "map.json") << "not json";
  const std::string fresh = (d / "new.db").string();
  auto r = run_cli({"gallery", "import", (d / "e.txt").string(), (d / "map.json").string(), "--embedder",
                    "mobilefacenet_192", "--db", fresh});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nothing imported"), std::string::npos) << r.err;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) EXPECT_FALSE(fs::exists(fresh + suffix)) << fresh + suffix;
  // Into an existing gallery, the refusal changes nothing and the file stays.
  auto before = testing::run_cli({"gallery", "list", "--db", db, "--json"});
  auto r2 = run_cli({"gallery", "import", (d / "e.txt").string(), (d / "map.json").string(), "--embedder",
                     "mobilefacenet_192", "--db", db});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_TRUE(fs::exists(db));
  EXPECT_EQ(testing::run_cli({"gallery", "list", "--db", db, "--json"}).out, before.out);
}

TEST_F(BadInput, RenameToPathLikeNamesIsStoredSafely) {
  FACEREC_REQUIRE_SHARED();
  ASSERT_EQ(run_cli({"gallery", "rename", "Madonna", "../../etc/passwd", "--db", db}).exit_code, 0);
  std::string ann = testing::temp_dir("ann2") + "/out";
  auto r = run_cli({"identify", (dir / "good.jpg").string(), "--db", db, "--json", "--annotate", ann});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_lines(r.out)[0]["faces"][0]["identity"], "../../etc/passwd");
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(ann).parent_path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);  // only out/good.jpg
  EXPECT_EQ(run_cli({"gallery", "rename", "nobody", "x", "--db", db}).exit_code, 1);
  auto bad = run_cli({"gallery", "rename", "../../etc/passwd", "bad\nname", "--db", db});
  EXPECT_EQ(bad.exit_code, 1);
  ASSERT_EQ(run_cli({"gallery", "remove", "../../etc/passwd", "--db", db}).exit_code, 0);
  EXPECT_EQ(run_cli({"gallery", "list", "--db", db, "--json"}).out, "");
}

TEST(Cli, AlignWritesOneCropPerImageAndReportsProblems) {
  FACEREC_REQUIRE_SHARED();
  fs::path raw = testing::temp_dir("raw");
  fs::create_directories(raw / "Two People");
  fs::create_directories(raw / "Nobody");
  fs::copy_file(fs::path(testing::shared_dir()) / "data/crowd/two_people.jpg", raw / "Two People" / "a.jpg");
  cv::imwrite((raw / "Nobody" / "blank.png").string(), cv::Mat(200, 200, CV_8UC3, cv::Scalar(50, 50, 50)));
  std::ofstream(raw / "Nobody" / "broken.jpg") << "xx";
  fs::path out = testing::temp_dir("aligned");
  auto r = run_cli({"align", raw.string(), out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  cv::Mat crop = cv::imread((out / "Two People" / "a.jpg").string());
  ASSERT_FALSE(crop.empty());
  EXPECT_EQ(crop.size(), cv::Size(112, 112));
  EXPECT_FALSE(fs::exists(out / "Nobody" / "blank.png"));
  EXPECT_NE(r.err.find("blank.png: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no face"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("broken.jpg"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("faces, aligned the largest"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("aligned 1 images"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped 2"), std::string::npos) << r.out;

  // The aligned crops enrol with --aligned.
  std::string db = testing::temp_dir("db") + "/g.db";
  auto e = run_cli({"enroll", out.string(), "--aligned", "--db", db});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.out.find("enrolled 1 templates for 1 people"), std::string::npos) << e.out;
}

TEST(Cli, LegacyExportImportRoundTrip) {
  FACEREC_REQUIRE_SHARED();
  fs::path tree = make_tree({{"Ben Afflek", "Ben Afflek"}, {"Mindy Kaling", "Mindy Kaling"}}, 2);
  std::string d = testing::temp_dir("legacy");
  // The legacy files are the original design's, whose embedder is fr_feature
  // (no longer the default).
  ASSERT_EQ(run_cli({"enroll", tree.string(), "--db", d + "/a.db", "--embedder", "fr_feature"}).exit_code, 0);
  ASSERT_EQ(run_cli({"gallery", "export", d + "/face_embdding.txt", d + "/label_map.json", "--db", d + "/a.db"}).exit_code, 0);
  auto imp = run_cli({"gallery", "import", d + "/face_embdding.txt", d + "/label_map.json", "--db", d + "/b.db",
                      "--embedder", "fr_feature"});
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_EQ(run_cli({"gallery", "list", "--db", d + "/a.db", "--json"}).out,
            run_cli({"gallery", "list", "--db", d + "/b.db", "--json"}).out);
  // The imported gallery identifies like the original.
  fs::path probe = photos(celeb("val", "mindy_kaling"), 1)[0];
  const auto la = json_lines(run_cli({"identify", probe.string(), "--db", d + "/a.db", "--embedder", "fr_feature", "--json"}).out);
  const auto lb = json_lines(run_cli({"identify", probe.string(), "--db", d + "/b.db", "--embedder", "fr_feature", "--json"}).out);
  ASSERT_EQ(la.size(), 1u);
  ASSERT_EQ(lb.size(), 1u);
  const json& a = la[0];
  const json& b = lb[0];
  EXPECT_EQ(a["faces"][0]["identity"], b["faces"][0]["identity"]);
  EXPECT_NEAR(a["faces"][0]["similarity"].get<float>(), b["faces"][0]["similarity"].get<float>(), 1e-4);
}

// Kills `facerec enroll` at several moments; after each kill the gallery opens
// cleanly, passes SQLite's integrity check, and every person in it has all of
// their templates or is absent.
TEST(Cli, KilledEnrolmentLeavesNoPartialPerson) {
  FACEREC_REQUIRE_SHARED();
  const std::map<std::string, std::string> people = {
      {"Ben Afflek", "Ben Afflek"}, {"Elton John", "Elton John"}, {"Jerry Seinfield", "Jerry Seinfield"},
      {"Madonna", "Madonna"}, {"Mindy Kaling", "Mindy Kaling"}};
  fs::path tree = make_tree(people, 8);
  // The complete counts, from an uninterrupted run.
  std::string full_db = testing::temp_dir("full") + "/g.db";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_cli({"enroll", tree.string(), "--db", full_db}).exit_code, 0);
  const auto full_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  std::map<std::string, int> complete;
  for (const auto& j : json_lines(run_cli({"gallery", "list", "--db", full_db, "--json"}).out))
    complete[j["identity"]] = j["templates"];
  ASSERT_EQ(complete.size(), 5u);

  int partial_runs = 0;
  // Kill at fractions of an uninterrupted run's duration, so that the kills
  // land during model loading, between people, and inside enrolments.
  for (double fraction : {0.15, 0.3, 0.45, 0.6, 0.75, 0.9}) {
    const auto delay_ms = static_cast<int64_t>(fraction * full_ms);
    std::string db = testing::temp_dir("kill") + "/g.db";
    pid_t pid = fork();
    if (pid == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      std::string bin = testing::facerec_bin();
      execl(bin.c_str(), bin.c_str(), "enroll", tree.c_str(), "--db", db.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!fs::exists(db)) continue;  // killed before the gallery was created
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
    sqlite3_finalize(st);
    sqlite3_close(h);
    auto list = run_cli({"gallery", "list", "--db", db, "--json"});
    if (list.exit_code == 1 && list.err.find("an empty SQLite database") != std::string::npos) {
      // Killed while creating the gallery: no table yet. Enrolling again creates it.
      ASSERT_EQ(run_cli({"enroll", tree.string(), "--db", db}).exit_code, 0);
      continue;
    }
    ASSERT_EQ(list.exit_code, 0) << list.err;
    auto lines = json_lines(list.out);
    if (!lines.empty() && lines.size() < complete.size()) ++partial_runs;
    for (const auto& j : lines) EXPECT_EQ(j["templates"].get<int>(), complete[j["identity"]]) << j.dump();
  }
  std::printf("full enrolment %lld ms; killed runs that had written some but not all people: %d of 6\n",
              static_cast<long long>(full_ms), partial_runs);
}

}  // namespace
}  // namespace facerec

namespace facerec {
namespace {

TEST(Cli, ModelsFetchRefusesAHashMismatchAndLeavesNothing) {
  // The npm tarball is already cached by setup, so this needs no network: the
  // tarball hash matches, the extracted file's does not.
  std::ifstream in(std::string(FACEREC_SOURCE_DIR) + "/models/manifest.json");
  json man = json::parse(in);
  json bad;
  for (auto& m : man["models"])
    if (m["id"] == "fr_feature") bad = m;
  ASSERT_FALSE(bad.is_null());
  bad["id"] = "fr_feature_tampered_test";
  bad["sha256"] = std::string(63, 'a') + "b";
  man["models"].push_back(bad);
  std::string dir = testing::temp_dir("fetch");
  std::ofstream(dir + "/manifest.json") << man.dump();
  auto r = testing::run_cli({"models", "fetch", "fr_feature_tampered_test", "--manifest", dir + "/manifest.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("hash mismatch"), std::string::npos) << r.err;
  auto list = testing::run_cli({"models", "list", "--json", "--manifest", dir + "/manifest.json"});
  for (const auto& line : json_lines(list.out)) {
    if (line["id"] != "fr_feature_tampered_test") continue;
    EXPECT_EQ(line["state"], "missing");
    EXPECT_FALSE(fs::exists(line["path"].get<std::string>()));
  }
}

TEST(Cli, ConfigFileChoosesModelsAndFlagsWin) {
  FACEREC_REQUIRE_SHARED();
  std::string dir = testing::temp_dir("cfg");
  std::ofstream(dir + "/c.json") << R"({"detector": "scrfd_500m", "embedder": "mobilefacenet_128", "threshold": 0.99})";
  auto ben = photos(celeb("train", "Ben Afflek"), 2);
  auto r = testing::run_cli({"verify", ben[0].string(), ben[1].string(), "--json", "--config", dir + "/c.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_FLOAT_EQ(j["threshold"].get<float>(), 0.99f);
  EXPECT_EQ(j["detector"], "scrfd_500m");
  EXPECT_EQ(j["embedder"], "mobilefacenet_128");
  EXPECT_FALSE(j["same"].get<bool>());  // nothing real reaches 0.99
  auto r2 = testing::run_cli({"verify", ben[0].string(), ben[1].string(), "--json", "--config", dir + "/c.json",
                              "--threshold", "0.1"});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_FLOAT_EQ(json::parse(r2.out)["threshold"].get<float>(), 0.1f);
  std::ofstream(dir + "/broken.json") << "{not json";
  auto r3 = testing::run_cli({"verify", ben[0].string(), ben[1].string(), "--config", dir + "/broken.json"});
  EXPECT_EQ(r3.exit_code, 1);
  EXPECT_NE(r3.err.find("malformed config"), std::string::npos) << r3.err;
}

}  // namespace
}  // namespace facerec

namespace facerec {
namespace {

TEST(Cli, AnnotateMirrorsFoldersInsideTheOutputFolder) {
  FACEREC_REQUIRE_SHARED();
  fs::path tree = make_tree({{"A", "Madonna"}, {"B", "Ben Afflek"}}, 1);
  // Same file name in both folders: the copies must not overwrite each other.
  fs::rename(photos(tree / "A", 1)[0], tree / "A" / "same.jpg");
  fs::rename(photos(tree / "B", 1)[0], tree / "B" / "same.jpg");
  std::string db = testing::temp_dir("db") + "/g.db";
  ASSERT_EQ(testing::run_cli({"enroll", tree.string(), "--db", db}).exit_code, 0);
  fs::path root = testing::temp_dir("annroot");
  fs::path ann = root / "out";
  auto r = testing::run_cli({"identify", tree.string(), "--db", db, "--annotate", ann.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(ann / "A" / "same.jpg"));
  EXPECT_TRUE(fs::exists(ann / "B" / "same.jpg"));
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) files += e.is_regular_file();
  EXPECT_EQ(files, 2u);  // nothing written beside or above the output folder
}

}  // namespace
}  // namespace facerec
