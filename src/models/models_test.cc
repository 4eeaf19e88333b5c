// Manifest::load_default(): the repository's manifest plus the models imported
// on this machine ($FACEREC_CACHE/manifest.local.json).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "facerec/models.h"

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

}  // namespace
}  // namespace facerec
