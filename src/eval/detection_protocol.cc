// WIDER FACE average precision (facerec/eval_detection.h).
#include <filesystem>

#include "facerec/eval_detection.h"

namespace fs = std::filesystem;

namespace facerec::eval {

Result<std::vector<WiderGtImage>> read_wider_ground_truth(const std::string& gt_txt, const std::string& mat_dir_in) {
  FACEREC_ASSIGN_OR_RETURN(std::vector<WiderGtImage> gt, read_wider_gt_txt(gt_txt));
  const std::string mat_dir = mat_dir_in.empty() ? fs::path(gt_txt).parent_path().string() : mat_dir_in;
  FACEREC_RETURN_IF_ERROR(read_wider_subsets(mat_dir.empty() ? "." : mat_dir, gt));
  return gt;
}

Result<WiderDetectionResult> run_wider_detection(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                                 const std::vector<WiderGtImage>& gt,
                                                 const WiderDetectionOptions& options, const ProtocolHooks& hooks) {
  if (options.max_faces < 0) return Status(ErrorCode::kInvalidArgument, "max_faces must not be negative");
  for (const auto& image : gt)
    for (const auto& keep : image.keep)
      if (keep.size() != image.boxes.size())
        return Status(ErrorCode::kInvalidArgument,
                      image.path + ": the subset marks do not match the boxes (read the subsets first: read_wider_subsets())");
  DetectorOptions det_options = analyzer.detector().options();
  det_options.max_faces = options.max_faces;

  WiderDetectionResult out;
  out.detections.resize(gt.size());
  const std::string what = "detecting";
  for (size_t i = 0; i < gt.size(); ++i) {
    if (hooks.stop()) return Status(ErrorCode::kCancelled, "interrupted");
    const std::string path = (fs::path(options.images_dir) / gt[i].path).string();
    FACEREC_ASSIGN_OR_RETURN(cv::Mat img, load_image(path, limits));  // every listed image is part of the measurement
    FACEREC_ASSIGN_OR_RETURN(std::vector<Face> faces, analyzer.detect(img, det_options));
    for (const auto& f : faces) out.detections[i].push_back({f.box, f.score});
    out.total_detections += out.detections[i].size();
    hooks.step(what, i + 1, gt.size());
  }

  for (int s = 0; s < 3; ++s) {
    std::vector<WiderImage> set(gt.size());
    for (size_t i = 0; i < gt.size(); ++i) {
      set[i].gt = gt[i].boxes;
      set[i].keep = gt[i].keep[static_cast<size_t>(s)];
      set[i].detections = out.detections[i];
    }
    out.curves[static_cast<size_t>(s)] = wider_pr_curve(set);
  }
  return out;
}

}  // namespace facerec::eval
