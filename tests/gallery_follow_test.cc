// Several FaceRecognizers on one gallery (issue 10, part 2), on the fake
// Runtime, over both stores: each applies the others' enrolments, removals
// and renames in place (sync_gallery, follow_gallery), and their indexes end
// equal to one built from the gallery. Then a recognizer on read-only
// storage (issue 11, fault 9): it identifies, and edits say "read-only".
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "facerec/recognizer.h"
#include "fake_runtime.h"
#include "pg_support.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

using testing::kBlue;
using testing::kGreen;
using testing::kRed;
using testing::photo;

std::vector<EnrollInput> inputs_of(cv::Scalar colour, int first_seed, int n) {
  std::vector<EnrollInput> v;
  for (int i = 0; i < n; ++i)
    v.push_back({"seed" + std::to_string(first_seed + i) + ".png", testing::png(photo(colour, first_seed + i))});
  return v;
}

std::string who(const FaceRecognizer& rec, cv::Scalar colour, int seed) {
  auto r = rec.identify(photo(colour, seed));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() && !r->faces.empty() ? r->faces[0].decision.identity : "<error>";
}

class GalleryFollow : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = testing::temp_dir("follow");
    manifest_ = Manifest::load(testing::write_fake_manifest(dir_)).value();
    if (GetParam() == "postgresql") {
      FACEREC_REQUIRE_POSTGRES();
      config_.db = testing::pg_fresh_database("follow");
    } else {
      config_.db = dir_ + "/g.db";
    }
  }
  std::unique_ptr<FaceRecognizer> make() {
    auto r = FaceRecognizer::create(runtime_, manifest_, config_);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  testing::FakeRuntime runtime_;
  Manifest manifest_;
  std::string dir_;
  RecognizerConfig config_;
};

TEST_P(GalleryFollow, EachAppliesTheOthersChangesInPlace) {
  auto a = make(), b = make();
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->enroll("Alice", inputs_of(kRed, 1, 3))->added, 3);
  EXPECT_EQ(who(*b, kRed, 90), "");  // B has not looked yet
  auto n = b->sync_gallery();
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(who(*b, kRed, 90), "Alice");
  EXPECT_EQ(b->template_count(), 3u);
  EXPECT_EQ(b->sync_gallery().value(), 0);  // nothing new

  // B's own write first applies what A did before it.
  ASSERT_TRUE(a->enroll("Bob", inputs_of(kBlue, 10, 2)).ok());
  ASSERT_TRUE(b->enroll("Carol", inputs_of(kGreen, 20, 2)).ok());
  EXPECT_EQ(b->people().size(), 3u);
  EXPECT_EQ(who(*b, kBlue, 91), "Bob");
  EXPECT_EQ(b->gallery_sync_status().applied_seq, 3);

  ASSERT_TRUE(a->rename("Alice", "Alicia").ok());
  ASSERT_TRUE(a->remove("Bob").ok());
  ASSERT_EQ(b->sync_gallery().value(), 2);  // the rename and the removal
  EXPECT_EQ(who(*b, kRed, 92), "Alicia");
  EXPECT_EQ(who(*b, kBlue, 92), "");  // removed: never named again
  ASSERT_TRUE(a->sync_gallery().ok());
  EXPECT_EQ(who(*a, kGreen, 93), "Carol");

  // Both now decide exactly as a recognizer built from the gallery.
  auto fresh = make();
  ASSERT_TRUE(fresh);
  for (const auto* rec : {a.get(), b.get()}) {
    auto p = rec->people(), q = fresh->people();
    ASSERT_EQ(p.size(), q.size());
    for (size_t i = 0; i < p.size(); ++i) {
      EXPECT_EQ(p[i].name, q[i].name);
      EXPECT_EQ(p[i].templates, q[i].templates);
    }
    for (auto c : {kRed, kGreen, kBlue}) {
      auto x = rec->identify(photo(c, 77)), y = fresh->identify(photo(c, 77));
      ASSERT_TRUE(x.ok() && y.ok());
      EXPECT_EQ(x->faces[0].decision.identity, y->faces[0].decision.identity);
      EXPECT_FLOAT_EQ(x->faces[0].decision.similarity, y->faces[0].decision.similarity);
    }
  }
}

TEST_P(GalleryFollow, FollowerAppliesWithinASecond) {
  auto a = make(), b = make();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->follow_gallery(std::chrono::milliseconds(200)).ok());
  EXPECT_EQ(b->follow_gallery().code(), ErrorCode::kInvalidArgument);  // one follower
  ASSERT_TRUE(a->enroll("Alice", inputs_of(kRed, 1, 2)).ok());
  const auto t0 = std::chrono::steady_clock::now();
  while (b->people().empty() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 1.0);
  EXPECT_EQ(who(*b, kRed, 50), "Alice");
  ASSERT_TRUE(a->remove("Alice").ok());
  const auto t1 = std::chrono::steady_clock::now();
  while (!b->people().empty() && std::chrono::steady_clock::now() - t1 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count(), 1.0);
  EXPECT_EQ(who(*b, kRed, 51), "");
  const GallerySyncStatus s = b->gallery_sync_status();
  EXPECT_TRUE(s.following);
  EXPECT_TRUE(s.connected);
  EXPECT_EQ(s.behind(), 0);
  EXPECT_EQ(s.backend, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Backends, GalleryFollow, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

// identify on read-only storage works; edits say "read-only"; the file is
// untouched. As root (CI) the child drops to user nobody, since root ignores
// file permissions.
TEST(ReadOnlyGallery, RecognizerIdentifiesAndRefusesEdits) {
  testing::FakeRuntime runtime;
  const std::string dir = testing::temp_dir("ro_rec");
  Manifest manifest = Manifest::load(testing::write_fake_manifest(dir)).value();
  RecognizerConfig config;
  config.db = dir + "/g.db";
  {
    auto rec = FaceRecognizer::create(runtime, manifest, config);
    ASSERT_TRUE(rec.ok());
    ASSERT_EQ((*rec)->enroll("Alice", inputs_of(kRed, 1, 2))->added, 2);
  }
  std::ifstream f(config.db, std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(f)), {});
  chmod(config.db.c_str(), 0444);
  chmod(dir.c_str(), 0555);
  chmod(fs::path(dir).parent_path().c_str(), 0711);
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    if (getuid() == 0) {
      const passwd* nobody = getpwnam("nobody");
      if (!nobody || setgid(nobody->pw_gid) != 0 || setuid(nobody->pw_uid) != 0) _exit(90);
    }
    RecognizerConfig ro = config;
    ro.gallery = GalleryMode::kReadOnly;
    auto rec = FaceRecognizer::create(runtime, manifest, ro);
    if (!rec.ok()) _exit((fprintf(stderr, "%s\n", rec.status().to_string().c_str()), 10));
    auto id = (*rec)->identify(photo(kRed, 40));
    if (!id.ok() || id->faces.empty() || id->faces[0].decision.identity != "Alice") _exit(11);
    Status rm = (*rec)->remove("Alice");
    if (rm.code() != ErrorCode::kIo || rm.message().find("read-only") == std::string::npos)
      _exit((fprintf(stderr, "%s\n", rm.to_string().c_str()), 12));
    auto en = (*rec)->enroll("Bob", inputs_of(kBlue, 5, 1));
    if (en.ok() || en.status().message().find("read-only") == std::string::npos) _exit(13);
    // Opened for writing (enrol's mode), the message is the same.
    RecognizerConfig rw = config;
    rw.gallery = GalleryMode::kCreate;
    auto w = FaceRecognizer::create(runtime, manifest, rw);
    if (w.ok() || w.status().message().find("read-only") == std::string::npos)
      _exit((fprintf(stderr, "%s\n", w.ok() ? "opened for writing" : w.status().to_string().c_str()), 14));
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  chmod(dir.c_str(), 0755);
  chmod(config.db.c_str(), 0644);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::ifstream g(config.db, std::ios::binary);
  EXPECT_TRUE(std::string((std::istreambuf_iterator<char>(g)), {}) == before) << "gallery changed";
}

}  // namespace
}  // namespace facerec
