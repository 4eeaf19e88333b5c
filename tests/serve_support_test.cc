// The socket-free pieces of `facerec serve` (apps/facerec/serve_support.*).
#include "serve_support.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
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

}  // namespace
}  // namespace facerec::serve
