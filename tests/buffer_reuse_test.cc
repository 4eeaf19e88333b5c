// Issue 13, "no buffer reuse bugs": the per-thread scratch buffers that the
// detector, the landmark stage, the embedder and the runtime reuse across
// calls must never leak one call's data into another. The same photo, 100
// times through one FaceRecognizer from two threads, with a second photo in
// between, gives bit-identical embeddings to a single run.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "facerec/recognizer.h"
#include "test_support.h"

namespace facerec {
namespace {

TEST(BufferReuse, SamePhotoHundredTimesOnTwoThreadsGivesTheSameEmbeddings) {
  FACEREC_REQUIRE_SHARED();
  const Manifest& m = testing::manifest();
  for (const char* id : {"fr_detect", "fr_landmark", "fr_feature"}) {
    const ModelSpec* s = m.find(id);
    Status st = s ? verify_model_file(*s) : Status(ErrorCode::kNotFound, "not in the manifest");
    if (!st.ok()) {
      fprintf(stderr, "\n!!!!! SKIPPING: default model %s is not usable (%s). Run: facerec models fetch. "
                      "This test did NOT run. !!!!!\n\n", id, st.to_string().c_str());
      GTEST_SKIP() << "default model " << id << " absent: test NOT run";
    }
  }
  RecognizerConfig config;
  config.gallery = GalleryMode::kNone;
  auto rec = FaceRecognizer::create(testing::runtime(), m, config);
  ASSERT_TRUE(rec.ok()) << rec.status().to_string();
  // Several faces (batched landmarks and embeddings), and a one-face photo of
  // another size to interleave (other buffer sizes between two calls).
  auto group = (*rec)->load(testing::shared_dir() + "/data/crowd/insightface_t1.jpg");
  auto single = (*rec)->load(testing::shared_dir() + "/data/celeb5/train/Madonna/6.jpg");
  ASSERT_TRUE(group.ok() && single.ok());

  auto reference = (*rec)->analyze(*group);
  ASSERT_TRUE(reference.ok()) << reference.status().to_string();
  ASSERT_GE(reference->size(), 2u);
  auto reference_single = (*rec)->analyze(*single);
  ASSERT_TRUE(reference_single.ok());
  ASSERT_FALSE(reference_single->empty());

  auto same = [](const std::vector<AnalyzedFace>& a, const std::vector<AnalyzedFace>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].embedding.unit != b[i].embedding.unit || a[i].embedding.norm != b[i].embedding.norm) return false;
      if (a[i].face.box != b[i].face.box) return false;
      for (int k = 0; k < 5; ++k)
        if (a[i].face.landmarks[k] != b[i].face.landmarks[k]) return false;
    }
    return true;
  };
  constexpr int kRuns = 100;  // in all, split over the two threads
  std::atomic<int> differing{0}, failed{0};
  auto worker = [&](int runs) {
    for (int i = 0; i < runs; ++i) {
      auto r = (*rec)->analyze(*group);
      if (!r.ok()) { ++failed; continue; }
      if (!same(*r, *reference)) ++differing;
      auto s = (*rec)->analyze(*single);
      if (!s.ok()) { ++failed; continue; }
      if (!same(*s, *reference_single)) ++differing;
    }
  };
  std::thread t1(worker, kRuns / 2), t2(worker, kRuns / 2);
  t1.join();
  t2.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(differing.load(), 0) << "a run gave other embeddings, boxes or landmarks than the single run";
}

}  // namespace
}  // namespace facerec
