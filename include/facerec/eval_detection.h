// WIDER FACE detection: average precision on the easy, medium and hard
// subsets, by the official rules (eval.h's wider_pr_curve()).
//
// Thread safety: run_wider_detection() only reads the analyzer.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "facerec/eval.h"
#include "facerec/eval_protocol.h"
#include "facerec/image.h"
#include "facerec/pipeline.h"

namespace facerec::eval {

// Without an explicit detection confidence the evaluation keeps faces down to
// this one, so the precision/recall curve reaches high recall, as the official
// evaluation expects of submitted detections (and the published
// RetinaFace/SCRFD evaluations use 0.02).
constexpr float kDetectEvalScore = 0.02f;

// The ground truth of the images listed in `gt_txt` (wider_face_val_bbx_gt.txt
// or a subset of it), with each subset's faces from
// wider_{easy,medium,hard}_val.mat in `mat_dir` (empty: gt_txt's folder).
// Errors as read_wider_gt_txt() and read_wider_subsets() give them.
Result<std::vector<WiderGtImage>> read_wider_ground_truth(const std::string& gt_txt, const std::string& mat_dir = "");

struct WiderDetectionOptions {
  std::string images_dir;  // holds <event>/<file>.jpg, as the ground truth names them
  // The highest-scoring detections kept per image (0: all). RetinaFace's
  // WIDER evaluation keeps 750 (keep_top_k); a detector at confidence 0.02
  // can leave thousands per image after NMS, each costing a landmark run.
  int max_faces = 750;
};

struct WiderDetectionResult {
  std::vector<std::vector<ScoredBox>> detections;  // per ground-truth image, in original-image pixels
  std::array<PrCurve, 3> curves;                   // indexed by WiderSubset: easy, medium, hard
  size_t total_detections = 0;
};

// Detects faces in every image with the analyzer's detector options (its
// confidence threshold included: set kDetectEvalScore there) and
// options.max_faces, and scores them. Every listed image is part of the
// measurement: one that cannot be read stops the run with the loader's
// error. kCancelled when hooks.cancelled answers true; kInvalidArgument for
// a negative max_faces.
Result<WiderDetectionResult> run_wider_detection(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                                 const std::vector<WiderGtImage>& ground_truth,
                                                 const WiderDetectionOptions& options, const ProtocolHooks& hooks = {});

}  // namespace facerec::eval
