// The shared building blocks: NMS against its plain twin, IoU, fitting an
// image into the network input and mapping back, packing the blob.
#include <random>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "facerec/detect.h"

namespace facerec {
namespace {

Face face_at(float x, float y, float w, float h, float score) {
  Face f;
  f.box = cv::Rect2f(x, y, w, h);
  f.score = score;
  f.landmarks[0] = {x, y};  // tags the face so a swap would show
  return f;
}

void expect_same(const std::vector<Face>& a, const std::vector<Face>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].score, b[i].score) << i;
    EXPECT_EQ(a[i].box, b[i].box) << i;
    EXPECT_EQ(a[i].landmarks[0], b[i].landmarks[0]) << i;
  }
}

TEST(NmsIou, HandComputedCases) {
  const cv::Rect2f a(0, 0, 10, 10);
  EXPECT_FLOAT_EQ(iou(a, a), 1.f);
  EXPECT_FLOAT_EQ(iou(a, cv::Rect2f(5, 0, 10, 10)), 50.f / 150.f);
  EXPECT_FLOAT_EQ(iou(a, cv::Rect2f(5, 5, 10, 10)), 25.f / 175.f);
  EXPECT_FLOAT_EQ(iou(a, cv::Rect2f(2, 2, 5, 5)), 25.f / 100.f);  // contained
  EXPECT_FLOAT_EQ(iou(a, cv::Rect2f(10, 0, 10, 10)), 0.f);        // touching edges
  EXPECT_FLOAT_EQ(iou(a, cv::Rect2f(20, 20, 5, 5)), 0.f);         // disjoint
  EXPECT_FLOAT_EQ(iou(a, cv::Rect2f(0, 0, 0, 0)), 0.f);           // empty
  EXPECT_FLOAT_EQ(iou(cv::Rect2f(0, 0, 0, 0), cv::Rect2f(0, 0, 0, 0)), 0.f);
  EXPECT_FLOAT_EQ(iou(a, cv::Rect2f(5, 5, -3, -3)), 0.f);  // negative size counts as empty
  EXPECT_FLOAT_EQ(iou(cv::Rect2f(5, 0, 10, 10), a), iou(a, cv::Rect2f(5, 0, 10, 10)));
}

TEST(Nms, KeepsBestOfOverlappingAndSortsByScore) {
  std::vector<Face> in = {face_at(0, 0, 10, 10, 0.6f), face_at(1, 0, 10, 10, 0.9f), face_at(50, 50, 10, 10, 0.7f),
                          face_at(100, 0, 10, 10, 0.95f)};
  auto out = nms(in, 0.4f);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FLOAT_EQ(out[0].score, 0.95f);
  EXPECT_FLOAT_EQ(out[1].score, 0.9f);
  EXPECT_FLOAT_EQ(out[2].score, 0.7f);
  // Threshold is "IoU above": at exactly the IoU both survive.
  const float exact = iou(in[0].box, in[1].box);
  EXPECT_EQ(nms({in[0], in[1]}, exact).size(), 2u);
  EXPECT_EQ(nms({in[0], in[1]}, std::nextafter(exact, 0.f)).size(), 1u);
  EXPECT_TRUE(nms({}, 0.4f).empty());
}

TEST(Nms, TiesKeepInputOrder) {
  std::vector<Face> in = {face_at(0, 0, 10, 10, 0.5f), face_at(1, 1, 10, 10, 0.5f)};
  auto out = nms(in, 0.3f);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].box.x, 0.f);
  expect_same(out, nms_reference(in, 0.3f));
}

TEST(Nms, AgreesWithReferenceOnRandomBoxes) {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> pos(0.f, 200.f), size(1.f, 60.f), score(0.f, 1.f);
  std::uniform_int_distribution<int> count(0, 400), coarse(0, 9);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Face> in(static_cast<size_t>(count(rng)));
    for (auto& f : in) {
      // Coarse scores make ties common; clustered boxes make overlaps common.
      const float s = trial % 3 == 0 ? coarse(rng) / 10.f : score(rng);
      f = face_at(pos(rng), pos(rng), size(rng), size(rng), s);
    }
    for (float thr : {0.f, 0.3f, 0.4f, 0.5f, 0.9f, 1.f}) {
      SCOPED_TRACE("trial " + std::to_string(trial) + " threshold " + std::to_string(thr));
      auto fast = nms(in, thr);
      expect_same(fast, nms_reference(in, thr));
      for (size_t i = 1; i < fast.size(); ++i) EXPECT_GE(fast[i - 1].score, fast[i].score);
      for (size_t i = 0; i < fast.size(); ++i)
        for (size_t j = i + 1; j < fast.size(); ++j) EXPECT_LE(iou(fast[i].box, fast[j].box), thr);
    }
  }
}

TEST(Nms, NanScoresAreDroppedByBoth) {
  std::vector<Face> in = {face_at(0, 0, 10, 10, NAN), face_at(0, 0, 10, 10, 0.5f)};
  auto out = nms(in, 0.4f);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FLOAT_EQ(out[0].score, 0.5f);
  expect_same(out, nms_reference(in, 0.4f));
}

TEST(Letterbox, KeepsAspectAndCentres) {
  cv::Mat img(100, 200, CV_8UC3, cv::Scalar(10, 20, 30)), out;
  Letterbox lb = fit_image(img, 640, 640, ResizeMode::kLetterbox, 114, out).value();
  ASSERT_EQ(out.size(), cv::Size(640, 640));
  EXPECT_FLOAT_EQ(lb.scale_x, 3.2f);
  EXPECT_FLOAT_EQ(lb.scale_y, 3.2f);
  EXPECT_FLOAT_EQ(lb.pad_x, 0.f);
  EXPECT_FLOAT_EQ(lb.pad_y, 160.f);
  EXPECT_EQ(out.at<cv::Vec3b>(0, 320), cv::Vec3b(114, 114, 114));    // pad above
  EXPECT_EQ(out.at<cv::Vec3b>(639, 320), cv::Vec3b(114, 114, 114));  // pad below
  EXPECT_EQ(out.at<cv::Vec3b>(320, 320), cv::Vec3b(10, 20, 30));     // image
  EXPECT_EQ(out.at<cv::Vec3b>(161, 5), cv::Vec3b(10, 20, 30));
}

TEST(Letterbox, StretchScalesEachAxis) {
  cv::Mat img(100, 200, CV_8UC3, cv::Scalar::all(7)), out;
  Letterbox lb = fit_image(img, 320, 240, ResizeMode::kStretch, 0, out).value();
  ASSERT_EQ(out.size(), cv::Size(320, 240));
  EXPECT_FLOAT_EQ(lb.scale_x, 1.6f);
  EXPECT_FLOAT_EQ(lb.scale_y, 2.4f);
  EXPECT_FLOAT_EQ(lb.pad_x + lb.pad_y, 0.f);
}

TEST(Letterbox, RoundTripAndClipping) {
  std::mt19937 rng(7);
  for (cv::Size img_size : {cv::Size(250, 250), cv::Size(1023, 577), cv::Size(31, 700), cv::Size(640, 640)}) {
    cv::Mat img(img_size, CV_8UC3, cv::Scalar::all(0)), out;
    for (ResizeMode mode : {ResizeMode::kLetterbox, ResizeMode::kStretch}) {
      Letterbox lb = fit_image(img, 640, 480, mode, 0, out).value();
      std::uniform_real_distribution<float> ux(0.f, img_size.width), uy(0.f, img_size.height);
      for (int i = 0; i < 100; ++i) {
        const cv::Point2f p(ux(rng), uy(rng));
        // Into the network input (input = image * scale + pad) and back.
        const cv::Point2f in(p.x * lb.scale_x + lb.pad_x, p.y * lb.scale_y + lb.pad_y);
        const cv::Point2f back = lb.to_image(in);
        EXPECT_NEAR(back.x, p.x, 1e-3f * img_size.width);
        EXPECT_NEAR(back.y, p.y, 1e-3f * img_size.height);
      }
      // The image's corners land on the content area's corners.
      const cv::Point2f br = lb.to_image(cv::Point2f(lb.pad_x + img_size.width * lb.scale_x,
                                                     lb.pad_y + img_size.height * lb.scale_y));
      EXPECT_NEAR(br.x, img_size.width, 1e-3f);
      EXPECT_NEAR(br.y, img_size.height, 1e-3f);

      // A box half outside the content is clipped to the image; landmarks are
      // mapped but not clipped.
      Face f;
      f.box = cv::Rect2f(lb.pad_x - 20, lb.pad_y - 20, 60, 60);
      f.landmarks[0] = {lb.pad_x - 10, lb.pad_y - 10};
      f.landmarks[1] = {lb.pad_x + 10, lb.pad_y + 10};
      std::vector<Face> faces = {f};
      map_to_image(faces, lb, img_size);
      const cv::Rect2f& b = faces[0].box;
      EXPECT_FLOAT_EQ(b.x, 0.f);
      EXPECT_FLOAT_EQ(b.y, 0.f);
      EXPECT_NEAR(b.width, std::min(40.f / lb.scale_x, float(img_size.width)), 1e-3f);
      EXPECT_NEAR(b.height, std::min(40.f / lb.scale_y, float(img_size.height)), 1e-3f);
      EXPECT_LT(faces[0].landmarks[0].x, 0.f);
      EXPECT_NEAR(faces[0].landmarks[1].x, 10.f / lb.scale_x, 1e-3f);
      // A box wholly beyond the right edge clips to zero width.
      faces = {f};
      faces[0].box = cv::Rect2f(lb.pad_x + img_size.width * lb.scale_x + 5, lb.pad_y, 10, 10);
      map_to_image(faces, lb, img_size);
      EXPECT_FLOAT_EQ(faces[0].box.width, 0.f);
      EXPECT_FLOAT_EQ(faces[0].box.x, float(img_size.width));
    }
  }
}

TEST(DetectBlob, ChannelOrderAndNormalisation) {
  cv::Mat img(2, 3, CV_8UC3);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(10 * x), uchar(100 + y), uchar(200 + x));
  InputSpec rgb;
  rgb.channels = "RGB";
  rgb.mean = {127.5f, 127.5f, 127.5f};
  rgb.std = {128.f, 128.f, 128.f};
  std::vector<float> out(3 * 6);
  ASSERT_TRUE(to_blob(img, rgb, out.data()).ok());
  // Plane 0 is R (BGR byte 2), planar, row-major.
  EXPECT_FLOAT_EQ(out[0 * 6 + 1 * 3 + 2], (202 - 127.5f) / 128.f);
  EXPECT_FLOAT_EQ(out[1 * 6 + 1 * 3 + 2], (101 - 127.5f) / 128.f);
  EXPECT_FLOAT_EQ(out[2 * 6 + 1 * 3 + 2], (20 - 127.5f) / 128.f);

  InputSpec bgr;
  bgr.channels = "BGR";
  bgr.mean = {104, 117, 123};
  bgr.std = {1, 1, 1};
  ASSERT_TRUE(to_blob(img, bgr, out.data()).ok());
  EXPECT_FLOAT_EQ(out[0 * 6 + 0 * 3 + 1], 10 - 104.f);
  EXPECT_FLOAT_EQ(out[1 * 6 + 0 * 3 + 1], 100 - 117.f);
  EXPECT_FLOAT_EQ(out[2 * 6 + 0 * 3 + 1], 201 - 123.f);

  InputSpec gray;
  gray.channels = "GRAY";
  gray.mean = {0};
  gray.std = {256};
  cv::Mat g(1, 1, CV_8UC3, cv::Scalar(255, 255, 255));
  ASSERT_TRUE(to_blob(g, gray, out.data()).ok());
  EXPECT_FLOAT_EQ(out[0], 255.f / 256.f);
}

// Caller errors are a Status that names the fault, never an abort, and the
// output is left as it was.
TEST(Blob, BadInputIsAnErrorNotAnAbort) {
  std::vector<float> out(12, -7.f);
  InputSpec rgb;
  rgb.channels = "RGB";
  rgb.mean = {0, 0, 0};
  rgb.std = {1, 1, 1};
  const cv::Mat grey(2, 2, CV_8UC1, cv::Scalar(9)), floats(2, 2, CV_32FC3, cv::Scalar::all(1));
  EXPECT_EQ(to_blob(grey, rgb, out.data()).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(to_blob(floats, rgb, out.data()).code(), ErrorCode::kInvalidArgument);
  InputSpec short_mean = rgb;
  short_mean.mean = {0};
  const cv::Mat img(2, 2, CV_8UC3, cv::Scalar::all(3));
  EXPECT_EQ(to_blob(img, short_mean, out.data()).code(), ErrorCode::kInvalidArgument);
  InputSpec gray_no_std;
  gray_no_std.channels = "GRAY";
  gray_no_std.mean = {0};
  gray_no_std.std.clear();
  EXPECT_EQ(to_blob(img, gray_no_std, out.data()).code(), ErrorCode::kInvalidArgument);
  for (float v : out) EXPECT_EQ(v, -7.f);
}

TEST(Letterbox, BadInputIsAnErrorNotAnAbort) {
  cv::Mat out(3, 3, CV_8UC3, cv::Scalar::all(5));
  const cv::Mat img(10, 10, CV_8UC3, cv::Scalar::all(1));
  EXPECT_EQ(fit_image(cv::Mat(), 64, 64, ResizeMode::kLetterbox, 0, out).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(fit_image(img, 0, 64, ResizeMode::kLetterbox, 0, out).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(fit_image(img, 64, -1, ResizeMode::kStretch, 0, out).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(out.size(), cv::Size(3, 3));  // untouched
}

}  // namespace
}  // namespace facerec
