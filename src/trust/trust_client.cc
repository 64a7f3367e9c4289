#include "trust/trust_client.h"

#include <chrono>

#include "attestation/pinning.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/json_guard.h"
#include "channel/payload.h"
#include "crypto/hpke.h"
#include "trust/jose.h"

namespace cllm::trust {

using client::ClientErrc;
using client::ClientResult;

ClientResult<TrustEndpoint> LoadTrustEndpoint(const std::string& url, const std::filesystem::path& ca_pem) {
  CLLM_ASSIGN_OR_RETURN(client::Url u, client::ParseUrl(url));
  if (!u.tls) return MakeError(ClientErrc::kBadUrl, "cllm-trust is reached over https://");
  auto text = ReadTextFile(ca_pem, 1 << 20);
  if (!text.ok()) return MakeError(ClientErrc::kBadUrl, "--trust-ca: " + text.detail());
  auto cert = crypto::Certificate::FromPem(*text);
  if (!cert.ok()) return MakeError(ClientErrc::kBadUrl, ca_pem.string() + ": not a PEM certificate: " + cert.detail());
  return TrustEndpoint{std::move(u), std::move(cert).value()};
}

ClientResult<TrustReply> TrustCall(client::Connection& c, const std::string& method, const std::string& target,
                                   const std::optional<nlohmann::json>& body, const std::string& bearer) {
  std::map<std::string, std::string> headers = {{"content-type", "application/json"}};
  if (!bearer.empty()) headers["authorization"] = "Bearer " + bearer;
  CLLM_ASSIGN_OR_RETURN(client::HttpResponse r, c.Request(method, target, body ? body->dump() : "", headers));
  TrustReply out;
  out.status = r.status;
  if (!JsonDepthWithin(r.body)) return MakeError(ClientErrc::kProtocol, "cllm-trust answered deeply nested JSON");
  out.body = nlohmann::json::parse(r.body, nullptr, false);
  if (out.body.is_discarded()) {
    return MakeError(ClientErrc::kProtocol, "cllm-trust answered HTTP " + std::to_string(r.status) +
                                                " without JSON (" + std::to_string(r.body.size()) + " bytes: \"" +
                                                r.body.substr(0, 60) + "\", content-length " +
                                                (r.headers.count("content-length") ? r.headers["content-length"] : "-") + ")");
  }
  return out;
}

ClientResult<TrustReply> TrustCallOnce(const TrustEndpoint& ep, const std::string& method, const std::string& target,
                                       const std::optional<nlohmann::json>& body, const std::string& bearer) {
  CLLM_ASSIGN_OR_RETURN(auto conn, client::ConnectPinned(ep.url, ep.ca));
  return TrustCall(*conn, method, target, body, bearer);
}

std::string ErrorOf(const TrustReply& r) {
  const auto& e = r.body.contains("error") && r.body["error"].is_object() ? r.body["error"] : nlohmann::json::object();
  return e.value("code", "error") + ": " + e.value("message", r.body.dump().substr(0, 200)) + " (HTTP " +
         std::to_string(r.status) + ")";
}

ClientResult<nlohmann::json> FetchJwks(const TrustEndpoint& ep) {
  CLLM_ASSIGN_OR_RETURN(TrustReply r, TrustCallOnce(ep, "GET", "/.well-known/jwks.json"));
  if (r.status != 200 || !r.body.contains("keys")) return MakeError(ClientErrc::kHttp, "JWKS: " + ErrorOf(r));
  return r.body;
}

namespace {

// TokenPinningSubject: what the token says about the server's launch values
// (the claims as the client's own appraisal saw them, token_claims.h).
attestation::PinningSubject TokenPinningSubject(const TokenVerifiedServer& s) {
  return attestation::SubjectOf(s.appraised, Bytes(s.payload.model_digest.begin(), s.payload.model_digest.end()));
}

}  // namespace

ClientResult<TokenConnection> ConnectViaToken(const client::Url& url, const nlohmann::json& jwks,
                                              const attestation::Policy& policy) {
  auto verdict = std::make_shared<TokenVerdict>();
  auto conn = client::ConnectWithVerifier(url, MakeTokenVerifier(std::make_shared<JwksSource>(jwks), policy, verdict));
  std::lock_guard<std::mutex> lock(verdict->mu);
  if (!conn.ok()) {
    if (verdict->error) {
      return MakeError(ClientErrc::kAttestation,
                       std::string(channel::ChannelErrcName(verdict->error->code)) + ": " + verdict->error->detail);
    }
    return conn.error();
  }
  if (!verdict->server) return MakeError(ClientErrc::kAttestation, "the handshake left no verified server");
  if (!policy.insecure_accept_unpinned) {
    // The same pinning requirement as local evidence (attestation/pinning.h),
    // on the values the token carries.
    auto pinned = attestation::CheckPinned(policy, TokenPinningSubject(*verdict->server));
    if (!pinned.ok()) {
      return MakeError(ClientErrc::kAttestation,
                       std::string(attestation::AttestErrcName(pinned.code())) + ": " + pinned.detail());
    }
  }
  return TokenConnection{std::move(conn).value(), std::move(*verdict->server)};
}

ClientResult<Token> ObtainToken(client::Connection& c, channel::RaTlsIssuer& issuer, const crypto::PrivateKey& node_key,
                                const std::string& policy_name) {
  CLLM_ASSIGN_OR_RETURN(TrustReply ch, TrustCall(c, "POST", "/v1/challenge", nlohmann::json::object()));
  if (ch.status != 200 || !ch.body.contains("nonce") || !ch.body["nonce"].is_string()) {
    return MakeError(ClientErrc::kHttp, "challenge: " + ErrorOf(ch));
  }
  auto nonce = HexDecode(ch.body["nonce"].get<std::string>());
  if (!nonce.ok()) return MakeError(ClientErrc::kProtocol, "challenge: nonce is not hex");
  auto payload = issuer.PayloadFor(node_key.public_key().ToSpkiDer(), *nonce, /*with_e2e_keys=*/false);
  if (!payload.ok()) {
    return MakeError(ClientErrc::kAttestation,
                     std::string(channel::ChannelErrcName(payload.code())) + ": " + payload.detail());
  }
  nlohmann::json req = {{"nonce", ch.body["nonce"]},
                        {"payload", Base64Encode(channel::EncodePayload(*payload))},
                        {"public_key", PublicJwk(node_key.public_key())},
                        {"policy", policy_name}};
  CLLM_ASSIGN_OR_RETURN(TrustReply at, TrustCall(c, "POST", "/v1/attest", req));
  if (at.status != 200 || !at.body.contains("token") || !at.body["token"].is_string()) {
    return MakeError(ClientErrc::kHttp, "attest: " + ErrorOf(at));
  }
  Token t;
  t.jwt = at.body["token"].get<std::string>();
  t.claims = at.body.value("claims", nlohmann::json::object());
  t.expires_at = at.body.value("expires_at", int64_t{0});
  return t;
}

ClientResult<SecretBytes> FetchModelKey(client::Connection& c, const Token& token, const crypto::PrivateKey& node_key,
                                        const std::string& key_id) {
  auto eph = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  if (!eph.ok()) return MakeError(ClientErrc::kTls, "ephemeral key: " + eph.detail());
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  nlohmann::json pop_body = {{"key_id", key_id}, {"epk", PublicJwk(eph->public_key())}, {"iat", now}};
  auto pop = SignJws(node_key, {{"typ", "cllm-key-request+jws"}}, pop_body.dump());
  if (!pop.ok()) return MakeError(ClientErrc::kTls, std::string("proof of possession: ") + pop.detail());
  CLLM_ASSIGN_OR_RETURN(TrustReply r, TrustCall(c, "POST", "/v1/keys/" + key_id, nlohmann::json{{"pop", *pop}},
                                                token.jwt));
  if (r.status != 200 || !r.body.contains("jwe") || !r.body["jwe"].is_string()) {
    return MakeError(ClientErrc::kHttp, "key release: " + ErrorOf(r));
  }
  auto key = DecryptJwe(r.body["jwe"].get<std::string>(), *eph);
  if (!key.ok()) return MakeError(ClientErrc::kProtocol, std::string("key release: JWE: ") + key.detail());
  return std::move(key).value();
}

ClientResult<std::vector<E2eKey>> FetchE2eKeys(client::Connection& c, const nlohmann::json& jwks,
                                               const E2eKeyCheck& check) {
  CLLM_ASSIGN_OR_RETURN(TrustReply r, TrustCall(c, "GET", "/v1/e2e/keys"));
  if (r.status != 200) return MakeError(ClientErrc::kHttp, "e2e keys: " + ErrorOf(r));
  auto keys = VerifyE2eKeys(r.body, jwks, check);
  if (!keys.ok()) {
    return MakeError(ClientErrc::kAttestation,
                     std::string("e2e keys: ") + E2eKeyErrcName(keys.code()) + ": " + keys.detail());
  }
  return std::move(keys).value();
}

ClientResult<FleetPrivateKey> CheckFleetKey(const E2eKey& published, SecretBytes sk) {
  const std::string id = FleetModelKeyId(published.config.key_id, published.config.suite);
  auto pk = crypto::hpke::PublicKeyFromPrivate(published.config.suite.kem, sk.span());
  if (!pk.ok()) return MakeError(ClientErrc::kProtocol, id + ": the released key is not a private key: " + pk.detail());
  if (!ConstantTimeEqual(*pk, published.config.public_key)) {
    return MakeError(ClientErrc::kProtocol, id + ": the released private key does not match the published key config");
  }
  return FleetPrivateKey{published, std::move(sk)};
}

ClientResult<FleetPrivateKey> FetchFleetKey(client::Connection& c, const Token& token,
                                            const crypto::PrivateKey& node_key, const E2eKey& published) {
  CLLM_ASSIGN_OR_RETURN(SecretBytes sk,
                        FetchModelKey(c, token, node_key, FleetModelKeyId(published.config.key_id, published.config.suite)));
  return CheckFleetKey(published, std::move(sk));
}

}  // namespace cllm::trust
