// Template making for the evaluation protocols (LFW verification, 1:N
// identification, the open-set calibration): one embedding per image, with
// the detection retry, face pick, centre-crop fallback and flip augmentation
// that the protocols document. The library's, so that every protocol (and any
// program built on facerec) makes templates the same way.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "facerec/detect.h"
#include "facerec/eval_open_set.h"
#include "facerec/eval_protocol.h"
#include "facerec/image.h"
#include "facerec/pipeline.h"
#include "facerec/types.h"

namespace facerec::eval {

// How one image's template was made.
enum class TemplateSource { kDetected, kRetried, kCenterCrop, kFailed };

// Which face of an image becomes its template.
enum class FacePick { kLargest, kCentral };

struct TemplateOptions {
  FacePick pick = FacePick::kLargest;
  // Detection below the detector's own threshold is retried at this
  // confidence (0.2: about half of LFW's misses are found there); <= 0 or >=
  // the normal threshold: no retry.
  float retry_score = 0.2f;
  bool center_crop = false;  // last resort, for roughly centred sets (LFW)
  bool flip = false;         // flip test-time augmentation
};

struct ImageTemplate {
  TemplateSource source = TemplateSource::kFailed;
  Embedding embedding;  // empty when failed
  float quality = 0.f;  // face quality (facerec/pipeline.h); 0 when failed
  std::string error;    // why it failed
};

// Where LFW's faces sit: the mean five landmarks of the most central face, as
// fractions of image width and height, measured with fr_detect + fr_landmark
// on 604 LFW deep-funneled images (every 8th of the sorted 4911-name tree;
// SCRFD-500m agreed within 0.003). The centre crop maps these onto the
// ArcFace template, which is the placement a detected average LFW face gets.
extern const float kLfwMeanLandmarks[5][2];

// Loads, detects (retrying at lower confidence), picks, aligns and embeds
// images, in chunks of 32 so that the embedder sees batches.
//
// Ownership and threads: borrows the analyzer (which must outlive it) and an
// optional cache; one TemplateMaker is used by one thread at a time.
class TemplateMaker {
 public:
  TemplateMaker(const FaceAnalyzer& analyzer, ImageLimits limits, TemplateOptions options);
  float normal_score() const { return normal_.score_threshold; }
  bool retries() const { return do_retry_; }

  // What a cached template depends on: both models (id and hash) and how
  // faces are picked, retried and embedded.
  std::string cache_key() const;
  // Templates found here are reused, and new ones added (the caller saves it).
  void use_cache(EmbeddingCache* cache) { cache_ = cache; }

  // One template per path, in order. Unreadable images and images with no
  // face are kFailed with a reason; only a model error, or `cancelled`
  // answering true (polled before each image: kCancelled), fails the whole
  // call. `step` is called once per image (progress).
  Result<std::vector<ImageTemplate>> make(const std::vector<std::string>& paths,
                                          const std::function<void()>& step = {},
                                          const std::function<bool()>& cancelled = {});

 private:
  bool from_cache(const std::string& path, ImageTemplate& t) const;
  void to_cache(const std::string& path, const ImageTemplate& t);
  Result<cv::Mat> prepare(const std::string& path, ImageTemplate& t, std::optional<Face>& used) const;
  Result<std::vector<Embedding>> embed(const std::vector<cv::Mat>& crops) const;

  const FaceAnalyzer& analyzer_;
  ImageLimits limits_;
  TemplateOptions opt_;
  DetectorOptions normal_, retry_;
  bool do_retry_ = false;
  EmbeddingCache* cache_ = nullptr;
};

// LFW's people and their images, with one template per image, made once (and
// kept in a cache file when one is named): what the LFW open-set protocol and
// the impostor calibration both start from. Faces as the LFW verification
// picks them: the most central face, a low-confidence retry (0.2), the fixed
// centre crop as the last resort.
struct LfwTemplates {
  std::vector<std::string> paths;          // every image, person by person
  std::vector<ImageTemplate> templates;    // one per path
  std::vector<PersonImages> calibration, test;  // indices into paths (is_calibration_person())
  size_t retried = 0, cropped = 0, failed = 0;
};

// root: LFW's top folder or its images/ folder. cache_file: empty = none;
// templates made so far are saved to it even when the call fails.
// calibration_only: only the calibration people (test stays empty).
// Errors: kNotFound for a root that is not a folder-per-person tree;
// kCancelled when hooks.cancelled answers true; model and cache errors.
Result<LfwTemplates> make_lfw_templates(const FaceAnalyzer& analyzer, const ImageLimits& limits, const std::string& root,
                                        const std::string& cache_file, bool calibration_only, bool flip,
                                        const ProtocolHooks& hooks = {});

// The templates as the open-set functions read them (views into `t`, which
// must outlive the result).
std::vector<ProbeTemplate> probe_view(const std::vector<ImageTemplate>& t);

}  // namespace facerec::eval
