// Token verification of a server certificate (token_verifier.h): a token is
// accepted only with a valid signature from the JWKS, bound to this very
// certificate key, matching the certificate's digests, not a replay token,
// and within the client's policy.
#include "trust/token_verifier.h"

#include <gtest/gtest.h>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "trust/jose.h"

namespace cllm::trust {
namespace {

using attestation::Platform;
using channel::ChannelErrc;

class TokenVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto platform_key = attestation::sim::GenerateSimPlatformKey().value();
    attester_ = std::make_shared<attestation::sim::SimAttester>(attestation::sim::SimAttester::Create(platform_key).value());
    claims_.binary_digest.fill(0xB1);
    claims_.model_digest.fill(0xD1);
    claims_.model_name = "m";
    issuer_.emplace(attester_, claims_);
    signer_ = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    nlohmann::json jwk = PublicJwk(signer_->public_key());
    kid_ = JwkThumbprint(jwk);
    jwk["kid"] = kid_;
    jwks_ = {{"keys", {jwk}}};
    node_ = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    now_ = std::chrono::system_clock::now();
    policy_ = attestation::Policy::Default();
    policy_.platforms = {Platform::kSim};
    policy_.model_digests = {Bytes(32, 0xD1)};
  }

  int64_t Unix() const { return std::chrono::duration_cast<std::chrono::seconds>(now_.time_since_epoch()).count(); }

  // Claims is what cllm-trust signs for a sim node whose evidence bound
  // `cnf`, the certificate's digests and the service's nonce (token_claims.h).
  nlohmann::json Claims(const crypto::PrivateKey& cnf) const {
    channel::AttestationPayload bound;
    bound.binary_digest = claims_.binary_digest;
    bound.model_digest = claims_.model_digest;
    bound.model_name = claims_.model_name;
    bound.serving = claims_.serving;
    bound.freshness = Bytes(32, 0x5A);
    const auto report_data = channel::ComputeReportData(cnf.public_key().ToSpkiDer(), bound);
    nlohmann::json c = {{"iss", "cllm-trust"}, {"sub", "node:x"}, {"iat", Unix()}, {"nbf", Unix()}, {"exp", Unix() + 300},
            {"jti", "j"}, {"ver", 2}, {"tee", "sim"}, {"simulated", true}, {"tcb_status", "NotApplicable"},
            {"measurement", HexEncode(Bytes(48, 0x33))}, {"report_data", HexEncode(report_data)},
            {"debug", false}, {"tcb", nlohmann::json::object()}, {"advisory_ids", nlohmann::json::array()},
            {"fields", nlohmann::json::object()}, {"policy", "default"}, {"freshness", HexEncode(bound.freshness)},
            {"binary_digest", HexEncode(Bytes(32, 0xB1))}, {"model_digest", HexEncode(Bytes(32, 0xD1))},
            {"model_name", "m"}, {"replay", false}, {"cnf", {{"jwk", PublicJwk(cnf.public_key())}}}};
    // attest.cc adds the serving claims only when they are not the default
    if (claims_.serving.chat_template_digest) c["chat_template_digest"] = HexEncode(*claims_.serving.chat_template_digest);
    if (claims_.serving.model_from_untrusted_disk) c["model_from_untrusted_disk"] = true;
    if (claims_.serving.memory_unlocked) c["memory_unlocked"] = true;
    if (claims_.serving.stream_pad != channel::kDefaultStreamPad) c["stream_pad"] = claims_.serving.stream_pad;
    if (claims_.serving.debug_listener) c["debug_listener"] = true;
    if (claims_.serving.stream_coalesce_ms != 0) c["stream_coalesce_ms"] = claims_.serving.stream_coalesce_ms;
    for (const auto& d : claims_.serving.metrics_readers) c["metrics_readers"].push_back(HexEncode(d));
    return c;
  }

  crypto::Certificate CertWith(const std::optional<std::string>& token) {
    return issuer_->IssueWithKey(now_, *node_, token).value().cert;
  }

  channel::ChannelResult<TokenVerifiedServer> Verify(const crypto::Certificate& cert) {
    return VerifyServerToken(cert, jwks_, policy_, {now_, "cllm-trust"});
  }

  std::shared_ptr<attestation::sim::SimAttester> attester_;
  channel::ServerClaims claims_;
  std::optional<channel::RaTlsIssuer> issuer_;
  std::optional<crypto::PrivateKey> signer_, node_;
  std::string kid_;
  nlohmann::json jwks_;
  crypto::TimePoint now_;
  attestation::Policy policy_;
};

TEST_F(TokenVerifierTest, TokenBoundToThisKeyIsAccepted) {
  auto v = Verify(CertWith(SignJwt(*signer_, kid_, Claims(*node_)).value()));
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->claims["tee"], "sim");
  EXPECT_EQ(v->payload.model_name, "m");
}

TEST_F(TokenVerifierTest, CertificateWithoutTokenIsNoEvidence) {
  EXPECT_EQ(Verify(CertWith(std::nullopt)).code(), ChannelErrc::kNoEvidence);
}

TEST_F(TokenVerifierTest, TokenForAnotherKeyIsRefused) {
  auto other = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  auto v = Verify(CertWith(SignJwt(*signer_, kid_, Claims(other)).value()));
  EXPECT_EQ(v.code(), ChannelErrc::kCertEvidenceMismatch) << v.detail();
}

TEST_F(TokenVerifierTest, TokenFromAnotherSignerIsRefused) {
  auto foreign = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  auto v = Verify(CertWith(SignJwt(foreign, kid_, Claims(*node_)).value()));
  EXPECT_EQ(v.code(), ChannelErrc::kPlatformChainInvalid) << v.detail();
}

TEST_F(TokenVerifierTest, ExpiredTokenIsStale) {
  auto c = Claims(*node_);
  c["iat"] = Unix() - 1000;
  c["nbf"] = Unix() - 1000;
  c["exp"] = Unix() - 100;
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, c).value())).code(), ChannelErrc::kStale);
}

TEST_F(TokenVerifierTest, ReplayTokensAndDigestMismatchesAreRefused) {
  auto replay = Claims(*node_);
  replay["replay"] = true;
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, replay).value())).code(), ChannelErrc::kPolicyNotSatisfied);
  auto other_model = Claims(*node_);
  other_model["model_digest"] = HexEncode(Bytes(32, 0xEE));
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, other_model).value())).code(),
            ChannelErrc::kCertEvidenceMismatch);
}

// A split-inference client's token ("role": "client", minted under a
// policy that checks no serving claims) put in a server certificate is
// refused as a server's, whatever else matches; a server checking its
// clients still takes it.
TEST_F(TokenVerifierTest, AClientsTokenIsNotAServers) {
  auto client = Claims(*node_);
  client["role"] = "client";
  const std::string token = SignJwt(*signer_, kid_, client).value();
  auto v = Verify(CertWith(token));
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied);
  EXPECT_NE(v.detail().find("not a server's"), std::string::npos) << v.detail();
  client["role"] = "server";  // only the absence of a role is a server's
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, client).value())).code(), ChannelErrc::kPolicyNotSatisfied);
  EXPECT_TRUE(VerifyServerToken(CertWith(token), jwks_, policy_, {now_, "cllm-trust", channel::PeerRole::kClient}).ok());
  EXPECT_TRUE(Verify(CertWith(SignJwt(*signer_, kid_, Claims(*node_)).value())).ok());
}

TEST_F(TokenVerifierTest, PolicyDecidesPlatformAndDigests) {
  const std::string token = SignJwt(*signer_, kid_, Claims(*node_)).value();
  policy_.platforms = {Platform::kSnp};
  auto v = Verify(CertWith(token));
  EXPECT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied);
  EXPECT_NE(v.detail().find("simulated_not_allowed"), std::string::npos) << v.detail();
  policy_.platforms = {Platform::kSim};
  policy_.model_digests = {Bytes(32, 0xAA)};
  EXPECT_EQ(Verify(CertWith(token)).code(), ChannelErrc::kPolicyNotSatisfied);
}

// The token path appraises the serving claims as the evidence path does
// (channel::CheckServing): a host-supplied chat template must be listed, a
// model mapped from disk allowed; the token's claims must agree with the
// certificate's.
TEST_F(TokenVerifierTest, ServingClaimsAreAppraisedAndMustAgreeWithTheCertificate) {
  claims_.serving.chat_template_digest.emplace().fill(0x7E);
  issuer_.emplace(attester_, claims_);
  const std::string token = SignJwt(*signer_, kid_, Claims(*node_)).value();
  auto v = Verify(CertWith(token));
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("chat_template_digest"), std::string::npos) << v.detail();
  policy_.chat_template_digests = {Bytes(32, 0x7E)};
  v = Verify(CertWith(token));
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->payload.serving.chat_template_digest, claims_.serving.chat_template_digest);
  // A token that does not name the template (or names another) is not this certificate's.
  auto silent = Claims(*node_);
  silent.erase("chat_template_digest");
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, silent).value())).code(), ChannelErrc::kCertEvidenceMismatch);
  auto other = Claims(*node_);
  other["chat_template_digest"] = HexEncode(Bytes(32, 0x7F));
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, other).value())).code(), ChannelErrc::kCertEvidenceMismatch);

  claims_.serving.model_from_untrusted_disk = true;
  issuer_.emplace(attester_, claims_);
  const std::string disk = SignJwt(*signer_, kid_, Claims(*node_)).value();
  v = Verify(CertWith(disk));
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("allow_untrusted_disk_model"), std::string::npos) << v.detail();
  policy_.allow_untrusted_disk_model = true;
  EXPECT_TRUE(Verify(CertWith(disk)).ok());
  auto typed = Claims(*node_);
  typed["model_from_untrusted_disk"] = "yes";  // the wrong type is not `true`: a mismatch, not a throw
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, typed).value())).code(), ChannelErrc::kCertEvidenceMismatch);

  claims_.serving.memory_unlocked = true;
  issuer_.emplace(attester_, claims_);
  const std::string unlocked = SignJwt(*signer_, kid_, Claims(*node_)).value();
  v = Verify(CertWith(unlocked));
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("allow_unlocked_memory"), std::string::npos) << v.detail();
  policy_.allow_unlocked_memory = true;
  EXPECT_TRUE(Verify(CertWith(unlocked)).ok());
  auto hidden = Claims(*node_);
  hidden.erase("memory_unlocked");  // the token must say what the certificate says
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, hidden).value())).code(), ChannelErrc::kCertEvidenceMismatch);

  claims_.serving.stream_pad = 0;
  issuer_.emplace(attester_, claims_);
  const std::string unpadded = SignJwt(*signer_, kid_, Claims(*node_)).value();
  v = Verify(CertWith(unpadded));
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("min_stream_pad"), std::string::npos) << v.detail();
  policy_.min_stream_pad = 0;
  EXPECT_TRUE(Verify(CertWith(unpadded)).ok());
  for (const nlohmann::json& lie : {nlohmann::json(512), nlohmann::json("0"), nlohmann::json(-1)}) {
    auto claims = Claims(*node_);
    claims["stream_pad"] = lie;
    EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, claims).value())).code(), ChannelErrc::kCertEvidenceMismatch)
        << lie;
  }

  // Stream coalescing: a policy may require it; the token must say what the certificate says.
  claims_.serving.stream_coalesce_ms = 250;
  issuer_.emplace(attester_, claims_);
  const std::string coalesced = SignJwt(*signer_, kid_, Claims(*node_)).value();
  EXPECT_TRUE(Verify(CertWith(coalesced)).ok());
  policy_.min_stream_coalesce_ms = 251;
  v = Verify(CertWith(coalesced));
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("min_stream_coalesce_ms"), std::string::npos) << v.detail();
  policy_.min_stream_coalesce_ms = 250;
  EXPECT_TRUE(Verify(CertWith(coalesced)).ok());
  for (const nlohmann::json& lie : {nlohmann::json(0), nlohmann::json(500), nlohmann::json("250"), nlohmann::json()}) {
    auto claims = Claims(*node_);
    if (lie.is_null()) {
      claims.erase("stream_coalesce_ms");
    } else {
      claims["stream_coalesce_ms"] = lie;
    }
    EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, claims).value())).code(), ChannelErrc::kCertEvidenceMismatch)
        << lie;
  }
  claims_.serving.stream_coalesce_ms = 0;
  policy_.min_stream_coalesce_ms = 0;

  // A plain listener and metrics readers, each its own consent.
  for (const char* name : {"debug_listener", "metrics_readers"}) {
    SCOPED_TRACE(name);
    const bool debug = std::string(name) == "debug_listener";
    claims_.serving.debug_listener = debug;
    claims_.serving.metrics_readers.assign(debug ? 0 : 2, {});
    if (!debug) claims_.serving.metrics_readers[1].fill(0x77);
    policy_.allow_debug_listener = policy_.allow_metrics_keys = false;
    issuer_.emplace(attester_, claims_);
    const std::string listed = SignJwt(*signer_, kid_, Claims(*node_)).value();
    v = Verify(CertWith(listed));
    ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
    EXPECT_NE(v.detail().find(debug ? "allow_debug_listener" : "allow_metrics_keys"), std::string::npos) << v.detail();
    (debug ? policy_.allow_debug_listener : policy_.allow_metrics_keys) = true;
    EXPECT_TRUE(Verify(CertWith(listed)).ok());
    auto quiet = Claims(*node_);
    quiet.erase(name);  // the token must say what the certificate says
    EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, quiet).value())).code(), ChannelErrc::kCertEvidenceMismatch);
    auto added = Claims(*node_);  // nor claim what the certificate does not
    if (debug) {
      added["metrics_readers"] = {HexEncode(Bytes(32, 0x77))};
    } else {
      added["debug_listener"] = true;
    }
    EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, added).value())).code(), ChannelErrc::kCertEvidenceMismatch);
    auto typed_flag = Claims(*node_);
    typed_flag[name] = 1;
    EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, typed_flag).value())).code(),
              ChannelErrc::kCertEvidenceMismatch);
  }
  // The readers are the certificate's, key by key and in its order.
  const std::string zero = HexEncode(Bytes(32, 0)), second = HexEncode(Bytes(32, 0x77));
  const std::vector<nlohmann::json> lies = {
      nlohmann::json::array({zero}), nlohmann::json::array({second, zero}),
      nlohmann::json::array({zero, HexEncode(Bytes(32, 0x78))}), nlohmann::json::array({zero, second, second}),
      nlohmann::json(zero + second)};
  for (const nlohmann::json& lie : lies) {
    auto claims = Claims(*node_);
    claims["metrics_readers"] = lie;
    EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, claims).value())).code(), ChannelErrc::kCertEvidenceMismatch)
        << lie;
  }
  policy_.allow_metrics_keys = false;  // pinned readers: both must be listed
  policy_.metrics_readers = {Bytes(32, 0)};
  const std::string listed = SignJwt(*signer_, kid_, Claims(*node_)).value();
  v = Verify(CertWith(listed));
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find(second), std::string::npos) << v.detail();
  policy_.metrics_readers.push_back(Bytes(32, 0x77));
  EXPECT_TRUE(Verify(CertWith(listed)).ok());
}

// A server checking its clients' tokens (mutual mode): a client's
// certificate makes no serving claims and the policy's serving keys do not
// apply; one that makes a claim is refused whatever the policy accepts.
TEST_F(TokenVerifierTest, ClientTokensAreNotAppraisedForServingClaims) {
  policy_.min_stream_pad = 1024;
  const std::string token = SignJwt(*signer_, kid_, Claims(*node_)).value();
  EXPECT_EQ(Verify(CertWith(token)).code(), ChannelErrc::kPolicyNotSatisfied);
  EXPECT_TRUE(VerifyServerToken(CertWith(token), jwks_, policy_, {now_, "cllm-trust", channel::PeerRole::kClient}).ok());
  claims_.serving.debug_listener = true;
  policy_.allow_debug_listener = true;
  issuer_.emplace(attester_, claims_);
  const std::string claiming = SignJwt(*signer_, kid_, Claims(*node_)).value();
  auto v = VerifyServerToken(CertWith(claiming), jwks_, policy_, {now_, "cllm-trust", channel::PeerRole::kClient});
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("a client's evidence makes serving claims"), std::string::npos) << v.detail();
}

TEST_F(TokenVerifierTest, TokenWithoutAppraisedClaimsOrWithAWrongBindingIsRefused) {
  // A token in the old format (no "ver": 2, no tcb/fields) cannot be appraised.
  auto old = Claims(*node_);
  old.erase("ver");
  old.erase("fields");
  auto v = Verify(CertWith(SignJwt(*signer_, kid_, old).value()));
  EXPECT_EQ(v.code(), ChannelErrc::kPlatformChainInvalid) << v.detail();
  EXPECT_NE(v.detail().find("ver"), std::string::npos) << v.detail();
  // Claims of the wrong type are refused, not thrown on.
  auto typed = Claims(*node_);
  typed["tcb"] = {{"sim.svn", "high"}};
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, typed).value())).code(), ChannelErrc::kPlatformChainInvalid);
  // report_data that does not bind this key and these digests.
  auto unbound = Claims(*node_);
  unbound["report_data"] = HexEncode(Bytes(64, 0x01));
  EXPECT_EQ(Verify(CertWith(SignJwt(*signer_, kid_, unbound).value())).code(), ChannelErrc::kCertEvidenceMismatch);
}

}  // namespace
}  // namespace cllm::trust
