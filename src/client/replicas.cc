#include "client/replicas.h"

#include <algorithm>
#include <limits>
#include <set>

#include "base/check.h"

namespace cllm::client {

using Clock = ReplicaSet::Clock;

// ---------------------------------------------------------------------------
// Replica lists
// ---------------------------------------------------------------------------

std::string UrlText(const Url& url) {
  const bool v6 = url.host.find(':') != std::string::npos;
  return std::string(url.tls ? "https://" : "http://") + (v6 ? "[" + url.host + "]" : url.host) + ":" +
         std::to_string(url.port);
}

ClientResult<std::vector<Url>> ParseReplicaUrls(const std::vector<std::string>& specs) {
  std::vector<Url> out;
  std::set<std::string> seen;
  for (const std::string& spec : specs) {
    size_t start = 0;
    while (start <= spec.size()) {
      size_t comma = spec.find(',', start);
      if (comma == std::string::npos) comma = spec.size();
      std::string one = spec.substr(start, comma - start);
      start = comma + 1;
      // Tolerate spaces around commas ("a, b"), nothing else.
      one.erase(0, one.find_first_not_of(' '));
      one.erase(one.find_last_not_of(' ') + 1);
      if (one.empty()) return MakeError(ClientErrc::kBadUrl, "empty URL in the replica list \"" + spec + "\"");
      CLLM_ASSIGN_OR_RETURN(Url u, ParseUrl(one));
      if (!out.empty() && u.tls != out.front().tls) {
        return MakeError(ClientErrc::kBadUrl, "replicas must all be https:// or all http://; got " + one);
      }
      if (!seen.insert(UrlText(u)).second) return MakeError(ClientErrc::kBadUrl, "replica listed twice: " + one);
      out.push_back(std::move(u));
    }
  }
  if (out.empty()) return MakeError(ClientErrc::kBadUrl, "no server URL given");
  return out;
}

ClientErrc ClientCodeOf(net::NetErrc code) {
  if (code == net::NetErrc::kRefused) return ClientErrc::kAttestation;
  return FromNet(MakeError(code, "")).code;
}

// ---------------------------------------------------------------------------
// ReplicaSet: health and choice
// ---------------------------------------------------------------------------

ReplicaSet::ReplicaSet(std::vector<Url> urls, FailoverOptions options)
    : urls_(std::move(urls)), options_(options), health_(urls_.size()) {
  CLLM_CHECK(!urls_.empty());
  for (const Url& u : urls_) names_.push_back(UrlText(u));
  const int n = static_cast<int>(std::min<size_t>(urls_.size(), 8));
  max_attempts_ = options_.max_attempts > 0 ? options_.max_attempts : std::max(3, n);
}

size_t ReplicaSet::Pick(const std::vector<int>& tried, std::optional<size_t> prefer) {
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  const size_t n = urls_.size();
  auto healthy = [&](size_t i) { return health_[i].backoff_until <= now; };
  if (prefer && *prefer < n && tried[*prefer] == 0 && healthy(*prefer)) return *prefer;
  // Untried and healthy, round-robin from where the last pick stopped.
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (next_ + k) % n;
    if (tried[i] == 0 && healthy(i)) {
      next_ = i + 1;
      return i;
    }
  }
  // Untried, in backoff: the one that recovers first.
  std::optional<size_t> best;
  for (size_t i = 0; i < n; ++i) {
    if (tried[i] == 0 && (!best || health_[i].backoff_until < health_[*best].backoff_until)) best = i;
  }
  if (best) return *best;
  // Every replica tried for this request (one relay address, say): the one
  // tried least, healthy first.
  for (size_t i = 0; i < n; ++i) {
    if (!best || tried[i] < tried[*best] || (tried[i] == tried[*best] && healthy(i) && !healthy(*best))) best = i;
  }
  return *best;
}

void ReplicaSet::MarkFailed(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  Health& h = health_[i];
  h.consecutive_failures = std::min(h.consecutive_failures + 1, 16);
  auto backoff = options_.backoff_base * (1 << (h.consecutive_failures - 1));
  h.backoff_until = Clock::now() + std::min<std::chrono::milliseconds>(backoff, options_.backoff_max);
}

void ReplicaSet::MarkOk(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  health_[i] = Health{};
}

bool ReplicaSet::InBackoff(size_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_[i].backoff_until > Clock::now();
}

// ---------------------------------------------------------------------------
// Attempts: one request's decisions
// ---------------------------------------------------------------------------

std::optional<Attempts::Next> Attempts::Begin(std::optional<size_t> prefer) {
  if (incomplete_) return std::nullopt;
  if (stale_pending_) {  // the resend on a fresh connection to the same replica
    stale_pending_ = false;
    return Next{current_, std::chrono::milliseconds(0)};
  }
  if (attempts_ >= set_.max_attempts()) return std::nullopt;
  current_ = set_.Pick(tried_, prefer);
  Next next{current_, std::chrono::milliseconds(0)};
  // The same address again for this request (a relay, or every replica
  // failed once): give it a moment.
  next.delay = set_.options().retry_same_delay * tried_[current_];
  ++tried_[current_];
  ++attempts_;
  return next;
}

bool Attempts::Failed(ClientErrc code, const std::string& detail, std::optional<size_t> delivered, bool stale) {
  if (delivered) {
    // Bytes of the answer reached the caller: resending would repeat or
    // splice them. Never retried, never resumed.
    set_.MarkFailed(current_);
    incomplete_ = MakeError(ClientErrc::kIncomplete,
                            "replica " + set_.name(current_) + " closed the stream after " + std::to_string(*delivered) +
                                " bytes (" + ClientErrcName(code) + ": " + detail +
                                "); the answer is incomplete and was not retried");
    failures_.push_back({current_, ClientErrc::kIncomplete, detail});
    return false;
  }
  if (stale && !stale_used_) {
    stale_used_ = stale_pending_ = true;
    return true;
  }
  failures_.push_back({current_, code, detail});
  // Our own request is wrong, or the server answered: the same everywhere.
  if (code == ClientErrc::kBadUrl || code == ClientErrc::kHttp) return false;
  set_.MarkFailed(current_);
  return attempts_ < set_.max_attempts();
}

void Attempts::Succeeded() { set_.MarkOk(current_); }

Error<ClientErrc> Attempts::FinalError() const {
  if (incomplete_) return *incomplete_;
  if (failures_.empty()) return MakeError(ClientErrc::kConnect, "no replica was tried");
  if (failures_.size() == 1) {
    const AttemptFailure& f = failures_.front();
    return MakeError(f.code, set_.name(f.replica) + ": " + f.detail);
  }
  std::string detail = "every attempt failed before a response (" + std::to_string(failures_.size()) + " attempts):";
  for (size_t k = 0; k < failures_.size(); ++k) {
    const AttemptFailure& f = failures_[k];
    detail += (k == 0 ? " " : "; ") + set_.name(f.replica) + " " + ClientErrcName(f.code) + ": " + f.detail;
  }
  return MakeError(failures_.back().code, std::move(detail));
}

}  // namespace cllm::client
