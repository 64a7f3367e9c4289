// e2e_boot.h — cllm-server --e2e: the fleet keys that open encrypted bodies
// (docs/protocol.md, "Encrypted bodies"; docs/server.md, "Encrypted bodies").
//
// After attesting, the node asks cllm-trust for GET /v1/e2e/keys, verifies
// every entry's statement under the service's JWKS, and fetches the private
// half of each key through the model-key broker (released only if the
// node's token satisfies that key's release policy; a refusal skips the
// key). A released key must match its published config. The replica then
//   - opens encrypted requests with those keys (Service::SetE2eKeys),
//   - binds their config digests into its own evidence (RaTlsIssuer), and
//   - republishes the entries it holds on GET /v1/e2e/keys, so clients that
//     only reach a gateway get them (they verify cllm-trust's signature).
// Every 30 s it looks for keys published since (a rotation) and fetches them.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "apps/cllm-server/boot.h"
#include "channel/e2e.h"
#include "net/server.h"
#include "server/service.h"

namespace cllm::app {

class FleetKeys {
 public:
  // Load fetches the keys for `node`; kPermission when no key was released
  // to this node (then --e2e cannot work: the server refuses to start).
  static Result<std::unique_ptr<FleetKeys>> Load(TrustBoot& trust, const NodeIdentity& node);

  // Refresh fetches keys published since the last call (best effort;
  // returns how many were added).
  Result<int> Refresh(TrustBoot& trust, const NodeIdentity& node);

  std::shared_ptr<const channel::e2e::KeyRing> ring() const;
  std::vector<std::array<uint8_t, 32>> digests() const;
  // Published is the GET /v1/e2e/keys body this replica serves.
  std::string Published() const;
  std::string Summary() const;  // "key 1 (x25519, 3f2a…)" for the log

 private:
  FleetKeys() = default;
  Result<int> Fetch(TrustBoot& trust, const NodeIdentity& node, bool first);

  mutable std::mutex mu_;
  std::vector<nlohmann::json> entries_;  // as cllm-trust published them, in its order
  struct Held {
    Bytes config;
    SecretBytes sk;
  };
  std::vector<Held> held_;
  // Keys the broker refused to release to this node (403 release_refused),
  // by config digest, with when: not asked again for kRefusalMemory. Any
  // other failure (cllm-trust unreachable, a 5xx, an expired token) is
  // retried at the next refresh.
  struct Refusal {
    std::string id;  // fleet-<N>-<suite>
    std::chrono::steady_clock::time_point when;
  };
  std::map<std::string, Refusal> refused_;
  std::shared_ptr<const channel::e2e::KeyRing> ring_;
};

// E2eListenerHandler serves --e2e-listen: a plain HTTP listener meant for a
// TLS-terminating gateway. It answers only encrypted requests to the API
// routes, GET /v1/e2e/keys, /health and /ready; everything else is 403 (no
// clear-text API is exposed on it).
net::Handler E2eListenerHandler(server::Service& service, const FleetKeys& keys);

// WithE2eKeys wraps the attested listener's handler to add GET /v1/e2e/keys.
net::Handler WithE2eKeys(net::Handler inner, const FleetKeys& keys);

}  // namespace cllm::app
