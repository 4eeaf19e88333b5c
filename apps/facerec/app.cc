#include "app.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <thread>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace facerec::cli {

std::atomic<bool> g_interrupted{false};

namespace {
int g_signal_pipe[2] = {-1, -1};

void on_signal(int) {
  const bool second = g_interrupted.exchange(true);
  if (second) ::_exit(kExitInterrupted);  // a second Ctrl-C: now
  if (g_signal_pipe[1] >= 0) {
    const char c = 1;
    [[maybe_unused]] ssize_t w = ::write(g_signal_pipe[1], &c, 1);
  }
}

// Commands stop cleanly between files when g_interrupted is set; a command
// inside one long call (a model load, a huge image, an evaluation) would not
// notice. The watchdog gives it kGrace to finish cleanly, then ends the
// process: every command ends within a second of SIGINT/SIGTERM. Gallery
// writes are SQLite transactions, so an exit mid-write leaves no partial
// person.
std::atomic<long long> g_grace_ms{500};
void watchdog() {
  char c;
  while (::read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {}
  std::this_thread::sleep_for(std::chrono::milliseconds(g_grace_ms.load()));
  std::fflush(stdout);
  std::fprintf(stderr, "facerec: interrupted\n");
  ::_exit(kExitInterrupted);
}
}  // namespace

void set_interrupt_grace(std::chrono::milliseconds grace) { g_grace_ms = grace.count(); }

void install_signal_handlers() {
  if (::pipe2(g_signal_pipe, O_CLOEXEC) == 0) {
    try {
      std::thread(watchdog).detach();
    } catch (const std::system_error&) {
      // No thread to spare: Ctrl-C still stops between files.
    }
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void add_model_options(CLI::App& cmd, CommonOptions& o) {
  cmd.add_option("--config", o.config, "JSON config file (keys: detector, embedder, threshold, fpir, detect_policy, score_threshold, "
                                       "nms_threshold, max_pixels, db, threads, index)");
  cmd.add_option("--manifest", o.manifest, "model manifest (default: models/manifest.json or $FACEREC_MANIFEST, plus the imported models of $FACEREC_CACHE/manifest.local.json)");
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
  cmd.add_option("--db", o.db, "gallery: a SQLite file (default gallery.db) or postgresql://user@host/dbname");
}

void add_threshold_option(CLI::App& cmd, CommonOptions& o) {
  cmd.add_option("--threshold", o.threshold,
                 "cosine similarity below which the answer is unknown; overrides --fpir");
  cmd.add_option("--fpir", o.fpir,
                 "the fraction of strangers (people not enrolled) you accept being named, e.g. 0.01 (the default); "
                 "turned into a threshold for this gallery's size from the embedder's calibration");
}

void add_index_option(CLI::App& cmd, CommonOptions& o) {
  cmd.add_option("--index", o.index,
                 "search: exact, hnsw (approximate graph kept in <db>.hnsw, candidates re-scored exactly) or auto "
                 "(the default: exact below 50000 templates)");
}

std::string decision_text(const DecisionPolicy& p) {
  char b[64];
  std::snprintf(b, sizeof b, "threshold %.4f", p.threshold);
  return std::string(b) + " (" + p.reason + ")";
}

Status Context::require_threshold() const {
  if (!threshold_source.empty() || !analyzer->embedder().spec().open_set_calibration.empty()) return Status::Ok();
  return Status(ErrorCode::kInvalidArgument, "embedder '" + analyzer->embedder().spec().id +
                                                 "' has no measured default threshold in the manifest; pass --threshold");
}

EmbedderInfo Context::embedder_info() const { return recognizer->embedder_info(); }

ConfigLayer flag_layer(const CommonOptions& o) {
  ConfigLayer l;
  if (!o.manifest.empty()) l.manifest = o.manifest;
  if (!o.detector.empty()) l.detector = o.detector;
  if (!o.embedder.empty()) l.embedder = o.embedder;
  if (!o.db.empty()) l.db = o.db;
  if (o.threads != 0) l.threads = o.threads;
  l.threshold = o.threshold;
  l.fpir = o.fpir;
  l.score_threshold = o.score_threshold;
  l.nms_threshold = o.nms_threshold;
  l.max_pixels = o.max_pixels;
  if (!o.detect_policy.empty()) l.detect_policy = o.detect_policy;
  if (!o.index.empty()) l.index = o.index;
  return l;
}

Result<ConfigLayer> given_layers(const CommonOptions& o) {
  ConfigLayer flags = flag_layer(o);
  if (o.config.empty()) return flags;
  FACEREC_ASSIGN_OR_RETURN(ConfigLayer file, load_config_file(o.config));
  return overlay(flags, file);
}

Result<Context> make_context(const CommonOptions& o, bool need_models, GalleryMode gallery,
                             const ConfigLayer* layer_override) {
  ConfigLayer layer;
  if (layer_override) {
    layer = *layer_override;
  } else {
    FACEREC_ASSIGN_OR_RETURN(layer, given_layers(o));
  }
  Context ctx;
  FACEREC_ASSIGN_OR_RETURN(ctx.config, resolve_config(layer));
  ctx.config.gallery = gallery;
  ctx.db = redact_uri(ctx.config.db);  // for messages: a postgres URI's password never printed
  ctx.limits = ctx.config.limits;
  if (!need_models) {
    FACEREC_ASSIGN_OR_RETURN(ctx.manifest, ctx.config.manifest.empty() ? Manifest::load_default()
                                                                        : Manifest::load(ctx.config.manifest));
    return ctx;
  }
  FACEREC_ASSIGN_OR_RETURN(ctx.recognizer, FaceRecognizer::create(ctx.config));
  ctx.analyzer = &ctx.recognizer->analyzer();
  ctx.manifest = ctx.recognizer->manifest();
  if (auto t = ctx.recognizer->threshold(); t.ok()) {
    ctx.threshold = t->value;
    ctx.threshold_source = t->source;
  }  // else: no threshold; commands that match call require_threshold()
  return ctx;
}

Result<PickedFace> pick_largest_face(const Context& ctx, const std::string& path) {
  FACEREC_ASSIGN_OR_RETURN(auto img, load_image(path, ctx.limits));
  FACEREC_ASSIGN_OR_RETURN(auto faces, ctx.recognizer->detect(img));
  if (faces.empty()) return Status(ErrorCode::kNoFace, path + ": no face found");
  PickedFace p;
  p.image = std::move(img);
  p.face = faces[largest_face(faces)];
  p.faces_found = static_cast<int>(faces.size());
  return p;
}

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const char* kExts[] = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp", ".gif",
                                ".pam", ".heic", ".heif", ".avif"};
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
        // Every file the walk sees is kept, whatever its name or type: the
        // loader reads the format from the bytes and reports what it cannot
        // read (a .HEIC, a .txt, a FIFO, a broken link) by name. Nothing is
        // dropped silently.
        // A symlink to a folder is not followed (no loops, no second copy):
        // it is kept too, so the loader reports it ("a directory") by name.
        if (std::error_code e2; !it->is_directory(ec) || it->is_symlink(e2)) found.push_back(it->path().string());
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(p);  // files (or missing paths) go through and fail with a clear reason
    }
  }
  return out;
}

}  // namespace facerec::cli
