// trust_client.h — talking to cllm-trust: the node side of the preparation
// phase (challenge → evidence → token → model key) and admin calls.
//
// Connections pin the service's certificate (client::ConnectPinned). The node
// key is the P-256 key the token's cnf binds: the server's RA-TLS key, whose
// SPKI the evidence's report_data already binds (channel/payload.h).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "base/secure.h"
#include "channel/ratls.h"
#include "client/client.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "trust/e2e_keys.h"
#include "trust/token_verifier.h"

namespace cllm::trust {

struct TrustEndpoint {
  client::Url url;
  crypto::Certificate ca;  // the pinned service certificate (STATE_DIR/trust-ca.pem)
};
client::ClientResult<TrustEndpoint> LoadTrustEndpoint(const std::string& url, const std::filesystem::path& ca_pem);

struct TrustReply {
  int status = 0;
  nlohmann::json body;  // the service's JSON ({"error": {"code", "message"}} on failure)
};

// TrustCall sends one request on `c` (keep-alive) and parses the JSON answer.
client::ClientResult<TrustReply> TrustCall(client::Connection& c, const std::string& method, const std::string& target,
                                           const std::optional<nlohmann::json>& body = std::nullopt,
                                           const std::string& bearer = "");
// TrustCallOnce opens a pinned connection for one call.
client::ClientResult<TrustReply> TrustCallOnce(const TrustEndpoint& ep, const std::string& method,
                                               const std::string& target,
                                               const std::optional<nlohmann::json>& body = std::nullopt,
                                               const std::string& bearer = "");
// ErrorOf renders a non-2xx reply as "code: message (HTTP n)".
std::string ErrorOf(const TrustReply& r);

// FetchJwks gets the service's token verification keys.
client::ClientResult<nlohmann::json> FetchJwks(const TrustEndpoint& ep);

// ConnectViaToken connects to a cllm server and accepts it on its
// cllm-trust token (token_verifier.h) instead of local evidence
// verification; kAttestation carries the typed reason on refusal. Like
// client::Connect it refuses a server whose launch measurement or model
// digest the policy does not pin ("not_pinned: …", attestation/pinning.h)
// unless policy.insecure_accept_unpinned.
struct TokenConnection {
  std::unique_ptr<client::Connection> conn;
  TokenVerifiedServer server;
};
client::ClientResult<TokenConnection> ConnectViaToken(const client::Url& url, const nlohmann::json& jwks,
                                                      const attestation::Policy& policy);

struct Token {
  std::string jwt;
  nlohmann::json claims;
  int64_t expires_at = 0;
};

// ObtainToken runs challenge → evidence (issuer.PayloadFor with the nonce,
// binding `node_key`) → attest under policy `policy_name`.
client::ClientResult<Token> ObtainToken(client::Connection& c, channel::RaTlsIssuer& issuer,
                                        const crypto::PrivateKey& node_key, const std::string& policy_name);

// FetchModelKey proves possession of `node_key` (the token's cnf), sends a
// fresh ephemeral public key and decrypts the returned JWE.
client::ClientResult<SecretBytes> FetchModelKey(client::Connection& c, const Token& token,
                                                const crypto::PrivateKey& node_key, const std::string& key_id);

// FetchE2eKeys gets GET /v1/e2e/keys and verifies every entry
// (VerifyE2eKeys, e2e_keys.h) against `jwks` — the JWKS the caller fetched
// from or pinned for this service — at `check.now`. A refused list is
// kAttestation with the E2eKeyErrc name ("mismatch: …"); a caller seals to
// the first entry of its suite (the service lists the preferred key first).
client::ClientResult<std::vector<E2eKey>> FetchE2eKeys(client::Connection& c, const nlohmann::json& jwks,
                                                       const E2eKeyCheck& check);

// FleetPrivateKey is a fleet key a server node holds: its verified public
// config and the private key the broker released to it.
struct FleetPrivateKey {
  E2eKey published;
  SecretBytes sk;  // RFC 9180 §7.1.1 serialized private key
};

// FetchFleetKey fetches the private half of a verified published key through
// the model-key path (FetchModelKey with key id "fleet-<N>-<suite>") and
// checks that PublicKeyFromPrivate(kem, sk) is the config's public key, so a
// node never serves under a key that does not match what clients seal to.
// kHttp with "release_refused" when the token does not satisfy the key's
// release policy; kProtocol when the released key does not match.
client::ClientResult<FleetPrivateKey> FetchFleetKey(client::Connection& c, const Token& token,
                                                    const crypto::PrivateKey& node_key, const E2eKey& published);
// CheckFleetKey is that match check alone (kProtocol on mismatch).
client::ClientResult<FleetPrivateKey> CheckFleetKey(const E2eKey& published, SecretBytes sk);

}  // namespace cllm::trust
