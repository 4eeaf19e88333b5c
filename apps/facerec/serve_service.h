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
// once by a reject thread, without reading its body. Auth, the route's role
// and the limits are checked before the body is read.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "facerec/recognizer.h"
#include "serve_support.h"

namespace httplib {
class Server;
}
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
  Status install(httplib::Server& svr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace facerec::serve
