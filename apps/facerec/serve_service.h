// The HTTP service of `facerec serve` (api/openapi.yaml): routes, API keys
// and roles, limits, the bounded connection pool, error mapping, the access
// log and metrics, installed on a cpp-httplib server over one shared
// FaceRecognizer. `facerec serve` (cmd_serve.cc) parses flags, opens the
// gallery and listens; the fuzz harness (fuzz/fuzz_serve.cc) installs the
// same service on a loopback port.
//
// Threads. cpp-httplib hands each connection to a pool of `workers + queue`
// threads; at most `workers` requests run the models at once (FairSlots,
// first come first served), the others wait at most `timeout_s` seconds and
// then get 503 overloaded. When every pool thread is busy and `queue`
// connections already wait, a new connection is answered 503 overloaded at
// once by a reject thread, without reading its body (its headers get at
// most 2 s). Auth, the route's role and the limits are checked before the
// body is read.
//
// Connections. A request refused before its body is read (401, 403, 503
// overloaded) is the last on its connection: HttpServer stops reading there
// and closes it. Every connection ends with a lingering close
// (LingeringCloser), so the answer reaches the client even while it is still
// sending the body nobody will read.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "facerec/recognizer.h"
#include "serve_support.h"

namespace spdlog {
class logger;
}

namespace facerec::serve {

struct ServiceOptions {
  int workers = 1;             // requests running the models at once (>= 1)
  int queue = 64;              // connections that may wait for a pool thread
  size_t max_body = 10u << 20; // request body limit in bytes; over it: 413
  int timeout_s = 30;          // reading, writing, and waiting for a worker
  int follow_ms = 500;         // the gallery follow period (health: stale after two)
  bool json_log = false;       // access log as JSON lines
  std::string web;             // folder of the web page served at /; empty: no page
};

// cpp-httplib 0.11's server with its per-connection loop replaced; routes,
// handlers and options are cpp-httplib's. cpp-httplib reads the next request
// from where the last one stopped, so the unread body of a refused request
// was parsed as further requests (phantom lines in the access log and
// metrics), and it closes a socket that may hold unread bytes, which resets
// the connection (RST) and can destroy the answer at the client. Here a
// request whose handler called close_after_response() is the last on its
// connection, and every connection is closed by a LingeringCloser.
// The same keep-alive count and timeout, read and write timeouts as
// cpp-httplib's own loop.
class HttpServer : public httplib::Server {
 public:
  HttpServer();
  ~HttpServer() override;

  // Ends the connection of the request being handled on this thread after its
  // response (call from a handler; the response should say Connection: close).
  static void close_after_response();
  void set_linger_limits(LingeringCloser::Limits limits) { closer_.set_limits(limits); }
  // Called on the accepting thread when a connection is answered 503 without
  // being read at all (the reject thread's backlog is full); for the log.
  void set_unread_reject_logger(std::function<void()> log) { unread_reject_log_ = std::move(log); }
  // Listens on the bound socket with a backlog of SOMAXCONN, then serves as
  // httplib::Server::listen_after_bind(). cpp-httplib 0.11 listens with a
  // backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into Debian's library):
  // the kernel drops the connections of a larger burst beyond it, and resets
  // some after a second (SYN cookies), before any answer can be sent.
  // Bind first (bind_to_port, bind_to_any_port); httplib::Server::listen
  // keeps the backlog of 5.
  bool listen_after_bind();

 private:
  bool process_and_close_socket(socket_t sock) override;
  std::function<void()> unread_reject_log_;
  LingeringCloser closer_;
};

class Service {
 public:
  // `keys` empty: no authentication (loopback only; the caller decides).
  // `log` receives one access line per request (never a key, body or name).
  Service(FaceRecognizer& rec, ServiceOptions options, std::optional<KeyStore> keys,
          std::shared_ptr<spdlog::logger> log);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Installs the pool, the limits, TCP_NODELAY, the handlers and the routes
  // (and the web page when options.web is set) on `svr`, which must outlive
  // no request of this Service. kInvalidArgument when the web folder cannot
  // be mounted.
  Status install(HttpServer& svr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace facerec::serve
