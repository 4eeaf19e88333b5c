// Face-quality scores judged by error-versus-reject curves on LFW pairs
// (eval.h's erc(), as the MagFace paper does). The match threshold is fixed
// (the caller's: typically the embedder's); each candidate score is kept only
// if rejecting its lowest values lowers FNMR at that threshold by more than
// rejecting at random does (the 95th percentile of 200 random rejections,
// seeded, so a run is reproducible).
//
// Every image's embedding and quality measurements can be cached in a text
// file, so that new combinations of scores cost no model run.
//
// Thread safety: run_erc_protocol() only reads the analyzer and the optional
// models; one call per cache file at a time.
#pragma once

#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "facerec/eval.h"
#include "facerec/eval_protocol.h"
#include "facerec/image.h"
#include "facerec/pipeline.h"
#include "facerec/quality.h"

namespace facerec::eval {

// LFW deep-funneled faces sit at about 41.5 px between the eyes in the
// 250x250 image (kLfwMeanLandmarks: (0.5838 - 0.4179) x 250).
constexpr float kLfwInterOcular = 41.5f;

// One image as measured (and cached).
struct ErcMeasurement {
  int source = 0;  // 0 detected, 1 found on the low-confidence retry (0.2), 2 centre crop
  QualityFeatures q;
  float yaw = NAN, pitch = NAN, roll = NAN;  // degrees; NaN without a pose model
  float eye0 = NAN, eye1 = NAN;              // class-0 probability per eye; NaN without an eye model
  Embedding e;
};

struct ErcOptions {
  std::string root;        // LFW's top folder or its images/ folder
  std::string cache_file;  // measurements kept here and reused when the models match; empty = none
  // Downscale each pair's second image so its face is about this many pixels
  // between the eyes (a low-resolution probe); unset = as is.
  std::optional<float> probe_iod;
  double max_reject = 0.2;  // the curves' largest reject fraction, in (0, 1)
  float threshold = 0.f;    // the fixed match threshold (cosine)
  // Optional models whose outputs become candidate scores (not owned).
  const PoseEstimator* pose = nullptr;
  const EyeStateModel* eye = nullptr;
};

struct ErcRow {
  std::string name;  // the candidate score
  ErcCurve curve;
  bool kept = false;  // gain above random_gain_p95
};

struct ErcResult {
  std::vector<ErcRow> rows;
  ErcCurve random_curve;        // the first random rejection (for plots)
  double random_gain_p95 = 0.0; // the gain a score must beat
  int impostors = 0, false_matches = 0;  // different-person pairs, and those at or above the threshold
  double fmr = NAN;                      // false_matches / impostors
  int64_t genuine = 0;                   // same-person pairs
  int centre_crops = 0;                  // images with no face even at confidence 0.2
  bool eyes_measured = false;            // an eye model ran
  int open_eye_class = 0;                // the eye model's class taken as "open" (the LFW majority)
  size_t cached = 0;                     // measurements read from the cache
};

// Errors: kInvalidArgument for no pairs or a max_reject outside (0, 1); an
// image that cannot be read or a model error stops the run, the message
// naming the image; kCancelled when hooks.cancelled answers true (what was
// measured is saved to the cache first); kIo when the cache cannot be
// written. A cache made with other models or options is ignored (remeasured).
Result<ErcResult> run_erc_protocol(const FaceAnalyzer& analyzer, const ImageLimits& limits, std::span<const LfwPair> pairs,
                                   const ErcOptions& options, const ProtocolHooks& hooks = {});

}  // namespace facerec::eval
