#include "server/rate_limit.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace cllm::server {

RateLimiter::RateLimiter(RateLimitOptions options, std::function<Clock::time_point()> clock)
    : options_(options), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return Clock::now(); };
  global_.tokens = options_.global_burst;
  global_.updated = clock_();
}

std::string RateLimiter::ClientKey(std::string_view peer) {
  const std::string text(peer);
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    // An IPv4-mapped address (::ffff:a.b.c.d, from a dual-stack listener) is
    // that IPv4 client; any other IPv6 client is its /64.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(v6.s6_addr, kMapped, sizeof kMapped) == 0) {
      char v4[INET_ADDRSTRLEN] = {};
      if (::inet_ntop(AF_INET, v6.s6_addr + 12, v4, sizeof v4)) return v4;
    }
    std::memset(v6.s6_addr + 8, 0, 8);
    char out[INET6_ADDRSTRLEN] = {};
    if (::inet_ntop(AF_INET6, &v6, out, sizeof out)) return std::string(out) + "/64";
  }
  return text;  // IPv4 text as given, or "" for an unknown peer
}

void RateLimiter::Refill(Bucket& b, double rate, double burst, Clock::time_point now) {
  if (now > b.updated) {
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(burst, b.tokens + elapsed * rate);
    b.updated = now;
  }
}

int RateLimiter::SecondsUntilToken(const Bucket& b, double rate) {
  if (rate <= 0) return 60;
  const double missing = std::max(0.0, 1.0 - b.tokens);
  return std::max(1, static_cast<int>(std::ceil(missing / rate)));
}

void RateLimiter::DropIdleClients(Clock::time_point now) {
  for (auto it = clients_.begin(); it != clients_.end();) {
    Refill(it->second, options_.per_client_rate, options_.per_client_burst, now);
    // A full bucket is what a new entry would start with: forgetting it
    // changes nothing for that client.
    if (it->second.tokens >= options_.per_client_burst) {
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
}

RateLimiter::Decision RateLimiter::Admit(std::string_view peer) {
  Decision d;
  const std::string key = ClientKey(peer);
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = clock_();

  // 1. The client's own bucket (when the table has room for it).
  Bucket* client = nullptr;
  auto it = clients_.find(key);
  if (it == clients_.end()) {
    if (clients_.size() >= options_.max_clients) DropIdleClients(now);
    if (clients_.size() < options_.max_clients) {
      it = clients_.emplace(key, Bucket{options_.per_client_burst, now}).first;
    }
  }
  if (it != clients_.end()) {
    client = &it->second;
    Refill(*client, options_.per_client_rate, options_.per_client_burst, now);
    if (client->tokens < 1.0) {
      d.retry_after_s = SecondsUntilToken(*client, options_.per_client_rate);
      return d;
    }
  }
  // 2. Everyone's bucket.
  Refill(global_, options_.global_rate, options_.global_burst, now);
  if (global_.tokens < 1.0) {
    d.retry_after_s = SecondsUntilToken(global_, options_.global_rate);
    return d;
  }
  // 3. Nobody waits on the TEE: over the in-flight cap is a refusal, and the
  // refused request costs no tokens.
  if (in_flight_.fetch_add(1) >= options_.max_in_flight) {
    --in_flight_;
    d.retry_after_s = 1;
    return d;
  }
  if (client) client->tokens -= 1.0;
  global_.tokens -= 1.0;
  d.ticket = std::make_unique<Ticket>(&in_flight_);
  return d;
}

}  // namespace cllm::server
