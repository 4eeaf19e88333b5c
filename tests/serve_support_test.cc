// The pieces of `facerec serve` that need no HTTP server (apps/facerec/serve_support.*).
#include "serve_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace facerec::serve {
namespace {

using namespace std::chrono_literals;

TEST(FairSlots, AdmitsUpToTheSlotCountThenTimesOut) {
  FairSlots slots(2);
  EXPECT_TRUE(slots.acquire_for(0ms));
  EXPECT_TRUE(slots.acquire_for(0ms));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(slots.acquire_for(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 45ms);
  slots.release();
  EXPECT_TRUE(slots.acquire_for(0ms));  // the timed-out waiter left no ticket behind
}

// Waiters are served in arrival order: each waiter queues while the only slot
// is held, and the order in which they get it is the order they arrived in.
TEST(FairSlots, ServesWaitersInArrivalOrder) {
  FairSlots slots(1);
  ASSERT_TRUE(slots.acquire_for(0ms));
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      if (!slots.acquire_for(10s)) return;
      {
        std::lock_guard lock(mu);
        order.push_back(i);
      }
      slots.release();
    });
    std::this_thread::sleep_for(20ms);  // thread i queues before thread i+1 starts
  }
  slots.release();
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

// A thread that releases and at once asks again goes behind the waiters
// (a plain counting semaphore lets it take the slot back and starve them).
TEST(FairSlots, AReleasingThreadDoesNotStarveWaiters) {
  FairSlots slots(1);
  std::atomic<bool> stop{false};
  std::atomic<int> hog_rounds{0};
  ASSERT_TRUE(slots.acquire_for(0ms));
  std::thread hog([&] {
    // Holds the slot from the start; then releases and re-acquires in a loop.
    bool held = true;
    while (!stop) {
      if (held) slots.release();
      held = slots.acquire_for(1s);
      if (held) ++hog_rounds;
    }
    if (held) slots.release();
  });
  std::this_thread::sleep_for(10ms);
  const auto t0 = std::chrono::steady_clock::now();
  const bool got = slots.acquire_for(2s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  if (got) slots.release();
  stop = true;
  hog.join();
  EXPECT_TRUE(got);
  EXPECT_LT(waited, 500ms);
}

TEST(FairSlots, ManyThreadsNeverExceedTheSlotCount) {
  FairSlots slots(3);
  std::atomic<int> inside{0}, most{0}, served{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 200; ++k) {
        if (!slots.acquire_for(10s)) continue;
        const int now = ++inside;
        int m = most.load();
        while (now > m && !most.compare_exchange_weak(m, now)) {}
        --inside;
        ++served;
        slots.release();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(served.load(), 8 * 200);
  EXPECT_LE(most.load(), 3);
}

// A message quoting a name that is not UTF-8 (DELETE /v1/people/%FF) is
// still a JSON error body: the invalid byte becomes U+FFFD. It threw, and
// the request became a 500 (fuzz/fuzz_serve.cc).
TEST(ServeSupport, ErrorBodyIsJsonEvenWhenTheMessageIsNotUtf8) {
  std::string body;
  ASSERT_NO_THROW(body = error_body("not_found", "no person named '\xff\xfe' in g.db"));
  const auto j = nlohmann::json::parse(body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << body;
  EXPECT_EQ(j["error"]["code"], "not_found");
  EXPECT_EQ(j["error"]["message"], "no person named '\xef\xbf\xbd\xef\xbf\xbd' in g.db");
}

TEST(ServeSupport, ListenAddressAndLoopback) {
  auto a = parse_listen("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_FALSE(is_loopback("0.0.0.0"));
  EXPECT_FALSE(parse_listen("localhost").ok());
  EXPECT_FALSE(parse_listen("127.0.0.1:99999").ok());
}

// A connected loopback TCP pair: .client and .server (accepted) descriptors.
struct TcpPair {
  int client = -1, server = -1;
  TcpPair() {
    const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 1) != 0 ||
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ::close(lfd);
      return;
    }
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) server = ::accept(lfd, nullptr, nullptr);
    ::close(lfd);
  }
  ~TcpPair() {
    if (client >= 0) ::close(client);  // `server` belongs to the closer under test
  }
};

// What an HTTP client gets that uploads `body_bytes` and then reads the
// answer (as `requests` does), when the server has read only the first bytes,
// written "ANSWER" and then closed the connection with `close`.
struct ClientView {
  int send_error = 0;  // errno of the send that failed; 0: the whole upload went out
  std::string answer;
  int recv_error = 0;  // errno of the read that ended the answer; 0: a clean EOF
};
ClientView upload_and_read(size_t body_bytes, const std::function<void(int)>& close) {
  TcpPair p;
  ClientView v;
  if (p.server < 0) return {-1, "", -1};
  std::thread client_send([&] {
    std::string body(body_bytes, 'x');
    size_t sent = 0;
    while (sent < body.size()) {
      const ssize_t n = ::send(p.client, body.data() + sent, body.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        v.send_error = errno;
        return;
      }
      sent += static_cast<size_t>(n);
    }
  });
  char head[1024];
  [[maybe_unused]] const ssize_t got = ::recv(p.server, head, sizeof head, 0);  // the request line, say
  [[maybe_unused]] const ssize_t put = ::send(p.server, "ANSWER", 6, MSG_NOSIGNAL);
  close(p.server);
  client_send.join();
  if (v.send_error != 0) return v;  // a client whose upload fails reports that, not the answer
  char buf[4096];
  timeval tv{10, 0};
  ::setsockopt(p.client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (;;) {
    const ssize_t n = ::recv(p.client, buf, sizeof buf, 0);
    if (n > 0) {
      v.answer.append(buf, static_cast<size_t>(n));
      continue;
    }
    v.recv_error = n == 0 ? 0 : errno;
    break;
  }
  return v;
}

// More than the kernel's socket buffers hold (a few MiB on loopback).
constexpr size_t kUpload = 24u << 20;

// Why: a plain close() with most of the upload unread resets the connection
// (RST), and the client's upload fails before it reads the answer.
TEST(ServeLingeringCloser, APlainCloseWithUnreadBytesResetsTheUpload) {
  const ClientView v = upload_and_read(kUpload, [](int fd) { ::close(fd); });
  EXPECT_TRUE(v.send_error == ECONNRESET || v.send_error == EPIPE) << std::strerror(v.send_error);
}

TEST(ServeLingeringCloser, TheClientSendsItsUploadAndReadsTheWholeAnswer) {
  LingerLimits lim;
  lim.max_bytes = 2 * kUpload;
  LingeringCloser closer(lim);
  const ClientView v = upload_and_read(kUpload, [&](int fd) { closer.close(fd); });
  EXPECT_EQ(v.send_error, 0) << std::strerror(v.send_error);
  EXPECT_EQ(v.answer, "ANSWER");
  EXPECT_EQ(v.recv_error, 0) << std::strerror(v.recv_error);
  // The client's close ends the lingering at once.
  for (int i = 0; i < 100 && closer.lingering() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(closer.lingering(), 0u);
}

// A client that neither closes nor stops sending is cut off by the byte
// limit; one that sends nothing more, by the idle time; and no connection
// lingers longer than `total`.
TEST(ServeLingeringCloser, LingersNoLongerThanItsLimits) {
  LingerLimits lim;
  lim.total = 2000ms;
  lim.idle = 200ms;
  lim.max_bytes = 1u << 20;
  LingeringCloser closer(lim);

  TcpPair quiet;  // sends nothing, never closes
  ASSERT_GE(quiet.server, 0);
  TcpPair firehose;  // sends without end
  ASSERT_GE(firehose.server, 0);
  std::atomic<size_t> sent{0};
  std::thread flood([&] {
    std::string chunk(64 << 10, 'x');
    for (;;) {
      const ssize_t n = ::send(firehose.client, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) return;  // the closer closed it: EPIPE or ECONNRESET
      sent += static_cast<size_t>(n);
    }
  });
  TcpPair trickle;  // one byte every 50 ms: never idle, so only `total` ends it
  ASSERT_GE(trickle.server, 0);
  std::atomic<bool> trickle_stopped{false};
  std::thread drip([&] {
    for (int i = 0; i < 200; ++i) {  // 10 s at most
      if (::send(trickle.client, "x", 1, MSG_NOSIGNAL) <= 0) break;
      std::this_thread::sleep_for(50ms);
    }
    trickle_stopped = true;
  });

  const auto t0 = std::chrono::steady_clock::now();
  closer.close(quiet.server);
  closer.close(firehose.server);
  closer.close(trickle.server);
  EXPECT_EQ(closer.lingering(), 3u);
  flood.join();  // ends only because the closer closed the socket
  const auto flood_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(flood_s, 1.9);  // by the byte limit, before `total`
  // At most max_bytes were read, plus what the kernel's buffers held.
  EXPECT_LT(sent.load(), (1u << 20) + (16u << 20));
  for (int i = 0; i < 100 && closer.lingering() > 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(closer.lingering(), 1u);  // the quiet one went after `idle`, the trickle remains
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1900ms);
  for (int i = 0; i < 300 && closer.lingering() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(closer.lingering(), 0u);
  const auto all = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(all, 1900ms);
  EXPECT_LT(all, 4000ms);
  drip.join();
  EXPECT_TRUE(trickle_stopped);
}

TEST(ServeLingeringCloser, BeyondMaxConnectionsClosesAtOnce) {
  LingerLimits lim;
  lim.max_connections = 1;
  LingeringCloser closer(lim);
  TcpPair a, b;
  ASSERT_GE(a.server, 0);
  ASSERT_GE(b.server, 0);
  closer.close(a.server);
  closer.close(b.server);
  EXPECT_EQ(closer.lingering(), 1u);
  char c;
  EXPECT_EQ(::recv(b.client, &c, 1, 0), 0);  // FIN; b was closed, not kept
}

}  // namespace
}  // namespace facerec::serve
