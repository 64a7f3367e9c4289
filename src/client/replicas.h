// replicas.h — several replicas of one service, and the rules for failing
// over between them (docs/cli.md#replicas-and-failover).
//
// A client is given either a list of replica URLs or one relay address (an
// nginx/HAProxy in TCP passthrough: each new connection may land on another
// replica, each with its own attested key). Either way every new connection
// is verified in its own handshake before a request byte leaves — nothing
// here caches a verdict across connections to different keys.
//
// ReplicaSet keeps each replica's health: a replica whose attempt failed is
// put in a short backoff (doubling per consecutive failure, reset by a
// success); Pick prefers healthy replicas, round-robin, and falls back to
// the one whose backoff ends first (a single relay address is always tried).
//
// Attempts runs the decision for one request:
//   * nothing of a response arrived (connect refused or reset, TLS or
//     attestation refusal of that replica, closed before the response head,
//     a deadline before the head, or 503 from a draining replica): retry on
//     another replica, up to max_attempts, then fail with an error that lists
//     what every attempt hit;
//   * the response had started (head or body bytes given to the caller):
//     never retried, never resumed — kIncomplete "replica … closed the stream
//     after N bytes; the answer is incomplete";
//   * an answer (any status but 503) is the answer, whatever it says.
// A kept-alive connection the server closed while idle (kClosed on reuse,
// nothing received) is resent once on a fresh connection without counting
// as an attempt or blaming the replica.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "net/errors.h"

namespace cllm::client {

struct FailoverOptions {
  int max_attempts = 0;                              // 0: max(3, number of replicas), at most 8
  std::chrono::milliseconds backoff_base{500};       // first backoff after a failure
  std::chrono::milliseconds backoff_max{8000};       // doubling stops here
  std::chrono::milliseconds retry_same_delay{100};   // before trying an address again for one request (× times)
};

// ParseReplicaUrls reads replica URLs from repeated options, each possibly a
// comma-separated list ("https://a:1,https://b:2"). All must share a scheme;
// duplicates are refused (kBadUrl), as is an empty list.
[[nodiscard]] ClientResult<std::vector<Url>> ParseReplicaUrls(const std::vector<std::string>& specs);
// UrlText is "https://host:port" (IPv6 hosts in brackets).
std::string UrlText(const Url& url);

// ClientCodeOf maps a transport error for failover: a refusal by the peer
// verifier is the replica's attestation verdict (kAttestation).
ClientErrc ClientCodeOf(net::NetErrc code);

class ReplicaSet {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ReplicaSet(std::vector<Url> urls, FailoverOptions options = {});
  ReplicaSet(const ReplicaSet&) = delete;
  ReplicaSet& operator=(const ReplicaSet&) = delete;

  size_t size() const { return urls_.size(); }
  const Url& url(size_t i) const { return urls_[i]; }
  const std::string& name(size_t i) const { return names_[i]; }
  int max_attempts() const { return max_attempts_; }
  const FailoverOptions& options() const { return options_; }

  // Pick chooses the replica for an attempt: `prefer` (the replica of a
  // kept-alive connection) when it is healthy and untried, else an untried
  // healthy one (round-robin), else the untried one whose backoff ends
  // first, else (all tried) the one tried least. `tried[i]` counts this
  // request's attempts on replica i.
  size_t Pick(const std::vector<int>& tried, std::optional<size_t> prefer = std::nullopt);
  void MarkFailed(size_t i);
  void MarkOk(size_t i);
  bool InBackoff(size_t i) const;

 private:
  struct Health {
    int consecutive_failures = 0;
    Clock::time_point backoff_until{};
  };
  const std::vector<Url> urls_;
  std::vector<std::string> names_;
  const FailoverOptions options_;
  int max_attempts_;
  mutable std::mutex mu_;
  std::vector<Health> health_;
  size_t next_ = 0;  // round-robin start
};

// AttemptGate watches one attempt's response on its way to the caller: a
// 503 head (a draining or not-ready replica) is held back so the request
// can go elsewhere; anything else passes and counts as delivered.
class AttemptGate {
 public:
  // Head returns whether the head goes to the caller.
  bool Head(int status) {
    head_seen_ = true;
    held_ = status == 503;
    return !held_;
  }
  // Body returns whether these bytes go to the caller.
  bool Body(size_t n) {
    if (held_) return false;
    body_bytes_ += n;
    return true;
  }
  bool unavailable() const { return held_; }
  bool head_seen() const { return head_seen_; }
  // delivered is nullopt while nothing reached the caller, else the body
  // bytes it received.
  std::optional<size_t> delivered() const {
    return head_seen_ && !held_ ? std::optional<size_t>(body_bytes_) : std::nullopt;
  }

 private:
  bool head_seen_ = false, held_ = false;
  size_t body_bytes_ = 0;
};

struct AttemptFailure {
  size_t replica = 0;
  ClientErrc code = ClientErrc::kConnect;
  std::string detail;
};

class Attempts {
 public:
  explicit Attempts(ReplicaSet& set) : set_(set), tried_(set.size(), 0) {}

  struct Next {
    size_t replica = 0;
    std::chrono::milliseconds delay{0};  // wait this long first (an address tried before)
  };
  // Begin returns the next attempt, or nullopt when no attempt is left.
  std::optional<Next> Begin(std::optional<size_t> prefer = std::nullopt);
  // Failed records the current attempt's failure and returns whether the
  // request may be tried again. `delivered`: AttemptGate::delivered().
  // `stale`: the attempt used a kept-alive connection that turned out closed
  // before anything arrived (resent once, not counted, replica not blamed).
  bool Failed(ClientErrc code, const std::string& detail, std::optional<size_t> delivered, bool stale = false);
  void Succeeded();
  // Again: the current replica answered, but the request goes to it once
  // more, changed (e2e: sealed to another key after e2e_key_unknown). Not a
  // failure and not counted; the caller bounds how often.
  void Again() { stale_pending_ = true; }

  // FinalError: kIncomplete after a mid-stream failure; otherwise the last
  // attempt's code with every attempt listed.
  Error<ClientErrc> FinalError() const;
  const std::vector<AttemptFailure>& failures() const { return failures_; }
  int attempts() const { return attempts_; }
  size_t current() const { return current_; }

 private:
  ReplicaSet& set_;
  std::vector<int> tried_;
  std::vector<AttemptFailure> failures_;
  int attempts_ = 0;
  size_t current_ = 0;
  bool stale_used_ = false, stale_pending_ = false;
  std::optional<Error<ClientErrc>> incomplete_;
};

}  // namespace cllm::client
