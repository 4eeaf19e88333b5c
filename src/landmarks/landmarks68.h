// Private to the library: the 68-point landmark stage that gives a box-only
// detector (the npm default fr_detect) the 5 alignment points. It runs on the
// faces that survived NMS, all of an image's faces in one batch when the
// network allows it.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "facerec/models.h"
#include "facerec/runtime.h"
#include "facerec/types.h"

namespace facerec::landmarks {

// How the 68 iBUG points (0-based; 36-41 is the image-left eye) become the 5
// alignment points.
enum class Reduce68 {
  kEyeMeans,    // eyes: mean of all 6 eye points; nose 30; mouth corners 48, 54
  kFaceplugin,  // convert68pts5pts in fr_feature.js: eyes: mean of the 4 lid
                // points (37,38,40,41 / 43,44,46,47); nose 30; mouth corners
                // mean(48,60) and mean(54,64)
};
// xy68: 136 floats, x0,y0,x1,y1,... in image pixels.
std::array<cv::Point2f, 5> reduce_68_to_5(const float* xy68, Reduce68 how);

// The crop (image pixels, inside the image) the landmark model sees for a
// face box, as fr_landmark.js computes it. Empty when nothing is left.
cv::Rect landmark_crop(const cv::Rect2f& box, cv::Size image, float scale);

struct Landmarks68Config {
  // 1 reproduces fr_landmark.js: the box made square (side = box height) and
  // clipped to the image; > 1 enlarges that square about its centre (as far
  // as the image allows).
  float crop_scale = 1.f;
  Reduce68 reduce = Reduce68::kEyeMeans;
};

// A 68-point landmark network: one greyscale crop [N|1, 1, H, W] in (the
// spec's normalisation), 136 values per crop out (x,y pairs normalised to the
// crop, 0..1).
//
// Thread safety: immutable after create(); refine() is const and reentrant
// (its scratch buffers are per thread).
class Landmarks68 {
 public:
  // Faces per network run when dim 0 is dynamic (the runtime makes it so for a
  // batch-agnostic graph exported at batch 1: SessionConfig::dynamic_batch).
  static constexpr int kMaxBatch = 16;

  // Validates the session against the layout above; kModel naming the model
  // (and `detector_id`, the detector it serves) when it does not fit. A
  // dynamic-batch session is probed with a batch of 2 and falls back to one
  // face per run when that fails.
  static Result<std::unique_ptr<Landmarks68>> create(std::unique_ptr<InferenceSession> session, const ModelSpec& spec,
                                                     const std::string& detector_id);

  // Fills every face's 5 landmarks (image pixels) from the 68 points found in
  // its crop; faces whose crop is empty are dropped. bgr: the 8-bit BGR image
  // the boxes are in. All faces go through the network in batches of up to
  // max_batch().
  Status refine(const cv::Mat& bgr, std::vector<Face>& faces, const Landmarks68Config& config) const;
  // The plain twin of refine(): one network run per face. Same results up to
  // float rounding of the batched kernels (tested).
  Status refine_one_by_one(const cv::Mat& bgr, std::vector<Face>& faces, const Landmarks68Config& config) const;

  int max_batch() const { return max_batch_; }
  const ModelSpec& spec() const { return spec_; }

 private:
  Landmarks68(std::unique_ptr<InferenceSession> session, ModelSpec spec, cv::Size size, int max_batch)
      : session_(std::move(session)), spec_(std::move(spec)), size_(size), max_batch_(max_batch) {}
  Status run_batches(const cv::Mat& bgr, std::vector<Face>& faces, const Landmarks68Config& config,
                     int batch) const;

  std::unique_ptr<InferenceSession> session_;
  ModelSpec spec_;
  cv::Size size_;
  int max_batch_ = 1;
};

}  // namespace facerec::landmarks
