// SCRFD (InsightFace) with keypoints: per stride 8/16/32 a score map, box
// distances and keypoint offsets, 2 anchors per cell, decoded as
// insightface's scrfd.py does. Scores leave the network already sigmoided.
#include "detect/detector_base.h"

namespace facerec::detect_internal {
namespace {

constexpr int kStrides[3] = {8, 16, 32};
constexpr int kAnchorsPerCell = 2;

class ScrfdDetector final : public DetectorBase {
 public:
  using DetectorBase::DetectorBase;

 protected:
  Result<std::vector<Face>> decode(const std::vector<Tensor>& out, cv::Size size,
                                   const DetectorOptions& opt) const override {
    const std::vector<Tensor>& t = out;
    const float thr = opt.score_threshold;
    std::vector<Face> faces;
    for (int k = 0; k < 3; ++k) {
      const int s = kStrides[k];
      const int fw = size.width / s, fh = size.height / s;
      const size_t n = static_cast<size_t>(fw) * fh * kAnchorsPerCell;
      const std::string at = "scrfd stride " + std::to_string(s);
      FACEREC_RETURN_IF_ERROR(check_numel(t[k], n, at + " scores"));
      FACEREC_RETURN_IF_ERROR(check_numel(t[k + 3], 4 * n, at + " boxes"));
      FACEREC_RETURN_IF_ERROR(check_numel(t[k + 6], 10 * n, at + " keypoints"));
      const float* score = t[k].data.data();
      const float* dist = t[k + 3].data.data();
      const float* kps = t[k + 6].data.data();
      for (size_t i = 0; i < n; ++i) {
        if (!(score[i] >= thr)) continue;
        // Anchor centre in input pixels: cells row-major, anchors innermost.
        const size_t cell = i / kAnchorsPerCell;
        const float cx = static_cast<float>(cell % fw) * s, cy = static_cast<float>(cell / fw) * s;
        const float* d = dist + 4 * i;
        Face f;
        f.score = score[i];
        const float x1 = cx - d[0] * s, y1 = cy - d[1] * s, x2 = cx + d[2] * s, y2 = cy + d[3] * s;
        f.box = cv::Rect2f(x1, y1, x2 - x1, y2 - y1);
        const float* p = kps + 10 * i;
        for (int j = 0; j < 5; ++j) f.landmarks[j] = {cx + p[2 * j] * s, cy + p[2 * j + 1] * s};
        faces.push_back(f);
      }
    }
    return faces;
  }
};

}  // namespace

Result<std::unique_ptr<Detector>> create_scrfd(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                               const DetectorOptions& opt) {
  FACEREC_ASSIGN_OR_RETURN(auto in, check_image_input(spec, *s, 3));
  const auto& outs = s->outputs();
  if (outs.size() == 6)
    return model_mismatch(spec, *s, "it is an SCRFD export without keypoints (6 outputs); facerec needs the 5 "
                                    "landmarks of a *_kps model (9 outputs)");
  if (outs.size() != 9)
    return model_mismatch(spec, *s, "expected 9 outputs (scores, boxes, keypoints for strides 8/16/32)");
  const int64_t want_cols[3] = {1, 4, 10};
  for (int g = 0; g < 3; ++g)
    for (int k = 0; k < 3; ++k) {
      const TensorInfo& t = outs[g * 3 + k];
      if (t.shape.size() < 2 || t.shape.size() > 3 || cols_of(t) != want_cols[g])
        return model_mismatch(spec, *s, "output " + std::to_string(g * 3 + k) + " should be [1,N," +
                                            std::to_string(want_cols[g]) + "]");
    }
  FACEREC_ASSIGN_OR_RETURN(auto size, resolve_input_size(in, spec, opt, 32));
  for (int k = 0; k < 3; ++k) {
    const int64_t n = rows_of(outs[k]);
    const int64_t want = static_cast<int64_t>(size.width / kStrides[k]) * (size.height / kStrides[k]) * 2;
    if (n > 0 && in.fixed_width > 0 && n != want)
      return model_mismatch(spec, *s, "stride " + std::to_string(kStrides[k]) + " should have " +
                                          std::to_string(want) + " anchors (2 per cell) for a " +
                                          std::to_string(size.width) + "x" + std::to_string(size.height) +
                                          " input");
  }
  return std::unique_ptr<Detector>(new ScrfdDetector(spec, opt, std::move(s), in));
}

}  // namespace facerec::detect_internal
