// The 68-point landmark stage (fr_landmark, as faceplugin-face-recognition-js
// runs it in package/lib/fr_landmark.js): a square crop about the detector's
// box, resized bilinearly to the network input in colour, then grey / 256.
#include "landmarks/landmarks68.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "facerec/detect.h"

namespace facerec::landmarks {

std::array<cv::Point2f, 5> reduce_68_to_5(const float* p, Reduce68 how) {
  auto pt = [&](int i) { return cv::Point2f(p[2 * i], p[2 * i + 1]); };
  auto mean = [&](std::initializer_list<int> idx) {
    cv::Point2f s(0, 0);
    for (int i : idx) s += pt(i);
    return s * (1.f / static_cast<float>(idx.size()));
  };
  if (how == Reduce68::kFaceplugin)
    return {mean({37, 38, 40, 41}), mean({43, 44, 46, 47}), pt(30), mean({48, 60}), mean({54, 64})};
  return {mean({36, 37, 38, 39, 40, 41}), mean({42, 43, 44, 45, 46, 47}), pt(30), pt(48), pt(54)};
}

cv::Rect landmark_crop(const cv::Rect2f& box, cv::Size image, float scale) {
  const float W1 = static_cast<float>(image.width - 1), H1 = static_cast<float>(image.height - 1);
  if (W1 < 1.f || H1 < 1.f) return {};
  // fr_detect.js scaleResult(): a square of the box's height about its centre,
  // clipped to the image, truncated to whole pixels by predictLandmarkImage.
  const float side = box.height;
  const float ctx = box.x + box.width / 2.f, cty = box.y + box.height / 2.f;
  const float sx1 = std::trunc(std::max(0.f, ctx - side / 2.f)), sy1 = std::trunc(std::max(0.f, cty - side / 2.f));
  const float sx2 = std::trunc(std::min(W1, ctx + side / 2.f)), sy2 = std::trunc(std::min(H1, cty + side / 2.f));
  const float bw = sx2 - sx1, bh = sy2 - sy1;
  if (!(bw >= 1.f && bh >= 1.f)) return {};
  // fr_landmark.js alignLandmarkImage(): scale about the centre, never beyond
  // the image, then slide the crop back inside it.
  const float s = std::min({H1 / bh, W1 / bw, scale});
  const float nw = bw * s, nh = bh * s;
  const float cx = sx1 + bw / 2.f, cy = sy1 + bh / 2.f;
  float x1 = cx - nw / 2.f, y1 = cy - nh / 2.f, x2 = cx + nw / 2.f, y2 = cy + nh / 2.f;
  if (x1 < 0) { x2 -= x1; x1 = 0; }
  if (y1 < 0) { y2 -= y1; y1 = 0; }
  if (x2 > W1) { x1 -= x2 - W1; x2 = W1; }
  if (y2 > H1) { y1 -= y2 - H1; y2 = H1; }
  cv::Rect r(std::max(static_cast<int>(x1), 0), std::max(static_cast<int>(y1), 0), static_cast<int>(x2 - x1),
             static_cast<int>(y2 - y1));
  return r & cv::Rect(0, 0, image.width, image.height);
}

namespace {

constexpr int kPoints = 68;
constexpr int kValues = 2 * kPoints;

std::string describe(const std::vector<TensorInfo>& tensors) {
  std::ostringstream s;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (i) s << ", ";
    s << "'" << tensors[i].name << "' [";
    for (size_t d = 0; d < tensors[i].shape.size(); ++d) s << (d ? "," : "") << tensors[i].shape[d];
    s << "]";
  }
  return tensors.empty() ? "none" : s.str();
}

}  // namespace

Result<std::unique_ptr<Landmarks68>> Landmarks68::create(std::unique_ptr<InferenceSession> session,
                                                         const ModelSpec& spec, const std::string& detector_id) {
  auto mismatch = [&](const std::string& why) {
    return Status(ErrorCode::kModel, "landmarks model for '" + detector_id + "': model '" + spec.id + "' (" +
                                         spec.path + ") does not fit the " + spec.family + " landmarks model: " +
                                         why + ". It has inputs " + describe(session->inputs()) + " and outputs " +
                                         describe(session->outputs()));
  };
  const auto& ins = session->inputs();
  if (ins.size() != 1) return mismatch("expected exactly one image input");
  const auto& shape = ins[0].shape;
  if (shape.size() != 4) return mismatch("expected a rank-4 NCHW image input");
  if (shape[0] > 1) return mismatch("expected batch size 1 (or dynamic)");
  if (shape[1] != 1 && shape[1] != -1) return mismatch("expected 1 input channel(s)");
  if (spec.input.channels != "GRAY")
    return mismatch("the spec's channel order '" + spec.input.channels + "' does not match");
  const auto& outs = session->outputs();
  int64_t per_image = 1;
  bool batch_first = false;
  if (outs.size() == 1 && !outs[0].shape.empty()) {
    batch_first = outs[0].shape[0] == 1 || outs[0].shape[0] == -1;
    for (size_t d = 1; d < outs[0].shape.size(); ++d) per_image *= outs[0].shape[d];
  }
  if (!batch_first || per_image != kValues)
    return Status(ErrorCode::kModel, "landmarks model '" + spec.id + "' (" + spec.path +
                                         ") should have one output of 136 values (68 x,y); it has " +
                                         describe(outs));
  const cv::Size size(shape[3] > 0 ? static_cast<int>(shape[3]) : spec.input.width,
                      shape[2] > 0 ? static_cast<int>(shape[2]) : spec.input.height);
  if (size.width <= 0 || size.height <= 0)
    return Status(ErrorCode::kModel, "landmarks model '" + spec.id + "' has no input size");
  const bool dynamic = shape[0] == -1 && outs[0].shape[0] == -1;
  std::unique_ptr<Landmarks68> lm(new Landmarks68(std::move(session), spec, size, 1));
  if (dynamic) {
    // A graph whose batch dimension was declared dynamic may still hold a
    // reshape to batch 1: try two faces before relying on it.
    std::vector<float> probe(2 * static_cast<size_t>(size.area()), 0.f);
    std::vector<Tensor> out;
    Status s = lm->session_->run_into({TensorView{probe.data(), {2, 1, size.height, size.width}}}, out);
    if (s.ok() && out.size() == 1 && out[0].data.size() == 2 * kValues) lm->max_batch_ = kMaxBatch;
  }
  return lm;
}

Status Landmarks68::run_batches(const cv::Mat& bgr, std::vector<Face>& faces, const Landmarks68Config& config,
                                int batch) const {
  // Per-thread scratch: no allocation per call once warm, and reentrant.
  thread_local std::vector<float> blob;
  thread_local std::vector<Tensor> out;
  thread_local std::vector<cv::Rect> crops;
  thread_local cv::Mat patch;
  crops.clear();
  std::vector<Face> kept;
  kept.reserve(faces.size());
  for (Face& f : faces) {
    const cv::Rect crop = landmark_crop(f.box, bgr.size(), config.crop_scale);
    if (crop.width < 1 || crop.height < 1) continue;  // nothing of the face is left to look at
    kept.push_back(f);
    crops.push_back(crop);
  }
  const size_t plane = static_cast<size_t>(size_.area());
  for (size_t start = 0; start < kept.size(); start += static_cast<size_t>(batch)) {
    const size_t n = std::min(kept.size() - start, static_cast<size_t>(batch));
    if (blob.size() < n * plane) blob.resize(n * plane);
    for (size_t i = 0; i < n; ++i) {
      // As fr_landmark.js: bilinear resize of the colour crop, then grey.
      cv::resize(bgr(crops[start + i]), patch, size_, 0, 0, cv::INTER_LINEAR);
      FACEREC_RETURN_IF_ERROR(to_blob(patch, spec_.input, blob.data() + i * plane));
    }
    FACEREC_RETURN_IF_ERROR(session_->run_into(
        {TensorView{blob.data(), {static_cast<int64_t>(n), 1, size_.height, size_.width}}}, out));
    if (out.size() != 1 || out[0].data.size() != n * kValues)
      return Status(ErrorCode::kModel, "landmarks model '" + spec_.id + "': expected " +
                                           std::to_string(n * kValues) + " values, the model gave " +
                                           std::to_string(out.empty() ? 0 : out[0].data.size()));
    for (size_t i = 0; i < n; ++i) {
      const cv::Rect& crop = crops[start + i];
      // Points are normalised to the crop.
      float xy[kValues];
      const float* p = out[0].data.data() + i * kValues;
      for (int k = 0; k < kPoints; ++k) {
        xy[2 * k] = crop.x + p[2 * k] * crop.width;
        xy[2 * k + 1] = crop.y + p[2 * k + 1] * crop.height;
      }
      kept[start + i].landmarks = reduce_68_to_5(xy, config.reduce);
    }
  }
  faces = std::move(kept);
  return Status::Ok();
}

Status Landmarks68::refine(const cv::Mat& bgr, std::vector<Face>& faces, const Landmarks68Config& config) const {
  return run_batches(bgr, faces, config, max_batch_);
}

Status Landmarks68::refine_one_by_one(const cv::Mat& bgr, std::vector<Face>& faces,
                                      const Landmarks68Config& config) const {
  return run_batches(bgr, faces, config, 1);
}

}  // namespace facerec::landmarks
