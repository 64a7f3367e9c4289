#include "client/failover_client.h"

#include <thread>

namespace cllm::client {

Status<ClientErrc> FailoverClient::Open(size_t replica) {
  conn_.reset();
  auto c = connector_(replicas_->url(replica));
  if (!c.ok()) return c.error();
  conn_ = std::move(c).value();
  conn_replica_ = replica;
  opened_ = std::chrono::steady_clock::now();
  if (!last_failure_.empty() && on_switch_) on_switch_(replicas_->name(replica), last_failure_);
  last_failure_.clear();
  return OkStatus();
}

ClientResult<Connection*> FailoverClient::Connect() {
  if (Usable()) return conn_.get();
  Attempts at(*replicas_);
  while (auto next = at.Begin()) {
    if (next->delay.count() > 0) std::this_thread::sleep_for(next->delay);
    auto st = Open(next->replica);
    if (st.ok()) {
      at.Succeeded();
      return conn_.get();
    }
    last_failure_ = replicas_->name(next->replica) + " " + ClientErrcName(st.code()) + ": " + st.detail();
    if (!at.Failed(st.code(), st.detail(), std::nullopt)) break;
  }
  return at.FinalError();
}

ClientResult<HttpResponse> FailoverClient::Request(const std::string& method, const std::string& target,
                                                   const std::string& body,
                                                   const std::map<std::string, std::string>& headers,
                                                   const BodyCallback& on_body, const HeadCallback& on_head) {
  Attempts at(*replicas_);
  std::optional<size_t> prefer;
  if (conn_ && conn_->is_open()) prefer = conn_replica_;  // due for verification: the same replica, anew
  while (auto next = at.Begin(prefer)) {
    if (next->delay.count() > 0) std::this_thread::sleep_for(next->delay);
    const bool reuse = Usable() && conn_replica_ == next->replica;
    if (!reuse) {
      auto st = Open(next->replica);
      if (!st.ok()) {
        last_failure_ = replicas_->name(next->replica) + " " + ClientErrcName(st.code()) + ": " + st.detail();
        if (!at.Failed(st.code(), st.detail(), std::nullopt)) break;
        continue;
      }
    }
    prefer.reset();
    AttemptGate gate;
    HeadCallback head = [&](const HttpResponse& h) {
      if (gate.Head(h.status) && on_head) on_head(h);
    };
    BodyCallback sink;
    if (on_body) {
      sink = [&](std::string_view bytes) { return gate.Body(bytes.size()) ? on_body(bytes) : true; };
    }
    auto r = conn_->Request(method, target, body, headers, sink, head);
    if (r.ok() && r->status != 503) {
      at.Succeeded();
      return r;
    }
    ClientErrc code = r.ok() ? ClientErrc::kUnavailable : r.code();
    std::string detail = r.ok() ? "503 " + r->body.substr(0, 200) : r.detail();
    // A kept-alive connection the server had closed: nothing was sent on.
    const bool stale = reuse && !r.ok() && !gate.head_seen() && code == ClientErrc::kProtocol;
    last_failure_ = replicas_->name(next->replica) + " " + ClientErrcName(code) + ": " + detail;
    conn_.reset();
    if (!at.Failed(code, detail, gate.delivered(), stale)) break;
  }
  return at.FinalError();
}

}  // namespace cllm::client
