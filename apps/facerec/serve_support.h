// Pieces of `facerec serve` that do not need a socket, tested on their own
// (tests/serve_support_test.cc): API keys and roles, the error mapping, the
// listen address, and the Prometheus metrics.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

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

}  // namespace facerec::serve
