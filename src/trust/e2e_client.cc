#include "trust/e2e_client.h"

#include <algorithm>

#include "base/encoding.h"
#include "trust/token_claims.h"

namespace cllm::trust {
namespace {

namespace e2e = channel::e2e;
namespace hpke = crypto::hpke;

e2e::E2eResult<Bytes> Refuse(const std::string& why) { return MakeError(e2e::E2eErrc::kClientToken, why); }

int64_t Unix(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

e2e::E2eResult<Bytes> Verify(const E2eClientPolicy& p, std::string_view token, std::string_view key_jws,
                             hpke::Suite suite) {
  const auto now = p.now ? p.now() : std::chrono::system_clock::now();
  if (!p.jwks) return Refuse("no JWKS to verify client tokens with");
  // 1. The token.
  auto verified = VerifyToken(token, p.jwks->Get(), JwtCheck{now, p.expected_issuer});
  if (!verified.ok()) return Refuse(std::string("client token: ") + JoseErrcName(verified.code()));
  const nlohmann::json& c = verified->claims;
  // A replay token speaks for evidence of the past, not for a live client.
  if (auto r = c.find("replay"); r != c.end() && (!r->is_boolean() || r->get<bool>())) {
    return Refuse("client token: a replay token");
  }
  // 2. The attestation policy cllm-trust appraised the client under.
  auto pol = c.find("policy");
  if (pol == c.end() || !pol->is_string()) return Refuse("client token: no policy");
  if (!p.accepted_policies.empty() &&
      std::find(p.accepted_policies.begin(), p.accepted_policies.end(), pol->get<std::string>()) ==
          p.accepted_policies.end()) {
    return Refuse("client token: policy not accepted");
  }
  // 3. The statement, signed by the token's cnf key.
  auto cnf = c.find("cnf");
  if (cnf == c.end() || !cnf->is_object() || !cnf->contains("jwk")) return Refuse("client token: no cnf key");
  auto cnf_key = PublicKeyFromJwk((*cnf)["jwk"]);
  if (!cnf_key.ok()) return Refuse("client token: cnf key unusable");
  auto jws = VerifyJws(key_jws, *cnf_key);
  if (!jws.ok()) return Refuse(std::string("client key statement: ") + JoseErrcName(jws.code()));
  // 4. Its payload, strictly.
  nlohmann::json s = nlohmann::json::parse(jws->payload, nullptr, /*allow_exceptions=*/false);
  if (!s.is_object() || s.size() != 3 || !s.contains("hpke_pk") || !s["hpke_pk"].is_string() ||
      !s.contains("suite") || !s["suite"].is_string() || !s.contains("iat") || !s["iat"].is_number_integer()) {
    return Refuse("client key statement: not {hpke_pk, suite, iat}");
  }
  if (s["suite"].get<std::string>() != hpke::SuiteName(suite)) {
    return Refuse("client key statement: another suite than the request's");
  }
  const int64_t iat = s["iat"].get<int64_t>();
  if (iat < Unix(now) - p.iat_window.count() || iat > Unix(now) + p.iat_window.count()) {
    return Refuse("client key statement: iat outside ±" + std::to_string(p.iat_window.count()) + " s");
  }
  auto pk = Base64UrlDecode(s["hpke_pk"].get<std::string>());
  if (!pk.ok() || !hpke::ValidatePublicKey(suite.kem, *pk).ok()) {
    return Refuse("client key statement: hpke_pk is not a key of the suite");
  }
  // 5. The server's own appraisal of the client, as of any attested party:
  // only for the holder of the token's key (steps 3-4), so the refusal's
  // detail tells no one else what the policy pins.
  if (p.appraisal) {
    if (!p.appraisal->token_policies.empty() &&
        std::find(p.appraisal->token_policies.begin(), p.appraisal->token_policies.end(),
                  pol->get<std::string>()) == p.appraisal->token_policies.end()) {
      return Refuse("client token: policy not in the client policy's token_policies");
    }
    auto appraised = attestation::Appraise(verified->input, *p.appraisal);
    if (!appraised.ok()) {
      return Refuse(std::string("client token: ") + attestation::AttestErrcName(appraised.code()) + ": " +
                    appraised.detail());
    }
    auto digest = [&c](const char* member) {  // absent or not a string: matches no pinned digest
      auto it = c.find(member);
      return it != c.end() && it->is_string() ? it->get<std::string>() : std::string("(none)");
    };
    if (!DigestListed(p.appraisal->binary_digests, digest("binary_digest"))) {
      return Refuse("client token: binary_digest not listed");
    }
    if (!DigestListed(p.appraisal->model_digests, digest("model_digest"))) {
      return Refuse("client token: model_digest not listed");
    }
    for (const char* serving : kServingClaimMembers) {
      if (c.contains(serving)) return Refuse(std::string("client token: a serving claim (") + serving + ")");
    }
  }
  return std::move(pk).value();
}

}  // namespace

e2e::ClientKeyVerifier MakeE2eClientVerifier(E2eClientPolicy policy) {
  return [p = std::move(policy)](std::string_view token, std::string_view key_jws, hpke::Suite suite) {
    return Verify(p, token, key_jws, suite);
  };
}

JoseResult<std::string> SignE2eClientKey(const crypto::PrivateKey& cnf_key, ByteSpan hpke_pk, hpke::Suite suite,
                                         int64_t iat) {
  nlohmann::json payload = {{"hpke_pk", Base64UrlEncode(hpke_pk)}, {"suite", hpke::SuiteName(suite)}, {"iat", iat}};
  return SignJws(cnf_key, {{"typ", "cllm-e2e-client-key"}}, payload.dump());
}

}  // namespace cllm::trust
