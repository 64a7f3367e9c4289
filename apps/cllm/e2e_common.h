// e2e_common.h — `--e2e` for the client commands (cllm proxy, cllm chat):
// requests sealed to the fleet key (docs/protocol.md, "Encrypted bodies").
//
// Before anything is sealed the client establishes, in this order:
//   1. cllm-trust's token-signing keys (JWKS), over a connection pinning the
//      service's certificate (--trust URL --trust-ca FILE);
//   2. the fleet key configs, from the upstream's GET /v1/e2e/keys (replicas
//      serve what cllm-trust published; anything on the way may tamper with
//      it): every entry's statement must verify under that JWKS and bind the
//      config bytes, its suite and its release policy (trust/e2e_keys.h);
//   3. each key's release policy must be at least as strict as this client's
//      own policy (trust/release_cover.h): every replica that can hold the key
//      is one the client would accept on its own evidence.
// Keys failing 2 or 3 are never used; none left is an error naming why.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "apps/cllm/remote_common.h"
#include "client/e2e_session.h"
#include "crypto/x509.h"

namespace cllm::app {

struct E2eArgs {
  bool enabled = false;          // --e2e
  std::string suite = "x25519";  // --suite x25519|gmt
  std::string trust_url, trust_ca;
  std::string upstream_ca;       // --upstream-ca: roots of an https:// gateway
  // Mutual mode: this client runs in a TEE and attests to cllm-trust; its
  // requests are then sealed in HPKE auth mode with a key its token binds.
  std::string client_tee;                      // --client-tee sim|snp|tdx|csv|auto
  std::string client_sim_key;                  // --client-sim-key (sim)
  std::string client_token_policy = "default"; // --client-token-policy: cllm-trust attestation policy
};

// AddE2eFlags adds --e2e, --suite, --trust, --trust-ca, --upstream-ca and,
// unless `with_trust` is false (the command has --trust/--trust-ca already),
// the mutual-mode flags too.
void AddE2eFlags(CLI::App* cmd, E2eArgs* a, bool with_trust = true);
// AddE2eClientFlags adds --client-tee, --client-sim-key, --client-token-policy.
void AddE2eClientFlags(CLI::App* cmd, E2eArgs* a);

// E2eSetup is what the client commands need to send encrypted bodies.
struct E2eSetup {
  std::shared_ptr<client::E2eSession> session;
  std::vector<crypto::Certificate> upstream_roots;
  std::vector<std::string> explanation;  // what was verified, for the banner / cllm attest
  bool mutual = false;                   // requests go in HPKE auth mode with this client's attested key
};

// MakeE2e runs steps 1–3 against `upstreams` (the first that answers serves
// the key list) and prints nothing; errors are printed and become an exit
// code (1: a key or statement was refused, 2: setup or connection).
OrExit<E2eSetup> MakeE2e(const E2eArgs& a, const attestation::Policy& policy, const std::vector<client::Url>& upstreams,
                         const net::ClientOptions& http);

// ConnectUpstream opens one connection to an e2e upstream: TLS checked
// against `roots` and the URL's host, or plain for http://.
client::ClientResult<std::unique_ptr<client::Connection>> ConnectE2eUpstream(
    const client::Url& url, const std::vector<crypto::Certificate>& roots, const net::ClientOptions& http);

}  // namespace cllm::app
