#include "trust/token_verifier.h"

#include "base/encoding.h"
#include "trust/jose.h"

namespace cllm::trust {

using channel::ChannelErrc;

channel::ChannelResult<TokenVerifiedServer> VerifyServerToken(const crypto::Certificate& leaf,
                                                              const nlohmann::json& jwks,
                                                              const attestation::Policy& policy,
                                                              const TokenVerifyOptions& options) {
  if (options.at < leaf.NotBefore() - std::chrono::minutes(5) || options.at > leaf.NotAfter()) {
    return MakeError(ChannelErrc::kStale, "the server certificate is not valid at the verification time");
  }
  auto ext = leaf.Extension(channel::kAttestationExtensionOid);
  if (!ext) return MakeError(ChannelErrc::kNoEvidence, "the server certificate has no attestation payload");
  auto payload = channel::DecodePayload(*ext);
  if (!payload.ok()) return MakeError(ChannelErrc::kMalformed, std::string("attestation payload: ") + payload.detail());
  if (!payload->token) {
    return MakeError(ChannelErrc::kNoEvidence,
                     "the server's certificate carries no cllm-trust token (it did not boot through cllm-trust); "
                     "verify its evidence locally instead");
  }
  JwtCheck check;
  check.now = options.at;
  check.expected_issuer = options.expected_issuer;
  auto claims = VerifyJwt(*payload->token, jwks, check);
  if (!claims.ok()) {
    return MakeError(claims.code() == JoseErrc::kExpired ? ChannelErrc::kStale : ChannelErrc::kPlatformChainInvalid,
                     std::string("cllm-trust token: ") + JoseErrcName(claims.code()) + ": " + claims.detail());
  }
  const nlohmann::json& c = *claims;
  if (c.value("replay", true)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "the token was minted from replayed evidence (not bound)");
  }

  // 3. The token speaks for this certificate's key.
  auto key = leaf.GetPublicKey();
  if (!key.ok()) return MakeError(ChannelErrc::kMalformed, "server public key: " + key.detail());
  const nlohmann::json leaf_jwk = PublicJwk(*key);
  const auto cnf = c.find("cnf");
  if (leaf_jwk.is_null() || cnf == c.end() || !cnf->is_object() || !cnf->contains("jwk") ||
      JwkThumbprint((*cnf)["jwk"]) != JwkThumbprint(leaf_jwk)) {
    return MakeError(ChannelErrc::kCertEvidenceMismatch,
                     "the token's cnf key is not this TLS key: the token belongs to another session");
  }

  // 4. Digests: consistent with the payload, and accepted by the policy.
  const std::string binary = c.value("binary_digest", ""), model = c.value("model_digest", "");
  if (binary != HexEncode(payload->binary_digest) || model != HexEncode(payload->model_digest)) {
    return MakeError(ChannelErrc::kCertEvidenceMismatch, "the token's digests differ from the certificate's claims");
  }
  const std::string tee = c.value("tee", "");
  const bool simulated = c.value("simulated", true);
  auto platform = attestation::ParsePlatformName(tee);
  if (!platform || !policy.platforms.count(*platform)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     simulated ? "simulated_not_allowed: the token is for the SIMULATED TEE and the policy does not "
                                 "list \"sim\""
                               : "platform: the policy does not allow \"" + tee + "\"");
  }
  const std::string tcb = c.value("tcb_status", "");
  auto status = attestation::ParseTcbStatusName(tcb);
  if (!simulated && (!status || !policy.tcb_statuses.count(*status))) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "tcb_status: the policy does not accept \"" + tcb + "\"");
  }
  auto listed = [](const std::vector<Bytes>& list, const std::string& hex) {
    if (list.empty()) return true;
    for (const Bytes& b : list) {
      if (HexEncode(b) == hex) return true;
    }
    return false;
  };
  if (!listed(policy.binary_digests, binary)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "binary_digest: " + binary + " is not in the policy");
  }
  if (!listed(policy.model_digests, model)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "model_digest: " + model + " is not in the policy");
  }
  return TokenVerifiedServer{c, std::move(payload).value()};
}

crypto::PeerVerifier MakeTokenVerifier(std::shared_ptr<const JwksSource> jwks, attestation::Policy policy,
                                       std::shared_ptr<TokenVerdict> verdict, std::string expected_issuer) {
  return [jwks = std::move(jwks), policy = std::move(policy), verdict = std::move(verdict),
          issuer = std::move(expected_issuer)](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
    channel::ChannelResult<TokenVerifiedServer> r = MakeError(ChannelErrc::kNoEvidence, "the server sent no certificate");
    if (!chain.empty()) {
      r = VerifyServerToken(chain.front(), jwks->Get(), policy, {std::chrono::system_clock::now(), issuer});
    }
    std::lock_guard<std::mutex> lock(verdict->mu);
    if (!r.ok()) {
      verdict->error = r.error();
      verdict->server.reset();
      return MakeError(crypto::CryptoErrc::kChainInvalid, std::string(channel::ChannelErrcName(r.code())) + ": " +
                                                              r.detail());
    }
    verdict->error.reset();
    verdict->server = std::move(r).value();
    return OkStatus();
  };
}

}  // namespace cllm::trust
