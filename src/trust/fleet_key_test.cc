// Tests for the fleet's HPKE keys in cllm-trust (fleet_keys.cc, e2e_keys.h):
// admin create / list / rotate / retire with their audit entries; the
// published key config and its statement verify and bind each other; any
// tampered config, statement or list is refused with a specific code; the
// broker releases the private half only to a node whose token satisfies the
// key's release policy (403 otherwise, as for model keys), and what it
// releases matches the published config. Both suites.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/encoding.h"
#include "crypto/hpke.h"
#include "trust/e2e_keys.h"
#include "trust/trust_client.h"
#include "trust/trust_service_fixture.h"

namespace cllm::trust {
namespace {

using namespace cllm::trust::test;  // NOLINT: the fixture's names
namespace hpke = crypto::hpke;

class FleetKeyTest : public TrustServiceTest, public ::testing::WithParamInterface<const char*> {
 protected:
  std::string suite() const { return GetParam(); }
  hpke::Suite hsuite() const { return hpke::ParseSuite(GetParam()).value(); }
  json PolicyFor(uint8_t model) const { return {{"model_digests", {DigestHex(model)}}, {"allow_simulated", true}}; }
  // The n-th default key id of this suite: x25519 keys get even ids, gmt
  // keys odd ones (fleet_keys.cc).
  int Id(int n) const { return 2 * n + (suite() == "gmt" ? 1 : 0); }
  std::string KeyName(int n) const { return "fleet-" + std::to_string(Id(n)) + "-" + suite(); }

  Writer Create(const json& body) { return AdminCall("POST", "/v1/admin/fleet-keys", body.dump()); }
  Writer Rotate(const json& body) { return AdminCall("POST", "/v1/admin/fleet-keys/rotate", body.dump()); }
  Writer Retire(int id) { return AdminCall("DELETE", "/v1/admin/fleet-keys/" + std::to_string(id), ""); }
  json List() { return AdminCall("GET", "/v1/admin/fleet-keys", "").body_["fleet_keys"]; }
  E2eKeyCheck Check() const { return {TimePoint(std::chrono::seconds(now_.load())), std::chrono::seconds(30)}; }
  json Published() {
    Reply r = service_->E2eKeys();
    EXPECT_TRUE(std::holds_alternative<json>(r)) << Describe(r);
    return std::holds_alternative<json>(r) ? std::get<json>(r) : json();
  }
  std::vector<std::string> AuditActions() {
    std::vector<std::string> out;
    const auto entries = service_->store().ReadAudit(1, 10000).value();
    for (const auto& e : entries) {
      if (e.kind != "admin") continue;
      out.push_back(json::parse(e.body).value("action", ""));
    }
    return out;
  }
};

INSTANTIATE_TEST_SUITE_P(Suites, FleetKeyTest, ::testing::Values("x25519", "gmt"),
                         [](const auto& param_info) { return std::string(param_info.param); });

// ---------------------------------------------------------------------------
// Admin: create, list, rotate, retire
// ---------------------------------------------------------------------------

TEST_P(FleetKeyTest, CreateListRotateRetire) {
  Writer c = Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}});
  ASSERT_EQ(c.status_, 201) << c.body_.dump();
  EXPECT_EQ(c.body_["key_id"], Id(0));  // the first key of this suite
  EXPECT_EQ(c.body_["suite"], suite());
  EXPECT_EQ(c.body_["model_key_id"], KeyName(0));
  ASSERT_EQ(List().size(), 1u);

  now_ += 5;
  Writer r = Rotate(json::object());  // the only published key
  ASSERT_EQ(r.status_, 201) << r.body_.dump();
  EXPECT_EQ(r.body_["key_id"], Id(1));
  EXPECT_EQ(r.body_["suite"], suite());
  EXPECT_EQ(r.body_["release_policy"], c.body_["release_policy"]);
  EXPECT_NE(r.body_["config"], c.body_["config"]);  // a new key pair
  // The old key stays published (and releasable) until it is retired.
  ASSERT_EQ(List().size(), 2u);
  ASSERT_EQ(Published()["keys"].size(), 2u);
  EXPECT_EQ(Rotate(json::object()).code(), "malformed");  // two published: name one

  Writer gone = Retire(Id(0));
  ASSERT_EQ(gone.status_, 200) << gone.body_.dump();
  EXPECT_EQ(gone.body_["model_key_id"], KeyName(0));
  ASSERT_EQ(List().size(), 1u);
  EXPECT_EQ(List()[0]["key_id"], Id(1));
  // At once on this replica, not after the cache expires.
  ASSERT_EQ(Published()["keys"].size(), 1u);
  EXPECT_EQ(Published()["keys"][0]["key_id"], Id(1));
  EXPECT_EQ(Retire(Id(0)).code(), "unknown_key");
  // Nothing can release a retired key: its sealed private part is gone.
  const std::string token = Token();
  auto eph = NewP256();
  EXPECT_EQ(ErrorCode(Release(KeyName(0), token, eph)), "unknown_key");

  // The next default id continues after the last one used (round-robin).
  Writer next = Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}});
  ASSERT_EQ(next.status_, 201);
  EXPECT_EQ(next.body_["key_id"], Id(2));

  EXPECT_EQ(AuditActions(), (std::vector<std::string>{"policy_set", "key_register", "key_register",
                                                      "fleet_key_create", "fleet_key_rotate", "fleet_key_retire",
                                                      "fleet_key_create"}));
}

TEST_P(FleetKeyTest, AdminRefusesBadRequests) {
  ASSERT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}, {"key_id", Id(3)}}).status_, 201);
  // key_id names the config, whatever the suite: one key per id, and each
  // suite names ids in its own half only (the other suite's are refused,
  // free or not), so no two keys ever share one.
  EXPECT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}, {"key_id", Id(3)}}).code(),
            "key_exists");
  const char* other = suite() == "gmt" ? "x25519" : "gmt";
  EXPECT_EQ(Create({{"suite", other}, {"release_policy", PolicyFor(kModelA)}, {"key_id", Id(3)}}).code(), "malformed");
  Writer wrong_half = Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}, {"key_id", Id(4) + 1}});
  EXPECT_EQ(wrong_half.code(), "malformed");
  EXPECT_NE(wrong_half.body_.dump().find(suite() == "gmt" ? "odd ids" : "even ids"), std::string::npos)
      << wrong_half.body_.dump();
  EXPECT_EQ(Rotate({{"key_id", Id(3)}, {"new_key_id", Id(5) + 1}}).code(), "malformed");
  EXPECT_EQ(Rotate({{"key_id", Id(3)}, {"new_key_id", Id(5)}}).status_, 201);
  EXPECT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}, {"key_id", 256}}).code(), "malformed");
  EXPECT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}, {"key_id", "1"}}).code(), "malformed");
  EXPECT_EQ(Create({{"suite", "p256"}, {"release_policy", PolicyFor(kModelA)}}).code(), "malformed");
  EXPECT_EQ(Create({{"release_policy", PolicyFor(kModelA)}}).code(), "malformed");
  EXPECT_EQ(Create({{"suite", suite()}, {"release_policy", {{"model_digests", json::array()}}}}).code(),
            "invalid_release_policy");
  EXPECT_EQ(Create({{"suite", suite()}}).code(), "invalid_release_policy");
  EXPECT_EQ(AdminCall("POST", "/v1/admin/fleet-keys", "{not json").code(), "malformed");
  EXPECT_EQ(Rotate({{"key_id", 9}}).code(), "unknown_key");
  EXPECT_EQ(AdminCall("DELETE", "/v1/admin/fleet-keys/x", "").code(), "malformed");
  EXPECT_EQ(AdminCall("DELETE", "/v1/admin/fleet-keys/1000", "").code(), "malformed");
  // The fleet- namespace is not for model keys: a 32-byte "model key" there
  // would be published as a fleet key.
  EXPECT_EQ(RegisterKey("fleet-3-" + suite(), PolicyFor(kModelA)), 400);
  // Admin routes need the admin token.
  EXPECT_EQ(AdminCall("GET", "/v1/admin/fleet-keys", "", "cllm-admin-wrong").status_, 401);
}

// Two cllm-trust replicas on one store create keys of the two suites at the
// same time. Each picks an id from a list that may not show the other's new
// key yet; before suites had their own halves of the ids both could pick the
// same one, and the published list then named that id twice — refused by
// every client and replica. Now every create succeeds and the list verifies.
// One run covers both suites (this replica creates x25519 keys, the other gmt).
class FleetKeyRaceTest : public FleetKeyTest {
 protected:
  // CreateOn asks one replica (`svc`) for a key of `suite` with a default id.
  Writer CreateOn(TrustService& svc, const char* suite) {
    net::Request r;
    r.method = "POST";
    r.target = "/v1/admin/fleet-keys";
    r.body = json{{"suite", suite}, {"release_policy", PolicyFor(kModelA)}}.dump();
    r.headers["authorization"] = "Bearer " + admin_token_;
    Writer w;
    svc.Handle(r, w);
    return w;
  }
};
INSTANTIATE_TEST_SUITE_P(BothSuites, FleetKeyRaceTest, ::testing::Values("x25519"),
                         [](const auto& param_info) { return std::string(param_info.param); });

TEST_P(FleetKeyRaceTest, ReplicasCreatingKeysOfBothSuitesAtOnceNeverShareAnId) {
  std::unique_ptr<TrustService> other = OpenService();  // another replica on the same store
  ASSERT_NE(other, nullptr);
  auto create = [this](TrustService& svc, const char* s) { return CreateOn(svc, s); };
  constexpr int kEach = 40;
  std::vector<Writer> made_here(kEach), made_there(kEach);
  std::thread there([&] {
    for (int i = 0; i < kEach; ++i) made_there[i] = create(*other, "gmt");
  });
  for (int i = 0; i < kEach; ++i) made_here[i] = create(*service_, "x25519");
  there.join();
  for (int i = 0; i < kEach; ++i) {
    ASSERT_EQ(made_here[i].status_, 201) << made_here[i].body_.dump();
    ASSERT_EQ(made_there[i].status_, 201) << made_there[i].body_.dump();
    EXPECT_EQ(made_here[i].body_["key_id"].get<int>() % 2, 0);
    EXPECT_EQ(made_there[i].body_["key_id"].get<int>() % 2, 1);
  }
  ASSERT_EQ(List().size(), 2u * kEach);
  auto published = VerifyE2eKeys(Published(), service_->Jwks(), Check());
  ASSERT_TRUE(published.ok()) << published.detail();  // no id listed twice
  EXPECT_EQ(published->size(), 2u * kEach);
  // Each half holds 128 ids; the 129th key of a suite is refused, naming it.
  for (int i = kEach; i < 128; ++i) ASSERT_EQ(create(*service_, "x25519").status_, 201) << i;
  Writer full = create(*service_, "x25519");
  EXPECT_EQ(full.code(), "no_free_key_id");
  EXPECT_NE(full.body_.dump().find("no free even fleet key id"), std::string::npos) << full.body_.dump();
  EXPECT_EQ(create(*service_, "gmt").status_, 201);  // the other half still has room
}

// Two replicas creating keys of one suite at once may pick the same default
// id; the one whose insert loses picks again instead of failing the admin.
TEST_P(FleetKeyRaceTest, ReplicasCreatingKeysOfOneSuiteAtOncePickAgainOnAClash) {
  std::unique_ptr<TrustService> other = OpenService();
  ASSERT_NE(other, nullptr);
  auto create = [this](TrustService& svc) { return CreateOn(svc, "x25519"); };
  constexpr int kEach = 30;
  std::vector<Writer> made_here(kEach), made_there(kEach);
  std::thread there([&] {
    for (int i = 0; i < kEach; ++i) made_there[i] = create(*other);
  });
  for (int i = 0; i < kEach; ++i) made_here[i] = create(*service_);
  there.join();
  std::set<int> ids;
  for (int i = 0; i < kEach; ++i) {
    ASSERT_EQ(made_here[i].status_, 201) << made_here[i].body_.dump();
    ASSERT_EQ(made_there[i].status_, 201) << made_there[i].body_.dump();
    ids.insert(made_here[i].body_["key_id"].get<int>());
    ids.insert(made_there[i].body_["key_id"].get<int>());
  }
  EXPECT_EQ(ids.size(), 2u * kEach);
  auto published = VerifyE2eKeys(Published(), service_->Jwks(), Check());
  ASSERT_TRUE(published.ok()) << published.detail();
  EXPECT_EQ(published->size(), 2u * kEach);
}

TEST_P(FleetKeyTest, RotatedKeyIsPreferredOnlyOnceReplicasHadTimeToFetchIt) {
  ASSERT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}}).status_, 201);
  now_ += kFleetKeyActivationSeconds + 1;
  ASSERT_EQ(Rotate({{"key_id", Id(0)}}).status_, 201);
  EXPECT_EQ(Published()["keys"][0]["key_id"], Id(0));  // the new key is not first yet
  now_ += kFleetKeyActivationSeconds;
  EXPECT_EQ(Published()["keys"][0]["key_id"], Id(1));
  EXPECT_EQ(Published()["keys"][1]["key_id"], Id(0));
}

// ---------------------------------------------------------------------------
// GET /v1/e2e/keys and the statement
// ---------------------------------------------------------------------------

TEST_P(FleetKeyTest, StatementVerifiesAndBindsTheConfig) {
  Writer c = Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}});
  ASSERT_EQ(c.status_, 201);

  net::Request req;
  req.method = "GET";
  req.target = "/v1/e2e/keys";  // no Authorization: public
  Writer w;
  service_->Handle(req, w);
  ASSERT_EQ(w.status_, 200);
  bool cache_control = false;
  for (const auto& [name, value] : w.headers_) cache_control |= name == "Cache-Control" && value == "public, max-age=60";
  EXPECT_TRUE(cache_control);

  auto keys = VerifyE2eKeys(w.body_, service_->Jwks(), Check());
  ASSERT_TRUE(keys.ok()) << keys.detail();
  ASSERT_EQ(keys->size(), 1u);
  const E2eKey& k = (*keys)[0];
  EXPECT_EQ(k.config.key_id, Id(0));
  EXPECT_TRUE(SameSuite(k.config.suite, hsuite()));
  EXPECT_EQ(k.config.public_key.size(), hpke::SuiteSizes(hsuite()).value().n_pk);
  EXPECT_EQ(Base64UrlEncode(k.config_bytes), c.body_["config"]);
  EXPECT_EQ(k.config_digest, c.body_["key_config_digest"]);
  EXPECT_EQ(k.release_policy, c.body_["release_policy"]);
  EXPECT_EQ(k.release_policy["model_digests"][0], DigestHex(kModelA));
  EXPECT_EQ(k.iat, now_.load());
  EXPECT_EQ(k.exp, now_.load() + 300);  // the token lifetime
  EXPECT_EQ(k.kid, service_->signing_keys().active_kid());

  // The config bytes are RFC 9458 §3 with one suite.
  const Bytes& b = k.config_bytes;
  ASSERT_EQ(b.size(), 1 + 2 + k.config.public_key.size() + 2 + 4);
  EXPECT_EQ(b[0], Id(0));  // key_id
  EXPECT_EQ((b[1] << 8) | b[2], static_cast<int>(hsuite().kem));
  EXPECT_EQ((b[b.size() - 6] << 8) | b[b.size() - 5], 4);
  EXPECT_EQ((b[b.size() - 4] << 8) | b[b.size() - 3], static_cast<int>(hsuite().kdf));
  EXPECT_EQ((b[b.size() - 2] << 8) | b[b.size() - 1], static_cast<int>(hsuite().aead));

  // A statement is not a token: the token checks refuse it.
  JwtCheck jc;
  jc.now = TimePoint(std::chrono::seconds(now_.load()));
  EXPECT_EQ(VerifyJwt(w.body_["keys"][0]["statement"].get<std::string>(), service_->Jwks(), jc).code(),
            JoseErrc::kClaimMismatch);
}

TEST_P(FleetKeyTest, StatementSurvivesASigningKeyRotationUntilItExpires) {
  ASSERT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}}).status_, 201);
  json before = Published();
  ASSERT_EQ(AdminCall("POST", "/v1/admin/signing-keys/rotate", "{}").status_, 200);
  EXPECT_TRUE(VerifyE2eKeys(before, service_->Jwks(), Check()).ok());  // old kid still in the JWKS
  json after = Published();  // re-signed by the new key at once
  EXPECT_NE(after["keys"][0]["statement"], before["keys"][0]["statement"]);
  EXPECT_EQ(VerifyE2eKeys(after, service_->Jwks(), Check()).value()[0].kid, service_->signing_keys().active_kid());
  now_ += 300 + 31;
  EXPECT_EQ(VerifyE2eKeys(before, service_->Jwks(), Check()).code(), E2eKeyErrc::kExpired);
}

// A long-lived client's JWKS (RenewingJwks, `cllm proxy --e2e`): a list
// signed by a key it lacks makes it fetch the JWKS again (once per interval),
// and a list whose statement is bad under a fresh JWKS too is still refused.
TEST_P(FleetKeyTest, ALongLivedClientFetchesTheJwksAgainAfterASigningKeyRotation) {
  ASSERT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}}).status_, 201);
  int fetches = 0;
  bool reachable = true;
  RenewingJwks jwks(service_->Jwks(), [&]() -> Result<json> {
    ++fetches;
    if (!reachable) return MakeError(Errc::kIo, "cllm-trust unreachable");
    return service_->Jwks();
  }, std::chrono::seconds(0));
  ASSERT_TRUE(jwks.Verify(Published(), Check()).ok());
  EXPECT_EQ(fetches, 0) << "a list that verifies costs no fetch";

  ASSERT_EQ(AdminCall("POST", "/v1/admin/signing-keys/rotate", "{}").status_, 200);
  now_ += 631;  // the old signing key is pruned; the list is signed by a kid the client has never seen
  ASSERT_TRUE(service_->signing_keys().Prune(now_.load()).ok());
  const json after = Published();
  EXPECT_EQ(VerifyE2eKeys(after, jwks.jwks(), Check()).code(), E2eKeyErrc::kBadStatement);
  reachable = false;  // cllm-trust unreachable: refused, the JWKS kept
  EXPECT_EQ(jwks.Verify(after, Check()).code(), E2eKeyErrc::kBadStatement);
  EXPECT_EQ(jwks.renewals(), 0u);
  reachable = true;
  auto keys = jwks.Verify(after, Check());
  ASSERT_TRUE(keys.ok()) << keys.detail();
  EXPECT_EQ((*keys)[0].kid, service_->signing_keys().active_kid());
  EXPECT_EQ(jwks.renewals(), 1u);
  EXPECT_EQ(fetches, 2);

  // A statement signed by no key of cllm-trust's stays refused; the JWKS it
  // fetched changed nothing, so it counts no renewal.
  json forged = after;
  std::string st = forged["keys"][0]["statement"].get<std::string>();
  st[st.size() - 5] = st[st.size() - 5] == 'A' ? 'B' : 'A';
  forged["keys"][0]["statement"] = st;
  EXPECT_EQ(jwks.Verify(forged, Check()).code(), E2eKeyErrc::kBadStatement);
  EXPECT_EQ(fetches, 3);
  EXPECT_EQ(jwks.renewals(), 1u);

  // At most one fetch per interval.
  RenewingJwks slow(json{{"keys", json::array()}}, [&]() -> Result<json> {
    ++fetches;
    return service_->Jwks();
  }, std::chrono::seconds(3600));
  EXPECT_TRUE(slow.Verify(after, Check()).ok());
  EXPECT_EQ(slow.Verify(forged, Check()).code(), E2eKeyErrc::kBadStatement);
  EXPECT_EQ(fetches, 4);
}

TEST_P(FleetKeyTest, TamperedConfigOrStatementIsRefused) {
  ASSERT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}}).status_, 201);
  ASSERT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelB)}}).status_, 201);
  const json good = Published();
  const json jwks = service_->Jwks();
  ASSERT_TRUE(VerifyE2eKeys(good, jwks, Check()).ok());
  auto code = [&](const json& reply) { return VerifyE2eKeys(reply, jwks, Check()).code(); };

  {  // A public key replaced by the attacker's: the digest no longer matches.
    json t = good;
    Bytes cfg = Base64UrlDecode(t["keys"][0]["config"].get<std::string>()).value();
    cfg[5] ^= 0x01;
    t["keys"][0]["config"] = Base64UrlEncode(cfg);
    EXPECT_EQ(code(t), E2eKeyErrc::kMismatch);
  }
  {  // Key 1's config (model B's policy) shown with key 0's statement (model A's).
    json t = good;
    t["keys"][0]["config"] = good["keys"][1]["config"];
    EXPECT_EQ(code(t), E2eKeyErrc::kMismatch);
  }
  {  // The entry's key_id or suite rewritten.
    json t = good;
    t["keys"][0]["key_id"] = Id(0) + 1;
    EXPECT_EQ(code(t), E2eKeyErrc::kMismatch);
    t = good;
    t["keys"][0]["suite"] = suite() == "gmt" ? "x25519" : "gmt";
    EXPECT_EQ(code(t), E2eKeyErrc::kMismatch);
  }
  {  // The statement's payload edited (a weaker release policy): the signature breaks.
    json t = good;
    std::string s = t["keys"][0]["statement"];
    const size_t a = s.find('.'), b = s.find('.', a + 1);
    auto payload = json::parse(Base64UrlDecode(s.substr(a + 1, b - a - 1)).value());
    payload["release_policy"]["allow_debug"] = true;
    payload["release_policy_digest"] = ReleasePolicyDigestHex(payload["release_policy"]);
    const std::string p = payload.dump();
    t["keys"][0]["statement"] =
        s.substr(0, a + 1) + Base64UrlEncode(ByteSpan(reinterpret_cast<const uint8_t*>(p.data()), p.size())) + s.substr(b);
    EXPECT_EQ(code(t), E2eKeyErrc::kBadStatement);
  }
  {  // A statement signed by someone else, and a token in its place.
    json t = good;
    auto other = NewP256();
    t["keys"][0]["statement"] =
        SignJws(other, {{"kid", JwkThumbprint(PublicJwk(other.public_key()))}, {"typ", kE2eStatementHeaderTyp}},
                "{}").value();
    EXPECT_EQ(code(t), E2eKeyErrc::kBadStatement);
    t["keys"][0]["statement"] = Token();
    EXPECT_EQ(code(t), E2eKeyErrc::kBadStatement);
  }
  {  // Signed by the service's key, but release_policy_digest not of the policy shown.
    Bytes cfg = Base64UrlDecode(good["keys"][0]["config"].get<std::string>()).value();
    json claims = E2eStatementClaims(cfg, 0, hsuite(), PolicyFor(kModelA), now_.load(), now_.load() + 300);
    claims["release_policy_digest"] = ReleasePolicyDigestHex(PolicyFor(kModelB));
    json t = good;
    t["keys"][0]["statement"] = service_->signing_keys().SignJws(kE2eStatementHeaderTyp, claims.dump()).value();
    EXPECT_EQ(code(t), E2eKeyErrc::kMismatch);
    claims = E2eStatementClaims(cfg, 0, hsuite(), PolicyFor(kModelA), now_.load(), now_.load() + 300);
    claims["typ"] = "something-else";
    t["keys"][0]["statement"] = service_->signing_keys().SignJws(kE2eStatementHeaderTyp, claims.dump()).value();
    EXPECT_EQ(code(t), E2eKeyErrc::kMalformed);
  }
  {  // Expired, and not yet issued.
    now_ += 300 + 31;
    EXPECT_EQ(code(good), E2eKeyErrc::kExpired);
    now_ -= 300 + 31 + 31;
    EXPECT_EQ(code(good), E2eKeyErrc::kExpired);
    now_ += 31;
  }
  {  // Lists: the same key id twice, nothing usable, a suite nobody knows.
    json t = good;
    t["keys"][1] = good["keys"][0];
    EXPECT_EQ(code(t), E2eKeyErrc::kMalformed);
    EXPECT_EQ(code(json{{"keys", json::array()}}), E2eKeyErrc::kNoKeys);
    EXPECT_EQ(code(json::array()), E2eKeyErrc::kMalformed);
    t = good;
    t["keys"].push_back({{"key_id", 9}, {"suite", "future-suite"}, {"config", "AA"}, {"statement", "x"}});
    auto skipped = VerifyE2eKeys(t, jwks, Check());
    ASSERT_TRUE(skipped.ok()) << skipped.detail();
    EXPECT_EQ(skipped->size(), 2u);
  }
}

// ---------------------------------------------------------------------------
// Key release: the broker's model-key path, under the key's release policy
// ---------------------------------------------------------------------------

TEST_P(FleetKeyTest, ReleasedOnlyUnderItsPolicyAndMatchingTheConfig) {
  ASSERT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}}).status_, 201);
  ASSERT_EQ(Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelB)}}).status_, 201);
  auto published = VerifyE2eKeys(Published(), service_->Jwks(), Check());
  ASSERT_TRUE(published.ok()) << published.detail();
  ASSERT_EQ(published->size(), 2u);
  const E2eKey& for_a = (*published)[0].config.key_id == Id(0) ? (*published)[0] : (*published)[1];
  const E2eKey& for_b = (*published)[0].config.key_id == Id(1) ? (*published)[0] : (*published)[1];

  // The node serves model A: the second key (model B's replicas only) is refused.
  const std::string token = Token();
  auto eph = NewP256();
  Reply refused = Release(KeyName(1), token, eph);
  ASSERT_TRUE(std::holds_alternative<ApiError>(refused));
  EXPECT_EQ(std::get<ApiError>(refused).status, 403);
  EXPECT_EQ(ErrorCode(refused), "release_refused");

  // The first key: released as a JWE to the node's ephemeral key; its public half is the config's.
  Bytes sk = ReleasedKey(KeyName(0), token);
  ASSERT_EQ(sk.size(), hpke::SuiteSizes(hsuite()).value().n_sk);
  EXPECT_EQ(hpke::PublicKeyFromPrivate(hsuite().kem, sk).value(), for_a.config.public_key);
  auto held = CheckFleetKey(for_a, SecretBytes(ByteSpan(sk)));
  ASSERT_TRUE(held.ok()) << held.detail();
  EXPECT_EQ(held->published.config_digest, for_a.config_digest);
  // The same private key against another config is refused.
  EXPECT_EQ(CheckFleetKey(for_b, SecretBytes(ByteSpan(sk))).code(), client::ClientErrc::kProtocol);

  // The release is audited like a model key's.
  bool audited = false;
  const auto entries = service_->store().ReadAudit(1, 10000).value();
  for (const auto& e : entries) {
    audited |= e.kind == "key_release" && json::parse(e.body)["key_id"] == KeyName(0);
  }
  EXPECT_TRUE(audited);

  // A new release policy never re-labels a key nodes may already hold
  // under the old one (found by review): a new key is made under it and the
  // old key retired.
  Writer put = AdminCall("PUT", "/v1/admin/keys/" + KeyName(1) + "/release-policy", PolicyFor(kModelA).dump());
  ASSERT_EQ(put.status_, 200) << put.body_.dump();
  EXPECT_EQ(put.body_["retired"], json::array({Id(1)})) << put.body_.dump();
  const std::string fresh = put.body_["new_key"]["model_key_id"].get<std::string>();
  EXPECT_NE(fresh, KeyName(1));
  auto again = VerifyE2eKeys(Published(), service_->Jwks(), Check()).value();
  ASSERT_EQ(again.size(), 2u);
  for (const auto& k : again) {
    EXPECT_EQ(k.release_policy["model_digests"][0], DigestHex(kModelA));
    EXPECT_NE(k.config.key_id, Id(1)) << "the key released under policy B is still published";
  }
  EXPECT_EQ(ErrorCode(Release(KeyName(1), token, NewP256())), "unknown_key");
  EXPECT_EQ(ReleasedKey(fresh, token).size(), hpke::SuiteSizes(hsuite()).value().n_sk);
  // The same policy again changes nothing.
  Writer same = AdminCall("PUT", "/v1/admin/keys/" + fresh + "/release-policy", PolicyFor(kModelA).dump());
  ASSERT_EQ(same.status_, 200) << same.body_.dump();
  EXPECT_TRUE(same.body_["unchanged"].get<bool>());
  EXPECT_EQ(VerifyE2eKeys(Published(), service_->Jwks(), Check())->size(), 2u);
}

TEST_P(FleetKeyTest, FleetKeysSurviveARestart) {
  Writer c = Create({{"suite", suite()}, {"release_policy", PolicyFor(kModelA)}});
  ASSERT_EQ(c.status_, 201);
  StartService();
  auto keys = VerifyE2eKeys(Published(), service_->Jwks(), Check());
  ASSERT_TRUE(keys.ok()) << keys.detail();
  EXPECT_EQ((*keys)[0].config_digest, c.body_["key_config_digest"]);
}

// ---------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------

TEST(E2eKeyFormatTest, FleetModelKeyIds) {
  EXPECT_EQ(FleetModelKeyId(0, hpke::kSuiteX25519), "fleet-0-x25519");
  EXPECT_EQ(FleetModelKeyId(255, hpke::kSuiteGmt), "fleet-255-gmt");
  auto n = ParseFleetModelKeyId("fleet-17-gmt");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->key_id, 17);
  EXPECT_TRUE(SameSuite(n->suite, hpke::kSuiteGmt));
  for (const char* bad : {"fleet-256-x25519", "fleet-07-x25519", "fleet--x25519", "fleet-1-p256", "fleet-1",
                          "fleet-1-x25519-", "fleet-1000-gmt", "key-1-gmt", "fleet-a-gmt"}) {
    EXPECT_FALSE(ParseFleetModelKeyId(bad)) << bad;
  }
  EXPECT_TRUE(IsFleetModelKeyId("fleet-anything"));
  EXPECT_FALSE(IsFleetModelKeyId("model-fleet-1"));
}

}  // namespace
}  // namespace cllm::trust
