// YOLOv5-face (deepcam-cn/yolov5-face). Two export layouts, told apart by
// their output shapes:
//  - raw heads: stride_8/16/32 as [1,3,H,W,16], before the sigmoid; decoded
//    here exactly as the repository's Detect layer does;
//  - decoded: one output [1,N,16] as the repository's export.py produces with
//    the Detect layer's decoding included (xywh and landmarks in input pixels,
//    obj and cls sigmoided).
// Each row: cx, cy, w, h, obj, 5 landmark (x,y) pairs, cls.
#include <algorithm>
#include <array>
#include <cmath>

#include "detect/detector_base.h"

namespace facerec::detect_internal {
namespace {

constexpr int kStrides[3] = {8, 16, 32};
// yolov5-face's anchors in input pixels (w,h), three per level P3/P4/P5.
constexpr float kAnchors[3][3][2] = {{{4, 5}, {8, 10}, {13, 16}},
                                     {{23, 29}, {43, 55}, {73, 105}},
                                     {{146, 217}, {231, 300}, {335, 433}}};
constexpr int kRow = 16;

size_t decoded_rows(cv::Size size) {
  size_t n = 0;
  for (int s : kStrides) n += 3 * static_cast<size_t>(size.width / s) * (size.height / s);
  return n;
}

class Yolov5FaceDetector final : public DetectorBase {
 public:
  // raw_order[k]: the session output holding stride kStrides[k]; empty for
  // the decoded layout.
  Yolov5FaceDetector(ModelSpec spec, DetectorOptions opt, std::unique_ptr<InferenceSession> s, NetInput in,
                     std::vector<int> raw_order)
      : DetectorBase(std::move(spec), opt, std::move(s), in), raw_order_(std::move(raw_order)) {}

 protected:
  Result<std::vector<Face>> decode(const std::vector<Tensor>& out, cv::Size size,
                                   const DetectorOptions& opt) const override {
    return raw_order_.empty() ? decode_decoded(out, size, opt) : decode_raw(out, size, opt);
  }

 private:
  Result<std::vector<Face>> decode_raw(const std::vector<Tensor>& t, cv::Size size,
                                       const DetectorOptions& opt) const {
    const float thr = opt.score_threshold;
    // score = sigmoid(obj) * sigmoid(cls) <= sigmoid(obj), so a raw obj below
    // logit(thr) cannot pass: skip it before any exp().
    const float obj_min = logit(thr);
    std::vector<Face> faces;
    for (int k = 0; k < 3; ++k) {
      const int s = kStrides[k];
      const int nx = size.width / s, ny = size.height / s;
      const Tensor& out = t[raw_order_[k]];
      FACEREC_RETURN_IF_ERROR(
          check_numel(out, static_cast<size_t>(3) * ny * nx * kRow, "yolov5face stride " + std::to_string(s)));
      const float* data = out.data.data();
      for (int a = 0; a < 3; ++a) {
        const float aw = kAnchors[k][a][0], ah = kAnchors[k][a][1];
        for (int gy = 0; gy < ny; ++gy)
          for (int gx = 0; gx < nx; ++gx) {
            const float* r = data + ((static_cast<size_t>(a) * ny + gy) * nx + gx) * kRow;
            if (!(r[4] >= obj_min)) continue;
            const float score = sigmoid(r[4]) * sigmoid(r[15]);
            if (!(score >= thr)) continue;
            const float cx = (sigmoid(r[0]) * 2.f - 0.5f + gx) * s;
            const float cy = (sigmoid(r[1]) * 2.f - 0.5f + gy) * s;
            const float w2 = sigmoid(r[2]) * 2.f, h2 = sigmoid(r[3]) * 2.f;
            const float w = w2 * w2 * aw, h = h2 * h2 * ah;
            Face f;
            f.score = score;
            f.box = cv::Rect2f(cx - w / 2.f, cy - h / 2.f, w, h);
            // Landmarks are linear in the raw value: no sigmoid.
            for (int j = 0; j < 5; ++j)
              f.landmarks[j] = {r[5 + 2 * j] * aw + static_cast<float>(gx * s),
                                r[6 + 2 * j] * ah + static_cast<float>(gy * s)};
            faces.push_back(f);
          }
      }
    }
    return faces;
  }

  Result<std::vector<Face>> decode_decoded(const std::vector<Tensor>& t, cv::Size size,
                                           const DetectorOptions& opt) const {
    const Tensor& out = t[0];
    FACEREC_RETURN_IF_ERROR(check_numel(out, decoded_rows(size) * kRow, "yolov5face decoded output"));
    const float thr = opt.score_threshold;
    const size_t n = out.data.size() / kRow;
    std::vector<Face> faces;
    for (size_t i = 0; i < n; ++i) {
      const float* r = out.data.data() + i * kRow;
      if (!(r[4] >= thr)) continue;
      const float score = r[4] * r[15];
      if (!(score >= thr)) continue;
      Face f;
      f.score = score;
      f.box = cv::Rect2f(r[0] - r[2] / 2.f, r[1] - r[3] / 2.f, r[2], r[3]);
      for (int j = 0; j < 5; ++j) f.landmarks[j] = {r[5 + 2 * j], r[6 + 2 * j]};
      faces.push_back(f);
    }
    return faces;
  }

  std::vector<int> raw_order_;
};

}  // namespace

Result<std::unique_ptr<Detector>> create_yolov5face(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                                    const DetectorOptions& opt) {
  FACEREC_ASSIGN_OR_RETURN(auto in, check_image_input(spec, *s, 3));
  FACEREC_ASSIGN_OR_RETURN(auto size, resolve_input_size(in, spec, opt, 32));
  const auto& outs = s->outputs();
  std::vector<int> raw_order;
  if (outs.size() == 3) {
    // Raw heads: identify each output's stride from its grid, for the
    // input size in use (grids may be dynamic; then trust the output order,
    // which is P3, P4, P5 in every yolov5 export).
    raw_order.assign(3, -1);
    for (int i = 0; i < 3; ++i) {
      const auto& sh = outs[i].shape;
      if (sh.size() != 5 || sh[1] != 3 || sh[4] != kRow)
        return model_mismatch(spec, *s, "raw heads should be [1,3,H,W,16]");
      int k = i;
      if (sh[2] > 0 && sh[3] > 0) {
        k = -1;
        for (int j = 0; j < 3; ++j)
          if (sh[2] * kStrides[j] == size.height && sh[3] * kStrides[j] == size.width) k = j;
        if (k < 0)
          return model_mismatch(spec, *s, "output '" + outs[i].name + "' is not a stride 8, 16 or 32 grid of a " +
                                              std::to_string(size.width) + "x" + std::to_string(size.height) +
                                              " input");
      }
      if (raw_order[k] != -1) return model_mismatch(spec, *s, "two outputs have the same stride");
      raw_order[k] = i;
    }
  } else if (outs.size() == 1) {
    const auto& sh = outs[0].shape;
    if (sh.size() != 3 || sh[2] != kRow)
      return model_mismatch(spec, *s, "the decoded export's output should be [1,N,16]");
    if (sh[1] > 0 && static_cast<size_t>(sh[1]) != decoded_rows(size))
      return model_mismatch(spec, *s, "a " + std::to_string(size.width) + "x" + std::to_string(size.height) +
                                          " input gives " + std::to_string(decoded_rows(size)) +
                                          " yolov5 rows (3 anchors per cell at strides 8/16/32), the output has " +
                                          std::to_string(sh[1]));
  } else {
    return model_mismatch(spec, *s, "expected 3 raw head outputs [1,3,H,W,16] or one decoded output [1,N,16]");
  }
  return std::unique_ptr<Detector>(new Yolov5FaceDetector(spec, opt, std::move(s), in, std::move(raw_order)));
}

}  // namespace facerec::detect_internal
