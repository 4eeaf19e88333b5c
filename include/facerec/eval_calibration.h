// The impostor calibration of an embedder (open_set.h's
// ImpostorCalibration: the threshold that gives FPIR F in a gallery of N
// people), measured on LFW's calibration people (is_calibration_person(),
// disjoint from the open-set test people): one pool image per person
// (seeded), every image of these people a probe against every other pool
// person.
//
// Thread safety: run_calibration() only reads the analyzer; one call per
// cache file at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "facerec/eval_protocol.h"
#include "facerec/image.h"
#include "facerec/open_set.h"
#include "facerec/pipeline.h"

namespace facerec::eval {

struct CalibrationOptions {
  std::string root;        // LFW's top folder or its images/ folder
  std::string cache_file;  // EmbeddingCache file; empty = none
  uint64_t seed = 8;       // of the pool image picked per person
  bool flip = false;       // flip test-time augmentation
};

// The independence model's prediction at one calibrated point:
// FPIR = 1 - (1 - FAR(t))^N, FAR(t) the per-comparison false accept rate.
struct IndependenceCheck {
  double fpir = 0.0;
  int64_t people = 0;
  float threshold = 0.f;  // the calibrated one for (fpir, people)
  double independence_model_fpir = 0.0;
};

struct CalibrationRun {
  // The grids facerec uses (default_fpir_grid(), default_people_grid()).
  // provenance: data, detector and the counts are filled; command and date
  // are the caller's.
  ImpostorCalibration calibration;
  int64_t pool_people = 0;
  size_t calibration_people = 0, images = 0;
  std::vector<IndependenceCheck> independence;  // at FPIR 1%, for each N of the grid
};

// Errors: the make_lfw_templates() errors; calibrate_impostors()'s
// kInvalidArgument when there are no impostor scores.
Result<CalibrationRun> run_calibration(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                       const CalibrationOptions& options, const ProtocolHooks& hooks = {});

}  // namespace facerec::eval
