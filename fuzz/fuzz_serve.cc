// The HTTP request handling of `facerec serve` (serve::Service, the same
// object the CLI installs: routes, API keys and roles, limits, the bounded
// pool, error mapping, the web page's static files) on a real cpp-httplib
// server, started once on an ephemeral loopback port over a small gallery
// and the fake models of tests/fake_runtime.h. Each input is sent as raw
// bytes over a fresh TCP connection (a whole HTTP request or several:
// request line, headers, body), and the answer is read until the server
// closes the connection: after a `Connection: close` answer, when no next
// request comes within 10 ms (keep-alive timeout 0), or when a request stays
// incomplete for 100 ms (read timeout). (The client does not half-close its
// side: cpp-httplib 0.11's own connection loop then dropped the answer, taking
// the peer for gone; serve::HttpServer's answers it.)
// The harness fails (abort) when:
// - the server neither answers nor closes within 8 s (a hang);
// - an answer is not a well-formed HTTP/1.1 status line with a 1xx-5xx code;
// - an error answer that says it is JSON is not JSON with an "error" object;
// - an answer is 500 internal: bad input must get a 4xx, never an internal
//   error;
// - the server then fails to answer GET /v1/health with 200 in 5 tries.
// API keys (fixed, so the seeds can use them; scripts/fuzz.sh):
//   Bearer fuzz-recognize, Bearer fuzz-enroll, Bearer fuzz-admin.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "facerec/recognizer.h"
#include "facerec/sha256.h"
#include "fake_runtime.h"
#include "fuzz_support.h"
#include "serve_service.h"
#include "serve_support.h"

namespace {

using namespace facerec;

[[noreturn]] void fail(const std::string& why, const std::string& answer = "") {
  std::fprintf(stderr, "fuzz_serve: %s\n--- answer (first 2000 bytes) ---\n%s\n", why.c_str(),
               answer.substr(0, 2000).c_str());
  std::abort();
}

// The server and everything it serves, made once and kept for the process
// (reachable from a static: no leak reports at exit).
struct World {
  testing::FakeRuntime runtime;
  Manifest manifest;
  std::unique_ptr<FaceRecognizer> rec;
  std::unique_ptr<serve::Service> service;
  serve::HttpServer svr;
  std::thread listener;
  int port = -1;
  std::string alice, bob;  // PNG bytes of the two enrolled people

  World() {
    const std::string dir = fuzz::scratch();
    manifest = Manifest::load(testing::write_fake_manifest(dir)).value();
    RecognizerConfig config;
    config.db = dir + "/serve.db";
    config.limits.max_pixels = 4'000'000;  // a small deployment: keeps ASan decoding fast
    auto r = FaceRecognizer::create(runtime, manifest, config);
    if (!r.ok()) fail("cannot create the recognizer: " + r.status().to_string());
    rec = std::move(r).value();
    alice = testing::png(testing::photo(testing::kRed, 1, 96));
    bob = testing::png(testing::photo(testing::kBlue, 2, 96));
    restore_people();

    const std::string keys = dir + "/keys.json";
    std::ofstream(keys) << nlohmann::json(
        {{"keys", {{{"sha256", facerec::sha256_hex("fuzz-recognize")}, {"role", "recognize"}},
                   {{"sha256", facerec::sha256_hex("fuzz-enroll")}, {"role", "enroll"}},
                   {{"sha256", facerec::sha256_hex("fuzz-admin")}, {"role", "admin"}}}}});
    auto ks = serve::KeyStore::load(keys);
    if (!ks.ok()) fail("keys: " + ks.status().to_string());

    serve::ServiceOptions o;
    o.workers = 2;
    o.queue = 4;
    o.max_body = 1u << 20;
    o.timeout_s = 2;
    std::error_code ec;
    if (std::filesystem::exists(FACEREC_SOURCE_DIR "/web/index.html", ec)) o.web = FACEREC_SOURCE_DIR "/web";
    auto log = std::make_shared<spdlog::logger>("fuzz_serve", std::make_shared<spdlog::sinks::null_sink_mt>());
    service = std::make_unique<serve::Service>(*rec, o, std::move(ks).value(), log);
    if (Status s = service->install(svr); !s.ok()) fail("install: " + s.to_string());
    // Close idle and incomplete connections at once, so an input costs
    // milliseconds, not the service's seconds-long timeouts.
    svr.set_keep_alive_timeout(0);
    svr.set_read_timeout(0, 100'000);
    port = svr.bind_to_any_port("127.0.0.1");
    if (port <= 0) fail("cannot bind a loopback port");
    listener = std::thread([this] { svr.listen_after_bind(); });
    for (int i = 0; i < 200 && !svr.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!svr.is_running()) fail("the server did not start");
  }

  // Inputs rename, remove and enrol people: keep Alice and Bob there and the
  // gallery small, so every input meets the same kind of gallery.
  void restore_people() {
    const auto people = rec->people();
    if (people.size() > 20)
      for (const auto& p : people)
        if (p.name != "Alice" && p.name != "Bob") (void)rec->remove(p.name);
    bool has_alice = false, has_bob = false;
    for (const auto& p : rec->people()) {
      has_alice |= p.name == "Alice";
      has_bob |= p.name == "Bob";
    }
    if (!has_alice) (void)rec->enroll("Alice", {EnrollInput{"alice.png", alice}});
    if (!has_bob) (void)rec->enroll("Bob", {EnrollInput{"bob.png", bob}});
  }
};

World& world() {
  static World* w = new World();  // never destroyed: the server threads outlive main's return
  return *w;
}

// Sends `request` on a new connection and returns everything the server
// wrote until it closed the connection. Aborts on a hang.
std::string exchange(int port, const uint8_t* data, size_t size) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket()");
  timeval tv{8, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    fail("the server no longer accepts connections");
  }
  size_t sent = 0;
  while (sent < size) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413, 400) and close before reading everything
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ::close(fd);
      fail("no answer and no close within 8 s (a hang)", answer);
    }
    break;  // closed (or reset)
  }
  ::close(fd);
  return answer;
}

// Checks the first final (non-1xx) response in `answer`. Returns its status.
int check_answer(const std::string& answer, bool head_request) {
  size_t at = 0;
  for (;;) {
    if (answer.compare(at, 9, "HTTP/1.1 ") != 0) fail("not an HTTP/1.1 status line", answer);
    const std::string code = answer.substr(at + 9, 3);
    if (code.size() != 3 || code.find_first_not_of("0123456789") != std::string::npos)
      fail("status code is not 3 digits", answer);
    const int status = std::stoi(code);
    if (status < 100 || status > 599) fail("status code out of range", answer);
    const size_t end = answer.find("\r\n\r\n", at);
    if (end == std::string::npos) fail("headers not terminated", answer);
    if (status < 200) {  // 100 Continue, then the real answer
      at = end + 4;
      if (at >= answer.size()) return status;
      continue;
    }
    if (status == 500) fail("500 internal error on client input", answer);
    const std::string head = answer.substr(at, end - at);
    std::string lower = head;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const size_t cl = lower.find("\r\ncontent-length: ");
    if (!head_request && cl != std::string::npos && lower.find("\r\ncontent-type: application/json") != std::string::npos) {
      const size_t len = std::strtoul(lower.c_str() + cl + 18, nullptr, 10);
      const std::string body = answer.substr(end + 4, len);
      if (body.size() == len) {
        const auto j = nlohmann::json::parse(body, nullptr, false);
        if (j.is_discarded()) fail("a JSON answer that is not JSON", answer);
        if (status >= 400 && !(j.is_object() && j.contains("error") && j["error"].contains("code")))
          fail("an error answer without {\"error\": {\"code\": ...}}", answer);
      }
    }
    return status;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  const std::string answer = exchange(w.port, data, size);
  if (!answer.empty()) {
    const bool head = size >= 4 && std::string(reinterpret_cast<const char*>(data), 4) == "HEAD";
    check_answer(answer, head);
  }
  static const std::string health = "GET /v1/health HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
  // A few tries: with keep-alive timeout 0 the server closes a connection
  // whose first bytes come more than ~10 ms after it picked it up, which a
  // loaded machine can cause (seen once in 3,900 inputs, not reproducible).
  std::string alive;
  for (int attempt = 0; attempt < 5; ++attempt) {
    alive = exchange(w.port, reinterpret_cast<const uint8_t*>(health.data()), health.size());
    if (alive.compare(0, 12, "HTTP/1.1 200") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (alive.compare(0, 12, "HTTP/1.1 200") != 0) fail("GET /v1/health is not 200 after the input (5 tries)", alive);
  w.restore_people();
  return 0;
}
