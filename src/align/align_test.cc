#include "facerec/align.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

namespace facerec {
namespace {

cv::Point2f apply(const cv::Mat& M, cv::Point2f p) {
  return {static_cast<float>(M.at<double>(0, 0) * p.x + M.at<double>(0, 1) * p.y + M.at<double>(0, 2)),
          static_cast<float>(M.at<double>(1, 0) * p.x + M.at<double>(1, 1) * p.y + M.at<double>(1, 2))};
}

TEST(Align, UmeyamaRecoversAKnownSimilarity) {
  // A known transform: scale 0.37, rotation 23 degrees, translation (12, -7).
  const double s = 0.37, th = 23.0 * CV_PI / 180.0, tx = 12, ty = -7;
  std::array<cv::Point2f, 5> src = {{{120, 140}, {190, 135}, {150, 180}, {125, 220}, {185, 215}}};
  std::array<cv::Point2f, 5> dst;
  for (int i = 0; i < 5; ++i)
    dst[i] = {static_cast<float>(s * (std::cos(th) * src[i].x - std::sin(th) * src[i].y) + tx),
              static_cast<float>(s * (std::sin(th) * src[i].x + std::cos(th) * src[i].y) + ty)};
  cv::Mat M = umeyama_similarity(src.data(), dst.data(), 5);
  EXPECT_NEAR(M.at<double>(0, 0), s * std::cos(th), 1e-5);
  EXPECT_NEAR(M.at<double>(0, 1), -s * std::sin(th), 1e-5);
  EXPECT_NEAR(M.at<double>(1, 0), s * std::sin(th), 1e-5);
  EXPECT_NEAR(M.at<double>(1, 1), s * std::cos(th), 1e-5);
  EXPECT_NEAR(M.at<double>(0, 2), tx, 1e-3);
  EXPECT_NEAR(M.at<double>(1, 2), ty, 1e-3);
}

TEST(Align, LeastSquaresWithNoiseMatchesLinearSolve) {
  // With noisy points there is no exact answer. A similarity x' = a x - b y + tx,
  // y' = b x + a y + ty is linear in (a, b, tx, ty): solve it independently with
  // an SVD least-squares solve and check Umeyama lands on the same optimum.
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.f, 1.5f);
  std::array<cv::Point2f, 5> src, dst = kArcFaceTemplate112;
  for (int i = 0; i < 5; ++i) src[i] = dst[i] * 2.3f + cv::Point2f(40 + noise(rng), 60 + noise(rng));
  cv::Mat M = umeyama_similarity(src.data(), dst.data(), 5);
  cv::Mat A(10, 4, CV_64F), b(10, 1, CV_64F), x;
  for (int i = 0; i < 5; ++i) {
    double row0[] = {src[i].x, -src[i].y, 1, 0}, row1[] = {src[i].y, src[i].x, 0, 1};
    for (int c = 0; c < 4; ++c) { A.at<double>(2 * i, c) = row0[c]; A.at<double>(2 * i + 1, c) = row1[c]; }
    b.at<double>(2 * i) = dst[i].x;
    b.at<double>(2 * i + 1) = dst[i].y;
  }
  ASSERT_TRUE(cv::solve(A, b, x, cv::DECOMP_SVD));
  EXPECT_NEAR(M.at<double>(0, 0), x.at<double>(0), 1e-6);
  EXPECT_NEAR(M.at<double>(1, 0), x.at<double>(1), 1e-6);
  EXPECT_NEAR(M.at<double>(0, 2), x.at<double>(2), 1e-4);
  EXPECT_NEAR(M.at<double>(1, 2), x.at<double>(3), 1e-4);
}

TEST(Align, ReflectionIsNeverReturned) {
  // Mirrored landmarks (left/right swapped) must still give a proper rotation,
  // never a reflection: det of the linear part stays positive.
  std::array<cv::Point2f, 5> src = kArcFaceTemplate112;
  for (auto& p : src) p.x = 112 - p.x;
  cv::Mat M = umeyama_similarity(src.data(), kArcFaceTemplate112.data(), 5);
  double det = M.at<double>(0, 0) * M.at<double>(1, 1) - M.at<double>(0, 1) * M.at<double>(1, 0);
  EXPECT_GT(det, 0.0);
}

TEST(Align, WarpPutsLandmarksOnTheTemplateAndMatchesPlainTwin) {
  // Draw dots at landmark positions in a large image, align, and check the
  // dots land on the template; compare cv::warpAffine with the plain twin.
  cv::Mat img(400, 500, CV_8UC3, cv::Scalar(20, 20, 20));
  cv::randu(img, cv::Scalar(0, 0, 0), cv::Scalar(60, 60, 60));
  Face face;
  const double s = 2.0, th = -12.0 * CV_PI / 180.0;
  for (int i = 0; i < 5; ++i) {
    cv::Point2f t = kArcFaceTemplate112[i];
    face.landmarks[i] = {static_cast<float>(s * (std::cos(th) * t.x - std::sin(th) * t.y) + 150),
                         static_cast<float>(s * (std::sin(th) * t.x + std::cos(th) * t.y) + 120)};
    cv::circle(img, face.landmarks[i], 5, cv::Scalar(255, 255, 255), cv::FILLED);
  }
  cv::Mat aligned = align_face(img, face, 112);
  ASSERT_EQ(aligned.size(), cv::Size(112, 112));
  for (const auto& t : kArcFaceTemplate112) {
    cv::Vec3b px = aligned.at<cv::Vec3b>(cvRound(t.y), cvRound(t.x));
    EXPECT_GT(px[0], 200) << "landmark not on the template at " << t;
  }
  cv::Mat ref = align_face_reference(img, alignment_transform(face, 112), 112);
  cv::Mat diff;
  cv::absdiff(aligned, ref, diff);
  double maxv = 0;
  cv::minMaxLoc(diff.reshape(1), nullptr, &maxv);
  // warpAffine quantises the bilinear weights to 1/32 (INTER_BITS = 5), so on
  // a 0->255 edge it may differ by up to 255/32 ~ 8 levels; on average far less.
  EXPECT_LE(maxv, 8.0);
  EXPECT_LT(cv::mean(diff.reshape(1))[0], 0.5);
}

TEST(Align, ScaledTemplateFor224) {
  Face face;
  for (int i = 0; i < 5; ++i) face.landmarks[i] = kArcFaceTemplate112[i];
  cv::Mat M = alignment_transform(face, 224);
  EXPECT_NEAR(M.at<double>(0, 0), 2.0, 1e-6);
  EXPECT_NEAR(M.at<double>(0, 2), 0.0, 1e-4);
}

}  // namespace
}  // namespace facerec
