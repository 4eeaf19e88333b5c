// facerec serve: the HTTP/JSON service over one shared FaceRecognizer (the
// contract is api/openapi.yaml). This file parses the flags, opens the
// gallery and listens; the service itself (routes, keys and roles, limits,
// the bounded pool, error mapping) is serve::Service (serve_service.h).
// SIGTERM/SIGINT stop the listener, finish the requests in flight and exit 0.
//
// The web page (web/: index.html, app.js, style.css) is served as static
// files at / without a key; the page itself then calls the API with the key
// the user enters, like any other client.
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "app.h"
#include "serve_service.h"
#include "serve_support.h"

namespace facerec::cli {
namespace {

struct ServeArgs {
  CommonOptions o;
  std::string listen = "127.0.0.1:8080";
  std::string keys;
  bool json_log = false;
  int workers = 0;
  int queue = 64;
  size_t max_body = 10u << 20;
  int timeout_s = 30;
  std::string web;  // the page's folder; empty: the checkout's or the installed one; "none": no page
  int follow_ms = 500;  // the longest a node goes without reading the gallery's change log
};

// The folder the page is served from: --web, else the checkout's web/, else
// the one `cmake --install` put in share/facerec/web. Empty: no page.
std::string web_root(const ServeArgs& a) {
  namespace fs = std::filesystem;
  if (a.web == "none") return "";
  if (!a.web.empty()) return a.web;
  std::error_code ec;
  for (const char* dir : {FACEREC_SOURCE_DIR "/web", FACEREC_INSTALL_WEB})
    if (fs::exists(fs::path(dir) / "index.html", ec)) return dir;
  return "";
}

int run_serve(const ServeArgs& a) {
  const auto fail = [](const std::string& m) {
    std::cerr << "facerec serve: " << m << "\n";
    return kExitError;
  };
  auto addr = serve::parse_listen(a.listen);
  if (!addr.ok()) return fail(addr.status().message());
  std::optional<serve::KeyStore> keys;
  if (!a.keys.empty()) {
    auto k = serve::KeyStore::load(a.keys);
    if (!k.ok()) return fail(k.status().to_string());
    keys = std::move(k).value();
  } else if (!serve::is_loopback(addr->host)) {
    return fail("listening on " + addr->host + " (not loopback) requires --keys keys.json");
  }
  if (a.max_body == 0 || a.timeout_s <= 0 || a.queue < 0 || a.workers < 0) return fail("limits must be positive");
  // Flags are checked before the gallery is opened (kCreate makes the file).
  if (a.follow_ms <= 0) return fail("--follow-ms must be positive");
  const std::string web = web_root(a);
  if (!web.empty() && !std::filesystem::is_directory(web)) return fail("--web " + web + ": not a folder");
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto log = std::make_shared<spdlog::logger>("facerec", sink);
  log->set_pattern(a.json_log ? "%v" : "%Y-%m-%dT%H:%M:%S.%e %v");
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int workers = a.workers > 0 ? a.workers : cores;
  // Unless --threads or the config file says otherwise, the workers share the
  // cores instead of each running one inference thread per core: measured on
  // 2 cores with 2 workers (bench/serve_bench.sh, 2026-12-01), 1 thread each
  // against 2 gave 113 vs 94 requests/s and p99 52 vs 67 ms at concurrency
  // 4, for 19.1 vs 15.5 ms at concurrency 1 (BENCHMARKS.md, "Service").
  auto layer = given_layers(a.o);
  if (!layer.ok()) return fail(layer.status().to_string());
  if (!layer->threads) layer->threads = std::max(1, cores / workers);
  auto ctx = make_context(a.o, true, GalleryMode::kCreate, &*layer);
  if (!ctx.ok()) return fail(ctx.status().to_string());
  if (Status s = ctx->require_threshold(); !s.ok()) return fail(s.to_string());
  // Other processes' changes to the gallery (other serve nodes, the CLI)
  // are applied in place as they are notified (PostgreSQL) or polled.
  if (Status s = ctx->recognizer->follow_gallery(std::chrono::milliseconds(a.follow_ms)); !s.ok())
    return fail(s.to_string());
  serve::ServiceOptions so;
  so.workers = workers;
  so.queue = a.queue;
  so.max_body = a.max_body;
  so.timeout_s = a.timeout_s;
  so.follow_ms = a.follow_ms;
  so.json_log = a.json_log;
  so.web = web;
  serve::Service service(*ctx->recognizer, so, std::move(keys), log);
  serve::HttpServer svr;
  if (Status s = service.install(svr); !s.ok()) return fail(s.message());
  if (!web.empty()) log->info("web page at / from " + web);
  const int port = addr->port == 0 ? svr.bind_to_any_port(addr->host) : (svr.bind_to_port(addr->host, addr->port) ? addr->port : -1);
  if (port < 0) return fail("cannot listen on " + a.listen);
  std::cout << "facerec serve: listening on http://" << (addr->host.find(':') != std::string::npos ? "[" + addr->host + "]" : addr->host)
            << ":" << port << " (" << workers << " workers, gallery " << ctx->db << ", " << ctx->recognizer->people().size()
            << " people)" << std::endl;
  // SIGTERM: stop accepting, let the requests in flight finish (each is
  // bounded by the timeout), then exit 0; the watchdog waits that long.
  set_interrupt_grace(std::chrono::seconds(a.timeout_s + 5));
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done && !g_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    svr.stop();  // closes the listener; requests in flight finish
  });
  svr.listen_after_bind();
  done = true;
  watcher.join();
  std::cout << "facerec serve: stopped" << std::endl;
  return kExitOk;
}

}  // namespace

void register_serve(CLI::App& app, std::function<void(int)> set_rc) {
  static ServeArgs a;
  auto* cmd = app.add_subcommand("serve", "HTTP/JSON service: identify, verify, detect, enrol (api/openapi.yaml)");
  cmd->add_option("--listen", a.listen, "host:port (default 127.0.0.1:8080; port 0 picks a free one)");
  cmd->add_option("--keys", a.keys, "keys.json: SHA-256 hashes of API keys with their roles (required off loopback)");
  cmd->add_flag("--json-log", a.json_log, "access log as JSON lines on stderr");
  cmd->add_option("--workers", a.workers, "requests running the models at once (default: one per core)");
  cmd->add_option("--queue", a.queue, "requests that may wait for a worker; beyond it: 503 overloaded (default 64)");
  cmd->add_option("--max-body", a.max_body, "request body limit in bytes; over it: 413 (default 10 MiB)");
  cmd->add_option("--timeout", a.timeout_s, "seconds for reading, writing, and waiting for a worker (default 30)");
  cmd->add_option("--web", a.web, "folder of the web page served at / (default: the checkout's or installed web/; none: no page)");
  cmd->add_option("--follow-ms", a.follow_ms,
                  "longest wait between reads of the gallery's change log, in ms (other nodes' changes; default 500)");
  add_model_options(*cmd, a.o);
  add_index_option(*cmd, a.o);
  add_db_option(*cmd, a.o);
  add_threshold_option(*cmd, a.o);
  // The service's default differs from the other commands': see --workers.
  cmd->get_option("--threads")->description("inference threads per worker (default: cores/workers, at least 1)");
  cmd->callback([set_rc] { set_rc(run_serve(a)); });
}

}  // namespace facerec::cli
