// Building blocks every detector family shares: NMS (fast and reference),
// IoU, fitting an image into the network input and mapping results back,
// packing the input blob.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <opencv2/imgproc.hpp>

#include "facerec/detect.h"

namespace facerec {

namespace {

// IoU of two corner boxes with precomputed areas. Both nms() and
// nms_reference() (through iou()) evaluate exactly this expression, in this
// order, so that they agree bit for bit at the threshold.
inline float iou_corners(float ax1, float ay1, float ax2, float ay2, float area_a, float bx1, float by1, float bx2,
                         float by2, float area_b) {
  const float iw = std::min(ax2, bx2) - std::max(ax1, bx1);
  if (!(iw > 0.f)) return 0.f;
  const float ih = std::min(ay2, by2) - std::max(ay1, by1);
  if (!(ih > 0.f)) return 0.f;
  const float inter = iw * ih;
  const float uni = area_a + area_b - inter;
  return uni > 0.f ? inter / uni : 0.f;
}

inline float area_of(const cv::Rect2f& r) { return std::max(r.width, 0.f) * std::max(r.height, 0.f); }

// A NaN score would break the strict weak ordering of the sort; such a face
// can only come from a broken model and is dropped by both NMS versions.
void drop_nan_scores(std::vector<Face>& faces) {
  faces.erase(std::remove_if(faces.begin(), faces.end(), [](const Face& f) { return std::isnan(f.score); }),
              faces.end());
}

}  // namespace

float iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  return iou_corners(a.x, a.y, a.x + a.width, a.y + a.height, area_of(a), b.x, b.y, b.x + b.width, b.y + b.height,
                     area_of(b));
}

// Greedy NMS: sort once by score (stable, so ties keep input order), lay the
// corners out as flat arrays, and let each kept box suppress the later ones.
// O(n log n + n*k) for k kept boxes, no allocation inside the loop.
std::vector<Face> nms(std::vector<Face> faces, float iou_threshold) {
  drop_nan_scores(faces);
  const size_t n = faces.size();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return faces[a].score > faces[b].score; });
  std::vector<float> x1(n), y1(n), x2(n), y2(n), area(n);
  for (size_t i = 0; i < n; ++i) {
    const cv::Rect2f& r = faces[order[i]].box;
    x1[i] = r.x;
    y1[i] = r.y;
    x2[i] = r.x + r.width;
    y2[i] = r.y + r.height;
    area[i] = area_of(r);
  }
  std::vector<uint8_t> removed(n, 0);
  std::vector<Face> kept;
  for (size_t i = 0; i < n; ++i) {
    if (removed[i]) continue;
    kept.push_back(std::move(faces[order[i]]));
    for (size_t j = i + 1; j < n; ++j) {
      if (removed[j]) continue;
      if (iou_corners(x1[i], y1[i], x2[i], y2[i], area[i], x1[j], y1[j], x2[j], y2[j], area[j]) > iou_threshold)
        removed[j] = 1;
    }
  }
  return kept;
}

// The textbook version: repeatedly take the best remaining face (the first on
// a tie), keep it, and drop every remaining face that overlaps it too much.
std::vector<Face> nms_reference(std::vector<Face> faces, float iou_threshold) {
  drop_nan_scores(faces);
  std::vector<Face> kept;
  while (!faces.empty()) {
    size_t best = 0;
    for (size_t i = 1; i < faces.size(); ++i)
      if (faces[i].score > faces[best].score) best = i;
    Face top = faces[best];
    faces.erase(faces.begin() + static_cast<std::ptrdiff_t>(best));
    std::vector<Face> rest;
    for (const Face& f : faces)
      if (!(iou(top.box, f.box) > iou_threshold)) rest.push_back(f);
    faces = std::move(rest);
    kept.push_back(top);
  }
  return kept;
}

cv::Rect2f Letterbox::to_image(const cv::Rect2f& r) const {
  const cv::Point2f tl = to_image(cv::Point2f(r.x, r.y));
  const cv::Point2f br = to_image(cv::Point2f(r.x + r.width, r.y + r.height));
  return {tl.x, tl.y, br.x - tl.x, br.y - tl.y};
}

Result<Letterbox> fit_image(const cv::Mat& bgr, int width, int height, ResizeMode mode, float pad_value,
                            cv::Mat& out) {
  if (bgr.empty()) return Status(ErrorCode::kInvalidArgument, "fit_image: empty image");
  if (width <= 0 || height <= 0)
    return Status(ErrorCode::kInvalidArgument, "fit_image: the target size must be positive, not " +
                                                   std::to_string(width) + "x" + std::to_string(height));
  Letterbox lb;
  // INTER_AREA when shrinking (no aliasing on large photos, as yolov5's
  // letterbox does); bilinear when enlarging.
  auto interp = [&](double s) { return s < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR; };
  if (mode == ResizeMode::kStretch) {
    lb.scale_x = static_cast<float>(width) / static_cast<float>(bgr.cols);
    lb.scale_y = static_cast<float>(height) / static_cast<float>(bgr.rows);
    if (bgr.cols == width && bgr.rows == height)
      bgr.copyTo(out);
    else
      cv::resize(bgr, out, cv::Size(width, height), 0, 0, interp(std::min(lb.scale_x, lb.scale_y)));
    return lb;
  }
  const double s = std::min(static_cast<double>(width) / bgr.cols, static_cast<double>(height) / bgr.rows);
  const int nw = std::clamp(static_cast<int>(std::lround(bgr.cols * s)), 1, width);
  const int nh = std::clamp(static_cast<int>(std::lround(bgr.rows * s)), 1, height);
  const int px = (width - nw) / 2, py = (height - nh) / 2;
  out.create(height, width, bgr.type());
  out.setTo(cv::Scalar::all(pad_value));
  cv::Mat roi = out(cv::Rect(px, py, nw, nh));
  if (nw == bgr.cols && nh == bgr.rows)
    bgr.copyTo(roi);
  else
    cv::resize(bgr, roi, roi.size(), 0, 0, interp(s));
  // The scale actually applied per axis (after rounding to whole pixels), so
  // that mapping back is exact.
  lb.scale_x = static_cast<float>(nw) / static_cast<float>(bgr.cols);
  lb.scale_y = static_cast<float>(nh) / static_cast<float>(bgr.rows);
  lb.pad_x = static_cast<float>(px);
  lb.pad_y = static_cast<float>(py);
  return lb;
}

Status to_blob(const cv::Mat& bgr, const InputSpec& spec, float* out) {
  if (bgr.type() != CV_8UC3)
    return Status(ErrorCode::kInvalidArgument, "to_blob: expected an 8-bit 3-channel BGR image, got type " +
                                                   std::to_string(bgr.type()));
  const int h = bgr.rows, w = bgr.cols;
  const size_t plane = static_cast<size_t>(h) * static_cast<size_t>(w);
  if (spec.channels == "GRAY") {
    if (spec.mean.empty() || spec.std.empty())
      return Status(ErrorCode::kInvalidArgument, "to_blob: a GRAY input needs one mean and one std");
    cv::Mat gray;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    const float m = spec.mean[0], inv = 1.f / spec.std[0];
    for (int y = 0; y < h; ++y) {
      const uint8_t* p = gray.ptr<uint8_t>(y);
      float* o = out + static_cast<size_t>(y) * w;
      for (int x = 0; x < w; ++x) o[x] = (static_cast<float>(p[x]) - m) * inv;
    }
    return Status::Ok();
  }
  if (spec.mean.size() != 3 || spec.std.size() != 3)
    return Status(ErrorCode::kInvalidArgument, "to_blob: a " + spec.channels + " input needs 3 means and 3 stds");
  // src[c]: which BGR byte feeds plane c.
  const bool rgb = spec.channels == "RGB";
  const int src[3] = {rgb ? 2 : 0, 1, rgb ? 0 : 2};
  const float m[3] = {spec.mean[0], spec.mean[1], spec.mean[2]};
  const float inv[3] = {1.f / spec.std[0], 1.f / spec.std[1], 1.f / spec.std[2]};
  float* o0 = out;
  float* o1 = out + plane;
  float* o2 = out + 2 * plane;
  for (int y = 0; y < h; ++y) {
    const uint8_t* p = bgr.ptr<uint8_t>(y);
    const size_t row = static_cast<size_t>(y) * w;
    for (int x = 0; x < w; ++x, p += 3) {
      o0[row + x] = (static_cast<float>(p[src[0]]) - m[0]) * inv[0];
      o1[row + x] = (static_cast<float>(p[src[1]]) - m[1]) * inv[1];
      o2[row + x] = (static_cast<float>(p[src[2]]) - m[2]) * inv[2];
    }
  }
  return Status::Ok();
}

void map_to_image(std::vector<Face>& faces, const Letterbox& lb, cv::Size image_size) {
  const float W = static_cast<float>(image_size.width), H = static_cast<float>(image_size.height);
  for (Face& f : faces) {
    const cv::Rect2f r = lb.to_image(f.box);
    const float x1 = std::clamp(r.x, 0.f, W), y1 = std::clamp(r.y, 0.f, H);
    const float x2 = std::clamp(r.x + r.width, 0.f, W), y2 = std::clamp(r.y + r.height, 0.f, H);
    f.box = cv::Rect2f(x1, y1, x2 - x1, y2 - y1);
    // Landmarks are not clipped: a point just outside the frame is still the
    // best estimate for alignment.
    for (auto& p : f.landmarks) p = lb.to_image(p);
  }
}

}  // namespace facerec
