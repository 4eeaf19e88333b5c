// create_detector(): verifies and loads the model, then dispatches on
// spec.family. Also the skeleton every family shares (DetectorBase).
#include <algorithm>
#include <cmath>
#include <sstream>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "detect/detector_base.h"

namespace facerec {
namespace detect_internal {

std::string describe(const std::vector<TensorInfo>& tensors) {
  std::ostringstream s;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (i) s << ", ";
    s << "'" << tensors[i].name << "' [";
    for (size_t d = 0; d < tensors[i].shape.size(); ++d) s << (d ? "," : "") << tensors[i].shape[d];
    s << "]";
  }
  return tensors.empty() ? "none" : s.str();
}

Status model_mismatch(const ModelSpec& spec, const InferenceSession& session, const std::string& why) {
  const char* what = spec.task == ModelTask::kLandmarks ? " landmarks model" : " detector";
  return Status(ErrorCode::kModel, "model '" + spec.id + "' (" + spec.path + ") does not fit the " + spec.family +
                                       what + ": " + why + ". It has inputs " + describe(session.inputs()) +
                                       " and outputs " + describe(session.outputs()));
}

int64_t rows_of(const TensorInfo& t) {
  if (t.shape.size() == 3 && (t.shape[0] == 1 || t.shape[0] == -1)) return t.shape[1];
  if (t.shape.size() == 2) return t.shape[0];
  return -1;
}

int64_t cols_of(const TensorInfo& t) { return t.shape.empty() ? -1 : t.shape.back(); }

Status check_numel(const Tensor& t, size_t expected, const std::string& what) {
  if (t.data.size() == expected) return Status::Ok();
  return Status(ErrorCode::kModel, what + ": expected " + std::to_string(expected) + " values, the model gave " +
                                       std::to_string(t.data.size()));
}

Result<NetInput> check_image_input(const ModelSpec& spec, const InferenceSession& session, int channels) {
  const auto& ins = session.inputs();
  if (ins.size() != 1) return model_mismatch(spec, session, "expected exactly one image input");
  const auto& shape = ins[0].shape;
  if (shape.size() != 4) return model_mismatch(spec, session, "expected a rank-4 NCHW image input");
  if (shape[0] > 1) return model_mismatch(spec, session, "expected batch size 1 (or dynamic)");
  if (shape[1] != channels && shape[1] != -1)
    return model_mismatch(spec, session, "expected " + std::to_string(channels) + " input channel(s)");
  const bool gray = spec.input.channels == "GRAY";
  if (gray != (channels == 1))
    return model_mismatch(spec, session, "the spec's channel order '" + spec.input.channels + "' does not match");
  NetInput in;
  in.channels = channels;
  in.fixed_height = shape[2] > 0 ? static_cast<int>(shape[2]) : 0;
  in.fixed_width = shape[3] > 0 ? static_cast<int>(shape[3]) : 0;
  return in;
}

Result<cv::Size> resolve_input_size(const NetInput& in, const ModelSpec& spec, const DetectorOptions& opt,
                                    int multiple) {
  auto pick = [&](int fixed, int override_, int from_spec, const char* axis) -> Result<int> {
    if (fixed > 0) {
      if (override_ > 0 && override_ != fixed)
        return Status(ErrorCode::kInvalidArgument, "model '" + spec.id + "' has a fixed input " + axis + " of " +
                                                       std::to_string(fixed) + "; it cannot run at " +
                                                       std::to_string(override_));
      return fixed;
    }
    int v = override_ > 0 ? override_ : (from_spec > 0 ? from_spec : 640);
    if (v > 8192) return Status(ErrorCode::kInvalidArgument, std::string("input ") + axis + " over 8192");
    if (multiple > 1) v = (v + multiple - 1) / multiple * multiple;
    return v;
  };
  FACEREC_ASSIGN_OR_RETURN(auto w, pick(in.fixed_width, opt.input_width, spec.input.width, "width"));
  FACEREC_ASSIGN_OR_RETURN(auto h, pick(in.fixed_height, opt.input_height, spec.input.height, "height"));
  return cv::Size(w, h);
}

float logit(float p) {
  if (p <= 0.f) return -INFINITY;
  if (p >= 1.f) return INFINITY;
  return std::log(p / (1.f - p));
}

Status DetectorBase::forward(const cv::Mat& bgr, cv::Size size, Letterbox& lb, std::vector<Tensor>& out) const {
  // Scratch reused across calls on the same thread: detect() stays reentrant
  // without reallocating a 640x640 canvas and blob every frame.
  thread_local cv::Mat canvas;
  thread_local std::vector<float> blob;
  FACEREC_ASSIGN_OR_RETURN(lb, fit_image(bgr, size.width, size.height, spec_.input.resize, spec_.input.pad_value,
                                         canvas));
  const size_t n = static_cast<size_t>(input_.channels) * size.width * size.height;
  if (blob.size() < n) blob.resize(n);
  FACEREC_RETURN_IF_ERROR(to_blob(canvas, spec_.input, blob.data()));
  return session_->run_into({TensorView{blob.data(), {1, input_.channels, size.height, size.width}}}, out);
}

Result<cv::Mat> detector_bgr(const cv::Mat& image) {
  if (image.empty()) return Status(ErrorCode::kInvalidArgument, "detect: empty image");
  if (image.depth() != CV_8U || (image.channels() != 3 && image.channels() != 1 && image.channels() != 4))
    return Status(ErrorCode::kInvalidArgument, "detect: expected an 8-bit BGR image, got type " +
                                                   std::to_string(image.type()));
  cv::Mat bgr = image;
  if (image.channels() == 1) cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
  if (image.channels() == 4) cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
  return bgr;
}

std::vector<Face> nms_and_cap(std::vector<Face> faces, const DetectOptions& options) {
  faces = nms(std::move(faces), options.nms_threshold);
  if (options.max_faces > 0 && faces.size() > static_cast<size_t>(options.max_faces))
    faces.resize(static_cast<size_t>(options.max_faces));
  return faces;
}

Result<std::vector<Face>> DetectorBase::detect(const cv::Mat& image, const DetectOptions& options) const {
  FACEREC_RETURN_IF_ERROR(validate_detect_options(options));
  try {
    FACEREC_ASSIGN_OR_RETURN(cv::Mat bgr, detector_bgr(image));
    FACEREC_ASSIGN_OR_RETURN(auto size, resolve_input_size(input_, spec_, options, size_multiple()));
    Letterbox lb;
    // The network's outputs, reused across calls on this thread (decode()
    // reads them before the next call can overwrite them).
    thread_local std::vector<Tensor> out;
    FACEREC_RETURN_IF_ERROR(forward(bgr, size, lb, out));
    FACEREC_ASSIGN_OR_RETURN(auto raw, decode(out, size, options));
    std::vector<Face> faces = nms_and_cap(std::move(raw), options);
    map_to_image(faces, lb, bgr.size());
    // A box squeezed to nothing by clipping (a detection wholly in the padding)
    // is not a face in this image.
    faces.erase(std::remove_if(faces.begin(), faces.end(),
                               [](const Face& f) { return !(f.box.width > 0.f && f.box.height > 0.f); }),
                faces.end());
    FACEREC_RETURN_IF_ERROR(refine(bgr, faces));
    return faces;
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kInternal, std::string("detect: OpenCV error: ") + e.what());
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("detect: ") + e.what());
  }
}

}  // namespace detect_internal

Status validate_detect_options(const DetectorOptions& o) {
  if (!(o.score_threshold >= 0.f && o.score_threshold <= 1.f))
    return Status(ErrorCode::kInvalidArgument, "detection score threshold must be within 0..1");
  if (!(o.nms_threshold >= 0.f && o.nms_threshold <= 1.f))
    return Status(ErrorCode::kInvalidArgument, "NMS IoU threshold must be within 0..1");
  if (o.input_width < 0 || o.input_height < 0 || o.max_faces < 0)
    return Status(ErrorCode::kInvalidArgument, "detector input size and max_faces must not be negative");
  return Status::Ok();
}

Result<std::unique_ptr<Detector>> create_detector(Runtime& runtime, const ModelSpec& spec,
                                                   const DetectorOptions& options, const ModelSpec* landmarks,
                                                   ModelFileHashes* hashes) {
  using namespace detect_internal;
  if (spec.task != ModelTask::kDetector)
    return Status(ErrorCode::kInvalidArgument,
                  "model '" + spec.id + "' is a " + to_string(spec.task) + ", not a detector");
  static const char* kFamilies[] = {"yolov5face", "scrfd", "yunet", "retinaface", "ultraface", "mtcnn"};
  if (std::find_if(std::begin(kFamilies), std::end(kFamilies), [&](const char* f) { return spec.family == f; }) ==
      std::end(kFamilies))
    return Status(ErrorCode::kInvalidArgument, "model '" + spec.id + "': unknown detector family '" + spec.family +
                                                   "' (known: yolov5face, scrfd, yunet, retinaface, ultraface, mtcnn)");
  FACEREC_RETURN_IF_ERROR(validate_detect_options(options));
  FACEREC_RETURN_IF_ERROR(verify_model_file(spec, hashes));
  FACEREC_ASSIGN_OR_RETURN(auto session, runtime.load(spec.path, spec.session));

  Result<std::unique_ptr<Detector>> det = Status(ErrorCode::kInternal, "unreachable");
  if (spec.family == "yolov5face") det = create_yolov5face(std::move(session), spec, options);
  if (spec.family == "scrfd") det = create_scrfd(std::move(session), spec, options);
  if (spec.family == "yunet") det = create_yunet(std::move(session), spec, options);
  if (spec.family == "retinaface") det = create_retinaface(std::move(session), spec, options);
  if (spec.family == "mtcnn") det = create_mtcnn(runtime, std::move(session), spec, options);
  if (spec.family == "ultraface") {
    if (!landmarks)
      return Status(ErrorCode::kInvalidArgument,
                    "model '" + spec.id + "' has no landmarks of its own; it needs its landmarks model '" +
                        (spec.landmarks_model.empty() ? std::string("?") : spec.landmarks_model) + "'");
    if (landmarks->task != ModelTask::kLandmarks)
      return Status(ErrorCode::kInvalidArgument, "model '" + landmarks->id + "' is a " +
                                                     to_string(landmarks->task) + ", not a landmarks model");
    FACEREC_RETURN_IF_ERROR(verify_model_file(*landmarks, hashes));
    // All of an image's faces go through the landmark model in one run.
    SessionConfig lm_config = landmarks->session;
    lm_config.dynamic_batch = true;
    FACEREC_ASSIGN_OR_RETURN(auto lm, runtime.load(landmarks->path, lm_config));
    det = create_ultraface(std::move(session), spec, options, std::move(lm), *landmarks);
  }
  return det;
}

}  // namespace facerec
