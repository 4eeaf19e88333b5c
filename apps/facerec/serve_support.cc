#include "serve_support.h"

#include "facerec/sha256.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace facerec::serve {

bool FairSlots::acquire_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (free_ > 0 && waiting_.empty()) {
    --free_;
    return true;
  }
  const uint64_t ticket = next_ticket_++;
  waiting_.push_back(ticket);
  const bool got = cv_.wait_for(lock, timeout, [&] { return free_ > 0 && waiting_.front() == ticket; });
  if (got) {
    waiting_.pop_front();
    --free_;
  } else {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
  }
  // The new front may be admissible now (a slot still free, or the one who
  // left was in front of it).
  if (free_ > 0 && !waiting_.empty()) cv_.notify_all();
  return got;
}

void FairSlots::release() {
  {
    std::lock_guard lock(mu_);
    ++free_;
  }
  cv_.notify_all();
}

LingeringCloser::LingeringCloser(Limits limits) : limits_(limits) {
  // Without the wake-up pipe (out of descriptors) sockets are closed at once.
  if (::pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) return;
  thread_ = std::thread([this] { run(); });
}

LingeringCloser::~LingeringCloser() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  if (thread_.joinable()) {
    wake();
    thread_.join();
  }
  for (const Conn& c : inbox_) ::close(c.fd);  // handed over after the thread's last look
  for (int fd : wake_)
    if (fd >= 0) ::close(fd);
}

void LingeringCloser::set_limits(Limits limits) {
  std::lock_guard lock(mu_);
  limits_ = limits;
}

size_t LingeringCloser::lingering() const {
  std::lock_guard lock(mu_);
  return count_;
}

void LingeringCloser::wake() {
  const char c = 0;
  // A full pipe already holds a wake-up.
  [[maybe_unused]] const ssize_t n = ::write(wake_[1], &c, 1);
}

void LingeringCloser::close(int fd) {
  if (fd < 0) return;
  // FIN after the answer already queued; the read side stays open.
  ::shutdown(fd, SHUT_WR);
  {
    std::lock_guard lock(mu_);
    if (!stop_ && thread_.joinable() && count_ < limits_.max_connections) {
      inbox_.push_back({fd, std::chrono::steady_clock::now() + limits_.total, limits_.idle, limits_.max_bytes});
      ++count_;
      wake();
      return;
    }
  }
  ::close(fd);
}

void LingeringCloser::run() {
  using Clock = std::chrono::steady_clock;
  struct Lingering {
    Conn c;
    Clock::time_point idle_end;
    size_t read = 0;
  };
  std::vector<Lingering> conns;
  std::vector<pollfd> fds;
  std::vector<char> sink(64 << 10);
  for (;;) {
    size_t closed = 0;
    {
      std::unique_lock lock(mu_);
      if (stop_) break;
      const auto now = Clock::now();
      for (const Conn& c : inbox_) conns.push_back({c, std::min(c.end, now + c.idle)});
      inbox_.clear();
    }
    // Wait for data, EOF, a hand-over, or the nearest deadline.
    Clock::time_point next = Clock::time_point::max();
    for (const auto& l : conns) next = std::min(next, l.idle_end);
    int timeout_ms = -1;
    if (next != Clock::time_point::max()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
    }
    fds.assign(1, pollfd{wake_[0], POLLIN, 0});
    for (const auto& l : conns) fds.push_back(pollfd{l.c.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      // Cannot happen with valid descriptors; do not spin: close them all.
      for (auto& l : conns) l.idle_end = Clock::time_point::min();
    }
    if (fds[0].revents & POLLIN) {
      char drain[64];
      while (::read(wake_[0], drain, sizeof drain) > 0) {
      }
    }
    const auto now = Clock::now();
    for (size_t i = conns.size(); i-- > 0;) {
      Lingering& l = conns[i];
      bool done = false;
      if (fds[i + 1].revents != 0) {
        for (;;) {
          const ssize_t n = ::recv(l.c.fd, sink.data(), sink.size(), MSG_DONTWAIT);
          if (n > 0) {
            l.read += static_cast<size_t>(n);
            l.idle_end = std::min(l.c.end, now + l.c.idle);
            if (l.read >= l.c.max_bytes) {
              done = true;
              break;
            }
            continue;
          }
          if (n < 0 && errno == EINTR) continue;
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          done = true;  // the client closed its side (0), or the connection failed
          break;
        }
      }
      if (done || now >= l.idle_end) {
        ::close(l.c.fd);
        conns[i] = conns.back();
        conns.pop_back();
        ++closed;
      }
    }
    if (closed > 0) {
      std::lock_guard lock(mu_);
      count_ -= closed;
    }
  }
  for (const auto& l : conns) ::close(l.c.fd);
  std::lock_guard lock(mu_);
  count_ -= conns.size();
}

const char* to_string(Role r) {
  switch (r) {
    case Role::kRecognize: return "recognize";
    case Role::kEnroll: return "enroll";
    case Role::kAdmin: return "admin";
    default: return "none";
  }
}

Result<Role> parse_role(const std::string& s) {
  if (s == "recognize") return Role::kRecognize;
  if (s == "enroll") return Role::kEnroll;
  if (s == "admin") return Role::kAdmin;
  return Status(ErrorCode::kInvalidArgument, "unknown role '" + s + "' (recognize, enroll or admin)");
}

Result<KeyStore> KeyStore::load(const std::string& path) {
  try {
    std::ifstream f(path);
    if (!f) return Status(ErrorCode::kNotFound, "cannot open keys file " + path);
    const auto j = nlohmann::json::parse(f);
    KeyStore ks;
    for (const auto& k : j.at("keys")) {
      std::string h = k.at("sha256").get<std::string>();
      for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (h.size() != 64 || h.find_first_not_of("0123456789abcdef") != std::string::npos)
        return Status(ErrorCode::kInvalidArgument, "keys file " + path + ": sha256 must be 64 hex digits");
      FACEREC_ASSIGN_OR_RETURN(Role r, parse_role(k.at("role").get<std::string>()));
      ks.by_hash_[h] = r;
    }
    if (ks.by_hash_.empty()) return Status(ErrorCode::kInvalidArgument, "keys file " + path + " has no keys");
    return ks;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInvalidArgument, "malformed keys file " + path + ": " + e.what());
  }
}

Role KeyStore::role_of(const std::string& key) const {
  if (key.empty()) return Role::kNone;
  auto it = by_hash_.find(facerec::sha256_hex(key));
  return it == by_hash_.end() ? Role::kNone : it->second;
}

Result<ListenAddress> parse_listen(const std::string& s) {
  const auto bad = [&] { return Status(ErrorCode::kInvalidArgument, "--listen expects host:port, got '" + s + "'"); };
  ListenAddress a;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    const auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return bad();
    a.host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0) return bad();
    a.host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return bad();
  a.port = std::stoi(port);
  if (a.port > 65535) return bad();
  return a;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

ApiError api_error(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kDecode: return {400, "bad_image"};
    case ErrorCode::kTooLarge: return {413, "too_large"};
    case ErrorCode::kNoFace: return {422, "no_face"};
    case ErrorCode::kNotFound: return {404, "not_found"};
    case ErrorCode::kAlreadyExists: return {409, "conflict"};
    case ErrorCode::kInvalidArgument: return {400, "bad_request"};
    case ErrorCode::kCancelled: return {503, "overloaded"};
    default: return {500, "internal"};
  }
}

std::string error_body(const char* code, const std::string& message) {
  // Messages quote what the client sent (a person's name from the path), which
  // need not be UTF-8: replace invalid bytes (U+FFFD) rather than throw, which
  // turned `DELETE /v1/people/%FF` into a 500 (found by fuzz/fuzz_serve.cc).
  return nlohmann::json({{"error", {{"code", code}, {"message", message}}}})
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Metrics::record(const std::string& route, int status, double seconds, int faces) {
  std::lock_guard lock(mu_);
  ++requests_[{route, status}];
  Histogram& h = latency_[route];
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i)
    if (seconds <= kLatencyBuckets[i]) ++h.counts[i];
  ++h.n;
  h.sum += seconds;
  if (faces >= 0) {
    for (size_t i = 0; i < kFaceBuckets.size(); ++i)
      if (faces <= kFaceBuckets[i]) ++faces_.counts[i];
    ++faces_.n;
    faces_.sum += faces;
  }
}

std::string Metrics::text(size_t people, size_t templates) const {
  std::lock_guard lock(mu_);
  std::ostringstream o;
  const auto esc = [](const std::string& s) {
    std::string out;
    for (char c : s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return out;
  };
  o << "# HELP facerec_requests_total HTTP requests by route and status.\n# TYPE facerec_requests_total counter\n";
  for (const auto& [k, n] : requests_)
    o << "facerec_requests_total{route=\"" << esc(k.first) << "\",status=\"" << k.second << "\"} " << n << "\n";
  o << "# HELP facerec_request_duration_seconds Request latency by route.\n"
       "# TYPE facerec_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i)
      o << "facerec_request_duration_seconds_bucket{route=\"" << esc(route) << "\",le=\"" << kLatencyBuckets[i]
        << "\"} " << h.counts[i] << "\n";
    o << "facerec_request_duration_seconds_bucket{route=\"" << esc(route) << "\",le=\"+Inf\"} " << h.n << "\n";
    o << "facerec_request_duration_seconds_sum{route=\"" << esc(route) << "\"} " << h.sum << "\n";
    o << "facerec_request_duration_seconds_count{route=\"" << esc(route) << "\"} " << h.n << "\n";
  }
  o << "# HELP facerec_faces_per_request Faces found per image request.\n# TYPE facerec_faces_per_request histogram\n";
  for (size_t i = 0; i < kFaceBuckets.size(); ++i)
    o << "facerec_faces_per_request_bucket{le=\"" << kFaceBuckets[i] << "\"} " << faces_.counts[i] << "\n";
  o << "facerec_faces_per_request_bucket{le=\"+Inf\"} " << faces_.n << "\n";
  o << "facerec_faces_per_request_sum " << faces_.sum << "\nfacerec_faces_per_request_count " << faces_.n << "\n";
  o << "# HELP facerec_gallery_people People enrolled.\n# TYPE facerec_gallery_people gauge\nfacerec_gallery_people "
    << people << "\n";
  o << "# HELP facerec_gallery_templates Templates enrolled.\n# TYPE facerec_gallery_templates gauge\n"
       "facerec_gallery_templates "
    << templates << "\n";
  return o.str();
}

}  // namespace facerec::serve
