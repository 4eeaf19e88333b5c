// RetinaFace MobileNet-0.25 (biubug6/Pytorch_Retinaface export): one output
// [1,N,16] = loc 4, conf 2, landmarks 10 per prior. Priors: min sizes
// {16,32},{64,128},{256,512} at steps 8/16/32, no clipping; variances 0.1
// (centres, landmarks) and 0.2 (sizes).
#include <cmath>

#include "detect/detector_base.h"

namespace facerec::detect_internal {
namespace {

constexpr int kSteps[3] = {8, 16, 32};
constexpr float kMinSizes[3][2] = {{16, 32}, {64, 128}, {256, 512}};
constexpr float kVarCentre = 0.1f, kVarSize = 0.2f;

// Priors for a width x height input (feature maps ceil(size/step)).
size_t prior_count(int width, int height) {
  size_t n = 0;
  for (int s : kSteps) n += static_cast<size_t>((width + s - 1) / s) * ((height + s - 1) / s) * 2;
  return n;
}

class RetinaFaceDetector final : public DetectorBase {
 public:
  using DetectorBase::DetectorBase;

 protected:
  Result<std::vector<Face>> decode(const std::vector<Tensor>& out, cv::Size size,
                                   const DetectorOptions& opt) const override {
    const Tensor& t = out[0];
    const size_t n = prior_count(size.width, size.height);
    FACEREC_RETURN_IF_ERROR(check_numel(t, n * 16, "retinaface output0"));
    const float* row = t.data.data();

    // This export leaves conf as raw logits (its graph has no Softmax), but
    // other exports append one. Probabilities iff every row is a distribution.
    bool probabilities = true;
    for (size_t i = 0; i < n && probabilities; ++i) {
      const float c0 = row[i * 16 + 4], c1 = row[i * 16 + 5];
      probabilities = c0 >= 0.f && c1 >= 0.f && std::fabs(c0 + c1 - 1.f) < 1e-3f;
    }
    const float thr = opt.score_threshold;
    // softmax(c)[1] = sigmoid(c1 - c0) >= thr  <=>  c1 - c0 >= logit(thr).
    const float thr_logit = logit(thr);

    std::vector<Face> faces;
    size_t idx = 0;
    for (int k = 0; k < 3; ++k) {
      const int step = kSteps[k];
      const int fw = (size.width + step - 1) / step, fh = (size.height + step - 1) / step;
      for (int y = 0; y < fh; ++y)
        for (int x = 0; x < fw; ++x)
          for (float min_size : kMinSizes[k]) {
            const float* r = row + 16 * idx++;
            float score;
            if (probabilities) {
              score = r[5];
              if (!(score >= thr)) continue;
            } else {
              const float d = r[5] - r[4];
              if (!(d >= thr_logit)) continue;
              score = sigmoid(d);
            }
            // Prior in input pixels.
            const float pcx = (x + 0.5f) * step, pcy = (y + 0.5f) * step, ps = min_size;
            const float cx = pcx + r[0] * kVarCentre * ps, cy = pcy + r[1] * kVarCentre * ps;
            const float w = ps * std::exp(r[2] * kVarSize), h = ps * std::exp(r[3] * kVarSize);
            Face f;
            f.score = score;
            f.box = cv::Rect2f(cx - w / 2.f, cy - h / 2.f, w, h);
            for (int j = 0; j < 5; ++j)
              f.landmarks[j] = {pcx + r[6 + 2 * j] * kVarCentre * ps, pcy + r[7 + 2 * j] * kVarCentre * ps};
            faces.push_back(f);
          }
    }
    return faces;
  }
};

}  // namespace

Result<std::unique_ptr<Detector>> create_retinaface(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                                    const DetectorOptions& opt) {
  FACEREC_ASSIGN_OR_RETURN(auto in, check_image_input(spec, *s, 3));
  const auto& outs = s->outputs();
  if (outs.size() != 1 || cols_of(outs[0]) != 16 || outs[0].shape.size() < 2 || outs[0].shape.size() > 3)
    return model_mismatch(spec, *s, "expected one output [1,N,16] (loc 4, conf 2, landmarks 10)");
  FACEREC_ASSIGN_OR_RETURN(auto size, resolve_input_size(in, spec, opt, 32));
  const int64_t n = rows_of(outs[0]);
  const size_t want = prior_count(size.width, size.height);
  if (n > 0 && in.fixed_width > 0 && static_cast<size_t>(n) != want)
    return model_mismatch(spec, *s, "a " + std::to_string(size.width) + "x" + std::to_string(size.height) +
                                        " input has " + std::to_string(want) + " RetinaFace priors, the output has " +
                                        std::to_string(n) + " rows");
  return std::unique_ptr<Detector>(new RetinaFaceDetector(spec, opt, std::move(s), in));
}

}  // namespace facerec::detect_internal
