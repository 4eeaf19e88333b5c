// Pieces of `facerec serve` that need no HTTP server, tested on their own
// (tests/serve_support_test.cc): API keys and roles, the error mapping, the
// listen address, fair model slots, the Prometheus metrics, and the
// lingering close of a connection.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "facerec/status.h"

namespace facerec::serve {

// recognize: identify, verify, detect. enroll: also the people routes.
// admin: everything (also /metrics when keys are configured).
enum class Role { kNone = 0, kRecognize = 1, kEnroll = 2, kAdmin = 3 };
const char* to_string(Role r);
Result<Role> parse_role(const std::string& s);

// keys.json: {"keys": [{"sha256": "<64 hex of the key>", "role": "recognize|enroll|admin", "name": "..."}]}.
// Only hashes are stored; a key is matched by hashing what the client sends.
class KeyStore {
 public:
  static Result<KeyStore> load(const std::string& path);
  // The role of a bearer key; kNone when unknown.
  Role role_of(const std::string& key) const;
  size_t size() const { return by_hash_.size(); }

 private:
  std::map<std::string, Role> by_hash_;
};

// "127.0.0.1:8080", "[::1]:0", "0.0.0.0:80" -> host, port. kInvalidArgument otherwise.
struct ListenAddress {
  std::string host;
  int port = 0;
};
Result<ListenAddress> parse_listen(const std::string& s);
bool is_loopback(const std::string& host);

// The typed error of the API: HTTP status and code for a library Status.
struct ApiError {
  int http = 500;
  const char* code = "internal";
};
ApiError api_error(const Status& s);
// {"error": {"code": ..., "message": ...}} as text; bytes of `message` that
// are not UTF-8 become U+FFFD (never an exception).
std::string error_body(const char* code, const std::string& message);

// At most `slots` holders at once; waiters are admitted in arrival order
// (FIFO), so the request that has waited longest runs next.
// std::counting_semaphore promises no order: at concurrency 4 on 2 slots with
// keep-alive connections, a thread that released re-acquired at once and
// starved the others (p99 4.6 s against p50 28 ms, bench/serve_bench.sh,
// 2026-12-01). Thread-safe.
class FairSlots {
 public:
  explicit FairSlots(int slots) : free_(slots) {}
  // Takes a slot, waiting at most `timeout`. false: timed out, nothing held.
  bool acquire_for(std::chrono::milliseconds timeout);
  void release();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
  uint64_t next_ticket_ = 0;
  std::deque<uint64_t> waiting_;  // tickets in arrival order
};

// Request counters, a latency histogram and a faces-per-request histogram,
// in Prometheus text format. Thread-safe.
class Metrics {
 public:
  static constexpr std::array<double, 12> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,   1,    2.5,   5,    10,  30};
  static constexpr std::array<double, 6> kFaceBuckets = {0, 1, 2, 4, 8, 16};
  void record(const std::string& route, int status, double seconds, int faces);
  std::string text(size_t people, size_t templates) const;

 private:
  struct Histogram {
    std::array<uint64_t, 16> counts{};
    uint64_t n = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  Histogram faces_;
};

// Closes TCP connections as nginx's lingering close does, on a thread of its
// own. Closing a socket that still holds unread request bytes (the rest of
// an upload refused before its body was read, a request sent as the server
// closed) makes the kernel send RST instead of FIN, and a client that gets
// RST may discard the answer it has not read yet: a 503 overloaded was lost
// so in about 1 of 5 test runs (issue 9). So close(fd) sends FIN after the
// answer already written (shutdown(SHUT_WR)), and the thread reads and drops
// what the client still sends until it closes its side, then closes the
// socket. Bounded: a connection lingers at most `total`, at most `idle`
// without data, and at most `max_bytes` are read from it; at most
// `max_connections` linger at once (beyond, a socket is closed at once).
// Thread-safe. close() never waits on the network.
struct LingerLimits {
  std::chrono::milliseconds total{5000};
  std::chrono::milliseconds idle{1000};
  size_t max_bytes = 16u << 20;
  size_t max_connections = 512;
};
class LingeringCloser {
 public:
  using Limits = LingerLimits;
  explicit LingeringCloser(Limits limits = {});
  // Closes every connection still lingering, at once.
  ~LingeringCloser();
  LingeringCloser(const LingeringCloser&) = delete;
  LingeringCloser& operator=(const LingeringCloser&) = delete;

  // Applies to the connections handed over from now on.
  void set_limits(Limits limits);
  // Takes ownership of the connected socket `fd` and closes it as above.
  void close(int fd);
  // Connections handed over and not yet closed.
  size_t lingering() const;

 private:
  struct Conn {
    int fd;
    std::chrono::steady_clock::time_point end;  // `total` after the hand-over
    std::chrono::milliseconds idle;
    size_t max_bytes;
  };
  void run();
  void wake();
  mutable std::mutex mu_;
  Limits limits_;
  std::vector<Conn> inbox_;  // handed over, not yet seen by the thread
  size_t count_ = 0;         // handed over and not yet closed
  bool stop_ = false;
  int wake_[2] = {-1, -1};   // a pipe: close() and ~LingeringCloser wake the thread
  std::thread thread_;
};

}  // namespace facerec::serve
