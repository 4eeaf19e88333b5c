// The landmark stage batched across an image's faces against its plain
// one-face-per-run twin, on real faces with the real fr_landmark.
#include "landmarks/landmarks68.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <gtest/gtest.h>

#include "facerec/detect.h"
#include "facerec/image.h"
#include "test_support.h"

namespace facerec {
namespace {

using testing::manifest;
using testing::runtime;

// Loads a model of the manifest, or says loudly why the test cannot run.
#define REQUIRE_MODEL(id)                                                                                  \
  do {                                                                                                     \
    const ModelSpec* m_ = manifest().find(id);                                                             \
    Status st_ = m_ ? verify_model_file(*m_) : Status(ErrorCode::kNotFound, "not in the manifest");       \
    if (!st_.ok()) {                                                                                       \
      fprintf(stderr, "\n!!!!! SKIPPING: model %s is not usable (%s). Run: facerec models fetch %s. "     \
                      "This test did NOT run. !!!!!\n\n", id, st_.to_string().c_str(), id);               \
      GTEST_SKIP() << "model " << id << " absent: test NOT run";                                          \
    }                                                                                                      \
  } while (0)

std::unique_ptr<landmarks::Landmarks68> load_landmarks(bool dynamic_batch) {
  const ModelSpec& spec = *manifest().find("fr_landmark");
  SessionConfig config = spec.session;
  config.dynamic_batch = dynamic_batch;
  auto s = runtime().load(spec.path, config);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  if (!s.ok()) return nullptr;
  auto lm = landmarks::Landmarks68::create(std::move(s).value(), spec, "fr_detect");
  EXPECT_TRUE(lm.ok()) << lm.status().to_string();
  return lm.ok() ? std::move(lm).value() : nullptr;
}

TEST(Landmarks68, BatchedEqualsOneByOneOnRealFaces) {
  FACEREC_REQUIRE_SHARED();
  REQUIRE_MODEL("fr_detect");
  REQUIRE_MODEL("fr_landmark");
  auto image = load_image(testing::shared_dir() + "/data/crowd/insightface_t1.jpg");
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  auto det = create_detector(runtime(), *manifest().find("fr_detect"), {}, manifest().find("fr_landmark"));
  ASSERT_TRUE(det.ok()) << det.status().to_string();
  auto faces = (*det)->detect(*image);
  ASSERT_TRUE(faces.ok()) << faces.status().to_string();
  ASSERT_GE(faces->size(), 4u) << "the 6-face group photo should give several faces";

  auto batched = load_landmarks(true);
  ASSERT_TRUE(batched);
  EXPECT_GT(batched->max_batch(), 1) << "fr_landmark's graph is batch-agnostic: the runtime should batch it";
  auto fixed = load_landmarks(false);
  ASSERT_TRUE(fixed);
  EXPECT_EQ(fixed->max_batch(), 1);

  const landmarks::Landmarks68Config config;
  std::vector<Face> a = *faces, b = *faces, c = *faces;
  ASSERT_TRUE(batched->refine(*image, a, config).ok());
  ASSERT_TRUE(batched->refine_one_by_one(*image, b, config).ok());
  ASSERT_TRUE(fixed->refine(*image, c, config).ok());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.size(), c.size());
  float worst = 0.f;
  for (size_t i = 0; i < a.size(); ++i)
    for (int k = 0; k < 5; ++k) {
      worst = std::max(worst, static_cast<float>(cv::norm(a[i].landmarks[k] - b[i].landmarks[k])));
      worst = std::max(worst, static_cast<float>(cv::norm(a[i].landmarks[k] - c[i].landmarks[k])));
    }
  // Float rounding of batched kernels only: far below a pixel.
  EXPECT_LT(worst, 1e-3f) << "batched landmarks differ from one-by-one by " << worst << " px";

  // The detector's own landmarks come from the same stage.
  for (size_t i = 0; i < a.size(); ++i)
    for (int k = 0; k < 5; ++k) EXPECT_LT(cv::norm(a[i].landmarks[k] - (*faces)[i].landmarks[k]), 1e-3);
}

TEST(Landmarks68, NoFacesAndEmptyCropsAreFine) {
  REQUIRE_MODEL("fr_landmark");
  auto lm = load_landmarks(true);
  ASSERT_TRUE(lm);
  cv::Mat img(100, 100, CV_8UC3, cv::Scalar::all(90));
  std::vector<Face> none;
  EXPECT_TRUE(lm->refine(img, none, {}).ok());
  EXPECT_TRUE(none.empty());
  Face outside;
  outside.box = cv::Rect2f(500, 500, 20, 20);  // wholly outside: nothing to crop
  Face inside;
  inside.box = cv::Rect2f(20, 20, 50, 50);
  std::vector<Face> faces = {outside, inside};
  ASSERT_TRUE(lm->refine(img, faces, {}).ok());
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_EQ(faces[0].box, inside.box);
}

// ---- measurement, not a check: run with --gtest_also_run_disabled_tests ------

// The landmark stage on the faces of the 6-face group photo: one batched run
// against one run per face, alternated, 41 rounds each; prints the medians.
TEST(Landmarks68, DISABLED_BatchedVsOneByOneSpeed) {
  FACEREC_REQUIRE_SHARED();
  REQUIRE_MODEL("fr_detect");
  REQUIRE_MODEL("fr_landmark");
  auto image = load_image(testing::shared_dir() + "/data/crowd/insightface_t1.jpg");
  ASSERT_TRUE(image.ok());
  auto det = create_detector(runtime(), *manifest().find("fr_detect"), {}, manifest().find("fr_landmark"));
  ASSERT_TRUE(det.ok());
  auto faces = (*det)->detect(*image);
  ASSERT_TRUE(faces.ok());
  auto lm = load_landmarks(true);
  ASSERT_TRUE(lm);
  std::vector<double> batched, single;
  for (int round = 0; round < 41; ++round) {
    for (int which = 0; which < 2; ++which) {
      std::vector<Face> f = *faces;
      const auto t0 = std::chrono::steady_clock::now();
      ASSERT_TRUE((which ? lm->refine_one_by_one(*image, f, {}) : lm->refine(*image, f, {})).ok());
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      (which ? single : batched).push_back(ms);
    }
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  std::printf("landmarks for %zu faces: batched %.2f ms, one by one %.2f ms (medians of 41)\n", faces->size(),
              median(batched), median(single));
}

}  // namespace
}  // namespace facerec
