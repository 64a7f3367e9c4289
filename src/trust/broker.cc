// broker.cc — POST /v1/keys/{key_id}: the key broker (service.h).
//
// The caller presents its token (Authorization: Bearer) and a proof of
// possession: a JWS signed with the token's cnf key over
// {"key_id", "epk", "iat"}. The model key goes back as a JWE (ECDH-ES,
// A256GCM) to the ephemeral key `epk` the caller chose, so neither a stolen
// token nor a replayed request yields anything a third party can open.
// The release decision re-appraises the token's claims (release_policy.h):
// a key never depends on what the requester's chosen attestation policy
// happened to check.

#include "base/json_guard.h"
#include "trust/jose.h"
#include "trust/policy_doc.h"
#include "trust/release_policy.h"
#include "trust/service.h"
#include "trust/token_claims.h"

namespace cllm::trust {
namespace {

using Reply = std::variant<nlohmann::json, ApiError>;

constexpr int64_t kPopMaxSkew = 120;  // seconds either side of our clock

}  // namespace

Reply TrustService::ReleaseKey(const std::string& key_id, const std::string& bearer, const nlohmann::json& req) {
  const int64_t now = Now();
  if (bearer.empty()) return ApiError{401, "token_missing", "send the cllm-trust token as Authorization: Bearer"};
  JwtCheck check;
  check.now = config_.clock();
  check.expected_issuer = config_.issuer;
  check.leeway = kLeeway;
  auto token = VerifyToken(bearer, keys_->Jwks(), check);
  if (!token.ok()) {
    const bool expired = token.code() == JoseErrc::kExpired;
    return ApiError{401, expired ? "token_expired" : "token_invalid",
                    std::string(JoseErrcName(token.code())) + ": " + token.detail()};
  }
  const nlohmann::json& c = token->claims;
  const std::string sub = c.value("sub", "");
  // Any copy of a server's public token can be refused here as fast as it
  // is sent: audited at the bounded rate of refused attestations.
  auto refused = [&](ApiError e) {
    AuditRefusal("key_refused", {{"key_id", key_id}, {"sub", sub}, {"token_jti", c.value("jti", "")},
                                 {"code", e.code}, {"reason", e.message.substr(0, 512)}});
    return e;
  };

  // Proof of possession of the token's cnf key.
  auto cnf = c.find("cnf");
  if (cnf == c.end() || !cnf->is_object() || !cnf->contains("jwk")) {
    return refused({401, "token_invalid", "the token has no cnf key"});
  }
  auto holder = PublicKeyFromJwk((*cnf)["jwk"]);
  if (!holder.ok()) return refused({401, "token_invalid", std::string("cnf.jwk: ") + holder.detail()});
  if (!req.is_object() || !req.contains("pop") || !req["pop"].is_string()) {
    return refused({400, "malformed", "\"pop\" (a JWS over {key_id, epk, iat} signed with the token's cnf key) is "
                                      "required"});
  }
  auto pop = VerifyJws(req["pop"].get<std::string>(), *holder);
  if (!pop.ok()) {
    return refused({401, "pop_invalid", std::string("proof of possession: ") + JoseErrcName(pop.code()) + ": " +
                                            pop.detail()});
  }
  auto body = JsonDepthWithin(pop->payload) ? nlohmann::json::parse(pop->payload, nullptr, false)
                                            : nlohmann::json(nlohmann::json::value_t::discarded);
  if (body.is_discarded() || !body.is_object() || !body.contains("epk") || !body.contains("iat") ||
      !body["iat"].is_number_integer() || !body.contains("key_id") || !body["key_id"].is_string() ||
      body["key_id"].get<std::string>() != key_id) {
    return refused({401, "pop_invalid", "proof of possession: payload must be {\"key_id\": \"" + key_id +
                                            "\", \"epk\": {JWK}, \"iat\": <unix seconds>}"});
  }
  const int64_t iat = body["iat"].get<int64_t>();
  // iat is the caller's number: compare against now ± skew, never iat - now
  // (which overflows for iat near INT64_MIN).
  if (iat < now - kPopMaxSkew || iat > now + kPopMaxSkew) {
    return refused({401, "pop_invalid", "proof of possession: iat is more than " + std::to_string(kPopMaxSkew) +
                                            " s from the service's clock"});
  }
  auto epk = PublicKeyFromJwk(body["epk"]);
  if (!epk.ok()) return refused({400, "malformed", std::string("epk: ") + epk.detail()});

  // The token's appraisal holds for the attestation policy as it was when
  // the token was issued: once the admin changes (tightens) or removes that
  // policy, the token releases nothing until its holder attests again.
  const std::string policy_name = c.value("policy", "");
  auto doc = LoadPolicyDoc(policy_name);
  if (!doc.ok() && doc.code() != Errc::kNotFound) return ApiError{500, "policy", doc.detail()};
  if (!doc.ok() || c.value("policy_digest", "") != PolicyDocDigest(**doc)) {
    return refused({401, "token_policy_changed",
                    "the token was appraised under attestation policy \"" + policy_name.substr(0, 64) + "\" as it " +
                        (doc.ok() ? "was before a change" : "was before it was removed") +
                        "; attest again for a token under the current policy"});
  }

  // The key and its release policy.
  auto row = store_->GetModelKey(key_id);
  if (!row.ok()) return ApiError{500, "store", row.detail()};
  if (!*row) return refused({404, "unknown_key", "no model key \"" + key_id + "\" is registered"});
  auto rp_json = nlohmann::json::parse((*row)->release_policy, nullptr, false);
  auto rp = ParseReleasePolicy(rp_json);
  if (!rp.ok()) return refused({500, "release_policy", "stored release policy is invalid: " + rp.detail()});
  auto allowed = CheckRelease(*rp, c, token->input);
  if (!allowed.ok()) return refused({403, "release_refused", allowed.detail()});

  auto key = box_.Open("model-key:" + key_id, (*row)->sealed_key);
  if (!key.ok()) return ApiError{500, "secret", key.detail()};
  auto jwe = EncryptToJwk(key->span(), PublicJwk(*epk), {{"kid", key_id}});
  if (!jwe.ok()) return ApiError{500, "crypto", std::string("key wrapping: ") + jwe.detail()};
  // Recorded before it leaves: a release the log cannot hold is not made.
  if (auto e = Audited("key_release",
                       {{"key_id", key_id}, {"sub", sub}, {"token_jti", c.value("jti", "")},
                        {"tee", c.value("tee", "")}, {"simulated", c.value("simulated", true)},
                        {"model_digest", c.value("model_digest", "")}},
                       "no key was released")) {
    return *e;
  }
  return nlohmann::json{{"key_id", key_id}, {"jwe", *jwe}};
}

}  // namespace cllm::trust
