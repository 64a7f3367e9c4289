// Mutual mode of encrypted bodies (e2e_client.h): the server accepts a
// client key statement only under a valid cllm-trust token whose cnf key
// signed it, within the accepted policies, fresh, for the request's suite.
#include "trust/e2e_client.h"

#include <gtest/gtest.h>

#include "base/encoding.h"

namespace cllm::trust {
namespace {

namespace e2e = channel::e2e;
namespace hpke = crypto::hpke;

class E2eClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signer_ = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    nlohmann::json jwk = PublicJwk(signer_->public_key());
    kid_ = JwkThumbprint(jwk);
    jwk["kid"] = kid_;
    jwks_ = std::make_shared<JwksSource>(nlohmann::json{{"keys", {jwk}}});
    cnf_ = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    now_ = std::chrono::system_clock::now();
    hpke_ = hpke::GenerateKeyPair(hpke::Kem::kX25519HkdfSha256).value();
  }
  int64_t Unix() const { return std::chrono::duration_cast<std::chrono::seconds>(now_.time_since_epoch()).count(); }

  // A client's token as cllm-trust issues it (token_claims.h), cnf = its key.
  nlohmann::json Claims(const crypto::PrivateKey& cnf) const {
    return {{"iss", "cllm-trust"}, {"sub", "client:x"}, {"iat", Unix()}, {"nbf", Unix()}, {"exp", Unix() + 300},
            {"jti", "j"}, {"ver", 2}, {"tee", "sim"}, {"simulated", true}, {"tcb_status", "NotApplicable"},
            {"measurement", HexEncode(Bytes(48, 0x33))}, {"report_data", HexEncode(Bytes(64, 0x44))},
            {"debug", false}, {"tcb", nlohmann::json::object()}, {"advisory_ids", nlohmann::json::array()},
            {"fields", nlohmann::json::object()}, {"policy", "clients"}, {"replay", false},
            {"cnf", {{"jwk", PublicJwk(cnf.public_key())}}}};
  }
  std::string Token(const nlohmann::json& claims) const { return SignJwt(*signer_, kid_, claims).value(); }
  std::string Statement(const crypto::PrivateKey& key, int64_t iat, hpke::Suite suite = hpke::kSuiteX25519) const {
    return SignE2eClientKey(key, hpke_.pk, suite, iat).value();
  }
  e2e::E2eResult<Bytes> Verify(const std::string& token, const std::string& jws,
                               std::vector<std::string> policies = {"clients"},
                               std::optional<attestation::Policy> appraisal = std::nullopt) const {
    E2eClientPolicy p;
    p.jwks = jwks_;
    p.accepted_policies = std::move(policies);
    p.appraisal = std::move(appraisal);
    p.now = [t = now_] { return t; };
    return MakeE2eClientVerifier(p)(token, jws, hpke::kSuiteX25519);
  }

  std::optional<crypto::PrivateKey> signer_, cnf_;
  std::string kid_;
  std::shared_ptr<JwksSource> jwks_;
  std::chrono::system_clock::time_point now_;
  hpke::KeyPair hpke_;
};

TEST_F(E2eClientTest, ValidTokenAndStatementGivePkS) {
  auto pk = Verify(Token(Claims(*cnf_)), Statement(*cnf_, Unix()));
  ASSERT_TRUE(pk.ok()) << pk.detail();
  EXPECT_EQ(*pk, hpke_.pk);
  EXPECT_TRUE(Verify(Token(Claims(*cnf_)), Statement(*cnf_, Unix() - 100), {}).ok());  // empty list: any policy
}

TEST_F(E2eClientTest, Refusals) {
  const std::string token = Token(Claims(*cnf_));
  const std::string good = Statement(*cnf_, Unix());
  auto refused = [](const e2e::E2eResult<Bytes>& r) { return !r.ok() && r.code() == e2e::E2eErrc::kClientToken; };
  // A token cllm-trust did not sign.
  auto other_signer = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  EXPECT_TRUE(refused(Verify(SignJwt(other_signer, kid_, Claims(*cnf_)).value(), good)));
  // Expired.
  auto old = Claims(*cnf_);
  old["exp"] = Unix() - 3600;
  EXPECT_TRUE(refused(Verify(Token(old), good)));
  // Another issuer.
  auto iss = Claims(*cnf_);
  iss["iss"] = "someone";
  EXPECT_TRUE(refused(Verify(Token(iss), good)));
  // A policy the server does not accept; a replay token.
  EXPECT_TRUE(refused(Verify(token, good, {"servers"})));
  auto replay = Claims(*cnf_);
  replay["replay"] = true;
  EXPECT_TRUE(refused(Verify(Token(replay), good)));
  // The statement signed by another key than the token's cnf.
  auto stranger = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  EXPECT_TRUE(refused(Verify(token, Statement(stranger, Unix()))));
  // Stale or future iat; another suite.
  EXPECT_TRUE(refused(Verify(token, Statement(*cnf_, Unix() - 121))));
  EXPECT_TRUE(refused(Verify(token, Statement(*cnf_, Unix() + 121))));
  EXPECT_TRUE(refused(Verify(token, Statement(*cnf_, Unix(), hpke::kSuiteGmt))));
  // Garbage.
  EXPECT_TRUE(refused(Verify("x.y.z", good)));
  EXPECT_TRUE(refused(Verify(token, "not a jws")));
  // A statement with extra members.
  auto extra = SignJws(*cnf_, nullptr,
                       nlohmann::json{{"hpke_pk", Base64UrlEncode(hpke_.pk)}, {"suite", "x25519"}, {"iat", Unix()},
                                      {"more", 1}}
                           .dump())
                   .value();
  EXPECT_TRUE(refused(Verify(token, extra)));
  // An hpke_pk that is not an X25519 key.
  auto short_pk = SignJws(*cnf_, nullptr,
                          nlohmann::json{{"hpke_pk", Base64UrlEncode(Bytes(31, 1))}, {"suite", "x25519"},
                                         {"iat", Unix()}}
                              .dump())
                      .value();
  EXPECT_TRUE(refused(Verify(token, short_pk)));
}

// The server's own client policy (--e2e-client-policy): the token's claims
// appraised as evidence would be — platform, measurement, debug, digests —
// and a client token making a server's serving claims refused.
TEST_F(E2eClientTest, ServersClientPolicyAppraisesTheTokensClaims) {
  const std::string good = Statement(*cnf_, Unix());
  auto policy = [](const std::string& extra) {
    return attestation::ParsePolicy(R"({"version": 1, "platforms": ["sim"])" + extra + "}").value();
  };
  const std::string pinned = R"(, "sim": {"measurements": [")" + HexEncode(Bytes(48, 0x33)) + R"("]})";
  auto accepted = Verify(Token(Claims(*cnf_)), good, {"clients"}, policy(pinned));
  ASSERT_TRUE(accepted.ok()) << accepted.detail();
  EXPECT_TRUE(Verify(Token(Claims(*cnf_)), good, {"clients"}, policy("")).ok());  // nothing pinned: any sim client
  auto refused = [&](const nlohmann::json& claims, const attestation::Policy& p) {
    auto r = Verify(Token(claims), good, {"clients"}, p);
    return !r.ok() && r.code() == e2e::E2eErrc::kClientToken;
  };
  auto other = Claims(*cnf_);
  other["measurement"] = HexEncode(Bytes(48, 0x34));
  EXPECT_TRUE(refused(other, policy(pinned)));
  EXPECT_TRUE(Verify(Token(other), good).ok());  // without the server's policy only the token's policy name counts
  EXPECT_TRUE(refused(Claims(*cnf_), attestation::ParsePolicy(R"({"version": 1, "platforms": ["snp"]})").value()));
  auto debug = Claims(*cnf_);
  debug["debug"] = true;
  EXPECT_TRUE(refused(debug, policy(pinned)));
  auto digests = Claims(*cnf_);
  digests["binary_digest"] = HexEncode(Bytes(32, 0xB1));
  auto binaries = [&](uint8_t fill) {
    return policy(R"(, "binary_digests": [")" + HexEncode(Bytes(32, fill)) + R"("])");
  };
  EXPECT_TRUE(Verify(Token(digests), good, {"clients"}, binaries(0xB1)).ok());
  EXPECT_TRUE(refused(digests, binaries(0xB2)));
  EXPECT_TRUE(refused(Claims(*cnf_), policy(R"(, "model_digests": [")" + HexEncode(Bytes(32, 0xD1)) + R"("])")));
  // The policy file's token_policies narrow the accepted names further.
  EXPECT_TRUE(refused(Claims(*cnf_), policy(R"(, "token_policies": ["other"])")));
  EXPECT_TRUE(Verify(Token(Claims(*cnf_)), good, {"clients"}, policy(R"(, "token_policies": ["clients"])")).ok());
  // Nothing is appraised for a caller without the token's key: the
  // statement is checked first, and its refusal names no policy field.
  auto stranger = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  auto probe = Verify(Token(other), Statement(stranger, Unix()), {"clients"}, policy(pinned));
  ASSERT_FALSE(probe.ok());
  EXPECT_EQ(probe.detail().find("measurement"), std::string::npos) << probe.detail();
  for (const char* serving : {"chat_template_digest", "debug_listener", "metrics_readers", "stream_pad"}) {
    auto claims = Claims(*cnf_);
    claims[serving] = serving == std::string("stream_pad") ? nlohmann::json(0) : nlohmann::json("x");
    EXPECT_TRUE(refused(claims, policy(pinned))) << serving;
  }
}

}  // namespace
}  // namespace cllm::trust
