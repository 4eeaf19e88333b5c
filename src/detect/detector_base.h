// Private to src/detect: what every detector family shares (the preprocessing,
// the NMS / max_faces / mapping tail, session validation), and the per-family
// factories that create_detector() dispatches to. Not a public header.
#pragma once

#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "facerec/detect.h"
#include "facerec/runtime.h"
#include "landmarks/landmarks68.h"

namespace facerec::detect_internal {

// "name [1,3,640,640]; ..." for error messages.
std::string describe(const std::vector<TensorInfo>& tensors);
// "model 'id' (path) does not fit the <family> detector: <why>. It has inputs
// ... and outputs ...": the kModel message every family uses.
Status model_mismatch(const ModelSpec& spec, const InferenceSession& session, const std::string& why);

// For an output laid out [1,N,C] or [N,C]: N and C, -1 where dynamic or when
// the rank is neither 2 nor 3 (rows_of then also returns -1).
int64_t rows_of(const TensorInfo& t);
int64_t cols_of(const TensorInfo& t);
// Run-time guard: a tensor with the wrong element count (a model whose shapes
// lied, or a dynamic one that answered unexpectedly) is kModel, not a read
// past the end.
Status check_numel(const Tensor& t, size_t expected, const std::string& what);

// The network input a family feeds: one float NCHW tensor.
struct NetInput {
  int channels = 3;
  int fixed_width = 0, fixed_height = 0;  // 0: dynamic in the model
};
// Checks that the session has exactly one rank-4 input with `channels`
// channels. kModel (via model_mismatch) otherwise.
Result<NetInput> check_image_input(const ModelSpec& spec, const InferenceSession& session, int channels);

// The input size for one call: the model's fixed size; for a dynamic model the
// options override, else the spec's size, else 640. `multiple` rounds a
// dynamic size up (strided networks need H, W divisible by their last stride).
// A fixed model with a conflicting override is kInvalidArgument.
Result<cv::Size> resolve_input_size(const NetInput& in, const ModelSpec& spec, const DetectorOptions& opt,
                                    int multiple);

// Shared skeleton: validates the image, calls run() for faces in network-input
// pixels, then NMS, max_faces, maps to the image, and refine() (the npm
// default's landmark stage). Catches cv::Exception at the boundary.
//
// Thread safety: immutable after construction; detect() is const and reentrant.
// A detector's input as 8-bit BGR (1- and 4-channel images converted);
// kInvalidArgument for an empty image or another type. May throw cv::Exception.
Result<cv::Mat> detector_bgr(const cv::Mat& image);
// NMS at options.nms_threshold, then the options.max_faces cap.
std::vector<Face> nms_and_cap(std::vector<Face> faces, const DetectOptions& options);

class DetectorBase : public Detector {
 public:
  DetectorBase(ModelSpec spec, DetectorOptions options, std::unique_ptr<InferenceSession> session, NetInput input)
      : spec_(std::move(spec)), options_(options), session_(std::move(session)), input_(input) {}

  using Detector::detect;
  Result<std::vector<Face>> detect(const cv::Mat& bgr, const DetectOptions& options) const final;
  const ModelSpec& spec() const override { return spec_; }
  const DetectorOptions& options() const override { return options_; }

 protected:
  // Decodes the network's outputs for an input of `size` into faces in
  // network-input pixels, not yet NMS'd, keeping those at or above
  // options.score_threshold. detect() has already resolved the size, fitted
  // the image and run the session.
  virtual Result<std::vector<Face>> decode(const std::vector<Tensor>& out, cv::Size size,
                                           const DetectorOptions& options) const = 0;
  // Dynamic input sizes are rounded up to a multiple of this (the last stride).
  virtual int size_multiple() const { return 32; }
  // Faces already in image pixels (after NMS); may fill landmarks.
  virtual Status refine(const cv::Mat& bgr, std::vector<Face>& faces) const { return Status::Ok(); }

  // Fits bgr into size per spec_.input, packs the blob and runs the session
  // into `out` (the caller's, reused across calls).
  Status forward(const cv::Mat& bgr, cv::Size size, Letterbox& lb, std::vector<Tensor>& out) const;

  const InferenceSession& session() const { return *session_; }
  const NetInput& net_input() const { return input_; }

 private:
  ModelSpec spec_;
  const DetectorOptions options_;
  std::unique_ptr<InferenceSession> session_;
  NetInput input_;
};

// Numerically safe logistic; used by families whose heads are raw logits.
inline float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }
// The logit of a probability threshold: sigmoid(x) >= p  <=>  x >= logit(p).
// Lets decoders skip candidates without computing exp().
float logit(float p);

// Per-family factories. Each validates the session against what its decoder
// reads and returns kModel with a clear message when it does not fit.
Result<std::unique_ptr<Detector>> create_yolov5face(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                                    const DetectorOptions& opt);
Result<std::unique_ptr<Detector>> create_scrfd(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                               const DetectorOptions& opt);
Result<std::unique_ptr<Detector>> create_yunet(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                               const DetectorOptions& opt);
Result<std::unique_ptr<Detector>> create_retinaface(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                                    const DetectorOptions& opt);

// ---- MTCNN: PNet (spec's own file) -> RNet -> ONet (spec.stages) -----------

struct MtcnnConfig {
  int min_face_size = 20;     // pixels; the pyramid's first scale is 12 / this
  float factor = 0.709f;      // pyramid step (the MTCNN paper's, via facenet)
  float pnet_threshold = 0.6f;  // the paper's / facenet's; ONet uses the options' score_threshold
  float rnet_threshold = 0.7f;
};
Result<std::unique_ptr<Detector>> create_mtcnn(Runtime& runtime, std::unique_ptr<InferenceSession> pnet,
                                               const ModelSpec& spec, const DetectorOptions& opt,
                                               const MtcnnConfig& config = {});

// ---- ultraface + its 68-point landmark model (the npm default) -------------

// The landmark stage itself lives in src/landmarks (batched across faces).
using landmarks::Reduce68;
using landmarks::reduce_68_to_5;
using landmarks::landmark_crop;

struct UltraFaceConfig {
  // 1 reproduces fr_landmark.js: the box made square (side = box height) and
  // clipped to the image; > 1 enlarges that square about its centre (as far
  // as the image allows).
  float landmark_crop_scale = 1.f;
  Reduce68 reduce = Reduce68::kEyeMeans;
};
Result<std::unique_ptr<Detector>> create_ultraface(std::unique_ptr<InferenceSession> s, const ModelSpec& spec,
                                                   const DetectorOptions& opt,
                                                   std::unique_ptr<InferenceSession> landmarks,
                                                   const ModelSpec& landmarks_spec, const UltraFaceConfig& config = {});

}  // namespace facerec::detect_internal
