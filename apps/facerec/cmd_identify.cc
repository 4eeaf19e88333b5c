// facerec identify <image|dir>...: name every face in every image.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "app.h"
#include "facerec/json.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace facerec::cli {
namespace {

struct IdentifyArgs {
  CommonOptions o;
  std::vector<std::string> inputs;
  int top_k = 5;
  std::string annotate;
};

// OpenCV's Hershey fonts are ASCII-only: show each non-ASCII character as '?'.
std::string ascii_label(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) out += (c < 0x20 ? '?' : static_cast<char>(c));
    else if ((c & 0xC0) != 0x80) out += '?';  // first byte of a UTF-8 sequence
  }
  return out;
}

void draw(cv::Mat& img, const Face& f, const Decision& d) {
  const cv::Scalar colour = d.known() ? cv::Scalar(0, 200, 0) : cv::Scalar(0, 0, 230);
  const int thick = std::max(1, img.cols / 400);
  cv::rectangle(img, f.box, colour, thick);
  for (const auto& p : f.landmarks) cv::circle(img, p, std::max(2, thick + 1), cv::Scalar(0, 255, 255), cv::FILLED);
  char sim[32];
  std::snprintf(sim, sizeof sim, " %.2f", d.known() ? d.similarity : (d.candidates.empty() ? 0.f : d.candidates[0].similarity));
  const std::string label = (d.known() ? ascii_label(d.identity) : std::string("unknown")) + sim;
  const double scale = std::max(0.4, img.cols / 1200.0);
  int base = 0;
  cv::Size ts = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
  // Keep the label inside the image, even for faces at its right edge.
  cv::Point org(std::clamp(static_cast<int>(f.box.x), 0, std::max(0, img.cols - ts.width)),
                std::max(ts.height + 2, static_cast<int>(f.box.y) - 3));
  cv::rectangle(img, org + cv::Point(0, base), org + cv::Point(ts.width, -ts.height - 2), colour, cv::FILLED);
  cv::putText(img, label, org, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(255, 255, 255), thick, cv::LINE_AA);
}

int run_identify(const IdentifyArgs& a) {
  auto ctx = make_context(a.o, true, GalleryMode::kReadOnly);
  if (!ctx.ok()) { std::cerr << "facerec identify: " << ctx.status().to_string() << "\n"; return kExitError; }
  if (Status s = ctx->require_threshold(); !s.ok()) { std::cerr << "facerec identify: " << s.to_string() << "\n"; return kExitError; }
  const FaceRecognizer& rec = *ctx->recognizer;
  if (!a.annotate.empty()) {
    std::error_code ec;
    fs::create_directories(a.annotate, ec);
    if (ec) { std::cerr << "facerec identify: cannot create " << a.annotate << ": " << ec.message() << "\n"; return kExitError; }
  }
  // Each image with the name its annotated copy gets: the path relative to the
  // folder given (so person/1.jpg stays apart from other/1.jpg), or the bare
  // file name for a file given directly.
  std::vector<std::pair<std::string, fs::path>> images;
  for (const auto& input : a.inputs) {
    const bool dir = fs::is_directory(input);
    for (const auto& p : collect_images({input}))
      images.emplace_back(p, dir ? fs::path(p).lexically_relative(input) : fs::path(p).filename());
  }
  const bool single = images.size() == 1 && !fs::is_directory(a.inputs[0]);
  IdentifyOptions opt;
  opt.top_k = a.top_k;
  int failures = 0;
  std::set<std::string> written;
  // The threshold and why, stated once (it changes only if the gallery does).
  if (!a.o.json) {
    auto t = rec.threshold();
    if (!t.ok()) { std::cerr << "facerec identify: " << t.status().to_string() << "\n"; return kExitError; }
    std::cout << "decision: " << decision_text(t->policy) << "\n";
  }
  for (const auto& [path, out_name] : images) {
    if (g_interrupted) break;
    auto img = rec.load(path);
    Result<IdentifyResult> result = img.ok() ? rec.identify(*img, opt) : Result<IdentifyResult>(img.status());
    if (!result.ok()) {
      ++failures;
      if (a.o.json) std::cout << json({{"image", path}, {"error", result.status().to_string()}}).dump() << "\n";
      std::cerr << "skip    " << printable(path) << ": " << result.status().message() << "\n";
      continue;
    }
    if (a.o.json) std::cout << identify_json(path, *result).dump() << "\n";
    else std::cout << printable(path) << ": " << img->cols << "x" << img->rows << ", " << result->faces.size() << " face(s)\n";
    cv::Mat canvas = a.annotate.empty() ? cv::Mat() : img->clone();
    int n = 0;
    for (const auto& f : result->faces) {
      const Decision& d = f.decision;
      const auto& b = f.face.face.box;
      if (!a.o.json) {
        std::printf("  #%d [%.0f,%.0f,%.0f,%.0f] score %.2f: ", ++n, b.x, b.y, b.x + b.width, b.y + b.height, f.face.face.score);
        if (!f.low_quality.empty()) std::printf("unknown (low quality: %s)\n", f.low_quality.c_str());
        else if (d.known()) std::printf("%s (%.3f)\n", printable(d.identity).c_str(), d.similarity);
        else if (d.candidates.empty()) std::printf("unknown (empty gallery)\n");
        else std::printf("unknown (closest %s at %.3f < %.3f)\n", printable(d.candidates[0].identity).c_str(),
                         d.candidates[0].similarity, result->threshold.value);
      }
      if (!canvas.empty()) draw(canvas, f.face.face, d);
    }
    if (!canvas.empty()) {
      // out_name comes from names found on disk below a given folder; one that
      // would still leave --annotate (e.g. through "..") falls back to the bare
      // file name. Collisions get a numeric suffix.
      fs::path name = out_name.lexically_normal();
      if (name.empty() || name.is_absolute() || *name.begin() == "..") name = fs::path(path).filename();
      if (!cv::haveImageWriter(name.string())) name.replace_extension(".jpg");
      const fs::path stem = name.parent_path() / name.stem();
      const std::string ext = name.extension().string();
      std::string candidate = name.string();
      for (int k = 1; written.count(candidate); ++k) candidate = stem.string() + "_" + std::to_string(k) + ext;
      written.insert(candidate);
      try {
        const fs::path out = fs::path(a.annotate) / candidate;
        std::error_code ec;
        fs::create_directories(out.parent_path(), ec);
        cv::imwrite(out.string(), canvas);
      } catch (const cv::Exception& e) {
        std::cerr << "facerec identify: cannot write annotation for " << path << ": " << e.what() << "\n";
      }
    }
    std::cout.flush();
  }
  if (single && failures) return kExitError;
  return g_interrupted ? kExitInterrupted : kExitOk;
}

}  // namespace

void register_identify(CLI::App& app, std::function<void(int)> set_rc) {
  static IdentifyArgs a;
  auto* cmd = app.add_subcommand("identify", "name every face in the given images or folders");
  cmd->add_option("inputs", a.inputs, "images or folders")->required();
  cmd->add_option("--top-k", a.top_k, "candidates reported per face (default 5)")->check(CLI::Range(1, 1000));
  cmd->add_option("--annotate", a.annotate, "write copies of the images with boxes, landmarks and names here");
  cmd->add_flag("--json", a.o.json, "one JSON object per image, one per line");
  add_model_options(*cmd, a.o);
  add_index_option(*cmd, a.o);
  add_db_option(*cmd, a.o);
  add_threshold_option(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_identify(a)); });
}

}  // namespace facerec::cli
