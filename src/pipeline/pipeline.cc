#include "facerec/pipeline.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <opencv2/imgproc.hpp>

#include "facerec/align.h"

namespace facerec {

Result<std::unique_ptr<FaceAnalyzer>> FaceAnalyzer::create(Runtime& runtime, const Manifest& manifest,
                                                           const PipelineConfig& config) {
  FACEREC_ASSIGN_OR_RETURN(
      auto det_spec,
      manifest.resolve(config.detector.empty() ? manifest.default_detector() : config.detector, ModelTask::kDetector));
  std::optional<ModelSpec> lm_spec;
  if (!det_spec.landmarks_model.empty()) {
    FACEREC_ASSIGN_OR_RETURN(auto lm, manifest.resolve(det_spec.landmarks_model, ModelTask::kLandmarks));
    lm_spec = lm;
  }
  FACEREC_ASSIGN_OR_RETURN(
      auto emb_spec,
      manifest.resolve(config.embedder.empty() ? manifest.default_embedder() : config.embedder, ModelTask::kEmbedder));

  std::unique_ptr<FaceAnalyzer> a(new FaceAnalyzer());
  FACEREC_ASSIGN_OR_RETURN(auto det, create_detector(runtime, det_spec, config.detector_options,
                                                     lm_spec ? &*lm_spec : nullptr, &manifest.hashes()));
  a->detector_ = std::move(det);
  a->policy_ = config.detect_policy;
  FACEREC_ASSIGN_OR_RETURN(auto emb, Embedder::create(runtime, emb_spec, config.max_batch, &manifest.hashes()));
  a->embedder_ = std::move(emb);
  return a;
}

Result<std::vector<Face>> FaceAnalyzer::detect(const cv::Mat& bgr) const {
  return detect_with_policy(*detector_, bgr, policy_);
}

Result<std::vector<Face>> FaceAnalyzer::detect(const cv::Mat& bgr, const DetectOptions& options) const {
  return detect_with_policy(*detector_, bgr, policy_, options);
}

Result<std::vector<AnalyzedFace>> FaceAnalyzer::analyze(const cv::Mat& bgr) const {
  return analyze(bgr, detector_->options());
}

Result<std::vector<AnalyzedFace>> FaceAnalyzer::analyze(const cv::Mat& bgr, const DetectOptions& options) const {
  FACEREC_ASSIGN_OR_RETURN(std::vector<Face> faces, detect(bgr, options));
  return embed_faces(bgr, faces);
}

Result<std::vector<AnalyzedFace>> FaceAnalyzer::embed_faces(const cv::Mat& bgr, const std::vector<Face>& faces) const {
  const int size = embedder_->spec().input.width;
  std::vector<cv::Mat> crops;
  crops.reserve(faces.size());
  try {
    for (const auto& f : faces) crops.push_back(align_face(bgr, f, size));
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kInvalidArgument, std::string("align: ") + e.what());
  }
  FACEREC_ASSIGN_OR_RETURN(auto embs, embedder_->embed(crops));
  std::vector<AnalyzedFace> out(faces.size());
  for (size_t i = 0; i < faces.size(); ++i) {
    out[i].face = faces[i];
    out[i].embedding = std::move(embs[i]);
    out[i].quality = quality(&faces[i], crops[i], out[i].embedding);
    out[i].features = measure_quality(&faces[i], crops[i], out[i].embedding);
  }
  return out;
}

Result<std::vector<AnalyzedFace>> FaceAnalyzer::embed_aligned(const std::vector<cv::Mat>& crops) const {
  FACEREC_ASSIGN_OR_RETURN(auto embs, embedder_->embed(crops));
  std::vector<AnalyzedFace> out(crops.size());
  for (size_t i = 0; i < crops.size(); ++i) {
    out[i].face.box = cv::Rect2f(0, 0, static_cast<float>(crops[i].cols), static_cast<float>(crops[i].rows));
    out[i].face.score = 1.f;
    for (int k = 0; k < 5; ++k) out[i].face.landmarks[k] = kArcFaceTemplate112[k] * (crops[i].cols / 112.f);
    out[i].embedding = std::move(embs[i]);
    out[i].quality = quality(nullptr, crops[i], out[i].embedding);
    out[i].features = measure_quality(nullptr, crops[i], out[i].embedding);
  }
  return out;
}

float FaceAnalyzer::quality(const Face* face, const cv::Mat& aligned, const Embedding& e) const {
  const ModelSpec& spec = embedder_->spec();
  if (spec.quality_magnitude) return e.norm;
  if (spec.norm_quality.measured())
    return std::clamp((e.norm - spec.norm_quality.zero) / (spec.norm_quality.one - spec.norm_quality.zero), 0.f, 1.f);
  return face_quality_fallback(face, aligned);
}

std::string FaceAnalyzer::low_quality_reason(const AnalyzedFace& face) const {
  return facerec::low_quality_reason(face.features, embedder_->spec().quality_floor);
}

int largest_face(const std::vector<Face>& faces) {
  int best = -1;
  float area = -1.f;
  for (size_t i = 0; i < faces.size(); ++i)
    if (faces[i].box.area() > area) { area = faces[i].box.area(); best = static_cast<int>(i); }
  return best;
}

int most_central_face(const std::vector<Face>& faces, cv::Size image_size) {
  int best = -1;
  float dist = 0.f;
  const cv::Point2f c(image_size.width / 2.f, image_size.height / 2.f);
  for (size_t i = 0; i < faces.size(); ++i) {
    const auto& b = faces[i].box;
    cv::Point2f d = cv::Point2f(b.x + b.width / 2, b.y + b.height / 2) - c;
    float dd = d.dot(d);
    if (best < 0 || dd < dist) { dist = dd; best = static_cast<int>(i); }
  }
  return best;
}

float face_quality_fallback(const Face* face, const cv::Mat& aligned) {
  float size_term = 1.f, pose_term = 1.f;
  if (face) {
    const cv::Point2f le = face->landmarks[kLeftEye], re = face->landmarks[kRightEye], nose = face->landmarks[kNose];
    const float eye_dist = static_cast<float>(cv::norm(re - le));
    size_term = std::min(1.f, eye_dist / 40.f);
    // Project the nose onto the eye line: 0.5 is frontal, 0 or 1 is full profile.
    const cv::Point2f axis = re - le;
    const float t = eye_dist > 0 ? (nose - le).dot(axis) / (eye_dist * eye_dist) : 0.5f;
    pose_term = std::clamp(1.f - 2.f * std::abs(t - 0.5f), 0.f, 1.f);
  }
  cv::Mat grey, lap;
  cv::cvtColor(aligned, grey, cv::COLOR_BGR2GRAY);
  cv::Laplacian(grey, lap, CV_32F);
  cv::Scalar mean, stddev;
  cv::meanStdDev(lap, mean, stddev);
  // Laplacian variance of a sharp aligned 112x112 face is typically several
  // hundred; 300 and above counts as fully sharp.
  const float sharp_term = std::min(1.f, static_cast<float>(stddev[0] * stddev[0]) / 300.f);
  return size_term * pose_term * sharp_term;
}

}  // namespace facerec
