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

namespace {

class UltraFaceDetector final : public DetectorBase {
 public:
  UltraFaceDetector(ModelSpec spec, DetectorOptions opt, std::unique_ptr<InferenceSession> s, NetInput in,
                    int scores_at, int boxes_at, std::unique_ptr<landmarks::Landmarks68> lm, UltraFaceConfig config)
      : DetectorBase(std::move(spec), opt, std::move(s), in),
        scores_at_(scores_at),
        boxes_at_(boxes_at),
        lm_(std::move(lm)),
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

  // The landmark stage (src/landmarks), on the faces that survived NMS, in
  // image pixels: one batched run for all of them.
  Status refine(const cv::Mat& bgr, std::vector<Face>& faces) const override {
    return lm_->refine(bgr, faces, {config_.landmark_crop_scale, config_.reduce});
  }

 private:
  int scores_at_, boxes_at_;
  std::unique_ptr<landmarks::Landmarks68> lm_;
  UltraFaceConfig config_;
};

}  // namespace

Result<std::unique_ptr<Detector>> create_ultraface(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                                   const DetectorOptions& opt,
                                                   std::unique_ptr<InferenceSession> lm, const ModelSpec& lm_spec,
                                                   const UltraFaceConfig& config) {
  FACEREC_ASSIGN_OR_RETURN(auto in, check_image_input(spec, *s, 3));
  FACEREC_ASSIGN_OR_RETURN(auto size, resolve_input_size(in, spec, opt, 1));
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
  FACEREC_ASSIGN_OR_RETURN(std::unique_ptr<landmarks::Landmarks68> landmarks,
                           landmarks::Landmarks68::create(std::move(lm), lm_spec, spec.id));
  return std::unique_ptr<Detector>(
      new UltraFaceDetector(spec, opt, std::move(s), in, scores_at, boxes_at, std::move(landmarks), config));
}

}  // namespace facerec::detect_internal
