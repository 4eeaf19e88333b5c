// Face quality: the measurements that say whether a face can be trusted, and
// the floor below which facerec abstains (answers unknown, reason
// "low_quality") instead of naming anyone.
//
// Which measurements count was decided by error-versus-reject curves on LFW
// (eval::erc(), `facerec eval erc`): a score is kept only where rejecting its
// lowest values lowers FNMR at the FMR = 1e-3 threshold more than rejecting at
// random. The numbers are in BENCHMARKS.md ("Face quality: ERC"); the floor
// itself sits in the manifest, per embedder, with its reason
// (ModelSpec::quality_floor).
//
// Thread safety: the free functions are pure; PoseEstimator and EyeStateModel
// are immutable after create() and may be used from several threads.
#pragma once

#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include <opencv2/core/mat.hpp>

#include "facerec/models.h"
#include "facerec/runtime.h"
#include "facerec/status.h"
#include "facerec/types.h"

namespace facerec {

// What can be measured of one embedded face without extra models.
struct QualityFeatures {
  // Distance between the two eye landmarks in the original image, in pixels;
  // NaN for a pre-aligned crop (its original size is unknown).
  float inter_ocular_px = std::numeric_limits<float>::quiet_NaN();
  // Frontal pose from the landmarks, 0..1: 1 when the nose projects onto the
  // middle of the eye line, 0 at full profile. 1 for a pre-aligned crop.
  float frontal = 1.f;
  // Variance of the Laplacian of the grey aligned crop (112x112, 8-bit):
  // a sharp face scores several hundred, a blurred one tens.
  float sharpness = 0.f;
  // The embedder's raw output norm (MagFace's quality; for other embedders
  // it is only a candidate, judged by ERC like the rest).
  float norm = 0.f;
  // The detector's confidence, 0..1 (1 for a pre-aligned crop).
  float det_score = 1.f;
};

// face may be null for a pre-aligned crop; aligned is the 8-bit BGR crop the
// embedder saw.
QualityFeatures measure_quality(const Face* face, const cv::Mat& aligned, const Embedding& embedding);

// The abstention rule: the reason a face is too poor to be named (for
// example "face too small: 5.2 px between the eyes, the floor is 12 px"), or
// an empty string when it passes. A floor of 0 checks nothing; a NaN feature
// (unknown for a pre-aligned crop) passes its check.
std::string low_quality_reason(const QualityFeatures& q, const QualityFloor& floor);

// Head pose from faceplugin's fr_pose.onnx (a Hopenet-style network: 66 bins
// of 3 degrees per angle, expectation of the softmax, 3 * E[bin] - 99). The
// input follows the package's lib/fr_pose.js: the face box widened by a
// quarter on each side, resized to 224x224, RGB, ImageNet mean/std.
struct HeadPose {
  float yaw = 0.f, pitch = 0.f, roll = 0.f;  // degrees
};
class PoseEstimator {
 public:
  // path: the .onnx; kModel when it is not that network (inputs/outputs).
  static Result<std::unique_ptr<PoseEstimator>> create(Runtime& runtime, const std::string& path);
  // bgr: the whole 8-bit BGR image; face: its box in that image.
  Result<HeadPose> estimate(const cv::Mat& bgr, const Face& face) const;

 private:
  std::unique_ptr<InferenceSession> session_;
};

// Eye state from faceplugin's fr_eye.onnx: a 24x24 grey eye patch scaled to
// 0..1 (lib/fr_eye.js) into two logits. The package never says which class
// is "open"; the caller decides from data (on LFW, whose eyes are almost all
// open, the majority class). Patches here are cut from the ArcFace-aligned
// 112x112 crop around the template's eye points, 0.72 x the inter-ocular
// distance wide (the package's eye width x 1.6 padding, with the eye width
// taken as 0.45 x the inter-ocular distance, because only 5 landmarks are kept).
class EyeStateModel {
 public:
  static Result<std::unique_ptr<EyeStateModel>> create(Runtime& runtime, const std::string& path);
  // aligned: an 8-bit BGR ArcFace crop of any square size. Returns, per eye
  // (image left, image right), the softmax probability of class 0.
  Result<std::array<float, 2>> class0_probability(const cv::Mat& aligned) const;

 private:
  std::unique_ptr<InferenceSession> session_;
};

}  // namespace facerec
