// LFW verification (1:1): the 10-fold protocol over pairs.txt.
//
// Every image of every pair gets one template as eval_templates.h makes it
// for LFW: the most central face (LFW's subject is the centred one), a
// low-confidence retry, the fixed centre crop as the last resort, optional
// flip augmentation. Each pair is scored by cosine; accuracy is 10-fold
// (each fold's threshold chosen on the other folds, kfold_accuracy()), with
// AUC, TAR at FAR = 1e-3 and the EER over all pairs.
//
// Thread safety: run_lfw_verification() only reads the analyzer (which is
// safe to share); one call per cache file at a time.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "facerec/eval.h"
#include "facerec/eval_protocol.h"
#include "facerec/image.h"
#include "facerec/pipeline.h"

namespace facerec::eval {

struct LfwVerificationOptions {
  // LFW's top folder or its images/ folder (found by the first pair's person).
  std::string root;
  // Templates kept in this file and reused (EmbeddingCache; the file the LFW
  // open-set protocol and the calibration use too). Empty: no cache.
  std::string cache_file;
  bool flip = false;         // flip test-time augmentation
  float retry_score = 0.2f;  // detection confidence of the retry on images with no face
};

struct LfwVerificationResult {
  // Per pair, in the order given: its cosine and truth, and its fold.
  std::vector<ScoredPair> scored;
  std::vector<int> folds;
  size_t images = 0;  // distinct images embedded
  KFoldResult kfold;
  double auc = 0.0;
  OperatingPoint tar_at_far_1e3;  // at FAR <= 1e-3
  EqualErrorRate eer;
  // Images whose face was not found at the detector's own confidence:
  // found by the retry, or replaced by the centre crop.
  size_t retried = 0, center_cropped = 0;
  // The centre crop's cost: pairs touching a centre-cropped image, and how
  // many of them their fold's threshold gets wrong.
  int center_crop_pairs = 0, center_crop_pairs_misclassified = 0;
  float normal_score = 0.f;  // the detector's own confidence threshold
  bool retries = false;      // whether a retry was made at all (retry_score below normal_score)
};

// Runs the protocol on `pairs` (read_lfw_pairs()). Errors: kInvalidArgument
// for no pairs; kNotFound naming an image that cannot be read (every image is
// part of the protocol, so one missing image stops the run); kCancelled when
// hooks.cancelled answers true (templates made so far are still saved to
// the cache); model and cache errors as they come.
Result<LfwVerificationResult> run_lfw_verification(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                                   std::span<const LfwPair> pairs, const LfwVerificationOptions& options,
                                                   const ProtocolHooks& hooks = {});

// The folder that holds LFW's person folders: `root` itself, or root/images
// when `root` lacks `person` and root/images has it.
std::string lfw_images_root(const std::string& root, const std::string& person);

}  // namespace facerec::eval
