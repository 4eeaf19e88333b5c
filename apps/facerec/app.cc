#include "app.h"

#include <csignal>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace facerec::cli {

std::atomic<bool> g_interrupted{false};

namespace {
void on_signal(int) { g_interrupted.store(true); }
}  // namespace

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void add_model_options(CLI::App& cmd, CommonOptions& o) {
  cmd.add_option("--config", o.config, "JSON config file (keys: detector, embedder, threshold, score_threshold, "
                                       "nms_threshold, max_pixels, db, threads)");
  cmd.add_option("--manifest", o.manifest, "model manifest (default: models/manifest.json or $FACEREC_MANIFEST)");
  cmd.add_option("--detector", o.detector, "detector: manifest id, .onnx path, or family:path");
  cmd.add_option("--embedder", o.embedder, "embedder: manifest id, .onnx path, or family:path");
  cmd.add_option("--det-score", o.score_threshold, "detection confidence threshold (default 0.5)");
  cmd.add_option("--nms", o.nms_threshold, "NMS IoU threshold (default 0.4)");
  cmd.add_option("--max-pixels", o.max_pixels, "refuse images with more pixels than this (default 40000000)");
  cmd.add_option("--threads", o.threads, "inference threads (default: one per core)");
  cmd.add_option("--detect-policy", o.detect_policy,
                 "how photos are shown to the detector: default, none, or key=value,... (aspect=stretch|letterbox|tile, "
                 "retry=0|1, retry-pad, tile-scale, ...; see include/facerec/detect_policy.h)");
}

void add_db_option(CLI::App& cmd, CommonOptions& o) {
  cmd.add_option("--db", o.db, "gallery database (default gallery.db)");
}

void add_threshold_option(CLI::App& cmd, CommonOptions& o) {
  cmd.add_option("--threshold", o.threshold,
                 "cosine similarity below which the answer is unknown (default: the embedder's LFW-measured value)");
}

Status Context::require_threshold() const {
  if (!threshold_source.empty()) return Status::Ok();
  return Status(ErrorCode::kInvalidArgument, "embedder '" + analyzer->embedder().spec().id +
                                                 "' has no measured default threshold in the manifest; pass --threshold");
}

EmbedderInfo Context::embedder_info() const {
  const auto& s = analyzer->embedder().spec();
  return {s.id, s.sha256, analyzer->embedder().dim()};
}

Result<Context> make_context(CommonOptions o, bool need_models) {
  using nlohmann::json;
  if (!o.config.empty()) {
    std::ifstream f(o.config);
    if (!f) return Status(ErrorCode::kNotFound, "cannot open config file " + o.config);
    try {
      json j = json::parse(f);
      if (o.detector.empty()) o.detector = j.value("detector", "");
      if (o.embedder.empty()) o.embedder = j.value("embedder", "");
      if (o.manifest.empty()) o.manifest = j.value("manifest", "");
      if (o.db.empty()) o.db = j.value("db", "");
      if (!o.threshold && j.contains("threshold")) o.threshold = j["threshold"].get<float>();
      if (!o.score_threshold && j.contains("score_threshold")) o.score_threshold = j["score_threshold"].get<float>();
      if (!o.nms_threshold && j.contains("nms_threshold")) o.nms_threshold = j["nms_threshold"].get<float>();
      if (!o.max_pixels && j.contains("max_pixels")) o.max_pixels = j["max_pixels"].get<int64_t>();
      if (o.threads == 0) o.threads = j.value("threads", 0);
      if (o.detect_policy.empty()) o.detect_policy = j.value("detect_policy", "");
    } catch (const json::exception& e) {
      return Status(ErrorCode::kInvalidArgument, "malformed config file " + o.config + ": " + e.what());
    }
  }
  Context ctx;
  ctx.db = o.db.empty() ? "gallery.db" : o.db;
  if (o.max_pixels) {
    if (*o.max_pixels <= 0) return Status(ErrorCode::kInvalidArgument, "--max-pixels must be positive");
    ctx.limits.max_pixels = *o.max_pixels;
  }
  auto manifest = Manifest::load(o.manifest.empty() ? Manifest::default_path() : o.manifest);
  if (!manifest.ok()) return manifest.status();
  ctx.manifest = std::move(manifest).value();
  if (!need_models) return ctx;

  RuntimeOptions ro;
  ro.intra_op_threads = o.threads;
  auto rt = create_onnxruntime(ro);
  if (!rt.ok()) return rt.status();
  ctx.runtime = std::move(rt).value();
  PipelineConfig pc;
  pc.detector = o.detector;
  pc.embedder = o.embedder;
  if (o.score_threshold) {
    if (*o.score_threshold < 0 || *o.score_threshold > 1)
      return Status(ErrorCode::kInvalidArgument, "--det-score must be within 0..1");
    pc.detector_options.score_threshold = *o.score_threshold;
  }
  if (o.nms_threshold) {
    if (*o.nms_threshold <= 0 || *o.nms_threshold > 1)
      return Status(ErrorCode::kInvalidArgument, "--nms must be within (0, 1]");
    pc.detector_options.nms_threshold = *o.nms_threshold;
  }
  auto policy = parse_detect_policy(o.detect_policy);
  if (!policy.ok()) return policy.status();
  pc.detect_policy = *policy;
  auto analyzer = FaceAnalyzer::create(*ctx.runtime, ctx.manifest, pc);
  if (!analyzer.ok()) return analyzer.status();
  ctx.analyzer = std::move(analyzer).value();
  const auto& es = ctx.analyzer->embedder().spec();
  if (o.threshold) {
    if (*o.threshold < -1 || *o.threshold > 1)
      return Status(ErrorCode::kInvalidArgument, "--threshold is a cosine similarity within -1..1");
    ctx.threshold = *o.threshold;
    ctx.threshold_source = "given";
  } else if (es.match_threshold > 0) {
    ctx.threshold = es.match_threshold;
    ctx.threshold_source = "manifest default for " + es.id;
  }  // else: no threshold; commands that match call require_threshold()
  return ctx;
}

Result<PickedFace> pick_largest_face(const Context& ctx, const std::string& path) {
  auto img = load_image(path, ctx.limits);
  if (!img.ok()) return img.status();
  auto faces = ctx.analyzer->detect(*img);
  if (!faces.ok()) return faces.status();
  if (faces->empty()) return Status(ErrorCode::kNoFace, path + ": no face found");
  PickedFace p;
  p.image = std::move(img).value();
  p.face = (*faces)[largest_face(*faces)];
  p.faces_found = static_cast<int>(faces->size());
  return p;
}

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const char* kExts[] = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp", ".gif"};
  for (const char* e : kExts)
    if (ext == e) return true;
  return false;
}

std::vector<std::string> collect_images(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec) && has_image_extension(it->path().string())) found.push_back(it->path().string());
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(p);  // files (or missing paths) go through and fail with a clear reason
    }
  }
  return out;
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace facerec::cli
