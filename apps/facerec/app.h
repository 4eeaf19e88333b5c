// Shared plumbing for the facerec CLI's subcommands.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "facerec/gallery.h"
#include "facerec/image.h"
#include "facerec/models.h"
#include "facerec/open_set.h"
#include "facerec/pipeline.h"
#include "facerec/names.h"
#include "facerec/recognizer.h"
#include "facerec/runtime.h"
#include "facerec/search.h"

namespace facerec::cli {

// Set by SIGINT/SIGTERM; long jobs check it between files and stop cleanly.
extern std::atomic<bool> g_interrupted;
void install_signal_handlers();
// How long a command may take to stop by itself after SIGINT/SIGTERM before
// the watchdog ends the process with kExitInterrupted (default 500 ms). The
// service raises it to its request timeout, so requests in flight finish and
// it exits 0.
void set_interrupt_grace(std::chrono::milliseconds grace);

// Options shared by the commands that run models. Flags override the config
// file (--config, JSON), which overrides the manifest's defaults.
struct CommonOptions {
  std::string config;
  std::string manifest;
  std::string detector, embedder;
  std::optional<float> score_threshold, nms_threshold, threshold;
  std::optional<double> fpir;  // the FPIR asked for (default kDefaultFpir)
  std::optional<int64_t> max_pixels;
  std::string detect_policy;  // parse_detect_policy() text; empty = the default policy
  std::string index;          // exact, hnsw or auto; empty = the config's (default auto)
  std::string db;
  int threads = 0;
  bool json = false;
};
void add_model_options(CLI::App& cmd, CommonOptions& o);
void add_db_option(CLI::App& cmd, CommonOptions& o);
// --threshold and --fpir: the decision's two knobs.
void add_threshold_option(CLI::App& cmd, CommonOptions& o);
// --index exact|hnsw|auto: which search answers (facerec/search.h, IndexMode).
void add_index_option(CLI::App& cmd, CommonOptions& o);

// The flags as the library's top ConfigLayer (unset flags say nothing).
ConfigLayer flag_layer(const CommonOptions& o);
// Flags over the --config file: what was given, before defaults.
Result<ConfigLayer> given_layers(const CommonOptions& o);

// Everything a model-running command needs: the FaceRecognizer built from
// flags > config file > defaults (the library's resolve_config).
struct Context {
  std::unique_ptr<FaceRecognizer> recognizer;  // null when no models were asked for
  const FaceAnalyzer* analyzer = nullptr;      // recognizer->analyzer()
  Manifest manifest;
  ImageLimits limits;
  RecognizerConfig config;
  std::string db;
  float threshold = 0.f;  // resolved match threshold (see require_threshold)
  std::string threshold_source;
  EmbedderInfo embedder_info() const;
  Status require_threshold() const;
};
// Resolves the options, then loads the models and (per `gallery`) the gallery.
// `layer_override` (optional) replaces the given layers, for commands that
// adjust them (watch).
Result<Context> make_context(const CommonOptions& o, bool need_models = true, GalleryMode gallery = GalleryMode::kNone,
                             const ConfigLayer* layer_override = nullptr);

// Files under each path (a file is taken as is; folders are walked
// recursively and sorted). Every non-directory entry is returned, so that
// load_image() reports the ones that are not images instead of a silent drop.
std::vector<std::string> collect_images(const std::vector<std::string>& paths);
bool has_image_extension(const std::string& path);

// The decision every matching command states once, for people (the JSON
// form is the library's decision_json in facerec/json.h).
std::string decision_text(const DecisionPolicy& p);

// printable(name): facerec/names.h.

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
void register_eval_erc(CLI::App& eval, std::function<void(int)> set_rc);  // cmd_eval_erc.cc
void register_gallery(CLI::App& app, std::function<void(int)> set_rc);
void register_identify(CLI::App& app, std::function<void(int)> set_rc);
void register_verify(CLI::App& app, std::function<void(int)> set_rc);
void register_models(CLI::App& app, std::function<void(int)> set_rc);
void register_watch(CLI::App& app, std::function<void(int)> set_rc);
void register_embed(CLI::App& app, std::function<void(int)> set_rc);
void register_serve(CLI::App& app, std::function<void(int)> set_rc);

// Exit codes.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // the command failed (single-file error, model/db error)
constexpr int kExitUsage = 2;  // bad flags
constexpr int kExitInterrupted = 130;

}  // namespace facerec::cli
