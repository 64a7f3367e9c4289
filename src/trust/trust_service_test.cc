// Tests for TrustService (service.h) end to end in one process: a node on the
// simulated TEE (sim attester + RaTlsIssuer) runs challenge → attest → key
// release against a service on a temporary store with an injected clock.
// Every refusal is checked by its stable error code; the audit log must
// record each decision and still verify; a restart must keep tokens valid.
#include "trust/trust_service_fixture.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <limits>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "channel/payload.h"
#include "channel/ratls.h"
#include "crypto/digest.h"
#include "trust/audit.h"
#include "trust/jose.h"

namespace cllm::trust {
namespace {

using namespace cllm::trust::test;  // NOLINT: the fixture's names

// ---------------------------------------------------------------------------
// The happy path
// ---------------------------------------------------------------------------

TEST_F(TrustServiceTest, ChallengeAttestVerifyRelease) {
  auto ch = service_->Challenge();
  ASSERT_TRUE(std::holds_alternative<json>(ch));
  EXPECT_EQ(std::get<json>(ch)["expires_at"], now_.load() + 120);
  Reply r = AttestNonce(std::get<json>(ch)["nonce"]);
  ASSERT_TRUE(std::holds_alternative<json>(r)) << Describe(r);
  const std::string token = std::get<json>(r)["token"];
  EXPECT_EQ(std::get<json>(r)["expires_at"], now_.load() + 300);

  auto claims = VerifyToken(token);
  ASSERT_TRUE(claims.ok()) << claims.detail();
  EXPECT_EQ((*claims)["tee"], "sim");
  EXPECT_EQ((*claims)["simulated"], true);
  EXPECT_EQ((*claims)["model_digest"], DigestHex(kModelA));
  EXPECT_EQ((*claims)["binary_digest"], DigestHex(kBinary));
  EXPECT_EQ((*claims)["model_name"], "model-a");
  EXPECT_EQ((*claims)["measurement"], HexEncode(Bytes(48, 0x33)));
  EXPECT_EQ((*claims)["replay"], false);
  EXPECT_EQ((*claims)["policy"], "default");
  EXPECT_EQ((*claims)["sub"], "node:" + JwkThumbprint(PublicJwk(node_key_->public_key())));
  EXPECT_EQ(PublicKeyFromJwk((*claims)["cnf"]["jwk"]).value().ToSpkiDer(), node_key_->public_key().ToSpkiDer());

  EXPECT_EQ(ReleasedKey("key-a", token), Bytes(32, 'a'));
}

TEST_F(TrustServiceTest, JwksAndHealthOverHandle) {
  net::Request r;
  r.method = "GET";
  r.target = "/.well-known/jwks.json";
  Writer w;
  service_->Handle(r, w);
  EXPECT_EQ(w.status_, 200);
  ASSERT_EQ(w.body_["keys"].size(), 1u);
  EXPECT_EQ(w.body_["keys"][0]["kid"], service_->signing_keys().active_kid());
  EXPECT_FALSE(w.body_["keys"][0].contains("d"));  // never the private key
  r.target = "/health";
  Writer h;
  service_->Handle(r, h);
  EXPECT_EQ(h.status_, 200);
}

// ---------------------------------------------------------------------------
// Nonces and token lifetime
// ---------------------------------------------------------------------------

TEST_F(TrustServiceTest, ReplayedNonceIsRefused) {
  const std::string nonce = std::get<json>(service_->Challenge())["nonce"];
  ASSERT_TRUE(std::holds_alternative<json>(AttestNonce(nonce)));
  EXPECT_EQ(ErrorCode(AttestNonce(nonce)), "nonce_unknown");
  EXPECT_EQ(ErrorCode(AttestNonce(HexEncode(Bytes(32, 0x99)))), "nonce_unknown");  // never issued
}

TEST_F(TrustServiceTest, ExpiredNonceIsRefused) {
  const std::string nonce = std::get<json>(service_->Challenge())["nonce"];
  now_ += 121;
  EXPECT_EQ(ErrorCode(AttestNonce(nonce)), "nonce_expired");
  EXPECT_EQ(ErrorCode(AttestNonce(nonce)), "nonce_unknown");  // consumed by the failed attempt
}

TEST_F(TrustServiceTest, EvidenceIsBoundToItsKeyAndItsNonce) {
  // A relay submitting the node's evidence under its own key gets nothing.
  const std::string n1 = std::get<json>(service_->Challenge())["nonce"];
  auto payload = issuer_->PayloadFor(node_key_->public_key().ToSpkiDer(), HexDecode(n1).value()).value();
  auto relay = NewP256();
  Reply r = service_->Attest({{"nonce", n1},
                              {"payload", Base64Encode(channel::EncodePayload(payload))},
                              {"public_key", PublicJwk(relay.public_key())}});
  EXPECT_EQ(ErrorCode(r), "binding_mismatch") << Describe(r);
  EXPECT_EQ(std::get<ApiError>(r).status, 403);
  // Evidence made for one nonce does not answer another.
  const std::string n2 = std::get<json>(service_->Challenge())["nonce"];
  const std::string n3 = std::get<json>(service_->Challenge())["nonce"];
  payload = issuer_->PayloadFor(node_key_->public_key().ToSpkiDer(), HexDecode(n2).value()).value();
  r = service_->Attest({{"nonce", n3},
                        {"payload", Base64Encode(channel::EncodePayload(payload))},
                        {"public_key", PublicJwk(node_key_->public_key())}});
  EXPECT_EQ(ErrorCode(r), "stale") << Describe(r);
  // Malformed requests are 400s, not crashes.
  EXPECT_EQ(ErrorCode(service_->Attest(json::array())), "malformed");
  EXPECT_EQ(ErrorCode(service_->Attest({{"nonce", n2}})), "malformed");  // no public_key
  const std::string n4 = std::get<json>(service_->Challenge())["nonce"];
  EXPECT_EQ(ErrorCode(service_->Attest(
                {{"nonce", n4}, {"payload", "!!!"}, {"public_key", PublicJwk(node_key_->public_key())}})),
            "malformed");
  EXPECT_EQ(ErrorCode(service_->Attest({{"nonce", "zz"},
                                         {"payload", Base64Encode(channel::EncodePayload(payload))},
                                         {"public_key", PublicJwk(node_key_->public_key())}})),
            "malformed");
}

TEST_F(TrustServiceTest, HandleRejectsBadRequestsWithJsonErrors) {
  auto call = [&](const std::string& method, const std::string& target, const std::string& body) {
    net::Request r;
    r.method = method;
    r.target = target;
    r.body = body;
    Writer w;
    service_->Handle(r, w);
    return w;
  };
  auto bad = call("POST", "/v1/attest", "{nope");
  EXPECT_EQ(bad.status_, 400);
  EXPECT_EQ(bad.code(), "malformed");
  EXPECT_EQ(call("POST", "/v1/attest", std::string(10000, '[') + std::string(10000, ']')).status_, 400);
  EXPECT_EQ(call("POST", "/v1/keys/../admin", "{}").status_, 404);
  EXPECT_EQ(call("POST", "/v1/keys/key-a", "{}").code(), "token_missing");
  EXPECT_EQ(call("GET", "/v1/nothing", "").status_, 404);
  auto ch = call("POST", "/v1/challenge", "");
  EXPECT_EQ(ch.status_, 200);
  EXPECT_EQ(ch.body_["nonce"].get<std::string>().size(), 64u);
}

TEST_F(TrustServiceTest, ExpiredTokenGetsNoKey) {
  const std::string token = Token();
  now_ += 300 + 30 + 1;  // past exp + leeway
  auto eph = NewP256();
  Reply r = Release("key-a", token, eph);
  EXPECT_EQ(ErrorCode(r), "token_expired") << Describe(r);
  EXPECT_EQ(std::get<ApiError>(r).status, 401);
}

// ---------------------------------------------------------------------------
// Key release refusals
// ---------------------------------------------------------------------------

TEST_F(TrustServiceTest, TokenForModelACannotGetKeyB) {
  const std::string token = Token();
  auto eph = NewP256();
  Reply r = Release("key-b", token, eph);
  EXPECT_EQ(ErrorCode(r), "release_refused") << Describe(r);
  EXPECT_EQ(std::get<ApiError>(r).status, 403);
  EXPECT_NE(std::get<ApiError>(r).message.find("model_digest"), std::string::npos) << Describe(r);
  EXPECT_EQ(ErrorCode(Release("no-such-key", token, eph)), "unknown_key");
  EXPECT_EQ(ReleasedKey("key-a", token), Bytes(32, 'a'));  // the right key still comes
}

TEST_F(TrustServiceTest, TokenSignedByAnotherKeyIsInvalid) {
  const std::string token = Token();
  const json claims = VerifyToken(token).value();
  auto foreign = NewP256();
  // Same claims and the service's kid, but a foreign signature.
  const std::string forged = SignJwt(foreign, service_->signing_keys().active_kid(), claims).value();
  auto eph = NewP256();
  Reply r = Release("key-a", forged, eph);
  EXPECT_EQ(ErrorCode(r), "token_invalid") << Describe(r);
  EXPECT_EQ(std::get<ApiError>(r).status, 401);
  // The foreign key's own kid is not in the JWKS either.
  const std::string own_kid = SignJwt(foreign, JwkThumbprint(PublicJwk(foreign.public_key())), claims).value();
  EXPECT_EQ(ErrorCode(Release("key-a", own_kid, eph)), "token_invalid");
  EXPECT_EQ(ErrorCode(service_->ReleaseKey("key-a", "", {{"pop", Pop(*node_key_, "key-a", eph)}})), "token_missing");
  EXPECT_EQ(ErrorCode(Release("key-a", "not.a.token", eph)), "token_invalid");
}

TEST_F(TrustServiceTest, SimulatedEvidenceNeedsAPolicyThatAllowsIt) {
  // Attestation policy without "sim" (the sim platform key pinned all the same).
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/hw", SimPolicy({"snp", "tdx"}).dump()).status_, 200);
  Reply r = AttestWith("hw");
  EXPECT_EQ(ErrorCode(r), "policy_not_satisfied") << Describe(r);
  EXPECT_EQ(std::get<ApiError>(r).status, 403);
  EXPECT_EQ(ErrorCode(AttestWith("no-such-policy")), "unknown_policy");

  // Release policy without allow_simulated.
  ASSERT_EQ(RegisterKey("key-hw", {{"model_digests", {DigestHex(kModelA)}}}), 201);
  auto eph = NewP256();
  Reply rel = Release("key-hw", Token(), eph);
  EXPECT_EQ(ErrorCode(rel), "release_refused") << Describe(rel);
  EXPECT_NE(std::get<ApiError>(rel).message.find("allow_simulated"), std::string::npos) << Describe(rel);
}

TEST_F(TrustServiceTest, ProofOfPossessionMustComeFromTheCnfKeyForThisKeyId) {
  const std::string token = Token();
  auto eph = NewP256();
  auto stranger = NewP256();
  Reply r = service_->ReleaseKey("key-a", token, {{"pop", Pop(stranger, "key-a", eph)}});
  EXPECT_EQ(ErrorCode(r), "pop_invalid") << Describe(r);
  r = service_->ReleaseKey("key-a", token, {{"pop", Pop(*node_key_, "key-b", eph)}});
  EXPECT_EQ(ErrorCode(r), "pop_invalid") << Describe(r);
  // A stale proof (iat far from the service clock).
  const std::string pop = Pop(*node_key_, "key-a", eph);
  now_ += 121;
  EXPECT_EQ(ErrorCode(service_->ReleaseKey("key-a", token, {{"pop", pop}})), "pop_invalid");
  now_ -= 121;
  EXPECT_EQ(ErrorCode(service_->ReleaseKey("key-a", token, json::object())), "malformed");
}

// A copy of a server's token is public (its certificate carries it):
// refusals at the broker are audited at the bounded refusal rate, and a
// proof whose key_id is not a string is refused, not a 500.
TEST_F(TrustServiceTest, RefusedReleasesAreAuditedAtABoundedRate) {
  const std::string token = Token();
  auto audit = [&] { return service_->store().ReadAudit(1, 100000).value(); };
  const size_t before = audit().size();
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(ErrorCode(service_->ReleaseKey("key-a", token, json::object())), "malformed") << i;
  }
  size_t refused = 0;
  for (const auto& e : audit()) refused += e.kind == "key_refused" ? 1 : 0;
  EXPECT_EQ(refused, 60u);
  EXPECT_EQ(audit().size(), before + 60);
  auto eph = NewP256();
  json body = {{"key_id", 1}, {"epk", PublicJwk(eph.public_key())}, {"iat", now_.load()}};
  const std::string pop = SignJws(*node_key_, {{"typ", "cllm-key-request+jws"}}, body.dump()).value();
  EXPECT_EQ(ErrorCode(service_->ReleaseKey("key-a", token, {{"pop", pop}})), "pop_invalid");
}

// Only evidence and authenticated admin requests may be large: a route
// anyone may call keeps a small body (found by review: 8 MiB of `[[],[],…]`
// to /v1/keys parsed into hundreds of MB before any token check).
TEST(TrustServiceBodyLimitTest, OnlyEvidenceAndAdminRequestsMayBeLarge) {
  auto head = [](const std::string& method, const std::string& target) {
    net::Request r;
    r.method = method;
    r.target = target;
    return r;
  };
  EXPECT_EQ(TrustService::BodyLimit(head("POST", "/v1/attest")), TrustService::kMaxEvidenceBody);
  EXPECT_EQ(TrustService::BodyLimit(head("POST", "/v1/attest?x=1")), TrustService::kMaxEvidenceBody);
  EXPECT_EQ(TrustService::BodyLimit(head("PUT", "/v1/admin/policies/p")), TrustService::kMaxEvidenceBody);
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v1/keys/m1"}, {"POST", "/v1/challenge"}, {"GET", "/v1/e2e/keys"}, {"POST", "/v1/attestx"},
           {"GET", "/v1/attest"}, {"POST", "/nope"}}) {
    EXPECT_EQ(TrustService::BodyLimit(head(method, target)), TrustService::kMaxSmallBody) << method << " " << target;
  }
}

TEST_F(TrustServiceTest, ProofOfPossessionWithAnExtremeIatIsRefusedCleanly) {
  // iat is attacker-chosen: the skew check must not overflow (UBSan aborts on
  // INT64_MIN - now) and must refuse.
  const std::string token = Token();
  auto eph = NewP256();
  for (int64_t iat : {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), int64_t{0}}) {
    json body = {{"key_id", "key-a"}, {"epk", PublicJwk(eph.public_key())}, {"iat", iat}};
    const std::string pop = SignJws(*node_key_, {{"typ", "cllm-key-request+jws"}}, body.dump()).value();
    Reply r = service_->ReleaseKey("key-a", token, {{"pop", pop}});
    EXPECT_EQ(ErrorCode(r), "pop_invalid") << iat << ": " << Describe(r);
  }
}

TEST_F(TrustServiceTest, ReplayPolicyTokensNeverGetKeys) {
  // Archived evidence verified at a fixed time: a token, but marked replay.
  json doc = SimPolicy({"sim"});
  doc["replay"] = {{"evidence_time", "2025-06-01T00:00:00Z"}};
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/replay", doc.dump()).status_, 200);
  Bytes report_data(64, 0x5E);
  auto evidence = attester_->GetEvidence(report_data);
  ASSERT_TRUE(evidence.ok()) << evidence.detail();
  Reply r = service_->Attest(
      {{"evidence", Base64Encode(*evidence)}, {"public_key", PublicJwk(node_key_->public_key())}, {"policy", "replay"}});
  ASSERT_TRUE(std::holds_alternative<json>(r)) << Describe(r);
  const std::string token = std::get<json>(r)["token"];
  auto claims = VerifyToken(token);
  ASSERT_TRUE(claims.ok()) << claims.detail();
  EXPECT_EQ((*claims)["replay"], true);
  EXPECT_FALSE(claims->contains("model_digest"));
  auto eph = NewP256();
  Reply rel = Release("key-a", token, eph);
  EXPECT_EQ(ErrorCode(rel), "release_refused") << Describe(rel);
  EXPECT_NE(std::get<ApiError>(rel).message.find("replay"), std::string::npos) << Describe(rel);
}

// Anyone holding one archived evidence file (a server's certificate carries
// its evidence) may ask a replay policy for tokens again and again: each
// minute the first 60 are audited in full (with the evidence's digest), the
// rest counted per policy in one summary entry; every ask still gets its
// token (which obtains no key). One audit row per token grew the log
// without bound.
TEST_F(TrustServiceTest, ReplayTokensAreAuditedAtABoundedRate) {
  json doc = SimPolicy({"sim"});
  doc["replay"] = {{"evidence_time", "2025-06-01T00:00:00Z"}};
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/replay", doc.dump()).status_, 200);
  auto evidence = attester_->GetEvidence(Bytes(64, 0x5E));
  ASSERT_TRUE(evidence.ok()) << evidence.detail();
  auto audit = [&] { return service_->store().ReadAudit(1, 100000).value(); };
  const size_t before = audit().size();
  auto ask = [&] {
    return service_->Attest({{"evidence", Base64Encode(*evidence)},
                             {"public_key", PublicJwk(NewP256().public_key())},
                             {"policy", "replay"}});
  };
  for (int i = 0; i < 150; ++i) ASSERT_TRUE(std::holds_alternative<json>(ask())) << i;
  auto entries = audit();
  EXPECT_EQ(entries.size(), before + 60);
  ASSERT_EQ(entries.back().kind, "attest");
  EXPECT_EQ(json::parse(entries.back().body)["evidence_sha256"], HexEncode(crypto::Sha256(*evidence)));
  now_ += 61;  // the next window: the last one's summary is written first
  ASSERT_TRUE(std::holds_alternative<json>(ask()));
  entries = audit();
  ASSERT_EQ(entries.size(), before + 62);
  const auto& summary = entries[entries.size() - 2];
  EXPECT_EQ(summary.kind, "attest_replay_summary");
  const json s = json::parse(summary.body);
  EXPECT_EQ(s["counted_only"], 90);
  EXPECT_EQ(s["codes"]["replay"], 90);
  EXPECT_EQ(entries.back().kind, "attest");
}

// ---------------------------------------------------------------------------
// Signing-key rotation
// ---------------------------------------------------------------------------

TEST_F(TrustServiceTest, RotationKeepsOldTokensVerifiableUntilTheOverlapEnds) {
  const std::string old_kid = service_->signing_keys().active_kid();
  const std::string token = Token();
  auto rotated = AdminCall("POST", "/v1/admin/signing-keys/rotate", "{}");
  ASSERT_EQ(rotated.status_, 200) << rotated.body_.dump();
  EXPECT_EQ(rotated.body_["previous"], old_kid);
  const std::string new_kid = service_->signing_keys().active_kid();
  EXPECT_NE(new_kid, old_kid);
  EXPECT_EQ(service_->Jwks()["keys"].size(), 2u);
  EXPECT_TRUE(VerifyToken(token).ok()) << VerifyToken(token).detail();
  EXPECT_EQ(ReleasedKey("key-a", token), Bytes(32, 'a'));  // the old token still gets keys
  // New tokens carry the new kid.
  auto fresh = Token();
  EXPECT_TRUE(VerifyToken(fresh).ok());

  now_ += 630;  // the last second of the overlap (600 s + 30 s leeway)
  EXPECT_EQ(service_->signing_keys().Prune(now_.load()).value(), 0);
  EXPECT_EQ(service_->Jwks()["keys"].size(), 2u);
  now_ += 1;  // past it
  EXPECT_EQ(service_->signing_keys().Prune(now_.load()).value(), 1);
  auto keys = service_->Jwks()["keys"];
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0]["kid"], new_kid);
  EXPECT_EQ(service_->store().SigningKeys().value().size(), 1u);
}

// Rotating a key that may have leaked revokes it once its overlap ends,
// without a restart or a second rotation (found by review: on SQLite the
// retired key stayed in the JWKS and kept verifying tokens).
TEST_F(TrustServiceTest, RetiredKeyPastItsOverlapIsDroppedWhileRunning) {
  ASSERT_EQ(AdminCall("POST", "/v1/admin/signing-keys/rotate", "{}").status_, 200);
  const std::string new_kid = service_->signing_keys().active_kid();
  now_ += 631;
  auto jwks = AdminCall("GET", "/.well-known/jwks.json", "");
  ASSERT_EQ(jwks.status_, 200);
  ASSERT_EQ(jwks.body_["keys"].size(), 1u) << jwks.body_.dump();
  EXPECT_EQ(jwks.body_["keys"][0]["kid"], new_kid);  // the broker verifies tokens against this same set
  EXPECT_EQ(service_->store().SigningKeys().value().size(), 1u);
}

TEST_F(TrustServiceTest, RetiredKeyPastItsOverlapIsDroppedAtRestart) {
  const std::string old_kid = service_->signing_keys().active_kid();
  ASSERT_TRUE(service_->signing_keys().Rotate(now_.load()).ok());
  now_ += 631;
  StartService();
  auto keys = service_->Jwks()["keys"];
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_NE(keys[0]["kid"], old_kid);
}

// ---------------------------------------------------------------------------
// Admin routes
// ---------------------------------------------------------------------------

TEST_F(TrustServiceTest, AdminRoutesNeedTheAdminToken) {
  net::Request r;
  r.method = "GET";
  r.target = "/v1/admin/policies";
  Writer none;
  service_->Handle(r, none);
  EXPECT_EQ(none.status_, 401);
  EXPECT_EQ(none.code(), "unauthorized");
  EXPECT_EQ(AdminCall("GET", "/v1/admin/policies", "", "cllm-admin-wrong").status_, 401);
  r.headers["authorization"] = admin_token_;  // without "Bearer "
  Writer no_scheme;
  service_->Handle(r, no_scheme);
  EXPECT_EQ(no_scheme.status_, 401);
  auto ok = AdminCall("GET", "/v1/admin/policies", "");
  EXPECT_EQ(ok.status_, 200);
  EXPECT_EQ(ok.body_["policies"], json::array({"default"}));
  // A second EnsureAdminToken does not mint another.
  EXPECT_FALSE(service_->EnsureAdminToken().value().has_value());
}

TEST_F(TrustServiceTest, AdminRejectsBadInputWithTheRightStatus) {
  auto bad = AdminCall("PUT", "/v1/admin/policies/p1", "{not json");
  EXPECT_EQ(bad.status_, 400);
  EXPECT_EQ(bad.code(), "invalid_policy");
  EXPECT_EQ(AdminCall("PUT", "/v1/admin/policies/p1", R"({"policy":{"version":1,"platforms":["sim"]},"x":1})").status_,
            400);
  EXPECT_EQ(AdminCall("PUT", "/v1/admin/policies/bad%20name", SimPolicy({"sim"}).dump()).status_, 400);
  EXPECT_EQ(AdminCall("GET", "/v1/admin/policies/nope", "").status_, 404);

  auto dup = AdminCall("POST", "/v1/admin/keys",
                       json{{"key_id", "key-a"}, {"key", HexEncode(Bytes(32, 7))},
                            {"release_policy", {{"model_digests", {DigestHex(kModelA)}}}}}
                           .dump());
  EXPECT_EQ(dup.status_, 409);
  EXPECT_EQ(dup.code(), "key_exists");
  EXPECT_EQ(ReleasedKey("key-a", Token()), Bytes(32, 'a'));  // the original key is untouched
  EXPECT_EQ(AdminCall("POST", "/v1/admin/keys", "{").status_, 400);
  EXPECT_EQ(RegisterKey("key-c", {{"model_digests", json::array()}}), 400);     // must pin a model
  EXPECT_EQ(RegisterKey("key-d", {{"model_digest", {DigestHex(kModelA)}}}), 400);  // typo'd member
  auto short_key = AdminCall("POST", "/v1/admin/keys",
                             json{{"key_id", "key-e"}, {"key", "abcd"},
                                  {"release_policy", {{"model_digests", {DigestHex(kModelA)}}}}}
                                 .dump());
  EXPECT_EQ(short_key.status_, 400);
  auto list = AdminCall("GET", "/v1/admin/keys", "");
  ASSERT_EQ(list.status_, 200);
  EXPECT_EQ(list.body_["keys"].size(), 2u);
  EXPECT_EQ(list.body_.dump().find(HexEncode(Bytes(32, 'a'))), std::string::npos);  // never the key
}

TEST_F(TrustServiceTest, ReleasePolicyUpdateTakesEffect) {
  const std::string token = Token();
  auto upd = AdminCall("PUT", "/v1/admin/keys/key-b/release-policy",
                       json{{"model_digests", {DigestHex(kModelA), DigestHex(kModelB)}}, {"allow_simulated", true}}
                           .dump());
  ASSERT_EQ(upd.status_, 200) << upd.body_.dump();
  EXPECT_EQ(ReleasedKey("key-b", token), Bytes(32, 'b'));
  EXPECT_EQ(AdminCall("PUT", "/v1/admin/keys/nope/release-policy", json{{"model_digests", {DigestHex(1)}}}.dump())
                .status_,
            404);
}

// A token speaks for its attestation policy as it was when it was issued:
// once the admin tightens (or removes) the policy, the broker releases
// nothing to it, and a fresh attestation under the current policy does get
// the key (found by review: the broker checked the policy's name only, so a
// token kept releasing keys for its lifetime after its policy was tightened).
TEST_F(TrustServiceTest, ATokenReleasesNothingOnceItsPolicyChanged) {
  const std::string token = Token();
  auto claims = VerifyToken(token);
  ASSERT_TRUE(claims.ok()) << claims.detail();
  json tightened = SimPolicy({"sim"});
  tightened["policy"]["sim"]["min_tcb"] = {{"sim.tee", 0}};  // a change that this node still satisfies
  auto put = AdminCall("PUT", "/v1/admin/policies/default", SimPolicy({"sim"}).dump());
  ASSERT_EQ(put.status_, 200);
  EXPECT_EQ(claims->at("policy_digest"), put.body_["sha256"]);  // the same policy again: the same version
  EXPECT_EQ(ReleasedKey("key-a", token), Bytes(32, 'a'));

  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/default", tightened.dump()).status_, 200);
  auto eph = NewP256();
  Reply r = Release("key-a", token, eph);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).status, 401);
  EXPECT_EQ(std::get<ApiError>(r).code, "token_policy_changed");
  EXPECT_NE(std::get<ApiError>(r).message.find("attest again"), std::string::npos);
  EXPECT_EQ(ReleasedKey("key-a", Token()), Bytes(32, 'a'));  // attested again under the current policy

  const std::string under_dev = [&] {
    EXPECT_EQ(AdminCall("PUT", "/v1/admin/policies/dev", SimPolicy({"sim"}).dump()).status_, 200);
    return Token("dev");
  }();
  ASSERT_EQ(AdminCall("DELETE", "/v1/admin/policies/dev", "").status_, 200);
  Reply gone = Release("key-a", under_dev, eph);
  ASSERT_TRUE(std::holds_alternative<ApiError>(gone));
  EXPECT_EQ(std::get<ApiError>(gone).code, "token_policy_changed");
  EXPECT_NE(std::get<ApiError>(gone).message.find("removed"), std::string::npos);
}

// A node that serves with a host-supplied chat template (or a model mapped
// from the host's disk) names it in its evidence (channel/payload.h
// ServingClaims): cllm-trust mints no token unless its attestation policy
// lists the template, the token then carries the claim, and a key is
// released only when the key's release policy accepts it too.
TEST_F(TrustServiceTest, ServingClaimsNeedTheAttestationAndTheReleasePolicy) {
  channel::ServerClaims claims = issuer_->claims();
  claims.serving.chat_template_digest.emplace().fill(0x7E);
  issuer_.emplace(attester_, claims);
  Reply refused = AttestWith();
  ASSERT_TRUE(std::holds_alternative<ApiError>(refused)) << Describe(refused);
  EXPECT_NE(std::get<ApiError>(refused).message.find("chat_template_digest"), std::string::npos) << Describe(refused);

  json policy = SimPolicy({"sim"});
  policy["policy"]["chat_template_digests"] = {HexEncode(Bytes(32, 0x7E))};
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/default", policy.dump()).status_, 200);
  const std::string token = Token();
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(VerifyToken(token).value()["chat_template_digest"], HexEncode(Bytes(32, 0x7E)));
  auto eph = NewP256();
  Reply no_key = Release("key-a", token, eph);
  ASSERT_TRUE(std::holds_alternative<ApiError>(no_key)) << Describe(no_key);
  EXPECT_NE(std::get<ApiError>(no_key).message.find("chat_template_digest"), std::string::npos) << Describe(no_key);
  auto upd = AdminCall("PUT", "/v1/admin/keys/key-a/release-policy",
                       json{{"model_digests", {DigestHex(kModelA)}},
                            {"allow_simulated", true},
                            {"chat_template_digests", {HexEncode(Bytes(32, 0x7E))}}}
                           .dump());
  ASSERT_EQ(upd.status_, 200) << upd.body_.dump();
  EXPECT_EQ(ReleasedKey("key-a", token), Bytes(32, 'a'));

  // The untrusted-disk flag: refused by the attestation policy until allowed,
  // then by the release policy until allowed.
  claims.serving.model_from_untrusted_disk = true;
  issuer_.emplace(attester_, claims);
  Reply disk = AttestWith();
  ASSERT_TRUE(std::holds_alternative<ApiError>(disk)) << Describe(disk);
  EXPECT_NE(std::get<ApiError>(disk).message.find("allow_untrusted_disk_model"), std::string::npos) << Describe(disk);
  policy["policy"]["allow_untrusted_disk_model"] = true;
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/default", policy.dump()).status_, 200);
  const std::string disk_token = Token();
  EXPECT_EQ(VerifyToken(disk_token).value()["model_from_untrusted_disk"], true);
  Reply disk_key = Release("key-a", disk_token, eph);
  ASSERT_TRUE(std::holds_alternative<ApiError>(disk_key)) << Describe(disk_key);
  EXPECT_NE(std::get<ApiError>(disk_key).message.find("model_from_untrusted_disk"), std::string::npos)
      << Describe(disk_key);

  // Unlocked memory, the same way.
  claims.serving.memory_unlocked = true;
  issuer_.emplace(attester_, claims);
  Reply unlocked = AttestWith();
  ASSERT_TRUE(std::holds_alternative<ApiError>(unlocked)) << Describe(unlocked);
  EXPECT_NE(std::get<ApiError>(unlocked).message.find("allow_unlocked_memory"), std::string::npos)
      << Describe(unlocked);
  policy["policy"]["allow_unlocked_memory"] = true;
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/default", policy.dump()).status_, 200);
  const std::string unlocked_token = Token();
  EXPECT_EQ(VerifyToken(unlocked_token).value()["memory_unlocked"], true);
  upd = AdminCall("PUT", "/v1/admin/keys/key-a/release-policy",
                  json{{"model_digests", {DigestHex(kModelA)}},
                       {"allow_simulated", true},
                       {"allow_untrusted_disk_model", true},
                       {"chat_template_digests", {HexEncode(Bytes(32, 0x7E))}}}
                      .dump());
  ASSERT_EQ(upd.status_, 200) << upd.body_.dump();
  Reply unlocked_key = Release("key-a", unlocked_token, eph);
  ASSERT_TRUE(std::holds_alternative<ApiError>(unlocked_key)) << Describe(unlocked_key);
  EXPECT_NE(std::get<ApiError>(unlocked_key).message.find("memory_unlocked"), std::string::npos)
      << Describe(unlocked_key);

  // Record padding: below the attestation policy's floor no token; the token
  // names the block; the release policy has its own floor (default 512, so
  // a fleet key's release covers clients that keep theirs).
  claims = issuer_->claims();
  claims.serving = {};
  claims.serving.stream_pad = 0;
  issuer_.emplace(attester_, claims);
  Reply unpadded = AttestWith();
  ASSERT_TRUE(std::holds_alternative<ApiError>(unpadded)) << Describe(unpadded);
  EXPECT_NE(std::get<ApiError>(unpadded).message.find("min_stream_pad"), std::string::npos) << Describe(unpadded);
  policy["policy"]["min_stream_pad"] = 0;
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/default", policy.dump()).status_, 200);
  const std::string unpadded_token = Token();
  EXPECT_EQ(VerifyToken(unpadded_token).value()["stream_pad"], 0);
  Reply unpadded_key = Release("key-a", unpadded_token, eph);
  ASSERT_TRUE(std::holds_alternative<ApiError>(unpadded_key)) << Describe(unpadded_key);
  EXPECT_NE(std::get<ApiError>(unpadded_key).message.find("min_stream_pad"), std::string::npos)
      << Describe(unpadded_key);
  upd = AdminCall("PUT", "/v1/admin/keys/key-a/release-policy",
                  json{{"model_digests", {DigestHex(kModelA)}}, {"allow_simulated", true}, {"min_stream_pad", 0}}
                      .dump());
  ASSERT_EQ(upd.status_, 200) << upd.body_.dump();
  EXPECT_EQ(ReleasedKey("key-a", unpadded_token), Bytes(32, 'a'));

  // A plain listener and metrics readers: each refused by the attestation
  // policy until allowed, then by the release policy until allowed. The
  // readers are allowed key by key (metrics_readers), the listener by a flag.
  const std::string reader = HexEncode(Bytes(32, 0x42)), stranger = HexEncode(Bytes(32, 0x43));
  for (const std::string name : {"debug_listener", "metrics_readers"}) {
    SCOPED_TRACE(name);
    const bool debug = name == "debug_listener";
    claims.serving = {};
    if (debug) {
      claims.serving.debug_listener = true;
    } else {
      claims.serving.metrics_readers.emplace_back().fill(0x42);
    }
    issuer_.emplace(attester_, claims);
    Reply no_token = AttestWith();
    ASSERT_TRUE(std::holds_alternative<ApiError>(no_token)) << Describe(no_token);
    EXPECT_NE(std::get<ApiError>(no_token).message.find(debug ? "allow_debug_listener" : "allow_metrics_keys"),
              std::string::npos)
        << Describe(no_token);
    if (debug) {
      policy["policy"]["allow_debug_listener"] = true;
    } else {
      policy["policy"]["metrics_readers"] = {stranger};
      ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/default", policy.dump()).status_, 200);
      Reply unlisted = AttestWith();
      ASSERT_TRUE(std::holds_alternative<ApiError>(unlisted)) << Describe(unlisted);
      EXPECT_NE(std::get<ApiError>(unlisted).message.find(reader), std::string::npos) << Describe(unlisted);
      policy["policy"]["metrics_readers"] = {stranger, reader};
    }
    ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/default", policy.dump()).status_, 200);
    const std::string claimed = Token();
    EXPECT_EQ(VerifyToken(claimed).value()[name], debug ? json(true) : json::array({reader}));
    upd = AdminCall("PUT", "/v1/admin/keys/key-a/release-policy",
                    json{{"model_digests", {DigestHex(kModelA)}}, {"allow_simulated", true}}.dump());
    ASSERT_EQ(upd.status_, 200) << upd.body_.dump();
    Reply refused_key = Release("key-a", claimed, eph);
    ASSERT_TRUE(std::holds_alternative<ApiError>(refused_key)) << Describe(refused_key);
    EXPECT_NE(std::get<ApiError>(refused_key).message.find(name), std::string::npos) << Describe(refused_key);
    json release = {{"model_digests", {DigestHex(kModelA)}}, {"allow_simulated", true}};
    if (!debug) {
      release["metrics_readers"] = {stranger};
      upd = AdminCall("PUT", "/v1/admin/keys/key-a/release-policy", release.dump());
      ASSERT_EQ(upd.status_, 200) << upd.body_.dump();
      refused_key = Release("key-a", claimed, eph);
      ASSERT_TRUE(std::holds_alternative<ApiError>(refused_key)) << Describe(refused_key);
      EXPECT_NE(std::get<ApiError>(refused_key).message.find(reader), std::string::npos) << Describe(refused_key);
    }
    release[debug ? "allow_debug_listener" : "metrics_readers"] = debug ? json(true) : json::array({reader});
    upd = AdminCall("PUT", "/v1/admin/keys/key-a/release-policy", release.dump());
    ASSERT_EQ(upd.status_, 200) << upd.body_.dump();
    EXPECT_EQ(ReleasedKey("key-a", claimed), Bytes(32, 'a'));
  }
}

// ---------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------

TEST_F(TrustServiceTest, AuditRecordsEveryDecisionAndVerifies) {
  const std::string token = Token();
  (void)AttestWith("no-such-policy");  // attest_refused
  ASSERT_EQ(ReleasedKey("key-a", token), Bytes(32, 'a'));  // key_release
  auto eph = NewP256();
  (void)Release("key-b", token, eph);  // key_refused
  auto page = AdminCall("GET", "/v1/admin/audit?from=1&limit=1000", "");
  ASSERT_EQ(page.status_, 200);

  auto entries = service_->store().ReadAudit(1, 1000).value();
  std::multiset<std::string> kinds;
  for (const auto& e : entries) kinds.insert(e.kind);
  EXPECT_EQ(kinds.count("admin"), 3u);  // policy_set, 2 × key_register
  EXPECT_EQ(kinds.count("attest"), 1u);
  EXPECT_EQ(kinds.count("attest_refused"), 1u);
  EXPECT_EQ(kinds.count("key_release"), 1u);
  EXPECT_EQ(kinds.count("key_refused"), 1u);
  auto head = VerifyAuditChain(entries, service_->store().audit_key());
  ASSERT_TRUE(head.ok()) << head.detail();
  EXPECT_EQ(head->seq, entries.size());
  EXPECT_EQ(page.body_["entries"].size(), entries.size());
  EXPECT_EQ(page.body_["entries"].back()["hash"], HexEncode(head->hash));
  // No secrets in the log: neither the model key nor the token.
  for (const auto& e : entries) {
    EXPECT_EQ(e.body.find(HexEncode(Bytes(32, 'a'))), std::string::npos) << e.body;
    EXPECT_EQ(e.body.find(token), std::string::npos) << e.body;
  }
  // Paging through the route.
  auto second = AdminCall("GET", "/v1/admin/audit?from=2&limit=2", "");
  ASSERT_EQ(second.body_["entries"].size(), 2u);
  EXPECT_EQ(second.body_["entries"][0]["seq"], 2);
}

// The audit log refuses its entry (the host made appends fail: a trigger, a
// revoked grant, a held lock): a key or token used to go out all the same,
// unrecorded. Now nothing is handed out that the log cannot record, and an
// admin change says it is not recorded.
TEST_F(TrustServiceTest, NothingIsHandedOutThatTheAuditLogCannotRecord) {
  const std::string token = Token();
  ASSERT_FALSE(token.empty());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "trust.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TRIGGER noaudit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'no'); END",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  auto eph = NewP256();
  Reply released = Release("key-a", token, eph);
  EXPECT_EQ(ErrorCode(released), "audit") << Describe(released);
  EXPECT_NE(Describe(released).find("no key was released"), std::string::npos) << Describe(released);
  Reply attested = AttestWith();
  EXPECT_EQ(ErrorCode(attested), "audit") << Describe(attested);
  EXPECT_NE(Describe(attested).find("no token was issued"), std::string::npos) << Describe(attested);
  Writer admin = AdminCall("PUT", "/v1/admin/policies/other", SimPolicy({"sim"}).dump());
  EXPECT_EQ(admin.status_, 500);
  EXPECT_EQ(admin.code(), "audit");
  // The log takes entries again: so does the service.
  ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER noaudit", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_FALSE(ReleasedKey("key-a", token).empty());
}

TEST_F(TrustServiceTest, ConcurrentAttestationsKeepNoncesSingleUseAndTheChainIntact) {
  // Four nodes' worth of threads share the service: every fresh nonce works
  // once, a nonce raced by all threads works exactly once, and the audit
  // chain stays gap-free.
  const std::string raced = std::get<json>(service_->Challenge())["nonce"];
  std::atomic<int> ok{0}, raced_ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      if (std::holds_alternative<json>(AttestNonce(raced))) ++raced_ok;
      for (int i = 0; i < 3; ++i) {
        if (std::holds_alternative<json>(AttestWith())) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 12);
  EXPECT_EQ(raced_ok.load(), 1);
  auto entries = service_->store().ReadAudit(1, 1000).value();
  auto head = VerifyAuditChain(entries);
  ASSERT_TRUE(head.ok()) << head.detail();
  EXPECT_EQ(head->seq, 3u + 13u + 3u);  // setup admin entries, 13 attests, 3 refusals
}

// ---------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------

TEST_F(TrustServiceTest, RestartKeepsTokensKeysAndPolicies) {
  const std::string token = Token();
  const std::string kid = service_->signing_keys().active_kid();
  const std::string nonce = std::get<json>(service_->Challenge())["nonce"];
  const size_t audit_before = service_->store().ReadAudit(1, 1000).value().size();
  now_ += 5;
  StartService();
  EXPECT_EQ(service_->signing_keys().active_kid(), kid);
  auto claims = VerifyToken(token);  // against the new instance's JWKS
  EXPECT_TRUE(claims.ok()) << claims.detail();
  EXPECT_EQ(ReleasedKey("key-a", token), Bytes(32, 'a'));
  EXPECT_TRUE(std::holds_alternative<json>(AttestNonce(nonce)));  // the outstanding nonce survived
  EXPECT_FALSE(service_->EnsureAdminToken().value().has_value());
  EXPECT_EQ(AdminCall("GET", "/v1/admin/policies", "").status_, 200);  // the old admin token still works
  auto entries = service_->store().ReadAudit(1, 1000).value();
  EXPECT_GT(entries.size(), audit_before);
  EXPECT_TRUE(VerifyAuditChain(entries).ok());
}

TEST_F(TrustServiceTest, WrongMasterKeyRefusesToStart) {
  service_.reset();
  // Every row is authenticated under the master key: the store itself refuses.
  auto store = Store::Open(dir_ / "trust.db", SecretBox::FromKey(Bytes(32, 0x4C)).value());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.code(), Errc::kCrypto);
}

}  // namespace
}  // namespace cllm::trust
