// facerec identify <image|dir>...: name every face in every image.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "app.h"

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
  auto ctx = make_context(a.o);
  if (!ctx.ok()) { std::cerr << "facerec identify: " << ctx.status().to_string() << "\n"; return kExitError; }
  if (Status s = ctx->require_threshold(); !s.ok()) { std::cerr << "facerec identify: " << s.to_string() << "\n"; return kExitError; }
  if (!fs::exists(ctx->db)) {
    std::cerr << "facerec identify: no gallery at " << ctx->db << "; enrol people first (facerec enroll <dir> --db "
              << ctx->db << ")\n";
    return kExitError;
  }
  auto gallery = Gallery::open(ctx->db, ctx->embedder_info());
  if (!gallery.ok()) { std::cerr << "facerec identify: " << gallery.status().to_string() << "\n"; return kExitError; }
  // A person is their mean template (weighted by quality, the norm, for
  // MagFace-style models): see kDefaultTemplateRule.
  auto index = SearchIndex::from_gallery(**gallery, kDefaultTemplateRule, ctx->analyzer->embedder().spec().quality_magnitude);
  if (!index.ok()) { std::cerr << "facerec identify: " << index.status().to_string() << "\n"; return kExitError; }
  // The threshold for this gallery, stated once (and in every JSON line).
  auto policy = ctx->decision_policy(static_cast<int64_t>(index->people()), static_cast<int64_t>(index->size()), index->rule());
  if (!policy.ok()) { std::cerr << "facerec identify: " << policy.status().to_string() << "\n"; return kExitError; }
  const json decision = json::parse(decision_json(*policy));
  if (!a.o.json) std::cout << "decision: " << decision_text(*policy) << "\n";
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
  int failures = 0;
  std::set<std::string> written;
  for (const auto& [path, out_name] : images) {
    if (g_interrupted) break;
    auto img = load_image(path, ctx->limits);
    Result<std::vector<AnalyzedFace>> faces = img.ok() ? ctx->analyzer->analyze(*img)
                                                       : Result<std::vector<AnalyzedFace>>(img.status());
    if (!faces.ok()) {
      ++failures;
      if (a.o.json) std::cout << json({{"image", path}, {"error", faces.status().to_string()}}).dump() << "\n";
      std::cerr << "skip    " << printable(path) << ": " << faces.status().message() << "\n";
      continue;
    }
    json jfaces = json::array();
    if (!a.o.json) std::cout << printable(path) << ": " << img->cols << "x" << img->rows << ", " << faces->size() << " face(s)\n";
    cv::Mat canvas = a.annotate.empty() ? cv::Mat() : img->clone();
    int n = 0;
    for (const auto& af : *faces) {
      Decision d = decide(index->search(af.embedding.unit.data(), a.top_k), policy->threshold);
      const auto& b = af.face.box;
      if (a.o.json) {
        json lm = json::array(), cands = json::array();
        for (const auto& p : af.face.landmarks) lm.push_back({p.x, p.y});
        for (const auto& c : d.candidates) cands.push_back({{"identity", c.identity}, {"similarity", c.similarity}});
        jfaces.push_back({{"box", {b.x, b.y, b.x + b.width, b.y + b.height}}, {"score", af.face.score},
                          {"landmarks", lm}, {"identity", d.known() ? json(d.identity) : json(nullptr)},
                          {"similarity", d.known() ? d.similarity : (d.candidates.empty() ? 0.f : d.candidates[0].similarity)},
                          {"quality", af.quality}, {"candidates", cands}});
      } else {
        std::printf("  #%d [%.0f,%.0f,%.0f,%.0f] score %.2f: ", ++n, b.x, b.y, b.x + b.width, b.y + b.height, af.face.score);
        if (d.known()) std::printf("%s (%.3f)\n", printable(d.identity).c_str(), d.similarity);
        else if (d.candidates.empty()) std::printf("unknown (empty gallery)\n");
        else std::printf("unknown (closest %s at %.3f < %.3f)\n", printable(d.candidates[0].identity).c_str(),
                         d.candidates[0].similarity, policy->threshold);
      }
      if (!canvas.empty()) draw(canvas, af.face, d);
    }
    if (a.o.json)
      std::cout << json({{"image", path}, {"width", img->cols}, {"height", img->rows}, {"faces", jfaces}, {"decision", decision}})
                       .dump()
                << "\n";
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
  add_db_option(*cmd, a.o);
  add_threshold_option(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_identify(a)); });
}

}  // namespace facerec::cli
