// Face detection: every family decodes into the same typed Face.
//
// Thread safety: a Detector is immutable after create_detector(); detect() is
// const and may be called from several threads at once, each with its own
// options (the session is shared, all scratch state is per call).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "facerec/models.h"
#include "facerec/runtime.h"
#include "facerec/types.h"

namespace facerec {

struct DetectorOptions {
  float score_threshold = 0.5f;  // faces below this confidence are dropped
  float nms_threshold = 0.4f;    // IoU above which the lower-scored box is suppressed
  int input_width = 0, input_height = 0;  // 0: the model's own (or 640 for dynamic models)
  int max_faces = 0;             // 0: no limit; otherwise keep the highest-scoring
};
// The per-call name: detect(image, DetectOptions{...}).
using DetectOptions = DetectorOptions;

// kInvalidArgument when a threshold is outside 0..1 (NaN included), a size or
// max_faces is negative. `what` prefixes the message (e.g. "--det-score").
Status validate_detect_options(const DetectorOptions& options);

class Detector {
 public:
  virtual ~Detector() = default;
  // bgr: 8-bit BGR (1- and 4-channel are converted), any size. Returns faces
  // in original-image pixels, sorted by descending score, after NMS. Options
  // out of range are kInvalidArgument; so is an input size a fixed-size model
  // cannot take.
  virtual Result<std::vector<Face>> detect(const cv::Mat& bgr, const DetectOptions& options) const = 0;
  // Same with the options given at creation.
  Result<std::vector<Face>> detect(const cv::Mat& bgr) const { return detect(bgr, options()); }
  virtual const ModelSpec& spec() const = 0;
  // The options given at creation (the default for detect(bgr)). Immutable.
  virtual const DetectorOptions& options() const = 0;
};

// Builds the detector for spec.family. For a detector with landmarks_model set
// (the npm default), `landmarks` is that model's spec. The model file must be
// present (see fetch_model) and match its sha256; a model whose inputs or
// outputs do not fit the family is kModel, never a crash. `hashes`: the model
// registry's hash cache (Manifest::hashes()), so a file is hashed once per
// process; null hashes every file now.
Result<std::unique_ptr<Detector>> create_detector(Runtime& runtime, const ModelSpec& spec,
                                                   const DetectorOptions& options = {},
                                                   const ModelSpec* landmarks = nullptr,
                                                   ModelFileHashes* hashes = nullptr);

// ---- Building blocks shared by the families (tested on their own) ----------

// Greedy NMS over faces (any order). Returns the kept faces sorted by score.
std::vector<Face> nms(std::vector<Face> faces, float iou_threshold);
// Plain O(n^2) twin of nms(), for tests.
std::vector<Face> nms_reference(std::vector<Face> faces, float iou_threshold);
float iou(const cv::Rect2f& a, const cv::Rect2f& b);

// How an image was fitted into the network input: input = image * scale + pad.
struct Letterbox {
  float scale_x = 1.f, scale_y = 1.f;
  float pad_x = 0.f, pad_y = 0.f;
  cv::Point2f to_image(cv::Point2f p) const { return {(p.x - pad_x) / scale_x, (p.y - pad_y) / scale_y}; }
  cv::Rect2f to_image(const cv::Rect2f& r) const;
};
// Resizes bgr into a width x height canvas: kLetterbox keeps the aspect ratio
// and centres the image on a pad_value canvas; kStretch scales each axis.
// kInvalidArgument (out untouched) for an empty image or a size that is not
// positive.
Result<Letterbox> fit_image(const cv::Mat& bgr, int width, int height, ResizeMode mode, float pad_value,
                            cv::Mat& out);
// Packs an 8-bit BGR image into a planar float NCHW blob using spec's channel
// order and normalisation. out must hold 3*h*w floats (or h*w for GRAY).
// kInvalidArgument (out untouched) when bgr is not 8-bit 3-channel, or the
// spec's mean/std do not have a value per channel (1 for GRAY, else 3).
Status to_blob(const cv::Mat& bgr, const InputSpec& spec, float* out);
// Maps every face in network-input coordinates back to the image and clips
// the box to the image.
void map_to_image(std::vector<Face>& faces, const Letterbox& lb, cv::Size image_size);

}  // namespace facerec
