// Manifest::load_default(): the repository's manifest plus the models imported
// on this machine ($FACEREC_CACHE/manifest.local.json).
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "facerec/models.h"
#include "python_converter.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

// Points FACEREC_CACHE at a fresh folder for one test and restores it after.
class LocalManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("facerec_local_manifest_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    if (const char* c = std::getenv("FACEREC_CACHE")) old_ = c;
    setenv("FACEREC_CACHE", dir_.c_str(), 1);
  }
  void TearDown() override {
    if (old_) setenv("FACEREC_CACHE", old_->c_str(), 1);
    else unsetenv("FACEREC_CACHE");
    fs::remove_all(dir_);
  }
  void write_local(const std::string& id) {
    std::ofstream(Manifest::local_path()) << R"({"version": 1, "models": [{"id": ")" << id
                                          << R"(", "task": "detector", "family": "yolov5face",
      "source": {"file": "/nowhere/x.onnx"}, "sha256": "00",
      "input": {"width": 640, "height": 640, "channels": "RGB", "std": [255, 255, 255]}}]})";
  }
  fs::path dir_;
  std::optional<std::string> old_;
};

TEST_F(LocalManifestTest, WithoutALocalFileIsTheRepositoryManifest) {
  EXPECT_EQ(Manifest::local_path(), (dir_ / "manifest.local.json").string());
  auto base = Manifest::load(Manifest::default_path());
  auto merged = Manifest::load_default();
  ASSERT_TRUE(base.ok() && merged.ok());
  EXPECT_EQ(merged->models().size(), base->models().size());
  EXPECT_EQ(merged->default_detector(), base->default_detector());
}

TEST_F(LocalManifestTest, ImportedModelsAreAddedOnTop) {
  write_local("my_imported_detector");
  auto base = Manifest::load(Manifest::default_path());
  auto merged = Manifest::load_default();
  ASSERT_TRUE(base.ok() && merged.ok()) << merged.status().to_string();
  EXPECT_EQ(merged->models().size(), base->models().size() + 1);
  const ModelSpec* m = merged->find("my_imported_detector");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->family, "yolov5face");
  EXPECT_EQ(m->path, "/nowhere/x.onnx");
  EXPECT_EQ(merged->default_detector(), base->default_detector());  // defaults stay the repository's
}

TEST_F(LocalManifestTest, AnIdInBothIsAClearError) {
  auto base = Manifest::load(Manifest::default_path());
  ASSERT_TRUE(base.ok() && !base->models().empty());
  write_local(base->models().front().id);
  auto merged = Manifest::load_default();
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(merged.status().message().find(Manifest::local_path()), std::string::npos);
}

TEST_F(LocalManifestTest, AMalformedLocalFileIsAnError) {
  std::ofstream(Manifest::local_path()) << "{\"models\": [";
  auto merged = Manifest::load_default();
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), ErrorCode::kInvalidArgument);
}

// A model file is hashed once per registry, again only when it changes.
TEST(ModelFileHashes, HashesAFileOnceUntilItChanges) {
  const fs::path dir = fs::temp_directory_path() / ("facerec_hashes_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "m.onnx").string();
  std::ofstream(path, std::ios::binary) << "abc";
  // sha256("abc"), the FIPS 180-2 test vector.
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

  Manifest registry;
  const Manifest copy = registry;  // copies share the cache
  ModelFileHashes& hashes = registry.hashes();
  EXPECT_EQ(&copy.hashes(), &hashes);
  auto first = hashes.sha256(path);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, abc);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(copy.hashes().sha256(path).value(), abc);
  EXPECT_EQ(hashes.computed(), 1u);

  ModelSpec spec;
  spec.id = "m";
  spec.path = path;
  spec.sha256 = abc;
  EXPECT_TRUE(verify_model_file(spec, &hashes).ok());
  EXPECT_EQ(hashes.computed(), 1u);

  // Replaced: another size, so hashed again, and the new hash is checked.
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "abcd";
  EXPECT_EQ(verify_model_file(spec, &hashes).code(), ErrorCode::kHashMismatch);
  EXPECT_EQ(hashes.computed(), 2u);
  EXPECT_EQ(hashes.sha256((dir / "absent").string()).status().code(), ErrorCode::kNotFound);
  // Another registry has its own cache: no process-wide state.
  Manifest other;
  EXPECT_EQ(other.hashes().computed(), 0u);
  fs::remove_all(dir);
}

// No manifest field can pass an option or a path to npm / tar / the cache.
TEST(ManifestNpm, RefusesFieldsThatCouldInjectAnOptionOrAPath) {
  const fs::path dir = fs::temp_directory_path() / ("facerec_npm_fields_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string hex(64, 'a');
  auto manifest_with = [&](const std::string& id, const std::string& pkg, const std::string& path,
                           const std::string& sha) {
    const std::string file = (dir / "m.json").string();
    std::ofstream(file, std::ios::trunc)
        << R"({"version": 1, "models": [{"id": ")" << id << R"(", "task": "detector", "family": "scrfd",
             "source": {"npm": ")" << pkg << R"(", "tarball_sha256": ")" << hex << R"(", "path": ")" << path
        << R"("}, "sha256": ")" << sha << R"(", "input": {"width": 640, "height": 640}}]})";
    return Manifest::load(file);
  };
  const std::string ok_pkg = "some-package@1.0.2", ok_path = "package/model/a.onnx";
  auto good = manifest_with("good_1.5g", ok_pkg, ok_path, hex);
  ASSERT_TRUE(good.ok()) << good.status().to_string();
  EXPECT_TRUE(manifest_with("x", "@scope/pkg@0.0.1", ok_path, hex).ok());
  for (const auto& [id, pkg, path, sha] : std::vector<std::array<std::string, 4>>{
           {"x", ok_pkg, "--to-command=sh -c id", hex},  // a tar option
           {"x", ok_pkg, "-P", hex},
           {"x", ok_pkg, "/etc/passwd", hex},
           {"x", ok_pkg, "package/../../x", hex},
           {"x", "--registry=http://evil@1.0.0", ok_path, hex},  // an npm option
           {"x", "some-package", ok_path, hex},                 // not pinned
           {"x", "some-package@latest", ok_path, hex},
           {"../../escape", ok_pkg, ok_path, hex},              // a cache file name
           {"-x", ok_pkg, ok_path, hex},
           {"x", ok_pkg, ok_path, "not-a-hash"},
           {"x", ok_pkg, ok_path, std::string(64, 'A')},
           {"x", ok_pkg, std::string(100000, 'a'), hex}}) {  // long: refused before the regex
    auto m = manifest_with(id, pkg, path, sha);
    EXPECT_EQ(m.status().code(), ErrorCode::kInvalidArgument) << id << " " << pkg << " " << path << " " << sha;
  }
  fs::remove_all(dir);
}

// Quantised entries (source "quantize"): the float model is found in the same
// manifest or, for the local overlay, in the repository's; the recipe path is
// relative to the manifest's folder; a rebuilt file with another hash is
// refused and nothing is left behind.
TEST_F(LocalManifestTest, QuantisedEntriesNameTheirFloatModel) {
  std::ofstream(Manifest::local_path()) << R"({"version": 1, "models": [{"id": "fr_feature-q", "task": "embedder",
      "family": "arcface", "source": {"quantize": {"from": "fr_feature", "recipe": "q/r.json"}}, "sha256": "00",
      "input": {"width": 112, "height": 112}}]})";
  auto merged = Manifest::load_default();
  ASSERT_TRUE(merged.ok()) << merged.status().to_string();
  const ModelSpec* q = merged->find("fr_feature-q");
  const ModelSpec* f = merged->find("fr_feature");
  ASSERT_TRUE(q && f);
  EXPECT_EQ(q->quantize_from, "fr_feature");
  EXPECT_EQ(q->quantize_source, f->path);
  EXPECT_EQ(q->quantize_source_sha256, f->sha256);
  EXPECT_EQ(q->quantize_recipe, (dir_ / "q" / "r.json").string());
  EXPECT_EQ(q->path, (dir_ / "quantized" / "fr_feature-q.onnx").string());
  // Not fetched yet: a clear "not downloaded" error, not a crash.
  Status s = verify_model_file(*q);
  EXPECT_EQ(s.code(), ErrorCode::kNotFound) << s.to_string();

  std::ofstream(Manifest::local_path()) << R"({"version": 1, "models": [{"id": "x-q", "task": "embedder",
      "family": "arcface", "source": {"quantize": {"from": "no_such_model", "recipe": "r.json"}}, "sha256": "00",
      "input": {"width": 112, "height": 112}}]})";
  auto bad = Manifest::load_default();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("no_such_model"), std::string::npos) << bad.status().to_string();

  std::ofstream(Manifest::local_path()) << R"({"version": 1, "models": [{"id": "x-q", "task": "embedder",
      "family": "arcface", "source": {"quantize": {"from": "fr_feature", "recipe": "r.json"}},
      "input": {"width": 112, "height": 112}}]})";
  auto unpinned = Manifest::load_default();
  ASSERT_FALSE(unpinned.ok());
  EXPECT_NE(unpinned.status().message().find("sha256"), std::string::npos) << unpinned.status().to_string();
}

TEST_F(LocalManifestTest, ARebuiltQuantisedModelWithAnotherHashIsRefused) {
  auto base = Manifest::load(Manifest::default_path());
  ASSERT_TRUE(base.ok());
  const ModelSpec* shipped = base->find("fr_feature-int8");
  ASSERT_NE(shipped, nullptr);
  // The fixture moved FACEREC_CACHE; the float model is in the real cache.
  const char* home = std::getenv("HOME");
  ModelSpec f = *base->find("fr_feature");
  f.path = (old_ ? *old_ : std::string(home ? home : "/tmp") + "/.cache/facerec") + "/models/fr_feature.onnx";
  if (!verify_model_file(f).ok() || access("/usr/bin/python3", X_OK) != 0)
    GTEST_SKIP() << "!!! fr_feature (facerec models fetch) or /usr/bin/python3 is ABSENT: this test is SKIPPED !!!";
  ModelSpec wrong = *shipped;
  wrong.quantize_source = f.path;
  wrong.sha256 = std::string(64, '0');
  wrong.path = (dir_ / "quantized" / "wrong.onnx").string();
  cli::PythonModelConverter converter;
  FetchOptions fetch;
  fetch.converter = &converter;
  Status s = fetch_model(wrong, fetch);
  EXPECT_EQ(s.code(), ErrorCode::kHashMismatch) << s.to_string();
  EXPECT_FALSE(fs::exists(wrong.path));
  for (const auto& e : fs::directory_iterator(dir_ / "quantized")) ADD_FAILURE() << "left behind: " << e.path();
}

// A name the filesystem refuses to look up (ENAMETOOLONG, like EACCES or
// ELOOP) is not "not found": std::filesystem's throwing calls raise
// filesystem_error for it. A public call must answer a Status instead.
TEST(ManifestErrors, AnUnlookupablePathIsAStatusNotAnException) {
  auto m = Manifest::load(Manifest::default_path());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const std::string overlong = std::string(5000, 'a') + ".onnx";
  for (const std::string& what : {"scrfd:" + overlong, overlong}) {
    try {
      auto r = m->resolve(what, ModelTask::kDetector);
      EXPECT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << r.status().to_string();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "Manifest::resolve threw for a " << what.size() << "-byte name: " << e.what();
    }
  }
}

// "equivalent_sha256" lists the earlier files of an embedder whose galleries
// it reads, each with the reason; anything else in that field is refused.
TEST(ManifestErrors, EquivalentFilesNeedHashesAndAReason) {
  const fs::path dir = fs::temp_directory_path() / ("facerec_equiv_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto load = [&](const std::string& field) {
    const std::string file = (dir / "m.json").string();
    std::ofstream(file, std::ios::trunc)
        << R"({"version": 1, "models": [{"id": "e", "task": "embedder", "family": "arcface", "source": {"file": "e.onnx"},)"
        << field << R"( "input": {"width": 112, "height": 112}}]})";
    return Manifest::load(file);
  };
  const std::string a(64, 'a'), b(64, 'b');
  auto ok = load(R"("equivalent_sha256": {"sha256": [")" + a + R"(", ")" + b + R"("], "reason": "LFW identical"},)");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->find("e")->equivalent_sha256, (std::vector<std::string>{a, b}));
  auto none = load("");
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_TRUE(none->find("e")->equivalent_sha256.empty());
  for (const std::string& bad : std::vector<std::string>{R"("equivalent_sha256": [")" + a + R"("],)",
                                R"("equivalent_sha256": {"sha256": [")" + a + R"("]},)",
                                R"("equivalent_sha256": {"sha256": [")" + a + R"("], "reason": ""},)",
                                R"("equivalent_sha256": {"sha256": ["ABC"], "reason": "x"},)",
                                R"("equivalent_sha256": {"sha256": [1], "reason": "x"},)",
                                R"("equivalent_sha256": {"sha256": ")" + a + R"(", "reason": "x"},)"}) {
    auto m = load(bad);
    ASSERT_FALSE(m.ok()) << bad;
    EXPECT_EQ(m.status().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(m.status().message().find("equivalent_sha256"), std::string::npos) << m.status().message();
  }
  fs::remove_all(dir);
}

TEST_F(LocalManifestTest, AnUnlookupableCacheFolderIsAStatusNotAnException) {
  setenv("FACEREC_CACHE", (dir_ / std::string(5000, 'c')).c_str(), 1);
  try {
    auto m = Manifest::load_default();
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find("manifest.local.json"), std::string::npos) << m.status().to_string();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "Manifest::load_default threw: " << e.what();
  }
}

}  // namespace
}  // namespace facerec
