// YuNet (libfacedetection / OpenCV zoo): anchor-free, one prediction per cell
// at strides 8/16/32, decoded as OpenCV's FaceDetectorYN does
// (modules/objdetect/src/face_detect.cpp). cls and obj leave the network
// already sigmoided; the input is BGR 0-255 without scaling. The input is
// dynamic, with H and W multiples of 32.
#include <algorithm>
#include <array>
#include <cmath>

#include "detect/detector_base.h"

namespace facerec::detect_internal {
namespace {

constexpr int kStrides[3] = {8, 16, 32};
// Output groups, in the order OpenCV asks for them.
constexpr const char* kGroups[4] = {"cls", "obj", "bbox", "kps"};
constexpr int64_t kGroupCols[4] = {1, 1, 4, 10};

class YuNetDetector final : public DetectorBase {
 public:
  // order[g*3+k]: index into the session outputs of group g at stride k.
  YuNetDetector(ModelSpec spec, DetectorOptions opt, std::unique_ptr<InferenceSession> s, NetInput in,
                std::array<int, 12> order)
      : DetectorBase(std::move(spec), opt, std::move(s), in), order_(order) {}

 protected:
  Result<std::vector<Face>> decode(const std::vector<Tensor>& out, cv::Size size,
                                   const DetectorOptions& opt) const override {
    const std::vector<Tensor>& t = out;
    const float thr = opt.score_threshold;
    std::vector<Face> faces;
    for (int k = 0; k < 3; ++k) {
      const int s = kStrides[k];
      const int cols = size.width / s, rows = size.height / s;
      const size_t n = static_cast<size_t>(cols) * rows;
      const Tensor* g[4];
      for (int j = 0; j < 4; ++j) {
        g[j] = &t[order_[j * 3 + k]];
        FACEREC_RETURN_IF_ERROR(check_numel(*g[j], n * kGroupCols[j],
                                            std::string("yunet ") + kGroups[j] + "_" + std::to_string(s)));
      }
      const float* cls = g[0]->data.data();
      const float* obj = g[1]->data.data();
      const float* bbox = g[2]->data.data();
      const float* kps = g[3]->data.data();
      for (size_t i = 0; i < n; ++i) {
        const float score = std::sqrt(std::clamp(cls[i], 0.f, 1.f) * std::clamp(obj[i], 0.f, 1.f));
        if (!(score >= thr)) continue;
        const float c = static_cast<float>(i % cols), r = static_cast<float>(i / cols);
        const float* b = bbox + 4 * i;
        const float cx = (c + b[0]) * s, cy = (r + b[1]) * s;
        const float w = std::exp(b[2]) * s, h = std::exp(b[3]) * s;
        Face f;
        f.score = score;
        f.box = cv::Rect2f(cx - w / 2.f, cy - h / 2.f, w, h);
        // YuNet's first point is the subject's right eye, which is the
        // image-left one: the same order as facerec's.
        const float* p = kps + 10 * i;
        for (int j = 0; j < 5; ++j) f.landmarks[j] = {(p[2 * j] + c) * s, (p[2 * j + 1] + r) * s};
        faces.push_back(f);
      }
    }
    return faces;
  }

 private:
  std::array<int, 12> order_;
};

}  // namespace

Result<std::unique_ptr<Detector>> create_yunet(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                               const DetectorOptions& opt) {
  FACEREC_ASSIGN_OR_RETURN(auto in, check_image_input(spec, *s, 3));
  const auto& outs = s->outputs();
  if (outs.size() != 12)
    return model_mismatch(spec, *s, "expected 12 outputs (cls, obj, bbox, kps for strides 8/16/32)");
  // By name when the export uses OpenCV's names (cls_8, ...), else by
  // position in that same order.
  std::array<int, 12> order{};
  bool named = true;
  for (int g = 0; g < 4 && named; ++g)
    for (int k = 0; k < 3 && named; ++k) {
      const std::string want = std::string(kGroups[g]) + "_" + std::to_string(kStrides[k]);
      auto it = std::find_if(outs.begin(), outs.end(), [&](const TensorInfo& t) { return t.name == want; });
      if (it == outs.end()) named = false;
      else order[g * 3 + k] = static_cast<int>(it - outs.begin());
    }
  if (!named)
    for (int i = 0; i < 12; ++i) order[i] = i;
  for (int i = 0; i < 12; ++i) {
    const TensorInfo& t = outs[order[i]];
    if (cols_of(t) != kGroupCols[i / 3])
      return model_mismatch(spec, *s, "output '" + t.name + "' should be [1,N," +
                                          std::to_string(kGroupCols[i / 3]) + "] (" + kGroups[i / 3] + ")");
  }
  FACEREC_ASSIGN_OR_RETURN(auto size, resolve_input_size(in, spec, opt, 32));
  if (in.fixed_width > 0 && (in.fixed_width % 32 || in.fixed_height % 32))
    return model_mismatch(spec, *s, "a fixed input size must be a multiple of 32");
  return std::unique_ptr<Detector>(new YuNetDetector(spec, opt, std::move(s), in, order));
}

}  // namespace facerec::detect_internal
