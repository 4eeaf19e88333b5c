// Cost and gain of the detection policies (include/facerec/detect_policy.h)
// on folders of photos: for each policy, how many photos get at least one
// face, how many detector runs each photo costs, and the time per photo.
// Policies run interleaved photo by photo, so load from other processes
// falls on all of them alike.
//
//   build/bench/detect_policy_stats --detector scrfd_500m --policy none --policy default
//       ../shared/data/att [more folders or images...]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "facerec/detect.h"
#include "facerec/detect_policy.h"
#include "facerec/image.h"
#include "facerec/models.h"
#include "facerec/runtime.h"

namespace fs = std::filesystem;
using namespace facerec;

namespace {

// Counts the detector runs a policy makes.
class Counting final : public Detector {
 public:
  explicit Counting(const Detector& d) : d_(d) {}
  using Detector::detect;
  Result<std::vector<Face>> detect(const cv::Mat& bgr, const DetectOptions& opt) const override {
    ++calls;
    return d_.detect(bgr, opt);
  }
  const ModelSpec& spec() const override { return d_.spec(); }
  const DetectorOptions& options() const override { return d_.options(); }
  mutable std::atomic<long> calls{0};

 private:
  const Detector& d_;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  std::string detector_id;
  std::vector<std::string> policies, paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--detector" && i + 1 < argc) detector_id = argv[++i];
    else if (a == "--policy" && i + 1 < argc) policies.push_back(argv[++i]);
    else paths.push_back(a);
  }
  if (detector_id.empty() || policies.empty() || paths.empty()) {
    std::fprintf(stderr, "usage: detect_policy_stats --detector ID --policy P [--policy P2...] PATH...\n");
    return 2;
  }
  std::vector<std::string> images;
  for (const auto& p : paths) {
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p)) {
        const std::string ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".jpg" || ext == ".png" || ext == ".pgm" || ext == ".jpeg"))
          images.push_back(e.path().string());
      }
    } else {
      images.push_back(p);
    }
  }
  std::sort(images.begin(), images.end());

  auto manifest = Manifest::load(Manifest::default_path());
  if (!manifest.ok()) return std::fprintf(stderr, "%s\n", manifest.status().to_string().c_str()), 1;
  auto rt = create_onnxruntime();
  if (!rt.ok()) return std::fprintf(stderr, "%s\n", rt.status().to_string().c_str()), 1;
  auto spec = manifest->resolve(detector_id, ModelTask::kDetector);
  if (!spec.ok()) return std::fprintf(stderr, "%s\n", spec.status().to_string().c_str()), 1;
  std::optional<ModelSpec> lm;
  if (!spec->landmarks_model.empty()) {
    auto l = manifest->resolve(spec->landmarks_model, ModelTask::kLandmarks);
    if (!l.ok()) return std::fprintf(stderr, "%s\n", l.status().to_string().c_str()), 1;
    lm = *l;
  }
  auto det = create_detector(**rt, *spec, {}, lm ? &*lm : nullptr);
  if (!det.ok()) return std::fprintf(stderr, "%s\n", det.status().to_string().c_str()), 1;

  struct Row { std::string name; DetectPolicyOptions opt; long found = 0; long faces = 0; std::vector<double> ms; };
  std::vector<Row> rows;
  for (const auto& p : policies) {
    auto o = parse_detect_policy(p);
    if (!o.ok()) return std::fprintf(stderr, "%s\n", o.status().to_string().c_str()), 1;
    rows.push_back({p, *o, 0, 0, {}});
  }
  Counting counting(**det);
  std::vector<long> calls(rows.size(), 0);
  for (const auto& path : images) {
    auto img = load_image(path, {});
    if (!img.ok()) { std::fprintf(stderr, "skip %s: %s\n", path.c_str(), img.status().to_string().c_str()); continue; }
    for (size_t r = 0; r < rows.size(); ++r) {
      const long before = counting.calls;
      const auto t0 = std::chrono::steady_clock::now();
      auto faces = detect_with_policy(counting, *img, rows[r].opt);
      const auto t1 = std::chrono::steady_clock::now();
      if (!faces.ok()) return std::fprintf(stderr, "%s: %s\n", path.c_str(), faces.status().to_string().c_str()), 1;
      calls[r] += counting.calls - before;
      rows[r].ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      rows[r].found += !faces->empty();
      rows[r].faces += static_cast<long>(faces->size());
    }
  }
  std::printf("| policy | photos | with a face | faces | detector runs per photo | ms per photo, median | mean |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    double mean = 0;
    for (double m : row.ms) mean += m;
    mean /= std::max<size_t>(1, row.ms.size());
    std::printf("| %s | %zu | %ld | %ld | %.3f | %.2f | %.2f |\n", row.name.c_str(), row.ms.size(), row.found,
                row.faces, static_cast<double>(calls[r]) / std::max<size_t>(1, row.ms.size()), median(row.ms), mean);
  }
  return 0;
}
