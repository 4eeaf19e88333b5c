// Issue 11 faults 8, 10, 11, 18 and 19, and issue 12 §3, through the CLI:
// each input is built here (from ../shared photos where a face is needed),
// and each test asserts the person named, the file reported, the message and
// the exit code.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

using testing::celeb;
using testing::photos;
using testing::run_cli;

void write(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// Copies the first n training photos of a celeb5 person into dir.
void copy_photos(const std::string& person, const fs::path& dir, size_t n, size_t skip = 0) {
  fs::create_directories(dir);
  auto ps = photos(celeb("train", person), n + skip);
  for (size_t i = skip; i < ps.size(); ++i) fs::copy_file(ps[i], dir / ps[i].filename());
}

// ---- Fault 8: Unicode normalisation, and names that differ only by case ----------------
TEST(FaultsInput, NfcAndNfdFoldersAreOnePersonAndRemoveTakesEitherForm) {
  FACEREC_REQUIRE_SHARED();
  const fs::path root = testing::temp_dir("nfc");
  const std::string nfc = "Jos\xC3\xA9", nfd = "Jose\xCC\x81";
  copy_photos("Madonna", root / "people" / nfc, 1);
  copy_photos("Madonna", root / "people" / nfd, 1, 1);
  copy_photos("Elton John", root / "people" / "elton", 1);
  copy_photos("Elton John", root / "people" / "Elton", 1, 1);
  const std::string db = (root / "g.db").string();
  auto r = run_cli({"enroll", (root / "people").string(), "--db", db});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "differ only by case")) << r.err;
  auto list = run_cli({"gallery", "list", "--db", db, "--json"});
  ASSERT_EQ(list.exit_code, 0);
  auto people = testing::json_lines(list.out);
  ASSERT_EQ(people.size(), 3u) << list.out;  // Elton, José, elton (byte order)
  EXPECT_EQ(people[1]["identity"], nfc);
  EXPECT_EQ(people[1]["templates"], 2);
  auto rm = run_cli({"gallery", "remove", nfd, "--db", db});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  list = run_cli({"gallery", "list", "--db", db, "--json"});
  EXPECT_EQ(testing::json_lines(list.out).size(), 2u) << list.out;
  EXPECT_FALSE(has(list.out, nfc));
}

// ---- Fault 10: things that are not faces, enrolled with --aligned ------------------------
TEST(FaultsInput, AlignedEnrolmentRefusesBlanksNoiseAndWrongSizes) {
  FACEREC_REQUIRE_SHARED();
  const fs::path root = testing::temp_dir("aligned");
  // A real aligned crop, made by facerec align from a training photo.
  copy_photos("Madonna", root / "raw" / "Madonna", 1);
  auto al = run_cli({"align", (root / "raw").string(), (root / "crops").string()});
  ASSERT_EQ(al.exit_code, 0) << al.err;
  const fs::path person = root / "crops" / "Madonna";
  cv::imwrite((person / "grey.png").string(), cv::Mat(112, 112, CV_8UC3, cv::Scalar(128, 128, 128)));
  cv::imwrite((person / "black.png").string(), cv::Mat(112, 112, CV_8UC3, cv::Scalar(0, 0, 0)));
  cv::Mat noise(112, 112, CV_8UC3);
  cv::randu(noise, 0, 255);
  cv::imwrite((person / "noise.png").string(), noise);
  cv::Mat photo = cv::imread(photos(celeb("train", "Madonna"), 1)[0].string());
  cv::resize(photo, photo, {250, 250});
  cv::imwrite((person / "photo250.jpg").string(), photo);
  const std::string db = (root / "g.db").string();
  auto r = run_cli({"enroll", "--aligned", (root / "crops").string(), "--db", db});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "enrolled 1 templates for 1 people")) << r.out;
  for (const char* blank : {"grey.png", "black.png", "noise.png"}) {
    EXPECT_TRUE(has(r.err, std::string("Madonna/") + blank)) << r.err;
  }
  EXPECT_TRUE(has(r.err, "no face in this aligned crop")) << r.err;
  EXPECT_TRUE(has(r.err, "photo250.jpg: is 250x250; --aligned expects 112x112")) << r.err;
  EXPECT_TRUE(has(r.out, "4 skipped")) << r.out;
}

// ---- Fault 11: silent walks ----------------------------------------------------------------
TEST(FaultsInput, EnrolSummaryListsEverythingIgnoredAndALinkedFolderOnce) {
  FACEREC_REQUIRE_SHARED();
  const fs::path root = testing::temp_dir("walk");
  const fs::path people = root / "people";
  copy_photos("Madonna", people / "Madonna", 1);
  fs::create_directories(people / "Nobody");                   // empty person folder
  write(people / "loose.jpg", "not in a person folder");       // a file loose in the root
  fs::create_symlink(root / "gone", people / "Broken");        // broken symlink
  fs::create_directory_symlink(people / "Madonna", people / "Madonna again");  // the same folder twice
  fs::create_directory_symlink(root / "elsewhere", people / "Madonna" / "linked");  // a link to a folder inside one
  fs::create_directories(root / "elsewhere");
  const std::string db = (root / "g.db").string();
  auto r = run_cli({"enroll", people.string(), "--db", db});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "enrolled 1 templates for 1 people")) << r.out;
  EXPECT_TRUE(has(r.out, "4 ignored")) << r.out;
  EXPECT_TRUE(has(r.out, "ignored Nobody: empty person folder")) << r.out;
  EXPECT_TRUE(has(r.out, "ignored loose.jpg: a file outside any person folder")) << r.out;
  EXPECT_TRUE(has(r.out, "ignored Broken: broken symlink")) << r.out;
  EXPECT_TRUE(has(r.out, "ignored Madonna again: a symlink to 'Madonna', enrolled once")) << r.out;
  EXPECT_TRUE(has(r.err, "Madonna/linked: a directory (links to folders are not followed)")) << r.err;
  EXPECT_TRUE(has(r.out, "1 skipped")) << r.out;
  auto list = run_cli({"gallery", "list", "--db", db, "--json"});
  EXPECT_EQ(testing::json_lines(list.out).size(), 1u) << list.out;
}

// ---- Fault 18 + issue 12 §3: the original's face_embdding.txt through the CLI -----------
TEST(FaultsInput, GalleryImportReadsTheOriginalFileAndRefusesDuplicateKeys) {
  FACEREC_REQUIRE_SHARED();
  const std::string real = testing::shared_dir() + "/data/seed/face_embdding.txt";
  const fs::path root = testing::temp_dir("import");
  write(root / "label_map.json", R"({"0": "Ben Afflek", "1": "Elton John", "2": "Jerry Seinfield", "3": "Madonna"})");
  const std::string db = (root / "g.db").string();
  auto r = run_cli({"gallery", "import", real, (root / "label_map.json").string(), "--embedder", "fr_feature", "--db", db});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "imported 37 templates")) << r.out;
  auto list = run_cli({"gallery", "list", "--db", db});
  EXPECT_TRUE(has(list.out, "4 people")) << list.out;
  EXPECT_TRUE(has(list.out, "Elton John  (12 templates)")) << list.out;
  // Again: nothing added.
  r = run_cli({"gallery", "import", real, (root / "label_map.json").string(), "--embedder", "fr_feature", "--db", db});
  EXPECT_TRUE(has(r.out, "imported 0 templates")) << r.out;
  EXPECT_TRUE(has(r.out, "37 already present")) << r.out;
  // No label map: label_<n>, and said.
  fs::copy_file(real, root / "face_embdding.txt");
  const std::string db2 = (root / "g2.db").string();
  r = run_cli({"gallery", "import", (root / "face_embdding.txt").string(), "--embedder", "fr_feature", "--db", db2});
  // label_map.json beside it is used...
  EXPECT_TRUE(has(r.err, "names from")) << r.err;
  fs::remove(root / "label_map.json");
  const std::string db3 = (root / "g3.db").string();
  r = run_cli({"gallery", "import", (root / "face_embdding.txt").string(), "--embedder", "fr_feature", "--db", db3});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "label_<n>")) << r.err;
  list = run_cli({"gallery", "list", "--db", db3});
  EXPECT_TRUE(has(list.out, "label_3  (8 templates)")) << list.out;
  // A duplicated key: refused, exit 1, nothing written.
  write(root / "dup.json", R"({"0": "Ben Afflek", "0": "Madonna", "1": "A", "2": "B", "3": "C"})");
  const std::string db4 = (root / "g4.db").string();
  r = run_cli({"gallery", "import", real, (root / "dup.json").string(), "--embedder", "fr_feature", "--db", db4});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "key '0' appears twice")) << r.err;
}

// ---- Fault 19: messages a user can act on ------------------------------------------------
TEST(FaultsInput, ConfigSchemaRefusesWrongTypesRangesAndUnknownKeys) {
  const fs::path root = testing::temp_dir("config");
  const std::string probe = (root / "p.jpg").string();
  cv::imwrite(probe, cv::Mat(64, 64, CV_8UC3, cv::Scalar(1, 2, 3)));
  const std::pair<std::string, std::string> cases[] = {
      {R"({"threshold": true})", "\"threshold\" is the match threshold, a cosine similarity: a number in [-1, 1], not a boolean (true)"},
      {R"({"threads": -1})", "\"threads\" is the inference threads (0: one per core): it must be in [0, 1024], not -1"},
      {R"({"threads": 2.7})", "\"threads\" is the inference threads (0: one per core): an integer in [0, 1024], not the number 2.7"},
      {R"({"treshold": 0.4})", "unknown key 'treshold' (did you mean 'threshold'?)"},
      {R"({"fpir": 1})", "must be in (0, 1), not 1"},
      {R"({"zzzzzz": 1})", "unknown key 'zzzzzz'; known keys: manifest"},
  };
  for (const auto& [json, message] : cases) {
    SCOPED_TRACE(json);
    write(root / "c.json", json);
    auto r = run_cli({"identify", probe, "--config", (root / "c.json").string()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(has(r.err, message)) << r.err;
    EXPECT_TRUE(has(r.err, (root / "c.json").string())) << r.err;
  }
  auto d = run_cli({"identify", probe, "--config", root.string()});
  EXPECT_EQ(d.exit_code, 1);
  EXPECT_TRUE(has(d.err, root.string() + " is a directory; give the path of a JSON file")) << d.err;
  auto m = run_cli({"identify", probe, "--manifest", root.string()});
  EXPECT_EQ(m.exit_code, 1);
  EXPECT_TRUE(has(m.err, "model manifest " + root.string() + " is a directory")) << m.err;
}

TEST(FaultsInput, ManifestThresholdOutsideACosineIsRefused) {
  const fs::path root = testing::temp_dir("manifest");
  std::ifstream in(std::string(FACEREC_SOURCE_DIR) + "/models/manifest.json");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const std::string key = "\"threshold\": 0.338";
  ASSERT_NE(text.find(key), std::string::npos) << "fr_feature's threshold moved; update the test";
  text.replace(text.find(key), key.size(), "\"threshold\": 5");
  write(root / "manifest.json", text);
  const std::string probe = (root / "p.jpg").string();
  cv::imwrite(probe, cv::Mat(64, 64, CV_8UC3, cv::Scalar(1, 2, 3)));
  auto r = run_cli({"identify", probe, "--manifest", (root / "manifest.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "model 'fr_feature': \"threshold\" is a cosine similarity, a number in [-1, 1], not 5")) << r.err;
}

TEST(FaultsInput, ModelPathThatIsADirectoryOrADeviceSaysWhatItIs) {
  const fs::path root = testing::temp_dir("modelpath");
  const std::string probe = (root / "p.jpg").string();
  cv::imwrite(probe, cv::Mat(64, 64, CV_8UC3, cv::Scalar(1, 2, 3)));
  for (const std::string& path : {root.string() + "/", std::string("/dev/zero")}) {
    SCOPED_TRACE(path);
    auto r = run_cli({"identify", probe, "--detector", "scrfd:" + path});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_FALSE(has(r.err, "not found")) << r.err;
    EXPECT_TRUE(has(r.err, path == "/dev/zero" ? "a character device" : "a directory")) << r.err;
  }
}

}  // namespace
}  // namespace facerec
