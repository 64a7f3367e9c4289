// The attestation endpoint's admission control, on an injected clock: a
// flood from one client is refused with a Retry-After while other clients
// are still admitted; the global bucket caps many-address floods; nobody
// queues over the in-flight cap.
#include "server/rate_limit.h"

#include <gtest/gtest.h>

#include <vector>

#include "net/server.h"

namespace cllm::server {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  RateLimiter::Clock::time_point now{};
  std::function<RateLimiter::Clock::time_point()> fn() {
    return [this] { return now; };
  }
};

RateLimitOptions Small() {
  RateLimitOptions o;
  o.per_client_rate = 1;
  o.per_client_burst = 3;
  o.global_rate = 10;
  o.global_burst = 10;
  o.max_in_flight = 100;
  return o;
}

TEST(RateLimiterTest, FloodFromOneAddressIsRefusedWhileAnotherIsServed) {
  FakeClock clock;
  RateLimiter limiter(Small(), clock.fn());
  int admitted = 0;
  int retry_after = 0;
  for (int i = 0; i < 20; ++i) {
    auto d = limiter.Admit("192.0.2.1");
    if (d.admitted()) {
      ++admitted;
    } else {
      retry_after = d.retry_after_s;
    }
  }
  EXPECT_EQ(admitted, 3);  // the burst, then nothing
  EXPECT_EQ(retry_after, 1);
  EXPECT_TRUE(limiter.Admit("192.0.2.2").admitted());
  // The flooder's bucket refills with time.
  clock.now += 1s;
  EXPECT_TRUE(limiter.Admit("192.0.2.1").admitted());
  EXPECT_FALSE(limiter.Admit("192.0.2.1").admitted());
}

TEST(RateLimiterTest, GlobalBucketCapsAFloodFromManyAddresses) {
  FakeClock clock;
  RateLimiter limiter(Small(), clock.fn());
  int admitted = 0;
  for (int i = 0; i < 50; ++i) admitted += limiter.Admit("198.51.100." + std::to_string(i)).admitted();
  EXPECT_EQ(admitted, 10);
  auto d = limiter.Admit("203.0.113.9");
  EXPECT_FALSE(d.admitted());
  EXPECT_GE(d.retry_after_s, 1);
}

TEST(RateLimiterTest, EvidenceNeverHoldsEveryHandlerThread) {
  EXPECT_LT(RateLimitOptions{}.max_in_flight, net::ServerOptions{}.handler_threads);
}

TEST(RateLimiterTest, NobodyQueuesBeyondTheInFlightCap) {
  FakeClock clock;
  RateLimitOptions o = Small();
  o.max_in_flight = 1;
  RateLimiter limiter(o, clock.fn());
  auto first = limiter.Admit("192.0.2.1");
  ASSERT_TRUE(first.admitted());
  auto second = limiter.Admit("192.0.2.2");
  EXPECT_FALSE(second.admitted());  // refused at once, not blocked
  EXPECT_EQ(second.retry_after_s, 1);
  first.ticket.reset();  // the first reply went out
  EXPECT_TRUE(limiter.Admit("192.0.2.2").admitted());
}

TEST(RateLimiterTest, IPv6ClientsAreTheirSlash64AndMappedIPv4IsIPv4) {
  EXPECT_EQ(RateLimiter::ClientKey("2001:db8:1:2:aaaa::1"), RateLimiter::ClientKey("2001:db8:1:2:bbbb::7"));
  EXPECT_NE(RateLimiter::ClientKey("2001:db8:1:2::1"), RateLimiter::ClientKey("2001:db8:1:3::1"));
  EXPECT_EQ(RateLimiter::ClientKey("::ffff:192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(RateLimiter::ClientKey("192.0.2.1"), "192.0.2.1");
  // Rotating through one /64 does not escape the bucket.
  FakeClock clock;
  RateLimiter limiter(Small(), clock.fn());
  int admitted = 0;
  for (int i = 0; i < 10; ++i) admitted += limiter.Admit("2001:db8::" + std::to_string(i + 1)).admitted();
  EXPECT_EQ(admitted, 3);
}

TEST(RateLimiterTest, TheClientTableStaysBounded) {
  FakeClock clock;
  RateLimitOptions o = Small();
  o.max_clients = 4;
  o.global_burst = 1000;
  o.global_rate = 1000;
  RateLimiter limiter(o, clock.fn());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(limiter.Admit("192.0.2." + std::to_string(i)).admitted());
  // The table is full of active clients: a new one falls back to the global
  // bucket only, an old one keeps its own limit.
  EXPECT_TRUE(limiter.Admit("192.0.2.200").admitted());
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(limiter.Admit("192.0.2.0").admitted());
  EXPECT_FALSE(limiter.Admit("192.0.2.0").admitted());
  // Once the old entries have refilled they are forgotten and new ones fit.
  clock.now += 10s;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Admit("203.0.113." + std::to_string(i)).admitted());
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(limiter.Admit("203.0.113.0").admitted());
  EXPECT_FALSE(limiter.Admit("203.0.113.0").admitted());
}

}  // namespace
}  // namespace cllm::server
