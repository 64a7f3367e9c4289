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

}  // namespace cllm::trust
