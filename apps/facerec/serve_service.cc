// The HTTP service of `facerec serve` (serve_service.h).
#include "serve_service.h"

#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "facerec/json.h"
#include "facerec/names.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace facerec::serve {
namespace {

// Per-request state of the thread that serves it (cpp-httplib runs a whole
// request, pre-routing to logger, on one thread).
thread_local bool t_reject = false;       // this thread only answers 503 overloaded
thread_local bool t_unread = false;       // answer 503 overloaded without reading anything
thread_local bool t_close = false;        // this request is the last on its connection
thread_local Clock::time_point t_start;
thread_local int t_faces = -1;

// The reject thread reads a connection's request line and headers for at most
// this long (one slow client must not hold up the refusals of the others).
constexpr auto kRejectReadBudget = std::chrono::seconds(2);
// Sent without reading the request when even the reject thread's backlog is full.
const std::string& unread_reject_answer() {
  static const std::string answer = [] {
    const std::string body = error_body("overloaded", "the server is at capacity; retry later");
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }();
  return answer;
}

// A fixed pool with a bounded backlog: a connection is admitted when a pool
// thread is free or fewer than `max_pending` wait for one; overflow goes to
// the reject thread.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(size_t threads, size_t max_pending) : max_pending_(max_pending), free_(threads) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(false); });
    rejecter_ = std::thread([this] { run(true); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    // Counting free threads: with --queue 0 nothing was ever admitted, and a
    // burst was refused while threads were still waking up.
    if (pending_.size() < free_ + max_pending_ || shutdown_) {
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
    // Even the reject backlog is full: answer on the accepting thread, without
    // reading the request (HttpServer::process_and_close_socket).
    t_unread = true;
    fn();
    t_unread = false;
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
        if (!reject) --free_;
      }
      fn();
      if (!reject) {
        std::lock_guard lock(mu_);
        ++free_;
      }
    }
  }
  size_t max_pending_;
  size_t free_;  // pool threads not running a connection
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> pending_, rejects_;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
  std::thread rejecter_;
};

// One TCP connection as cpp-httplib's Stream: reads through a small buffer
// (requests may arrive pipelined), each wait bounded by the read or write
// timeout and, when set, by an overall deadline. Not thread-safe (one
// connection, one thread).
class ConnectionStream final : public httplib::Stream {
 public:
  using ms = std::chrono::milliseconds;
  ConnectionStream(int fd, ms read_timeout, ms write_timeout, std::optional<Clock::time_point> deadline)
      : fd_(fd), read_timeout_(read_timeout), write_timeout_(write_timeout), deadline_(deadline) {}

  bool is_readable() const override { return off_ < len_ || wait(POLLIN, read_timeout_); }
  bool is_writable() const override { return wait(POLLOUT, write_timeout_); }

  ssize_t read(char* ptr, size_t size) override {
    if (off_ < len_) {
      const size_t n = std::min(size, len_ - off_);
      std::memcpy(ptr, buf_.data() + off_, n);
      off_ += n;
      return static_cast<ssize_t>(n);
    }
    if (!wait(POLLIN, read_timeout_)) return -1;
    if (size >= buf_.size()) return recv_some(ptr, size);
    const ssize_t n = recv_some(buf_.data(), buf_.size());
    if (n <= 0) return n;
    off_ = 0;
    len_ = static_cast<size_t>(n);
    return read(ptr, size);
  }

  // All of it or -1 (cpp-httplib writes a response's head and body with one
  // call each and does not retry a short write).
  ssize_t write(const char* ptr, size_t size) override {
    size_t sent = 0;
    while (sent < size) {
      if (!wait(POLLOUT, write_timeout_)) return -1;
      const ssize_t n = ::send(fd_, ptr + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return -1;
      }
      sent += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
  socket_t socket() const override { return fd_; }

  // Waits for the next request's first bytes, at most `timeout` (at least
  // 10 ms, as cpp-httplib), and no longer once the server stops listening.
  bool wait_for_request(ms timeout, const std::atomic<socket_t>& listener) const {
    if (off_ < len_) return true;  // pipelined
    const auto end = Clock::now() + std::max(timeout, ms(10));
    while (listener != INVALID_SOCKET) {
      const auto left = std::chrono::duration_cast<ms>(end - Clock::now());
      if (left <= ms(0)) return false;
      if (wait(POLLIN, std::min(left, ms(100)))) return true;
      if (deadline_ && Clock::now() >= *deadline_) return false;
    }
    return false;
  }

 private:
  // true: `events` (or an error or hang-up, which the next call reports).
  bool wait(short events, ms timeout) const {
    auto end = Clock::now() + timeout;
    if (deadline_) end = std::min(end, *deadline_);
    for (;;) {
      const auto left = std::chrono::ceil<ms>(end - Clock::now()).count();
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(left, 0, 3'600'000)));
      if (r > 0) return true;
      if (r == 0 || errno != EINTR) return false;
    }
  }
  ssize_t recv_some(char* ptr, size_t size) {
    for (;;) {
      const ssize_t n = ::recv(fd_, ptr, size, MSG_DONTWAIT);
      if (n >= 0 || errno != EINTR) return n;
    }
  }
  void address(bool remote, std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    const int r = remote ? ::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len)
                         : ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (r != 0 || ::getnameinfo(reinterpret_cast<sockaddr*>(&a), len, host, sizeof host, serv, sizeof serv,
                                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
      return;
    ip = host;
    port = std::atoi(serv);
  }

  int fd_;
  ms read_timeout_, write_timeout_;
  std::optional<Clock::time_point> deadline_;
  std::array<char, 4096> buf_;
  size_t off_ = 0, len_ = 0;
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

Role role_needed(const std::string& route) {
  if (route == "GET /v1/health" || route == "GET /web" || route == "HEAD /web") return Role::kNone;
  if (route == "GET /metrics") return Role::kAdmin;
  if (route.find("/v1/people") != std::string::npos) return Role::kEnroll;
  return Role::kRecognize;
}

void send_error(httplib::Response& res, int http, const char* code, const std::string& message) {
  res.status = http;
  res.set_content(error_body(code, message), "application/json");
}
void send_status(httplib::Response& res, const Status& s) {
  const ApiError e = api_error(s);
  send_error(res, e.http, e.code, s.message());
}
void send_json(httplib::Response& res, int http, const json& j) {
  res.status = http;
  // Client text (names) may be invalid UTF-8: replaced, never thrown (see error_body).
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
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

}  // namespace

struct Service::Impl {
  Impl(FaceRecognizer& rec, ServiceOptions a, std::optional<KeyStore> keys, std::shared_ptr<spdlog::logger> log)
      : rec_(rec), a_(std::move(a)), keys_(std::move(keys)), log_(std::move(log)), slots_(std::max(1, a_.workers)) {}

  // Refuses a request before its body is read: 503 on the reject thread, 401
  // for a missing or unknown key, 403 for the wrong role. A refused request is
  // the last on its connection: its body is never read, and on a keep-alive
  // connection it would be parsed as the next request.
  bool refuse(const httplib::Request& req, httplib::Response& res) {
    if (t_reject) {
      send_error(res, 503, "overloaded", "the server is at capacity; retry later");
    } else {
      const Role need = role_needed(route_of(req.method, req.path));
      if (!keys_ || need == Role::kNone) return false;
      const std::string auth = req.get_header_value("Authorization");
      const std::string key = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : std::string();
      const Role have = keys_->role_of(key);
      if (have == Role::kNone) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, 401, "unauthorized", key.empty() ? "an API key is required (Authorization: Bearer <key>)"
                                                         : "unknown API key");
      } else if (static_cast<int>(have) < static_cast<int>(need)) {
        send_error(res, 403, "forbidden", std::string("this key's role (") + to_string(have) +
                                              ") may not use this route; it needs " + to_string(need));
      } else {
        return false;
      }
    }
    res.set_header("Connection", "close");
    HttpServer::close_after_response();
    return true;
  }

  void install(HttpServer& svr) {
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) -> httplib::Server::HandlerResponse {
      t_start = Clock::now();
      t_faces = -1;
      return refuse(req, res) ? httplib::Server::HandlerResponse::Handled : httplib::Server::HandlerResponse::Unhandled;
    });
    // A client that sends `Expect: 100-continue` is refused before it sends
    // the body at all (the default answers 100 Continue to everyone).
    svr.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
      t_start = Clock::now();
      t_faces = -1;
      return refuse(req, res) ? res.status : 100;
    });
    // Errors cpp-httplib produces itself (413, 404, 400) get the same JSON.
    svr.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request&, httplib::Response& res) -> httplib::Server::HandlerResponse {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      // A malformed request line or header, or a body that did not arrive:
      // whatever follows on the connection cannot be framed.
      if (res.status == 400) HttpServer::close_after_response();
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

  // Runs f holding one of the `workers` model slots; waits at most --timeout.
  template <class F>
  void compute(httplib::Response& res, F&& f) {
    if (!slots_.acquire_for(std::chrono::seconds(a_.timeout_s)))
      return send_error(res, 503, "overloaded", "no worker became free within the request timeout");
    struct Release {
      FairSlots& s;
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
    const double s = std::chrono::duration<double>(Clock::now() - t_start).count();
    access(route_of(req.method, req.path), res.status, s, t_faces);
  }
  void access(const std::string& route, int status, double s, int faces) {
    metrics_.record(route, status, s, faces);
    if (a_.json_log) {
      log_->info(json({{"route", route}, {"status", status}, {"ms", s * 1e3}, {"faces", faces}}).dump());
    } else {
      char buf[64];
      std::snprintf(buf, sizeof buf, " %d %.1f ms faces=%d", status, s * 1e3, faces);
      log_->info(route + buf);
    }
  }

  FaceRecognizer& rec_;
  const ServiceOptions a_;
  std::optional<KeyStore> keys_;
  std::shared_ptr<spdlog::logger> log_;
  FairSlots slots_;
  Metrics metrics_;
};



Service::Service(FaceRecognizer& rec, ServiceOptions options, std::optional<KeyStore> keys,
                 std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(rec, std::move(options), std::move(keys), std::move(log))) {}
Service::~Service() = default;

HttpServer::HttpServer() = default;
HttpServer::~HttpServer() = default;

void HttpServer::close_after_response() { t_close = true; }

bool HttpServer::listen_after_bind() {
  // listen() again on a listening socket only changes its backlog (Linux).
  if (svr_sock_ != INVALID_SOCKET) ::listen(svr_sock_, SOMAXCONN);
  return httplib::Server::listen_after_bind();
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  using std::chrono::milliseconds;
  const auto ms = [](time_t sec, time_t usec) { return milliseconds(sec * 1000 + usec / 1000); };
  std::optional<Clock::time_point> deadline;
  if (t_unread) deadline = Clock::now() + milliseconds(100);  // on the accepting thread
  else if (t_reject) deadline = Clock::now() + kRejectReadBudget;
  ConnectionStream strm(sock, ms(read_timeout_sec_, read_timeout_usec_), ms(write_timeout_sec_, write_timeout_usec_),
                        deadline);
  bool ret = false;
  if (t_unread) {
    const std::string& answer = unread_reject_answer();
    ret = strm.write(answer.data(), answer.size()) >= 0;
    if (unread_reject_log_) unread_reject_log_();
  } else {
    // cpp-httplib's loop (the same keep-alive count and timeout), except that
    // a request marked close_after_response() is the last one read.
    for (size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
      if (!strm.wait_for_request(std::chrono::seconds(keep_alive_timeout_sec_), svr_sock_)) break;
      bool connection_closed = false;
      t_close = false;
      ret = process_request(strm, left == 1, connection_closed, nullptr);
      if (!ret || connection_closed || t_close) break;
    }
  }
  closer_.close(sock);
  return ret;
}

Status Service::install(HttpServer& svr) {
  const ServiceOptions& a = impl_->a_;
  const size_t workers = static_cast<size_t>(std::max(1, a.workers)), queue = static_cast<size_t>(std::max(0, a.queue));
  svr.new_task_queue = [workers, queue] { return new BoundedPool(workers + queue, queue); };
  // A refused upload is drained up to the body limit, so its client reads the
  // answer (nginx's lingering close; LingeringCloser).
  LingeringCloser::Limits linger;
  linger.max_bytes = a.max_body + (1u << 20);
  svr.set_linger_limits(linger);
  svr.set_unread_reject_logger([impl = impl_.get()] { impl->access("- unread", 503, 0.0, -1); });
  svr.set_payload_max_length(a.max_body);
  svr.set_read_timeout(a.timeout_s, 0);
  svr.set_write_timeout(a.timeout_s, 0);
  // cpp-httplib writes a response's headers and body separately; without
  // TCP_NODELAY, Nagle holds the body until the client's delayed ACK (40 ms
  // on Linux) on a keep-alive connection: 56 ms instead of 16 ms per request
  // at concurrency 1 (bench/serve_bench.sh, 2026-12-01).
  svr.set_tcp_nodelay(true);
  impl_->install(svr);
  if (!a.web.empty()) {
    if (!svr.set_mount_point("/", a.web)) return Status(ErrorCode::kInvalidArgument, "--web " + a.web + ": not a folder");
    // The page loads nothing from elsewhere (no CDN); the camera and uploaded
    // photos are blob: URLs.
    svr.set_file_request_handler([](const httplib::Request&, httplib::Response& res) {
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
                     "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Cache-Control", "no-cache");
    });
  }
  return Status::Ok();
}

}  // namespace facerec::serve
