// The LFW open-set identification protocol (issue 8; the split and the
// trials are described in eval_open_set.h), run end to end: for each gallery
// size and template rule, the threshold the product would use (the decision
// policy resolved for that gallery, as identify resolves it), the FPIR and
// DIR measured at it, the oracle DIR at the asked FPIR, and rank-1.
//
// Thread safety: run_lfw_open_set() only reads the analyzer; one call per
// cache file at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "facerec/eval_open_set.h"
#include "facerec/eval_protocol.h"
#include "facerec/image.h"
#include "facerec/open_set.h"
#include "facerec/pipeline.h"

namespace facerec::eval {

struct LfwOpenSetOptions {
  std::string root;        // LFW's top folder or its images/ folder
  std::string cache_file;  // EmbeddingCache file; empty = none
  bool flip = false;       // flip test-time augmentation
  // Gallery sizes in people (>= 1; 0 = every gallery candidate).
  std::vector<int> sizes{10, 100, 1000, 0};
  // Template rules by name (parse_template_rule()), or "qmean" / "qmeanscore":
  // the mean rules weighted by face quality.
  std::vector<std::string> rules{"max", "mean", "qmean", "meanscore", "qmeanscore", "top2"};
  double fpir = kDefaultFpir;                // the FPIR asked for, in (0, 1)
  std::optional<float> threshold_override;   // a fixed threshold instead of the policy's
  uint64_t seed = 8;                         // of the trials
  int templates_per_person = 1;              // photos enrolled per gallery person (>= 1)
};

// One gallery size under one rule, pooled over its trials.
struct OpenSetRow {
  int size = 0;      // as asked (0 = all)
  int people = 0;    // people in each trial's gallery
  int templates_per_person = 1, trials = 0;
  std::string rule;  // as asked
  DecisionPolicy policy;      // the threshold used, and why
  RatesAtThreshold at_policy; // FPIR and DIR measured at it
  OpenSetPoint oracle;        // the best DIR with measured FPIR <= the asked FPIR
  double rank1 = 0;
};

struct LfwOpenSetResult {
  std::vector<OpenSetRow> rows;  // sizes outer, rules inner, in the order asked
  size_t test_people = 0, test_images = 0, calibration_people = 0, calibration_images = 0;
  size_t retried = 0, cropped = 0, failed = 0;  // how the templates were made
  // One line saying what was measured (people, images, split, seed).
  std::string protocol;
};

// Errors: kInvalidArgument for an unknown rule name, an FPIR outside (0, 1),
// templates_per_person < 1 or a size above the gallery candidates; the
// make_lfw_templates() errors.
Result<LfwOpenSetResult> run_lfw_open_set(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                          const LfwOpenSetOptions& options, const ProtocolHooks& hooks = {});

}  // namespace facerec::eval
