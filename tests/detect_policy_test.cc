// Issue 11 faults 4 and 5 on real photos and models, inputs built in the test
// from ../shared: faces that fill the frame (AT&T's tight crops, a head-filling
// crop of a celeb5 photo) and a 6000x1200 panorama with a ~650 px face.
#include <optional>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "facerec/detect.h"
#include "facerec/detect_policy.h"
#include "facerec/models.h"
#include "facerec/runtime.h"
#include "test_support.h"

namespace facerec {
namespace {

using testing::runtime;
using testing::manifest;
// The detector `id`, or nullptr after a loud skip message when its weights
// are not here (../shared for the research models, the cache for the npm
// default).
std::unique_ptr<Detector> load(const std::string& id) {
  const ModelSpec* spec = manifest().find(id);
  FACEREC_ASSERT(spec != nullptr);
  std::optional<ModelSpec> lm;
  if (!spec->landmarks_model.empty()) lm = *manifest().find(spec->landmarks_model);
  for (const ModelSpec* s : std::initializer_list<const ModelSpec*>{spec, lm ? &*lm : nullptr}) {
    if (!s) continue;
    if (Status st = verify_model_file(*s); !st.ok()) {
      fprintf(stderr, "\n!!!!! SKIPPING: model %s is not usable (%s). Run: facerec models fetch. This test did "
                      "NOT run. !!!!!\n\n", s->id.c_str(), st.to_string().c_str());
      return nullptr;
    }
  }
  auto d = create_detector(runtime(), *spec, {}, lm ? &*lm : nullptr);
  EXPECT_TRUE(d.ok()) << d.status().to_string();
  return d.ok() ? std::move(d).value() : nullptr;
}

#define LOAD_OR_SKIP(var, id)                                    \
  auto var = load(id);                                           \
  if (!var) GTEST_SKIP() << "model " << id << " absent: NOT run"

cv::Mat read(const std::string& path) {
  cv::Mat m = cv::imread(path, cv::IMREAD_COLOR);
  FACEREC_ASSERT(!m.empty());
  return m;
}

float best_iou(const std::vector<Face>& faces, const cv::Rect2f& expected) {
  float best = 0.f;
  for (const Face& f : faces) best = std::max(best, iou(f.box, expected));
  return best;
}

// Fault 4: AT&T's 23x28 tight crops (the first photo of each of the 40
// people). scrfd_500m loses most of them (BENCHMARKS: 345 of 400); with the
// retry it must find a face in nearly all, and the face must cover the crop.
TEST(DetectPolicyReal, TightCropsFoundByTheRetry) {
  FACEREC_REQUIRE_SHARED();
  LOAD_OR_SKIP(det, "scrfd_500m");
  int plain = 0, policy = 0;
  for (int person = 1; person <= 40; ++person) {
    const cv::Mat img = read(testing::shared_dir() + "/data/att/s" + std::to_string(person) + "/1.pgm");
    auto a = detect_with_policy(*det, img, no_detect_policy());
    auto b = detect_with_policy(*det, img, default_detect_policy());
    ASSERT_TRUE(a.ok() && b.ok());
    plain += !a->empty();
    if (b->empty()) continue;
    ++policy;
    // The face fills the crop: the box covers most of it.
    const cv::Rect2f whole(0, 0, static_cast<float>(img.cols), static_cast<float>(img.rows));
    EXPECT_GT(iou((*b)[0].box, whole), 0.4f) << "s" << person << ": " << (*b)[0].box;
  }
  std::printf("AT&T 40 tight crops, scrfd_500m: %d found without the policy, %d with it\n", plain, policy);
  EXPECT_GE(policy, 36);
  EXPECT_GT(policy, plain);
}

// Fault 4 on a colour photo: the face cropped so that it fills a ~600x800
// frame (the shape of the report's 600x808 photo).
TEST(DetectPolicyReal, HeadFillingPhotoFoundByTheRetry) {
  FACEREC_REQUIRE_SHARED();
  LOAD_OR_SKIP(det, "scrfd_500m");
  int plain_found = 0, policy_found = 0, total = 0;
  for (const char* name : {"Madonna/6.jpg", "Elton John/1.jpg", "Ben Afflek/1.jpg", "Mindy Kaling/1.jpg",
                           "Jerry Seinfield/1.jpg"}) {
    const cv::Mat photo = read(testing::shared_dir() + "/data/celeb5/train/" + name);
    auto faces = det->detect(photo);
    ASSERT_TRUE(faces.ok());
    if (faces->empty()) continue;
    // The box itself, cut to 3:4 about its centre: forehead to chin, ear to ear.
    const cv::Rect2f b = (*faces)[0].box;
    const float w = std::min(b.width, b.height * 0.75f), h = w / 0.75f;
    const cv::Rect crop = cv::Rect(cv::Rect2f(b.x + (b.width - w) / 2, b.y + (b.height - h) / 2, w, h)) &
                          cv::Rect(0, 0, photo.cols, photo.rows);
    cv::Mat tight;
    cv::resize(photo(crop), tight, cv::Size(600, 800), 0, 0, cv::INTER_CUBIC);
    ++total;
    auto a = detect_with_policy(*det, tight, no_detect_policy());
    auto c = detect_with_policy(*det, tight, default_detect_policy());
    ASSERT_TRUE(a.ok() && c.ok());
    plain_found += !a->empty();
    if (c->empty()) { ADD_FAILURE() << name << ": no face with the policy"; continue; }
    ++policy_found;
    EXPECT_GT(best_iou(*c, cv::Rect2f(0, 0, 600, 800)), 0.5f) << name << ": " << (*c)[0].box;
    for (const auto& p : (*c)[0].landmarks) {  // the landmarks are on the face, not in the padding
      EXPECT_GT(p.x, 0.f);
      EXPECT_LT(p.x, 600.f);
      EXPECT_GT(p.y, 0.f);
      EXPECT_LT(p.y, 800.f);
    }
  }
  std::printf("head-filling 600x800 crops, scrfd_500m: %d of %d found without the policy, %d with it\n", plain_found,
              total, policy_found);
  EXPECT_GE(total, 4);
}

// Fault 5: a 6000x1200 panorama with a ~650 px face. The default detector
// stretches it into 320x240 and loses the face; the policy must find it.
TEST(DetectPolicyReal, PanoramaFaceFoundByTheDefaultDetector) {
  FACEREC_REQUIRE_SHARED();
  LOAD_OR_SKIP(det, "fr_detect");
  const cv::Mat photo = read(testing::shared_dir() + "/data/celeb5/train/Madonna/6.jpg");
  auto faces = det->detect(photo);
  ASSERT_TRUE(faces.ok());
  ASSERT_FALSE(faces->empty());
  const cv::Rect2f b = (*faces)[0].box;
  // Scale the photo so that the face is 650 px tall, and place it in a
  // 6000x1200 canvas of the photo's mean colour, face centred vertically at
  // x = 3000.
  const double s = 650.0 / b.height;
  cv::Mat big;
  cv::resize(photo, big, cv::Size(), s, s, cv::INTER_LINEAR);
  cv::Mat pano(1200, 6000, CV_8UC3, cv::mean(photo));
  const cv::Point2f c(static_cast<float>((b.x + b.width / 2) * s), static_cast<float>((b.y + b.height / 2) * s));
  const cv::Point shift(static_cast<int>(3000 - c.x), static_cast<int>(600 - c.y));
  const cv::Rect dst = cv::Rect(shift, big.size()) & cv::Rect(0, 0, 6000, 1200);
  big(dst - shift).copyTo(pano(dst));
  const cv::Rect2f expected(static_cast<float>(b.x * s + shift.x), static_cast<float>(b.y * s + shift.y),
                            static_cast<float>(b.width * s), static_cast<float>(b.height * s));

  auto plain = detect_with_policy(*det, pano, no_detect_policy());
  ASSERT_TRUE(plain.ok());
  EXPECT_LT(best_iou(*plain, expected), 0.3f) << "the fault no longer reproduces without the policy";
  for (const char* policy : {"default", "aspect=letterbox", "aspect=tile"}) {
    auto opt = parse_detect_policy(policy);
    ASSERT_TRUE(opt.ok());
    auto found = detect_with_policy(*det, pano, *opt);
    ASSERT_TRUE(found.ok()) << found.status().to_string();
    EXPECT_GT(best_iou(*found, expected), 0.6f) << policy;
    EXPECT_LE(found->size(), 2u) << policy;
  }
}

}  // namespace
}  // namespace facerec
