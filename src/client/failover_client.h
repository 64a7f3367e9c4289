// failover_client.h — blocking requests to several replicas (or one relay
// address) with failover: the form `cllm chat` uses.
//
// FailoverClient keeps one verified connection and reuses it while it stays
// open (a conversation stays on one replica), for at most `reverify_after`
// (600 s by default, the default life of a server's RA-TLS certificate): then
// the next request opens a new connection to the same replica, verified in
// its own handshake, so a conversation does not run for hours on one
// verification. A request that fails before
// any response byte reached the caller goes to another replica over a new
// connection, which `connector` verifies in its handshake first (RA-TLS +
// policy, or a cllm-trust token) — never a verdict carried over from
// another replica or key. After response bytes were delivered nothing is
// retried: kIncomplete says the answer was cut off. The rules are those of
// replicas.h.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "client/client.h"
#include "client/replicas.h"

namespace cllm::client {

// Connector opens and verifies one connection to `url`.
using Connector = std::function<ClientResult<std::unique_ptr<Connection>>(const Url& url)>;

class FailoverClient {
 public:
  FailoverClient(std::shared_ptr<ReplicaSet> replicas, Connector connector)
      : replicas_(std::move(replicas)), connector_(std::move(connector)) {}

  // Connect makes sure a verified connection is open (failing over as a
  // request would) and returns it; for a banner saying what was verified.
  [[nodiscard]] ClientResult<Connection*> Connect();
  // Request is Connection::Request with failover. `on_head` and `on_body`
  // see only the attempt that answered (a 503 is held back and retried).
  [[nodiscard]] ClientResult<HttpResponse> Request(const std::string& method, const std::string& target,
                                                   const std::string& body = "",
                                                   const std::map<std::string, std::string>& headers = {},
                                                   const BodyCallback& on_body = nullptr,
                                                   const HeadCallback& on_head = nullptr);
  // OnSwitch is told when a new connection to a replica was verified after
  // another failed: its name and what the previous attempt hit.
  void OnSwitch(std::function<void(const std::string& replica, const std::string& why)> f) { on_switch_ = std::move(f); }

  void SetReverifyAfter(std::chrono::steady_clock::duration d) { reverify_after_ = d; }

  Connection* connection() { return conn_.get(); }
  const std::string& replica() const { return replicas_->name(conn_replica_); }
  ReplicaSet& replicas() { return *replicas_; }

 private:
  // Open opens a verified connection to the attempt's replica.
  [[nodiscard]] Status<ClientErrc> Open(size_t replica);
  // Usable: the connection is open and its verification not yet due again.
  bool Usable() const {
    return conn_ && conn_->is_open() && std::chrono::steady_clock::now() - opened_ < reverify_after_;
  }

  std::shared_ptr<ReplicaSet> replicas_;
  Connector connector_;
  std::function<void(const std::string&, const std::string&)> on_switch_;
  std::unique_ptr<Connection> conn_;
  size_t conn_replica_ = 0;
  std::chrono::steady_clock::time_point opened_;  // when conn_ was verified
  std::chrono::steady_clock::duration reverify_after_ = std::chrono::seconds(600);
  std::string last_failure_;  // what the last failed attempt hit (for OnSwitch)
};

}  // namespace cllm::client
