// The npm default: fr_detect (an UltraFace RFB-320 style net, input 320x240
// stretched, RGB (x-127)/128) plus fr_landmark (68 points from a 64x64
// greyscale crop / 256), as faceplugin-face-recognition-js runs them
// (package/lib/fr_detect.js, fr_landmark.js).
//
// fr_detect's graph ends with the prior-box decoding and a softmax: `boxes`
// are corner boxes x1,y1,x2,y2 normalised to 0..1 of the input, `scores`
// column 1 is the face probability (fr_detect.js multiplies `boxes` by
// [320,240,320,240] and never uses its own decodeBBox result).
//
// Face.box is the network's box. fr_detect.js reports a square of the box's
// height instead; that square is used here only to crop for the landmarks.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "detect/detector_base.h"

namespace facerec::detect_internal {

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

class UltraFaceDetector final : public DetectorBase {
 public:
  UltraFaceDetector(ModelSpec spec, DetectorOptions opt, std::unique_ptr<InferenceSession> s, NetInput in,
                    int scores_at, int boxes_at, std::unique_ptr<InferenceSession> lm, ModelSpec lm_spec,
                    cv::Size lm_size, UltraFaceConfig config)
      : DetectorBase(std::move(spec), opt, std::move(s), in),
        scores_at_(scores_at),
        boxes_at_(boxes_at),
        lm_(std::move(lm)),
        lm_spec_(std::move(lm_spec)),
        lm_size_(lm_size),
        config_(config) {}

 protected:
  int size_multiple() const override { return 1; }
  Result<std::vector<Face>> decode(const std::vector<Tensor>& out, cv::Size size,
                                   const DetectorOptions& opt) const override {
    const Tensor& scores = out[scores_at_];
    const Tensor& boxes = out[boxes_at_];
    const size_t n = scores.data.size() / 2;
    FACEREC_RETURN_IF_ERROR(check_numel(scores, 2 * n, "ultraface scores"));
    FACEREC_RETURN_IF_ERROR(check_numel(boxes, 4 * n, "ultraface boxes"));
    const float thr = opt.score_threshold;
    const float W = static_cast<float>(size.width), H = static_cast<float>(size.height);
    std::vector<Face> faces;
    for (size_t i = 0; i < n; ++i) {
      const float score = scores.data[2 * i + 1];
      if (!(score >= thr)) continue;
      const float* b = boxes.data.data() + 4 * i;
      Face f;
      f.score = score;
      f.box = cv::Rect2f(b[0] * W, b[1] * H, (b[2] - b[0]) * W, (b[3] - b[1]) * H);
      faces.push_back(f);
    }
    return faces;
  }

  // The landmark stage, on the faces that survived NMS, in image pixels.
  Status refine(const cv::Mat& bgr, std::vector<Face>& faces) const override {
    cv::Mat patch;
    std::vector<float> blob(static_cast<size_t>(lm_size_.area()));
    std::vector<Face> kept;
    kept.reserve(faces.size());
    for (Face& f : faces) {
      const cv::Rect crop = landmark_crop(f.box, bgr.size(), config_.landmark_crop_scale);
      if (crop.width < 1 || crop.height < 1) continue;  // nothing of the face is left to look at
      // As fr_landmark.js: bilinear resize of the colour crop, then grey.
      cv::resize(bgr(crop), patch, lm_size_, 0, 0, cv::INTER_LINEAR);
      to_blob(patch, lm_spec_.input, blob.data());
      auto out = lm_->run({TensorView{blob.data(), {1, 1, lm_size_.height, lm_size_.width}}});
      if (!out.ok()) return out.status();
      FACEREC_RETURN_IF_ERROR(check_numel((*out)[0], 136, "fr_landmark output"));
      // Points are normalised to the crop.
      float xy[136];
      const float* p = (*out)[0].data.data();
      for (int i = 0; i < 68; ++i) {
        xy[2 * i] = crop.x + p[2 * i] * crop.width;
        xy[2 * i + 1] = crop.y + p[2 * i + 1] * crop.height;
      }
      f.landmarks = reduce_68_to_5(xy, config_.reduce);
      kept.push_back(f);
    }
    faces = std::move(kept);
    return Status::Ok();
  }

 private:
  int scores_at_, boxes_at_;
  std::unique_ptr<InferenceSession> lm_;
  ModelSpec lm_spec_;
  cv::Size lm_size_;
  UltraFaceConfig config_;
};

}  // namespace

Result<std::unique_ptr<Detector>> create_ultraface(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                                   const DetectorOptions& opt,
                                                   std::unique_ptr<InferenceSession> lm, const ModelSpec& lm_spec,
                                                   const UltraFaceConfig& config) {
  auto in = check_image_input(spec, *s, 3);
  if (!in.ok()) return in.status();
  auto size = resolve_input_size(*in, spec, opt, 1);
  if (!size.ok()) return size.status();
  const auto& outs = s->outputs();
  if (outs.size() != 2) return model_mismatch(spec, *s, "expected 2 outputs, scores [1,N,2] and boxes [1,N,4]");
  int scores_at = -1, boxes_at = -1;
  for (int i = 0; i < 2; ++i) {
    if (outs[i].name == "scores") scores_at = i;
    if (outs[i].name == "boxes") boxes_at = i;
  }
  if (scores_at < 0 || boxes_at < 0 || scores_at == boxes_at) {  // unnamed: tell them apart by width
    scores_at = cols_of(outs[0]) == 2 ? 0 : 1;
    boxes_at = 1 - scores_at;
  }
  if (cols_of(outs[scores_at]) != 2 || cols_of(outs[boxes_at]) != 4 ||
      rows_of(outs[scores_at]) != rows_of(outs[boxes_at]))
    return model_mismatch(spec, *s, "expected scores [1,N,2] and boxes [1,N,4]");

  // The landmark model: one 1-channel image in, 136 values (68 x,y) out.
  auto lm_in = check_image_input(lm_spec, *lm, 1);
  if (!lm_in.ok())
    return Status(ErrorCode::kModel, "landmarks model for '" + spec.id + "': " + lm_in.status().message());
  const auto& lm_outs = lm->outputs();
  int64_t lm_numel = 1;
  if (lm_outs.size() == 1)
    for (auto d : lm_outs[0].shape) lm_numel *= d;
  if (lm_outs.size() != 1 || lm_numel != 136)
    return Status(ErrorCode::kModel, "landmarks model '" + lm_spec.id + "' (" + lm_spec.path +
                                         ") should have one output of 136 values (68 x,y); it has " +
                                         describe(lm_outs));
  cv::Size lm_size(lm_in->fixed_width > 0 ? lm_in->fixed_width : lm_spec.input.width,
                   lm_in->fixed_height > 0 ? lm_in->fixed_height : lm_spec.input.height);
  if (lm_size.width <= 0 || lm_size.height <= 0)
    return Status(ErrorCode::kModel, "landmarks model '" + lm_spec.id + "' has no input size");
  return std::unique_ptr<Detector>(new UltraFaceDetector(spec, opt, std::move(s), *in, scores_at, boxes_at,
                                                         std::move(lm), lm_spec, lm_size, config));
}

}  // namespace facerec::detect_internal
