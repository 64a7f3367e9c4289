// rate_limit.h — admission control for expensive unauthenticated work.
//
// The attestation endpoint asks the TEE for fresh evidence for anyone who
// asks (it must: a client checks the server before it has credentials). The
// TEE interface is serialized, so without a limit a flood from one address
// makes every caller queue behind it, each queued caller holding a
// connection thread. RateLimiter answers "now, or retry after N seconds"
// without ever blocking:
//   - a token bucket per client (an IPv4 address, or an IPv6 /64: one
//     host usually owns the whole prefix), so one flooder exhausts only its
//     own bucket and others are still served;
//   - a global token bucket, the cap when a flood comes from many addresses;
//   - a cap on requests in flight (Admit → Ticket), so callers never queue
//     on the TEE lock: over the cap they get 429 at once.
// The per-client table is bounded: idle (refilled) entries are dropped, and
// when it is full of active ones, new clients share the global bucket only.
// The clock is injected so tests run without sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cllm::server {

struct RateLimitOptions {
  double per_client_rate = 2.0;   // requests per second, per client
  double per_client_burst = 4.0;  // bucket size per client
  double global_rate = 16.0;      // requests per second, all clients together
  double global_burst = 32.0;
  // Evidence requests being served at once: fewer than the server's handler
  // threads (net::ServerOptions, 2), so where making evidence is slow (a
  // vTPM, TDX through a QGS) a flood of them never holds every thread and
  // the API behind them (found by review).
  int max_in_flight = 1;
  size_t max_clients = 4096;      // per-client buckets kept
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // A Ticket holds one in-flight slot until it is destroyed.
  class Ticket {
   public:
    explicit Ticket(std::atomic<int>* in_flight) : in_flight_(in_flight) {}
    Ticket(Ticket&& o) noexcept : in_flight_(o.in_flight_) { o.in_flight_ = nullptr; }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket() {
      if (in_flight_) --*in_flight_;
    }

   private:
    std::atomic<int>* in_flight_;
  };

  // Decision: admitted with a ticket, or refused with the seconds after which
  // a retry can succeed (the Retry-After header; at least 1).
  struct Decision {
    std::unique_ptr<Ticket> ticket;  // null when refused
    int retry_after_s = 0;
    bool admitted() const { return ticket != nullptr; }
  };

  explicit RateLimiter(RateLimitOptions options, std::function<Clock::time_point()> clock = nullptr);

  // Admit decides for a request from client address `peer` (text form, as
  // net::ConnectionInfo::peer; "" counts as one shared unknown client).
  Decision Admit(std::string_view peer);

  // ClientKey is the bucket a peer address falls in: the address itself for
  // IPv4 (and IPv4-mapped IPv6), the /64 prefix for IPv6.
  static std::string ClientKey(std::string_view peer);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  // Refill tops `b` up for the time since its last update (at most `burst`).
  static void Refill(Bucket& b, double rate, double burst, Clock::time_point now);
  static int SecondsUntilToken(const Bucket& b, double rate);
  void DropIdleClients(Clock::time_point now);

  RateLimitOptions options_;
  std::function<Clock::time_point()> clock_;
  std::mutex mu_;
  Bucket global_;
  std::unordered_map<std::string, Bucket> clients_;
  std::atomic<int> in_flight_{0};
};

}  // namespace cllm::server
