// Shared plumbing for the facerec CLI's subcommands.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "facerec/gallery.h"
#include "facerec/image.h"
#include "facerec/models.h"
#include "facerec/pipeline.h"
#include "facerec/runtime.h"
#include "facerec/search.h"

namespace facerec::cli {

// Set by SIGINT/SIGTERM; long jobs check it between files and stop cleanly.
extern std::atomic<bool> g_interrupted;
void install_signal_handlers();

// Options shared by the commands that run models. Flags override the config
// file (--config, JSON), which overrides the manifest's defaults.
struct CommonOptions {
  std::string config;
  std::string manifest;
  std::string detector, embedder;
  std::optional<float> score_threshold, nms_threshold, threshold;
  std::optional<int64_t> max_pixels;
  std::string detect_policy;  // parse_detect_policy() text; empty = the default policy
  std::string db;
  int threads = 0;
  bool json = false;
};
void add_model_options(CLI::App& cmd, CommonOptions& o);
void add_db_option(CLI::App& cmd, CommonOptions& o);
void add_threshold_option(CLI::App& cmd, CommonOptions& o);

// Everything a model-running command needs, built from CommonOptions.
struct Context {
  std::unique_ptr<Runtime> runtime;
  Manifest manifest;
  std::unique_ptr<FaceAnalyzer> analyzer;
  ImageLimits limits;
  float threshold = 0.f;  // resolved match threshold
  std::string threshold_source;
  std::string db;
  EmbedderInfo embedder_info() const;
  Status require_threshold() const;
};
// Applies the config file to o (flags already given win), then loads models.
Result<Context> make_context(CommonOptions o, bool need_models = true);

// Image files under each path (a file is taken as is; folders are walked,
// sorted, keeping files with image extensions).
std::vector<std::string> collect_images(const std::vector<std::string>& paths);
bool has_image_extension(const std::string& path);

// "Alice", "../x" -> a JSON-safe, terminal-safe rendering (control chars escaped).
std::string printable(const std::string& s);

// The one face a single-face command uses: the largest. `faces_found` says
// how many there were, so callers can report "several faces, used the largest".
struct PickedFace {
  cv::Mat image;  // the decoded BGR image
  Face face;
  int faces_found = 0;
};
Result<PickedFace> pick_largest_face(const Context& ctx, const std::string& path);
void register_align(CLI::App& app, std::function<void(int)> set_rc);
void register_enroll(CLI::App& app, std::function<void(int)> set_rc);
void register_eval(CLI::App& app, std::function<void(int)> set_rc);
void register_gallery(CLI::App& app, std::function<void(int)> set_rc);
void register_identify(CLI::App& app, std::function<void(int)> set_rc);
void register_verify(CLI::App& app, std::function<void(int)> set_rc);
void register_models(CLI::App& app, std::function<void(int)> set_rc);
void register_watch(CLI::App& app, std::function<void(int)> set_rc);
void register_embed(CLI::App& app, std::function<void(int)> set_rc);

// Exit codes.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // the command failed (single-file error, model/db error)
constexpr int kExitUsage = 2;  // bad flags
constexpr int kExitInterrupted = 130;

}  // namespace facerec::cli
