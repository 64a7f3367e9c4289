// attest.cc — POST /v1/challenge and POST /v1/attest (service.h).
#include <mutex>
#include <shared_mutex>

#include "attestation/policy.h"
#include "attestation/verify.h"
#include "base/encoding.h"
#include "base/json_guard.h"
#include "channel/payload.h"
#include "channel/ratls.h"
#include "crypto/digest.h"
#include "crypto/random.h"
#include "trust/jose.h"
#include "trust/policy_doc.h"
#include "trust/release_policy.h"
#include "trust/service.h"
#include "trust/token_claims.h"

namespace cllm::trust {
namespace {

using Reply = std::variant<nlohmann::json, ApiError>;

ApiError Bad(const std::string& code, const std::string& message) { return {400, code, message}; }

std::optional<std::string> StringField(const nlohmann::json& j, const char* name, size_t max) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > max) return std::nullopt;
  return it->get<std::string>();
}

const char* ChannelCode(channel::ChannelErrc c) {
  switch (c) {
    case channel::ChannelErrc::kPolicyNotSatisfied:
      return "policy_not_satisfied";
    case channel::ChannelErrc::kPlatformChainInvalid:
      return "evidence_invalid";
    case channel::ChannelErrc::kCertEvidenceMismatch:
      return "binding_mismatch";
    case channel::ChannelErrc::kStale:
      return "stale";
    default:
      return "malformed";
  }
}

}  // namespace

Reply TrustService::Challenge() {
  const int64_t now = Now();
  // Expired nonces are purged at most once a minute, off the hot path's lock.
  int64_t last = last_purge_.load();
  if (now - last >= 60 && last_purge_.compare_exchange_strong(last, now)) (void)store_->PurgeNonces(now);
  // Anyone may ask for nonces: cap the rows they occupy. At the cap, expired
  // ones are purged at once; if all are live, the caller waits for some to
  // expire (nonce_lifetime) — a flood costs availability, never unbounded disk.
  if (store_->CountNonces() >= config_.max_outstanding_nonces) {
    auto purged = store_->PurgeNonces(now);
    if (!purged.ok() || store_->CountNonces() >= config_.max_outstanding_nonces) {
      return ApiError{429, "too_many_challenges",
                      std::to_string(config_.max_outstanding_nonces) + " unused nonces are outstanding; retry in " +
                          std::to_string(config_.nonce_lifetime.count()) + " s"};
    }
  }
  Bytes nonce = crypto::RandomBytes(32);
  const int64_t expires = now + config_.nonce_lifetime.count();
  auto st = store_->AddNonce(nonce, expires);
  if (!st.ok()) return ApiError{500, "store", st.detail()};
  return nlohmann::json{{"nonce", HexEncode(nonce)}, {"expires_at", expires},
                        {"expires_in", config_.nonce_lifetime.count()}};
}

Reply TrustService::Attest(const nlohmann::json& req) {
  if (!req.is_object()) return Bad("malformed", "the request body must be a JSON object");
  const std::string policy_name = StringField(req, "policy", 128).value_or("default");
  auto jwk_it = req.find("public_key");
  if (jwk_it == req.end()) return Bad("malformed", "\"public_key\" (the node's P-256 public key as a JWK) is required");
  auto node_key = PublicKeyFromJwk(*jwk_it);
  if (!node_key.ok()) return Bad("malformed", std::string("public_key: ") + node_key.detail());
  const nlohmann::json node_jwk = PublicJwk(*node_key);
  const std::string node_id = JwkThumbprint(node_jwk);

  auto refused = [&](ApiError e) {
    AuditRefusal("attest_refused", {{"sub", "node:" + node_id}, {"policy", policy_name}, {"code", e.code},
                             {"reason", e.message.substr(0, 512)}});
    return e;
  };

  auto doc = LoadPolicyDoc(policy_name);
  if (!doc.ok()) {
    return refused(doc.code() == Errc::kNotFound ? ApiError{404, "unknown_policy", doc.detail()}
                                                 : ApiError{500, "policy", doc.detail()});
  }
  const PolicyDoc& pd = **doc;
  const int64_t now = Now();

  std::optional<attestation::Claims> claims;
  std::array<uint8_t, 32> binary_digest{}, model_digest{};
  std::string model_name;
  channel::ServingClaims serving;
  std::optional<Bytes> freshness;
  bool replay = false;
  std::string evidence_sha256;  // replay mode: of the evidence, for the audit

  if (!pd.replay_evidence_time) {
    // Fresh mode: the evidence binds the node key, the digests and our nonce.
    auto nonce_hex = StringField(req, "nonce", 128);
    auto payload_b64 = StringField(req, "payload", 4 << 20);
    if (!nonce_hex || !payload_b64) {
      return refused(Bad("malformed", "\"nonce\" (from POST /v1/challenge) and \"payload\" (base64 of the "
                                      "attestation payload, docs/protocol.md) are required"));
    }
    auto nonce = HexDecode(*nonce_hex);
    if (!nonce.ok() || nonce->size() != 32) return refused(Bad("malformed", "nonce: expected 64 hex characters"));
    auto state = store_->ConsumeNonce(*nonce, now);
    if (!state.ok()) return ApiError{500, "store", state.detail()};
    if (*state == NonceState::kUnknown) {
      return refused({401, "nonce_unknown", "the nonce was never issued or was already used (nonces are single-use)"});
    }
    if (*state == NonceState::kExpired) {
      return refused({401, "nonce_expired", "the nonce expired; ask POST /v1/challenge for a new one"});
    }
    auto raw = Base64Decode(*payload_b64);
    if (!raw.ok()) return refused(Bad("malformed", "payload: not base64"));
    auto payload = channel::DecodePayload(*raw);
    if (!payload.ok()) return refused(Bad("malformed", std::string("payload: ") + payload.detail()));
    channel::VerifyOptions vo;
    vo.at = config_.clock();
    vo.expected_freshness = *nonce;
    vo.peer = pd.client_role ? channel::PeerRole::kClient : channel::PeerRole::kServer;
    auto verified = channel::VerifyPayloadForKey(*payload, node_key->ToSpkiDer(), pd.policy, vo);
    if (!verified.ok()) {
      return refused({403, ChannelCode(verified.code()), verified.detail()});
    }
    claims = verified->claims;
    binary_digest = payload->binary_digest;
    model_digest = payload->model_digest;
    model_name = payload->model_name;
    serving = payload->serving;
    freshness = payload->freshness;
  } else {
    // Replay mode (benchmarks, archived evidence): verified at the policy's
    // fixed time, nothing bound; such tokens never obtain keys.
    auto evidence_b64 = StringField(req, "evidence", 4 << 20);
    if (!evidence_b64) return refused(Bad("malformed", "\"evidence\" (base64) is required by a replay policy"));
    auto evidence = Base64Decode(*evidence_b64);
    if (!evidence.ok()) return refused(Bad("malformed", "evidence: not base64"));
    const Bytes evidence_bytes = std::move(evidence).value();
    evidence_sha256 = HexEncode(crypto::Sha256(evidence_bytes));
    attestation::EvidenceInput in;
    in.evidence = evidence_bytes;
    // "endorsements": certificate files (VCEK, chains), base64, one or a list.
    if (auto it = req.find("endorsements"); it != req.end()) {
      const nlohmann::json list = it->is_array() ? *it : nlohmann::json::array({*it});
      if (list.size() > 16) return refused(Bad("malformed", "endorsements: at most 16 files"));
      for (const auto& e : list) {
        if (!e.is_string() || e.get_ref<const std::string&>().size() > (4u << 20)) {
          return refused(Bad("malformed", "endorsements: base64 strings expected"));
        }
        auto certs = Base64Decode(e.get<std::string>());
        if (!certs.ok()) return refused(Bad("malformed", "endorsements: not base64"));
        in.cert_files.push_back(std::move(certs).value());
      }
    }
    if (auto c = StringField(req, "collateral", 4 << 20)) {
      auto col = Base64Decode(*c);
      if (!col.ok()) return refused(Bad("malformed", "collateral: not base64"));
      in.collateral = std::move(col).value();
    }
    in.at = *pd.replay_evidence_time;
    in.sim_platform_keys = pd.policy.sim_platform_keys;
    auto platform = attestation::SniffPlatform(in.evidence);
    if (!platform) return refused(Bad("malformed", "evidence: not a format this service knows"));
    auto verified = attestation::VerifyEvidence(*platform, in);
    if (!verified.ok()) {
      return refused({403, "evidence_invalid", std::string(attestation::AttestErrcName(verified.code())) + ": " +
                                                   verified.detail()});
    }
    auto appraised = attestation::Appraise(*verified, pd.policy);
    if (!appraised.ok()) {
      return refused({403, "policy_not_satisfied", std::string(attestation::AttestErrcName(appraised.code())) +
                                                       ": " + appraised.detail()});
    }
    claims = std::move(appraised).value();
    replay = true;
  }

  const int64_t exp = now + config_.token_lifetime.count();
  // The token carries everything appraisal produced (token_claims.h), so
  // relying parties re-appraise it under their own policy with the same code.
  nlohmann::json c = AppraisedClaimsJson(*claims);
  c.update({{"iss", config_.issuer},
            {"sub", "node:" + node_id},
            {"iat", now},
            {"nbf", now},
            {"exp", exp},
            {"jti", HexEncode(crypto::RandomBytes(16))},
            {"policy", policy_name},
            {"policy_digest", PolicyDocDigest(pd)},
            {"replay", replay},
            {"cnf", {{"jwk", node_jwk}}}});
  if (pd.client_role) c[kRoleClaim] = kClientRole;  // release_policy.h: "Audience"
  if (!replay) {
    c["binary_digest"] = HexEncode(binary_digest);
    c["model_digest"] = HexEncode(model_digest);
    c["model_name"] = model_name;
    // Serving claims, only when not the default (channel/payload.h): the
    // evidence bound them, the policy above accepted them.
    if (serving.chat_template_digest) c["chat_template_digest"] = HexEncode(*serving.chat_template_digest);
    if (serving.model_from_untrusted_disk) c["model_from_untrusted_disk"] = true;
    if (serving.memory_unlocked) c["memory_unlocked"] = true;
    if (serving.stream_pad != channel::kDefaultStreamPad) c["stream_pad"] = serving.stream_pad;
    if (serving.stream_coalesce_ms != 0) c["stream_coalesce_ms"] = serving.stream_coalesce_ms;
    if (serving.debug_listener) c["debug_listener"] = true;
    if (!serving.metrics_readers.empty()) c["metrics_readers"] = MetricsReadersClaim(serving);
    // Our nonce: with it a relying party recomputes report_data from the
    // cnf key and the digests (channel/payload.h) and checks the binding.
    c["freshness"] = HexEncode(*freshness);
  }
  auto token = keys_->SignJwt(c);
  if (!token.ok()) return ApiError{500, "signing", token.detail()};
  nlohmann::json audit = c;
  audit.erase("cnf");
  audit.erase("iss");
  audit.erase("fields");  // the audit keeps the decision, not every platform field
  // Recorded before it leaves: a token the log cannot hold is not issued.
  if (replay) {
    audit["evidence_sha256"] = evidence_sha256;
    if (auto e = AuditReplayToken(policy_name, audit)) return *e;
  } else if (auto e = Audited("attest", audit, "no token was issued")) {
    return *e;
  }
  return nlohmann::json{{"token", *token}, {"expires_at", exp}, {"claims", c}};
}

}  // namespace cllm::trust
