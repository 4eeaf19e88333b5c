#include "facerec/quality.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgproc.hpp>

#include "facerec/align.h"

namespace facerec {

QualityFeatures measure_quality(const Face* face, const cv::Mat& aligned, const Embedding& embedding) {
  QualityFeatures q;
  q.norm = embedding.norm;
  if (face) {
    const cv::Point2f le = face->landmarks[kLeftEye], re = face->landmarks[kRightEye], nose = face->landmarks[kNose];
    const float eye_dist = static_cast<float>(cv::norm(re - le));
    q.inter_ocular_px = eye_dist;
    // Project the nose onto the eye line: 0.5 is frontal, 0 or 1 full profile.
    const cv::Point2f axis = re - le;
    const float t = eye_dist > 0 ? (nose - le).dot(axis) / (eye_dist * eye_dist) : 0.5f;
    q.frontal = std::clamp(1.f - 2.f * std::abs(t - 0.5f), 0.f, 1.f);
    q.det_score = face->score;
  }
  if (!aligned.empty()) {
    cv::Mat grey, lap;
    if (aligned.channels() == 3) cv::cvtColor(aligned, grey, cv::COLOR_BGR2GRAY);
    else grey = aligned;
    cv::Laplacian(grey, lap, CV_32F);
    cv::Scalar mean, stddev;
    cv::meanStdDev(lap, mean, stddev);
    q.sharpness = static_cast<float>(stddev[0] * stddev[0]);
  }
  return q;
}

namespace {
std::string num(float v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}
}  // namespace

std::string low_quality_reason(const QualityFeatures& q, const QualityFloor& floor) {
  if (floor.min_inter_ocular_px > 0 && q.inter_ocular_px < floor.min_inter_ocular_px)  // NaN compares false: passes
    return "face too small: " + num(q.inter_ocular_px) + " px between the eyes, the floor is " +
           num(floor.min_inter_ocular_px) + " px";
  if (floor.min_frontal > 0 && q.frontal < floor.min_frontal)
    return "face turned too far: frontal " + num(q.frontal) + ", the floor is " + num(floor.min_frontal);
  if (floor.min_norm > 0 && q.norm < floor.min_norm)
    return "face too poor for the embedder (blurred, turned, occluded or small): feature norm " + num(q.norm) +
           ", the floor is " + num(floor.min_norm);
  if (floor.min_sharpness > 0 && q.sharpness < floor.min_sharpness)
    return "face too blurred: sharpness " + num(q.sharpness) + ", the floor is " + num(floor.min_sharpness);
  return {};
}

// ------------------------------- fr_pose -------------------------------------

namespace {
constexpr int kPoseSize = 224;
constexpr int kPoseBins = 66;

float expected_angle(const float* logits) {
  float mx = logits[0];
  for (int i = 1; i < kPoseBins; ++i) mx = std::max(mx, logits[i]);
  double sum = 0, weighted = 0;
  for (int i = 0; i < kPoseBins; ++i) {
    const double e = std::exp(static_cast<double>(logits[i] - mx));
    sum += e;
    weighted += e * i;
  }
  return static_cast<float>(weighted / sum * 3.0 - 99.0);
}
}  // namespace

Result<std::unique_ptr<PoseEstimator>> PoseEstimator::create(Runtime& runtime, const std::string& path) {
  FACEREC_ASSIGN_OR_RETURN(auto s, runtime.load(path));
  const auto& in = s->inputs();
  const auto& out = s->outputs();
  if (in.size() != 1 || out.size() != 3)
    return Status(ErrorCode::kModel, path + ": not a head-pose network of fr_pose's layout (1 input, 3 outputs of 66 bins)");
  std::unique_ptr<PoseEstimator> p(new PoseEstimator());
  p->session_ = std::move(s);
  return p;
}

Result<HeadPose> PoseEstimator::estimate(const cv::Mat& bgr, const Face& face) const {
  if (bgr.empty() || bgr.type() != CV_8UC3) return Status(ErrorCode::kInvalidArgument, "pose: expects an 8-bit BGR image");
  const cv::Rect2f& b = face.box;
  cv::Rect r(static_cast<int>(b.x - b.width / 4), static_cast<int>(b.y - b.height / 4),
             static_cast<int>(b.width * 1.5f), static_cast<int>(b.height * 1.5f));
  r &= cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (r.width < 2 || r.height < 2) return Status(ErrorCode::kInvalidArgument, "pose: face box outside the image");
  cv::Mat sized, rgb;
  cv::resize(bgr(r), sized, cv::Size(kPoseSize, kPoseSize));
  cv::cvtColor(sized, rgb, cv::COLOR_BGR2RGB);
  static constexpr float kMean[3] = {0.485f, 0.456f, 0.406f}, kStd[3] = {0.229f, 0.224f, 0.225f};
  std::vector<float> blob(3 * kPoseSize * kPoseSize);
  for (int y = 0; y < kPoseSize; ++y)
    for (int x = 0; x < kPoseSize; ++x) {
      const cv::Vec3b& p = rgb.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c)
        blob[static_cast<size_t>((c * kPoseSize + y) * kPoseSize + x)] = (p[c] / 255.f - kMean[c]) / kStd[c];
    }
  FACEREC_ASSIGN_OR_RETURN(auto out, session_->run({TensorView{blob.data(), {1, 3, kPoseSize, kPoseSize}}}));
  for (const auto& t : out)
    if (t.numel() != kPoseBins) return Status(ErrorCode::kModel, "pose: an output is not 66 bins");
  // Output order as lib/fr_pose.js reads them: yaw, pitch, roll.
  return HeadPose{expected_angle(out[0].data.data()), expected_angle(out[1].data.data()),
                  expected_angle(out[2].data.data())};
}

// -------------------------------- fr_eye -------------------------------------

namespace {
constexpr int kEyeSize = 24;
}

Result<std::unique_ptr<EyeStateModel>> EyeStateModel::create(Runtime& runtime, const std::string& path) {
  FACEREC_ASSIGN_OR_RETURN(auto s, runtime.load(path));
  if (s->inputs().size() != 1 || s->outputs().size() != 1)
    return Status(ErrorCode::kModel, path + ": not an eye-state network of fr_eye's layout (1 input, 1 output)");
  std::unique_ptr<EyeStateModel> m(new EyeStateModel());
  m->session_ = std::move(s);
  return m;
}

Result<std::array<float, 2>> EyeStateModel::class0_probability(const cv::Mat& aligned) const {
  if (aligned.empty() || aligned.type() != CV_8UC3 || aligned.cols != aligned.rows)
    return Status(ErrorCode::kInvalidArgument, "eye state: expects a square 8-bit BGR aligned crop");
  const float scale = aligned.cols / 112.f;
  const float iod = static_cast<float>(cv::norm(kArcFaceTemplate112[kRightEye] - kArcFaceTemplate112[kLeftEye])) * scale;
  const float side = 0.72f * iod;
  cv::Mat grey;
  cv::cvtColor(aligned, grey, cv::COLOR_BGR2GRAY);
  std::array<float, 2> out{};
  for (int k = 0; k < 2; ++k) {
    const cv::Point2f c = kArcFaceTemplate112[k] * scale;
    cv::Rect r(static_cast<int>(std::lround(c.x - side / 2)), static_cast<int>(std::lround(c.y - side / 2)),
               static_cast<int>(std::lround(side)), static_cast<int>(std::lround(side)));
    r &= cv::Rect(0, 0, grey.cols, grey.rows);
    cv::Mat patch;
    cv::resize(grey(r), patch, cv::Size(kEyeSize, kEyeSize));
    std::vector<float> blob(kEyeSize * kEyeSize);
    for (int y = 0; y < kEyeSize; ++y)
      for (int x = 0; x < kEyeSize; ++x) blob[static_cast<size_t>(y * kEyeSize + x)] = patch.at<uint8_t>(y, x) / 255.f;
    FACEREC_ASSIGN_OR_RETURN(auto res, session_->run({TensorView{blob.data(), {1, 1, kEyeSize, kEyeSize}}}));
    const auto& t = res[0];
    if (t.numel() != 2) return Status(ErrorCode::kModel, "eye state: the output is not 2 logits");
    const float m = std::max(t.data[0], t.data[1]);
    const float e0 = std::exp(t.data[0] - m), e1 = std::exp(t.data[1] - m);
    out[static_cast<size_t>(k)] = e0 / (e0 + e1);
  }
  return out;
}

}  // namespace facerec
