// The end-to-end stage chain: detect -> align -> embed, plus face quality.
//
// Ownership: a FaceAnalyzer owns its detector and embedder sessions; the
// Runtime passed to create() must outlive it. It is immutable after create():
// every call is const and thread-safe, and detection options travel with the
// call (the overloads without options use the ones given at creation).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "facerec/detect.h"
#include "facerec/detect_policy.h"
#include "facerec/embed.h"
#include "facerec/models.h"
#include "facerec/quality.h"
#include "facerec/types.h"

namespace facerec {

struct AnalyzedFace {
  Face face;
  Embedding embedding;
  // Face quality: the raw feature norm for models flagged quality: magnitude
  // (MagFace); the norm mapped to 0..1 for models with a measured
  // "quality_norm" (ModelSpec::norm_quality: the default fr_feature);
  // otherwise face_quality_fallback(), in 0..1.
  float quality = 0.f;
  // The measurements behind quality and the low-quality floor
  // (low_quality_reason() with the embedder's ModelSpec::quality_floor).
  QualityFeatures features;
};

struct PipelineConfig {
  std::string detector;  // manifest id, path, or family:path; empty = manifest default
  std::string embedder;
  DetectorOptions detector_options;
  // How photos are shown to the detector (aspect ratio, frame-filling faces,
  // small-face tiles); see detect_policy.h.
  DetectPolicyOptions detect_policy = default_detect_policy();
  int max_batch = 8;
};

class FaceAnalyzer {
 public:
  static Result<std::unique_ptr<FaceAnalyzer>> create(Runtime& runtime, const Manifest& manifest,
                                                      const PipelineConfig& config);

  // Every face in the image (8-bit BGR), sorted by score, found under the
  // config's detect policy.
  Result<std::vector<Face>> detect(const cv::Mat& bgr) const;
  Result<std::vector<Face>> detect(const cv::Mat& bgr, const DetectOptions& options) const;
  // Detects, aligns and embeds every face (batched through the embedder).
  Result<std::vector<AnalyzedFace>> analyze(const cv::Mat& bgr) const;
  Result<std::vector<AnalyzedFace>> analyze(const cv::Mat& bgr, const DetectOptions& options) const;
  // Aligns and embeds the given faces of an image.
  Result<std::vector<AnalyzedFace>> embed_faces(const cv::Mat& bgr, const std::vector<Face>& faces) const;
  // Embeds already-aligned crops (the embedder's input size).
  Result<std::vector<AnalyzedFace>> embed_aligned(const std::vector<cv::Mat>& crops) const;

  // The quality of an embedded face (see AnalyzedFace::quality); face may be
  // null for a pre-aligned crop.
  float quality(const Face* face, const cv::Mat& aligned, const Embedding& e) const;
  // Why this face is too poor to be named under the embedder's quality floor
  // (manifest "quality_floor"), or empty when it may be named.
  std::string low_quality_reason(const AnalyzedFace& face) const;

  const Detector& detector() const { return *detector_; }
  const Embedder& embedder() const { return *embedder_; }
  const DetectPolicyOptions& detect_policy() const { return policy_; }

 private:
  FaceAnalyzer() = default;
  std::unique_ptr<Detector> detector_;
  std::unique_ptr<Embedder> embedder_;
  DetectPolicyOptions policy_;
};

// The largest face by box area; -1 when there is none.
int largest_face(const std::vector<Face>& faces);
// The face whose box centre is nearest the image centre; -1 when none.
int most_central_face(const std::vector<Face>& faces, cv::Size image_size);

// Quality in 0..1 for embedders with neither magnitude quality nor a measured
// norm quality. On LFW with fr_feature it beat random rejection only barely
// (ERC gain 0.062 against 0.048 for random; the feature norm: 0.45;
// BENCHMARKS.md, "Face quality: ERC"), and its sharpness term rises with hard
// edges such as a black bar over the eyes. Kept for embedders whose norm has
// not been measured. The product of a
// size term (inter-ocular distance in the original image, saturating at 40 px),
// a frontal-pose term (how centred the nose is between the eyes), and a
// sharpness term (variance of the Laplacian of the aligned crop, saturating).
// `face` may be null for pre-aligned crops (size and pose terms are then 1).
float face_quality_fallback(const Face* face, const cv::Mat& aligned);

}  // namespace facerec
