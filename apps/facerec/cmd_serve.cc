// facerec serve: the HTTP/JSON service over one shared FaceRecognizer (the
// contract is api/openapi.yaml).
//
// Threads. cpp-httplib hands each connection to a pool of `--workers +
// --queue` threads (BoundedPool); at most `--workers` requests (default: one
// per core) run the models at once (serve::FairSlots, first come first served), the others wait
// at most `--timeout` seconds and then get 503 overloaded. When every pool
// thread is busy and `--queue` connections already wait, a new connection is
// answered 503 overloaded at once by a reject thread, without reading its
// body. Auth, the route's role and the limits are checked before the body is
// read. SIGTERM/SIGINT stop the listener, finish the requests in flight and
// exit 0.
//
// The web page (web/: index.html, app.js, style.css) is served as static
// files at / without a key; the page itself then calls the API with the key
// the user enters, like any other client.
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "app.h"
#include "facerec/json.h"
#include "serve_support.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

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

// Per-request state of the thread that serves it (cpp-httplib runs a whole
// request, pre-routing to logger, on one thread).
thread_local bool t_reject = false;       // this thread only answers 503 overloaded
thread_local Clock::time_point t_start;
thread_local int t_faces = -1;

// A fixed pool with a bounded backlog; overflow goes to the reject thread.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(size_t threads, size_t max_pending) : max_pending_(max_pending) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(false); });
    rejecter_ = std::thread([this] { run(true); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    if (pending_.size() < max_pending_ || shutdown_) {
      pending_.push_back(std::move(fn));
      // notify_all: the pool threads and the reject thread share cv_, and a
      // notify_one that woke the reject thread would be lost to the pool.
      cv_.notify_all();
      return;
    }
    if (rejects_.size() < 256) {
      rejects_.push_back(std::move(fn));
      cv_.notify_all();
      return;
    }
    lock.unlock();
    // Even the reject backlog is full: answer on the accepting thread.
    t_reject = true;
    fn();
    t_reject = false;
  }
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    rejecter_.join();
  }

 private:
  void run(bool reject) {
    t_reject = reject;
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        auto& q = reject ? rejects_ : pending_;
        cv_.wait(lock, [&] { return shutdown_ || !q.empty(); });
        if (q.empty()) return;  // shut down and drained
        fn = std::move(q.front());
        q.pop_front();
      }
      fn();
    }
  }
  size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> pending_, rejects_;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
  std::thread rejecter_;
};

// The route template a request falls under, for roles, metrics and logs
// (never the person's name or any query value).
std::string route_of(const std::string& method, const std::string& path) {
  if (path == "/v1/identify" || path == "/v1/verify" || path == "/v1/detect" || path == "/v1/people" ||
      path == "/v1/health" || path == "/metrics")
    return method + " " + path;
  // Everything else a browser GETs is the page's static files (or a 404).
  if ((method == "GET" || method == "HEAD") && path.rfind("/v1/", 0) != 0) return method + " /web";
  if (path.rfind("/v1/people/", 0) == 0) {
    if (path.size() > 6 && path.compare(path.size() - 6, 6, "/faces") == 0) return method + " /v1/people/{name}/faces";
    return method + " /v1/people/{name}";
  }
  return method + " other";
}

serve::Role role_needed(const std::string& route) {
  if (route == "GET /v1/health" || route == "GET /web" || route == "HEAD /web") return serve::Role::kNone;
  if (route == "GET /metrics") return serve::Role::kAdmin;
  if (route.find("/v1/people") != std::string::npos) return serve::Role::kEnroll;
  return serve::Role::kRecognize;
}

void send_error(httplib::Response& res, int http, const char* code, const std::string& message) {
  res.status = http;
  res.set_content(serve::error_body(code, message), "application/json");
}
void send_status(httplib::Response& res, const Status& s) {
  const serve::ApiError e = serve::api_error(s);
  send_error(res, e.http, e.code, s.message());
}
void send_json(httplib::Response& res, int http, const json& j) {
  res.status = http;
  res.set_content(j.dump(), "application/json");
}

// The image of a request: the raw body, or multipart field `field`.
Result<std::string> image_bytes(const httplib::Request& req, const char* field) {
  std::string bytes;
  if (req.is_multipart_form_data()) {
    if (!req.has_file(field))
      return Status(ErrorCode::kInvalidArgument, std::string("multipart field '") + field + "' is missing");
    bytes = req.get_file_value(field).content;
  } else {
    bytes = req.body;
  }
  if (bytes.empty()) return Status(ErrorCode::kDecode, std::string(field) + ": empty body, expected image bytes");
  return bytes;
}

class Service {
 public:
  Service(FaceRecognizer& rec, const ServeArgs& a, std::optional<serve::KeyStore> keys,
          std::shared_ptr<spdlog::logger> log, int workers)
      : rec_(rec), a_(a), keys_(std::move(keys)), log_(std::move(log)), slots_(workers) {}

  void install(httplib::Server& svr) {
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) -> httplib::Server::HandlerResponse {
      t_start = Clock::now();
      t_faces = -1;
      if (t_reject) {
        res.set_header("Connection", "close");
        send_error(res, 503, "overloaded", "the server is at capacity; retry later");
        return httplib::Server::HandlerResponse::Handled;
      }
      // Keys are checked before the body is read.
      const serve::Role need = role_needed(route_of(req.method, req.path));
      if (keys_ && need != serve::Role::kNone) {
        const std::string auth = req.get_header_value("Authorization");
        const std::string key = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : std::string();
        const serve::Role have = keys_->role_of(key);
        if (have == serve::Role::kNone) {
          res.set_header("WWW-Authenticate", "Bearer");
          send_error(res, 401, "unauthorized", key.empty() ? "an API key is required (Authorization: Bearer <key>)"
                                                           : "unknown API key");
          return httplib::Server::HandlerResponse::Handled;
        }
        if (static_cast<int>(have) < static_cast<int>(need)) {
          send_error(res, 403, "forbidden", std::string("this key's role (") + serve::to_string(have) +
                                                ") may not use this route; it needs " + serve::to_string(need));
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Errors cpp-httplib produces itself (413, 404, 400) get the same JSON.
    svr.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request&, httplib::Response& res) -> httplib::Server::HandlerResponse {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      if (res.status == 413) send_error(res, 413, "too_large", "request body over the limit");
      else if (res.status == 404) send_error(res, 404, "not_found", "no such route");
      else if (res.status == 400) send_error(res, 400, "bad_request", "malformed request");
      else if (res.status == 405) send_error(res, 405, "bad_request", "method not allowed");
      else send_error(res, res.status, "internal", "error");
      return httplib::Server::HandlerResponse::Handled;
    }));
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_error(res, 500, "internal", "internal error");
    });
    svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) { access(req, res); });

    svr.Post("/v1/identify", [this](const httplib::Request& req, httplib::Response& res) { compute(res, [&] { identify(req, res); }); });
    svr.Post("/v1/verify", [this](const httplib::Request& req, httplib::Response& res) { compute(res, [&] { verify(req, res); }); });
    svr.Post("/v1/detect", [this](const httplib::Request& req, httplib::Response& res) { compute(res, [&] { detect(req, res); }); });
    svr.Post(R"(/v1/people/(.+)/faces)", [this](const httplib::Request& req, httplib::Response& res) { compute(res, [&] { enroll(req, res); }); });
    svr.Get("/v1/people", [this](const httplib::Request&, httplib::Response& res) {
      json people = json::array();
      for (const auto& p : rec_.people()) people.push_back({{"name", p.name}, {"templates", p.templates}});
      send_json(res, 200, people);
    });
    svr.Delete(R"(/v1/people/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string name = req.matches[1];
      if (Status s = rec_.remove(name); !s.ok()) return send_status(res, s);
      send_json(res, 200, {{"name", name}, {"removed", true}});
    });
    svr.Patch(R"(/v1/people/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string name = req.matches[1];
      std::string to;
      try {
        to = json::parse(req.body).at("name").get<std::string>();
      } catch (const std::exception&) {
        return send_error(res, 400, "bad_request", "expected a JSON body {\"name\": \"new name\"}");
      }
      if (Status s = rec_.rename(name, to); !s.ok()) return send_status(res, s);
      send_json(res, 200, {{"name", to_nfc(to)}, {"previous", name}});  // as stored: NFC
    });
    svr.Get("/v1/health", [this](const httplib::Request&, httplib::Response& res) {
      const GallerySyncStatus g = rec_.gallery_sync_status();
      json gj = {{"backend", g.backend}, {"following", g.following}, {"connected", g.connected},
                 {"applied_seq", g.applied_seq}, {"head_seq", g.head_seq}, {"behind", g.behind()},
                 {"seconds_since_check", g.seconds_since_check}};
      if (!g.last_error.empty()) gj["last_error"] = g.last_error;
      // Stale: the change log could not be read for over two follow periods.
      const bool stale = !g.connected || g.behind() > 0 ||
                         g.seconds_since_check > 2.0 * a_.follow_ms / 1000.0 + 1.0;
      send_json(res, 200, {{"status", stale ? "stale" : "ok"}, {"people", rec_.people().size()},
                           {"templates", rec_.template_count()}, {"embedder", rec_.embedder_spec().id},
                           {"detector", rec_.detector_spec().id}, {"gallery", gj}});
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.text(rec_.people().size(), rec_.template_count()), "text/plain; version=0.0.4");
    });
  }

 private:
  // Runs f holding one of the `workers` model slots; waits at most --timeout.
  template <class F>
  void compute(httplib::Response& res, F&& f) {
    if (!slots_.acquire_for(std::chrono::seconds(a_.timeout_s)))
      return send_error(res, 503, "overloaded", "no worker became free within the request timeout");
    struct Release {
      serve::FairSlots& s;
      ~Release() { s.release(); }
    } release{slots_};
    try {
      f();
    } catch (const std::exception&) {
      send_error(res, 500, "internal", "internal error");
    }
  }

  Result<cv::Mat> image(const httplib::Request& req, const char* field) {
    FACEREC_ASSIGN_OR_RETURN(std::string bytes, image_bytes(req, field));
    return rec_.decode(bytes, field);
  }

  void identify(const httplib::Request& req, httplib::Response& res) {
    IdentifyOptions opt;
    try {
      if (req.has_param("top_k")) opt.top_k = std::stoi(req.get_param_value("top_k"));
      if (req.has_param("threshold")) opt.threshold = std::stof(req.get_param_value("threshold"));
      if (req.has_param("fpir")) opt.fpir = std::stod(req.get_param_value("fpir"));
    } catch (const std::exception&) {
      return send_error(res, 400, "bad_request", "top_k must be an integer, threshold and fpir numbers");
    }
    if (opt.fpir && !(*opt.fpir > 0 && *opt.fpir < 1))
      return send_error(res, 400, "bad_request", "fpir is a rate within (0, 1), e.g. 0.01");
    auto img = image(req, "image");
    if (!img.ok()) return send_status(res, img.status());
    auto r = rec_.identify(*img, opt);
    if (!r.ok()) return send_status(res, r.status());
    t_faces = static_cast<int>(r->faces.size());
    send_json(res, 200, identify_json("image", *r));
  }

  void verify(const httplib::Request& req, httplib::Response& res) {
    if (!req.is_multipart_form_data())
      return send_error(res, 400, "bad_request", "verify expects multipart fields image1 and image2");
    auto a = image(req, "image1");
    if (!a.ok()) return send_status(res, a.status());
    auto b = image(req, "image2");
    if (!b.ok()) return send_status(res, b.status());
    auto v = rec_.verify(*a, *b);
    if (!v.ok()) return send_status(res, v.status());
    t_faces = v->faces1 + v->faces2;
    send_json(res, 200, verify_json("image1", "image2", *v, rec_.detector_spec().id, rec_.embedder_spec().id));
  }

  void detect(const httplib::Request& req, httplib::Response& res) {
    auto img = image(req, "image");
    if (!img.ok()) return send_status(res, img.status());
    auto faces = rec_.analyze(*img);
    if (!faces.ok()) return send_status(res, faces.status());
    t_faces = static_cast<int>(faces->size());
    json jf = json::array();
    for (const auto& f : *faces) jf.push_back(face_json(f));
    send_json(res, 200, {{"width", img->cols}, {"height", img->rows}, {"faces", jf}});
  }

  void enroll(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    auto bytes = image_bytes(req, "image");
    if (!bytes.ok()) return send_status(res, bytes.status());
    auto r = rec_.enroll(name, {EnrollInput{"upload", std::move(bytes).value()}});
    if (!r.ok()) return send_status(res, r.status());
    const EnrollItem& item = r->items.at(0);
    t_faces = item.faces_found;
    if (item.state == EnrollState::kSkipped) return send_status(res, item.status);
    if (item.state == EnrollState::kDuplicate)
      return send_error(res, 409, "conflict", "this image is already enrolled for '" + name + "'");
    send_json(res, 201, {{"name", r->name}, {"template_id", item.template_id}, {"quality", item.quality},
                         {"faces", item.faces_found}});
  }

  // One line per request; never a key, a body or a person's name.
  void access(const httplib::Request& req, const httplib::Response& res) {
    const std::string route = route_of(req.method, req.path);
    const double s = std::chrono::duration<double>(Clock::now() - t_start).count();
    metrics_.record(route, res.status, s, t_faces);
    if (a_.json_log) {
      log_->info(json({{"route", route}, {"status", res.status}, {"ms", s * 1e3}, {"faces", t_faces}}).dump());
    } else {
      char buf[64];
      std::snprintf(buf, sizeof buf, " %d %.1f ms faces=%d", res.status, s * 1e3, t_faces);
      log_->info(route + buf);
    }
  }

  FaceRecognizer& rec_;
  const ServeArgs& a_;
  std::optional<serve::KeyStore> keys_;
  std::shared_ptr<spdlog::logger> log_;
  serve::FairSlots slots_;
  serve::Metrics metrics_;
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
  auto ctx = make_context(a.o, true, GalleryMode::kCreate);
  if (!ctx.ok()) return fail(ctx.status().to_string());
  if (Status s = ctx->require_threshold(); !s.ok()) return fail(s.to_string());
  // Other processes' changes to the gallery (other serve nodes, the CLI)
  // are applied in place as they are notified (PostgreSQL) or polled.
  if (Status s = ctx->recognizer->follow_gallery(std::chrono::milliseconds(a.follow_ms)); !s.ok())
    return fail(s.to_string());
  const int workers = a.workers > 0 ? a.workers : std::max(1u, std::thread::hardware_concurrency());

  Service service(*ctx->recognizer, a, std::move(keys), log, workers);
  httplib::Server svr;
  svr.new_task_queue = [&] { return new BoundedPool(static_cast<size_t>(workers + a.queue), static_cast<size_t>(a.queue)); };
  svr.set_payload_max_length(a.max_body);
  svr.set_read_timeout(a.timeout_s, 0);
  svr.set_write_timeout(a.timeout_s, 0);
  // cpp-httplib writes a response's headers and body separately; without
  // TCP_NODELAY, Nagle holds the body until the client's delayed ACK (40 ms
  // on Linux) on a keep-alive connection: 56 ms instead of 16 ms per request
  // at concurrency 1 (bench/serve_bench.sh, 2026-12-01).
  svr.set_tcp_nodelay(true);
  service.install(svr);
  if (!web.empty()) {
    if (!svr.set_mount_point("/", web)) return fail("--web " + web + ": not a folder");
    // The page loads nothing from elsewhere (no CDN); the camera and uploaded
    // photos are blob: URLs.
    svr.set_file_request_handler([](const httplib::Request&, httplib::Response& res) {
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
                     "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Cache-Control", "no-cache");
    });
    log->info("web page at / from " + web);
  }
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
  cmd->callback([set_rc] { set_rc(run_serve(a)); });
}

}  // namespace facerec::cli
