// Keys for split-inference clients (issue 16): the embedding table's key is
// registered with "audience": "client" and goes only to tokens minted under
// an attestation policy with "role": "client" that satisfy its release
// policy; a client token never gets a server key (release_policy.h,
// "Audience"). The client runs on a simulated TEE with its own measurement
// and claims, next to the fixture's node.
#include <gtest/gtest.h>

#include "trust/release_cover.h"
#include "trust/release_policy.h"
#include "trust/trust_service_fixture.h"

namespace cllm::trust {
namespace {

using namespace cllm::trust::test;  // NOLINT: the fixture's names

constexpr uint8_t kEmbeddings = 0xE5;     // plaintext digest of the sealed embeddings file
constexpr uint8_t kClientMeasure = 0x55;  // the client VM's launch measurement

class ClientKeyTest : public TrustServiceTest {
 protected:
  void SetUp() override {
    TrustServiceTest::SetUp();
    if (HasFatalFailure()) return;
    attestation::sim::SimAttesterOptions o;
    o.measurement.emplace();
    o.measurement->fill(kClientMeasure);
    client_attester_ = std::make_shared<attestation::sim::SimAttester>(
        attestation::sim::SimAttester::Create(*platform_key_, o).value());
    channel::ServerClaims claims;
    claims.binary_digest.fill(0x4D);
    claims.model_digest.fill(kEmbeddings);  // the client names the file it will unseal
    claims.model_name = "cllm-client";
    client_issuer_.emplace(client_attester_, claims);
    client_key_.emplace(NewP256());

    json client_policy = SimPolicy({"sim"});
    client_policy["role"] = "client";
    ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/client", client_policy.dump()).status_, 200);
    ASSERT_EQ(RegisterKey("emb", EmbeddingsPolicy()), 201);
  }

  static json EmbeddingsPolicy() {
    return {{"model_digests", {DigestHex(kEmbeddings)}},
            {"policies", {"client"}},
            {"measurements", {HexEncode(Bytes(48, kClientMeasure))}},
            {"allow_simulated", true},
            {"audience", "client"}};
  }

  Reply ClientAttest(const std::string& policy) {
    auto ch = service_->Challenge();
    if (!std::holds_alternative<json>(ch)) return ch;
    const std::string nonce = std::get<json>(ch)["nonce"];
    auto payload = client_issuer_->PayloadFor(client_key_->public_key().ToSpkiDer(), HexDecode(nonce).value());
    EXPECT_TRUE(payload.ok()) << payload.detail();
    return service_->Attest({{"nonce", nonce},
                             {"payload", Base64Encode(channel::EncodePayload(*payload))},
                             {"public_key", PublicJwk(client_key_->public_key())},
                             {"policy", policy}});
  }
  std::string ClientToken(const std::string& policy = "client") {
    Reply r = ClientAttest(policy);
    EXPECT_TRUE(std::holds_alternative<json>(r)) << Describe(r);
    return std::holds_alternative<json>(r) ? std::get<json>(r)["token"].get<std::string>() : "";
  }
  Reply ClientRelease(const std::string& key_id, const std::string& token) {
    auto eph = NewP256();
    return service_->ReleaseKey(key_id, token, {{"pop", Pop(*client_key_, key_id, eph)}});
  }
  // ExpectRefused checks a 403 release_refused whose reason mentions `why`.
  static void ExpectRefused(const Reply& r, const std::string& why) {
    ASSERT_EQ(ErrorCode(r), "release_refused") << Describe(r);
    EXPECT_EQ(std::get<ApiError>(r).status, 403);
    EXPECT_NE(std::get<ApiError>(r).message.find(why), std::string::npos) << Describe(r);
  }

  std::shared_ptr<attestation::sim::SimAttester> client_attester_;
  std::optional<channel::RaTlsIssuer> client_issuer_;
  std::optional<crypto::PrivateKey> client_key_;
};

TEST_F(ClientKeyTest, AttestedClientGetsTheEmbeddingsKey) {
  const std::string token = ClientToken();
  auto claims = VerifyToken(token);
  ASSERT_TRUE(claims.ok()) << claims.detail();
  EXPECT_EQ((*claims)["role"], "client");
  EXPECT_EQ((*claims)["model_digest"], DigestHex(kEmbeddings));

  auto eph = NewP256();
  Reply r = service_->ReleaseKey("emb", token, {{"pop", Pop(*client_key_, "emb", eph)}});
  ASSERT_TRUE(std::holds_alternative<json>(r)) << Describe(r);
  auto key = DecryptJwe(std::get<json>(r)["jwe"].get<std::string>(), eph);
  ASSERT_TRUE(key.ok()) << key.detail();
  EXPECT_EQ(Bytes(key->data(), key->data() + key->size()), Bytes(32, 'b'));  // RegisterKey fills with the id's last char

  // The key record says what it is for.
  Writer listed = AdminCall("GET", "/v1/admin/keys", "");
  bool found = false;
  for (const auto& k : listed.body_["keys"]) {
    if (k["key_id"] == "emb") {
      found = true;
      EXPECT_EQ(k["release_policy"]["audience"], "client");
    } else {
      EXPECT_FALSE(k["release_policy"].contains("audience")) << k.dump();  // server keys read as before
    }
  }
  EXPECT_TRUE(found);
}

// A client policy shared with servers' keys (min_stream_pad above the
// default, say) is not applied to a client's evidence, which makes no
// serving claims; a client whose evidence makes one gets no token.
TEST_F(ClientKeyTest, ClientsAreNotAppraisedForServingClaims) {
  json client_policy = SimPolicy({"sim"});
  client_policy["role"] = "client";
  client_policy["policy"]["min_stream_pad"] = 1024;
  client_policy["policy"]["allow_debug_listener"] = true;
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/client", client_policy.dump()).status_, 200);
  EXPECT_FALSE(ClientToken().empty());
  channel::ServerClaims claims = client_issuer_->claims();
  claims.serving.debug_listener = true;
  client_issuer_.emplace(client_attester_, claims);
  Reply r = ClientAttest("client");
  ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << Describe(r);
  EXPECT_NE(std::get<ApiError>(r).message.find("a client's evidence makes serving claims"), std::string::npos)
      << Describe(r);
}

TEST_F(ClientKeyTest, ClientTokenNeverGetsAServerKey) {
  // A full-model key whose release policy a client would otherwise satisfy in
  // every respect: same digest, the client policy, the client measurement.
  json full = EmbeddingsPolicy();
  full.erase("audience");
  ASSERT_EQ(RegisterKey("full", full), 201);
  const std::string token = ClientToken();
  ExpectRefused(ClientRelease("full", token), "never released to clients");
  ExpectRefused(ClientRelease("key-a", token), "never released to clients");
  // The same key with "audience": "server" spelled out is the same.
  json server = full;
  server["audience"] = "server";
  ASSERT_EQ(RegisterKey("full2", server), 201);
  ExpectRefused(ClientRelease("full2", token), "never released to clients");
}

TEST_F(ClientKeyTest, ServerTokenNeverGetsTheEmbeddingsKey) {
  // A client key whose release policy the node's "default" token satisfies
  // except for the role.
  ASSERT_EQ(RegisterKey("emb-default", {{"model_digests", {DigestHex(kModelA)}},
                                        {"allow_simulated", true},
                                        {"audience", "client"}}),
            201);
  auto eph = NewP256();
  ExpectRefused(Release("emb-default", Token(), eph), "not a client policy");
  // A client attesting under a server policy is no client either.
  ExpectRefused(ClientRelease("emb", ClientToken("default")), "not a client policy");
}

TEST_F(ClientKeyTest, ClientThatIsNotAttestedGetsNoEmbeddingsKey) {
  // No token at all.
  auto eph = NewP256();
  Reply r = service_->ReleaseKey("emb", "", {{"pop", Pop(*client_key_, "emb", eph)}});
  EXPECT_EQ(ErrorCode(r), "token_missing") << Describe(r);
  EXPECT_EQ(std::get<ApiError>(r).status, 401);

  // A token cllm-trust did not sign.
  EXPECT_EQ(ErrorCode(ClientRelease("emb", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA")), "token_invalid");

  // Evidence from a simulated platform the client policy does not trust: no token, so no key.
  auto stranger_platform = attestation::sim::GenerateSimPlatformKey().value();
  attestation::sim::SimAttesterOptions o;
  o.measurement.emplace();
  o.measurement->fill(kClientMeasure);
  channel::ServerClaims claims;
  claims.model_digest.fill(kEmbeddings);
  client_issuer_.emplace(std::make_shared<attestation::sim::SimAttester>(
                             attestation::sim::SimAttester::Create(stranger_platform, o).value()),
                         claims);
  Reply refused = ClientAttest("client");
  EXPECT_EQ(std::get_if<ApiError>(&refused) ? std::get<ApiError>(refused).status : 200, 403) << Describe(refused);
}

TEST_F(ClientKeyTest, WrongMeasurementGetsNoEmbeddingsKey) {
  // The client policy appraises the evidence; the key's release policy pins
  // the client VM's measurement, which this client does not have.
  attestation::sim::SimAttesterOptions o;
  o.measurement.emplace();
  o.measurement->fill(0x66);
  channel::ServerClaims claims;
  claims.model_digest.fill(kEmbeddings);
  claims.model_name = "cllm-client";
  client_issuer_.emplace(std::make_shared<attestation::sim::SimAttester>(
                             attestation::sim::SimAttester::Create(*platform_key_, o).value()),
                         claims);
  ExpectRefused(ClientRelease("emb", ClientToken()), "measurement");
}

TEST_F(ClientKeyTest, SimulatedClientNeedsAKeyThatAllowsIt) {
  json hw = EmbeddingsPolicy();
  hw.erase("allow_simulated");
  ASSERT_EQ(RegisterKey("emb-hw", hw), 201);
  ExpectRefused(ClientRelease("emb-hw", ClientToken()), "allow_simulated");
}

TEST_F(ClientKeyTest, ClientNamingAnotherFileGetsNoKey) {
  json other = EmbeddingsPolicy();
  other["model_digests"] = {DigestHex(0xE6)};
  ASSERT_EQ(RegisterKey("emb-other", other), 201);
  ExpectRefused(ClientRelease("emb-other", ClientToken()), "model_digest");
}

TEST_F(ClientKeyTest, AudienceAndRoleAreValidated) {
  json bad = EmbeddingsPolicy();
  bad["audience"] = "clients";
  Writer w = AdminCall("POST", "/v1/admin/keys", json{{"key_id", "x"}, {"key", HexEncode(Bytes(32, 1))},
                                                       {"release_policy", bad}}.dump());
  EXPECT_EQ(w.status_, 400);
  EXPECT_EQ(w.code(), "invalid_release_policy");

  json doc = SimPolicy({"sim"});
  doc["role"] = "admin";
  EXPECT_EQ(AdminCall("PUT", "/v1/admin/policies/odd", doc.dump()).status_, 400);

  // A fleet key is never a client key: its holder decrypts every client's requests.
  w = AdminCall("POST", "/v1/admin/fleet-keys",
                json{{"suite", "x25519"}, {"release_policy", EmbeddingsPolicy()}}.dump());
  EXPECT_EQ(w.status_, 400) << w.body_.dump();
  EXPECT_EQ(w.code(), "invalid_release_policy");

  // Nor does a client (e2e) accept a fleet key whose release policy has that audience.
  auto rp = ParseReleasePolicy(EmbeddingsPolicy());
  ASSERT_TRUE(rp.ok()) << rp.detail();
  attestation::Policy anything;
  anything.insecure_accept_unpinned = true;
  anything.platforms = {attestation::Platform::kSim};
  auto within = CheckReleaseWithinPolicy(*rp, anything);
  ASSERT_FALSE(within.ok());
  EXPECT_NE(within.detail().find("audience"), std::string::npos) << within.detail();
  EXPECT_EQ(ParseReleasePolicy(rp->ToJson()).value().client_audience, true);  // round trip
}

}  // namespace
}  // namespace cllm::trust
