// The model manifest (models/manifest.json): what each model is, where it
// comes from, how to feed it. Loading and resolving models goes through here.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "facerec/open_set.h"
#include "facerec/runtime.h"
#include "facerec/status.h"

namespace facerec {

enum class ModelTask { kDetector, kLandmarks, kEmbedder };
enum class ResizeMode { kStretch, kLetterbox };

struct InputSpec {
  std::string name;
  int width = 0, height = 0;    // 0: dynamic
  std::string channels = "RGB";  // "RGB", "BGR" or "GRAY"
  std::vector<float> mean{0, 0, 0};
  std::vector<float> std{1, 1, 1};  // value = (pixel - mean) / std, pixel in 0..255
  ResizeMode resize = ResizeMode::kLetterbox;
  float pad_value = 0.f;  // letterbox fill, 0..255
};

struct OutputSpec {
  std::string name;
  std::vector<int64_t> dims;  // -1 dynamic
};

struct ModelSpec {
  std::string id;
  ModelTask task = ModelTask::kDetector;
  std::string family;  // detectors: yolov5face, scrfd, yunet, retinaface, ultraface; embedders: arcface
  // Source: either npm (package@version, tarball sha256, path inside it) or a local file.
  std::string npm_package, npm_tarball_sha256, npm_path;
  std::string file;     // local file, after ${FACEREC_SHARED} expansion
  std::string sha256;   // of the .onnx itself; empty = unchecked (user-supplied path)
  std::string licence;
  InputSpec input;
  std::vector<OutputSpec> outputs;
  std::string landmarks_model;  // detectors without their own landmarks
  bool quality_magnitude = false;  // embedders: raw norm is MagFace quality
  // Embedders: the default cosine threshold for "same person", measured on
  // LFW (see the manifest's threshold_reason). 0 when not measured.
  float match_threshold = 0.f;
  std::string threshold_reason;
  // Embedders: the impostor calibration that turns an FPIR into a threshold
  // for a gallery of N people (facerec/open_set.h), from the manifest's
  // "open_set_calibration"; empty when not measured.
  ImpostorCalibration open_set_calibration;
  std::string path;  // where the .onnx is (or will be) on this machine
  SessionConfig session;  // e.g. a lower graph optimisation level where measured faster
};

const char* to_string(ModelTask task);

class Manifest {
 public:
  // Reads a manifest file. Unknown keys are ignored; missing required ones are
  // a kInvalidArgument naming the entry.
  static Result<Manifest> load(const std::string& path);
  // $FACEREC_MANIFEST, else models/manifest.json in the source tree.
  static std::string default_path();
  // $FACEREC_CACHE, else $XDG_CACHE_HOME/facerec, else ~/.cache/facerec.
  static std::string cache_dir();

  const std::vector<ModelSpec>& models() const { return models_; }
  const ModelSpec* find(const std::string& id) const;
  std::string default_detector() const { return default_detector_; }
  std::string default_embedder() const { return default_embedder_; }

  // Resolves what a user typed for --detector / --embedder: a manifest id, a
  // path to an .onnx whose sha256 matches an entry, or "family:path" for a
  // model the manifest does not know. The file must exist (not fetched here).
  Result<ModelSpec> resolve(const std::string& id_or_path, ModelTask task) const;

  // Adds an entry (e.g. from a trained model's manifest snippet).
  void add(ModelSpec spec) { models_.push_back(std::move(spec)); }

 private:
  std::vector<ModelSpec> models_;
  std::string default_detector_, default_embedder_;
};

// sha256 of a file as lowercase hex.
Result<std::string> sha256_file(const std::string& path);

// Checks that spec.path exists and its sha256 equals spec.sha256 (when set).
// A mismatch is kHashMismatch with both hashes in the message.
Status verify_model_file(const ModelSpec& spec);

// Makes an npm-sourced model present at spec.path: reuses a verified copy,
// else runs `npm pack` into the cache, checks the tarball hash, extracts the
// file, checks its hash, and renames it into place. Nothing is left behind on
// failure. Local-file models are only verified.
Status fetch_model(const ModelSpec& spec);

}  // namespace facerec
