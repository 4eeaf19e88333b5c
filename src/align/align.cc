#include "facerec/align.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace facerec {

// insightface's arcface_dst for 112x112.
const std::array<cv::Point2f, 5> kArcFaceTemplate112 = {{
    {38.2946f, 51.6963f}, {73.5318f, 51.5014f}, {56.0252f, 71.7366f}, {41.5493f, 92.3655f}, {70.7299f, 92.2041f}}};

cv::Mat umeyama_similarity(const cv::Point2f* src, const cv::Point2f* dst, int n) {
  FACEREC_ASSERT(n >= 2);
  // Umeyama (1991), "Least-squares estimation of transformation parameters
  // between two point patterns", for 2-D with scaling; the same algorithm as
  // skimage's SimilarityTransform.estimate that insightface uses.
  double sx = 0, sy = 0, dx = 0, dy = 0;
  for (int i = 0; i < n; ++i) {
    sx += src[i].x; sy += src[i].y; dx += dst[i].x; dy += dst[i].y;
  }
  sx /= n; sy /= n; dx /= n; dy /= n;
  cv::Matx22d cov = cv::Matx22d::zeros();
  double src_var = 0;
  for (int i = 0; i < n; ++i) {
    double ax = src[i].x - sx, ay = src[i].y - sy, bx = dst[i].x - dx, by = dst[i].y - dy;
    cov(0, 0) += bx * ax; cov(0, 1) += bx * ay;
    cov(1, 0) += by * ax; cov(1, 1) += by * ay;
    src_var += ax * ax + ay * ay;
  }
  cov *= 1.0 / n;
  src_var /= n;
  cv::Mat w, u, vt;
  cv::SVD::compute(cv::Mat(cov), w, u, vt);
  cv::Matx22d U(u), Vt(vt);
  double d = cv::determinant(cov) < 0 ? -1.0 : 1.0;
  cv::Matx22d D(1, 0, 0, d);
  cv::Matx22d R = U * D * Vt;
  double scale = src_var > 0 ? (w.at<double>(0) + d * w.at<double>(1)) / src_var : 1.0;
  cv::Mat M(2, 3, CV_64F);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) M.at<double>(r, c) = scale * R(r, c);
  M.at<double>(0, 2) = dx - scale * (R(0, 0) * sx + R(0, 1) * sy);
  M.at<double>(1, 2) = dy - scale * (R(1, 0) * sx + R(1, 1) * sy);
  return M;
}

cv::Mat alignment_transform(const Face& face, int size) {
  std::array<cv::Point2f, 5> dst = kArcFaceTemplate112;
  const float s = static_cast<float>(size) / 112.f;
  for (auto& p : dst) p *= s;
  return umeyama_similarity(face.landmarks.data(), dst.data(), 5);
}

cv::Mat align_face(const cv::Mat& bgr, const Face& face, int size) {
  cv::Mat out;
  cv::warpAffine(bgr, out, alignment_transform(face, size), cv::Size(size, size), cv::INTER_LINEAR,
                 cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
  return out;
}

cv::Mat align_face_reference(const cv::Mat& bgr, const cv::Mat& M, int size) {
  // Plain twin of cv::warpAffine: invert M, bilinear sample, black outside.
  cv::Mat inv;
  cv::invertAffineTransform(M, inv);
  cv::Mat out(size, size, CV_8UC3, cv::Scalar(0, 0, 0));
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      double u = inv.at<double>(0, 0) * x + inv.at<double>(0, 1) * y + inv.at<double>(0, 2);
      double v = inv.at<double>(1, 0) * x + inv.at<double>(1, 1) * y + inv.at<double>(1, 2);
      int x0 = static_cast<int>(std::floor(u)), y0 = static_cast<int>(std::floor(v));
      double fx = u - x0, fy = v - y0;
      for (int c = 0; c < 3; ++c) {
        auto px = [&](int xx, int yy) -> double {
          if (xx < 0 || yy < 0 || xx >= bgr.cols || yy >= bgr.rows) return 0.0;
          return bgr.at<cv::Vec3b>(yy, xx)[c];
        };
        double val = (1 - fx) * (1 - fy) * px(x0, y0) + fx * (1 - fy) * px(x0 + 1, y0) +
                     (1 - fx) * fy * px(x0, y0 + 1) + fx * fy * px(x0 + 1, y0 + 1);
        out.at<cv::Vec3b>(y, x)[c] = cv::saturate_cast<uchar>(val);
      }
    }
  }
  return out;
}

}  // namespace facerec
