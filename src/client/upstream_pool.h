// upstream_pool.h — `cllm proxy`'s verified upstream: a pool of kept-alive
// RA-TLS connections to one cllm server, and the forwarding of a local
// request over it.
//
// Verification: every new upstream connection runs the RA-TLS verifier
// inside its own handshake, before any request byte leaves. The verifier
// remembers the certificates it verified (by their DER, a few at most,
// until the certificate expires or `reverify_after` passes): a new
// connection that presents a certificate verified before is accepted
// without verifying the evidence again, and one that presents a different
// certificate — the server rotated its key and evidence — is verified in
// full during that handshake, and refused (the connection never used) if it
// fails. Stats().verifications counts the full verifications.
//
// Reuse: a connection goes back to the pool after a complete keep-alive
// response and is reused, most recently used first; at most
// `max_connections` are open (a request waits up to `acquire_timeout` for
// one), and an idle one is closed after `idle_timeout`. A connection is not
// reused past its certificate's end or `reverify_after` past the full
// verification that admitted it (a busy proxy's connection would otherwise
// serve for days on one verification); the next request opens a new one,
// verified in its own handshake. A request that
// fails on a reused connection before any response byte (the server closed
// it while idle) is resent once on a new connection; nothing is resent once
// response bytes arrived.
//
// Failover: with several upstreams (or a relay whose new connections land on
// different replicas), a request that failed before any response byte —
// connect refused, the replica's TLS or attestation refused, closed before
// the head, a 503 from a draining replica — goes to another replica over a
// connection verified in its own handshake, up to the attempt limit; the
// final 502 lists what each attempt hit. After response bytes were passed
// on, nothing is retried: a stream (server-sent events) gets an error event
// and is then cut off (no terminating chunk, so no client can mistake it for
// a complete answer); a whole response that broke off is a 502.
//
// The pool runs one I/O thread of its own; Forward may be called from any
// thread and returns at once (it answers through the writer, which it keeps).
// With e2e, what may block on the network — fetching the key list again
// after a 421, sealing in mutual mode (which may renew the client's token) —
// runs on a second thread, so the I/O thread serves the other requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "attestation/policy.h"
#include "channel/ratls.h"
#include "client/client.h"
#include "client/replicas.h"
#include "net/client.h"
#include "net/server.h"

namespace cllm::client {

struct PoolOptions {
  int max_connections = 64;
  std::chrono::milliseconds idle_timeout{30000};     // below cllm-server's keep-alive limit (60 s)
  std::chrono::milliseconds acquire_timeout{30000};  // waiting for a free connection when all are busy
  std::chrono::seconds reverify_after{600};          // verify a known certificate again after this
  net::ClientOptions http;                           // per-phase deadlines of each upstream request
  FailoverOptions failover;                          // attempts and backoff across replicas
  // Encrypted bodies (`cllm proxy --e2e`, e2e_session.h): each request is
  // sealed to the fleet key and its answer opened here, so the upstream may
  // be any HTTP endpoint in front of the replicas — an L7 proxy terminating
  // TLS. It is then checked as a web server: https:// upstreams must present
  // a chain to one of `upstream_roots` for one of the upstream host names;
  // http:// is allowed (the bodies are sealed either way).
  std::shared_ptr<class E2eSession> e2e;
  std::vector<crypto::Certificate> upstream_roots;
};

struct PoolStats {
  uint64_t connections_opened = 0;
  uint64_t verifications = 0;         // full RA-TLS verifications (evidence, binding, policy, pinning)
  uint64_t verifications_reused = 0;  // handshakes whose certificate was verified before
  uint64_t refusals = 0;              // handshakes the verifier refused
  uint64_t requests = 0;              // forwarded requests
  uint64_t reused = 0;                // sent on a kept-alive connection
  uint64_t retries = 0;               // resent once after the server had closed a kept-alive connection
  uint64_t failovers = 0;             // attempts that failed before a response and were tried again
  uint64_t incomplete = 0;            // responses cut off after bytes were passed on
  uint64_t e2e_refused = 0;           // e2e: answers that failed to open (tampered, truncated)
  uint64_t e2e_key_resends = 0;     // e2e: requests sealed again to another key after e2e_key_unknown
  int open = 0;                       // open connections (busy or idle)
  int idle = 0;
};

class UpstreamPool {
 public:
  // Create starts the pool's thread; no connection is opened yet.
  // `upstreams`: the replicas (one URL: a single server or a relay).
  [[nodiscard]] static ClientResult<std::unique_ptr<UpstreamPool>> Create(std::vector<Url> upstreams,
                                                                         attestation::Policy policy,
                                                                         PoolOptions options = {});
  [[nodiscard]] static ClientResult<std::unique_ptr<UpstreamPool>> Create(const Url& upstream,
                                                                         attestation::Policy policy,
                                                                         PoolOptions options = {}) {
    return Create(std::vector<Url>{upstream}, std::move(policy), options);
  }
  ~UpstreamPool();  // closes every connection; requests in flight are cut off
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Probe opens a connection to upstream `replica` now (and keeps it in the
  // pool), so a wrong policy or address shows at start-up: kAttestation with
  // the verifier's reason, or the connection error. Returns what
  // verification established. A failed probe puts the replica in backoff.
  [[nodiscard]] ClientResult<channel::VerifiedServer> Probe(size_t replica = 0);
  const ReplicaSet& replicas() const;
  // Forward sends `request` upstream (method, target, body and the
  // end-to-end headers worth forwarding) and answers `writer`: whole
  // responses whole, chunked ones (server-sent events) chunk by chunk as they
  // arrive. Failures before any response byte are failed over, then become
  // 502 (504 for a deadline) with a JSON error saying why; a failure
  // mid-stream ends the stream with an error event and cuts it off.
  void Forward(const net::Request& request, std::shared_ptr<net::ResponseWriter> writer);
  PoolStats Stats() const;

 private:
  struct Impl;
  explicit UpstreamPool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cllm::client
