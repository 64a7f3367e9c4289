#include "trust/token_verifier.h"

#include <algorithm>

#include "base/encoding.h"
#include "trust/jose.h"
#include "trust/release_policy.h"
#include "trust/token_claims.h"

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
  auto token = VerifyToken(*payload->token, jwks, check);
  if (!token.ok()) {
    return MakeError(token.code() == JoseErrc::kExpired ? ChannelErrc::kStale : ChannelErrc::kPlatformChainInvalid,
                     std::string("cllm-trust token: ") + JoseErrcName(token.code()) + ": " + token.detail());
  }
  const nlohmann::json& c = token->claims;
  auto str = [&](const char* name) {
    auto it = c.find(name);
    return it != c.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto flag = [&](const char* name) {  // absent or not a boolean true: false
    auto it = c.find(name);
    return it != c.end() && it->is_boolean() && it->get<bool>();
  };
  auto readers = [&]() -> nlohmann::json {  // absent: none; otherwise the claim as it is, compared below
    auto it = c.find("metrics_readers");
    return it == c.end() ? nlohmann::json::array() : *it;
  };
  auto replay = c.find("replay");
  if (replay == c.end() || !replay->is_boolean() || replay->get<bool>()) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "the token was minted from replayed evidence (not bound)");
  }
  // A server's token carries no role; a split-inference client's says
  // "client" (its attestation policy met none of the serving checks). Such
  // a token in a server certificate is refused, whatever else matches.
  if (options.peer == channel::PeerRole::kServer && c.contains(kRoleClaim)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     "the token is not a server's (role \"" + str(kRoleClaim).substr(0, 32) +
                         "\", attestation policy \"" + str("policy").substr(0, 64) + "\")");
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

  // 4. The token's digests are the certificate's, and the evidence cllm-trust
  // verified bound them: report_data = binding(this key, digests, name, the
  // service's nonce) (channel/payload.h).
  const std::string binary = str("binary_digest"), model = str("model_digest");
  const std::string template_digest =
      payload->serving.chat_template_digest ? HexEncode(*payload->serving.chat_template_digest) : "";
  if (binary != HexEncode(payload->binary_digest) || model != HexEncode(payload->model_digest) ||
      str("model_name") != payload->model_name || str("chat_template_digest") != template_digest ||
      flag("model_from_untrusted_disk") != payload->serving.model_from_untrusted_disk ||
      flag("memory_unlocked") != payload->serving.memory_unlocked ||
      NumberClaim(c, "stream_pad", channel::kDefaultStreamPad, channel::kMaxStreamPad) != payload->serving.stream_pad ||
      flag("debug_listener") != payload->serving.debug_listener ||
      NumberClaim(c, "stream_coalesce_ms", 0, channel::kMaxStreamCoalesceMs) != payload->serving.stream_coalesce_ms ||
      readers() != MetricsReadersClaim(payload->serving)) {
    return MakeError(ChannelErrc::kCertEvidenceMismatch, "the token's digests differ from the certificate's claims");
  }
  auto freshness = HexDecode(str("freshness"));
  if (!freshness.ok() || freshness->empty() || freshness->size() > channel::kMaxFreshnessSize) {
    return MakeError(ChannelErrc::kCertEvidenceMismatch, "the token has no valid \"freshness\" (cllm-trust's nonce)");
  }
  channel::AttestationPayload bound = *payload;
  bound.freshness = std::move(freshness).value();
  bound.e2e_key_digests.clear();  // never in the evidence cllm-trust saw (RaTlsIssuer::PayloadFor)
  const auto want = channel::ComputeReportData(key->ToSpkiDer(), bound);
  if (!ConstantTimeEqual(want, token->input.data().report_data)) {
    return MakeError(ChannelErrc::kCertEvidenceMismatch,
                     "the token's report_data does not bind this TLS key and these digests");
  }

  // 5. The attestation policy cllm-trust appraised under, when the client
  // names the ones it accepts.
  const std::string policy_name = str("policy");
  if (!policy.token_policies.empty() &&
      std::find(policy.token_policies.begin(), policy.token_policies.end(), policy_name) ==
          policy.token_policies.end()) {
    std::string want_names;
    for (const auto& n : policy.token_policies) want_names += (want_names.empty() ? "" : ", ") + n;
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "token_policy: expected one of [" + want_names +
                                                           "], the token was appraised under \"" +
                                                           policy_name.substr(0, 64) + "\"");
  }

  // 6. The client's own appraisal of the token's claims: the same code and
  // policy as for local evidence (platform, sim, debug, TCB status and floor,
  // measurements, fields).
  auto claims = attestation::Appraise(token->input, policy);
  if (!claims.ok()) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     std::string(attestation::AttestErrcName(claims.code())) + ": " + claims.detail());
  }
  if (!DigestListed(policy.binary_digests, binary)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "binary_digest: " + binary + " is not in the policy");
  }
  if (!DigestListed(policy.model_digests, model)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "model_digest: " + model + " is not in the policy");
  }
  // The serving claims (a host-supplied chat template, a model mapped from
  // disk) are in the certificate's payload, which report_data binds (step 4).
  CLLM_RETURN_IF_ERROR(channel::CheckServing(payload->serving, policy, options.peer));
  return TokenVerifiedServer{c, std::move(payload).value(), std::move(claims).value()};
}

crypto::PeerVerifier MakeTokenVerifier(std::shared_ptr<const JwksSource> jwks, attestation::Policy policy,
                                       std::shared_ptr<TokenVerdict> verdict, std::string expected_issuer,
                                       channel::PeerRole peer) {
  return [jwks = std::move(jwks), policy = std::move(policy), verdict = std::move(verdict),
          issuer = std::move(expected_issuer),
          peer](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
    channel::ChannelResult<TokenVerifiedServer> r = MakeError(ChannelErrc::kNoEvidence, "the server sent no certificate");
    if (!chain.empty()) {
      r = VerifyServerToken(chain.front(), jwks->Get(), policy, {std::chrono::system_clock::now(), issuer, peer});
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
