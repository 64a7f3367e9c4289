// RA-TLS end to end on the simulated TEE: a server identity whose evidence
// binds its key and claims; a client that accepts it only under a policy,
// and refuses relays, replays, wrong digests and unverifiable evidence with
// the right typed error.
#include "channel/ratls.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "attestation/sim/sim_attester.h"
#include "attestation/verify.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/cert_builder.h"
#include "crypto/digest.h"
#include "support/shared_data.h"

namespace cllm::channel {
namespace {

using attestation::Platform;

class RaTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    platform_key_ = attestation::sim::GenerateSimPlatformKey().value();
    attestation::sim::SimAttesterOptions o;
    o.measurement.emplace();
    o.measurement->fill(0x33);
    attester_ = std::make_shared<attestation::sim::SimAttester>(
        attestation::sim::SimAttester::Create(*platform_key_, o).value());
    claims_.binary_digest.fill(0xB1);
    claims_.model_digest.fill(0xD1);
    claims_.model_name = "stories260K";
    issuer_.emplace(attester_, claims_);
    now_ = std::chrono::system_clock::now();
    identity_.emplace(issuer_->Issue(now_).value());
    policy_ = attestation::Policy::Default();
    policy_.platforms = {Platform::kSim};
    policy_.sim_platform_keys = {platform_key_->public_key()};
    policy_.model_digests = {Bytes(32, 0xD1)};
    policy_.binary_digests = {Bytes(32, 0xB1)};
  }

  ChannelResult<VerifiedServer> Verify(const crypto::Certificate& leaf) {
    VerifyOptions o;
    o.at = now_;
    return VerifyServerCertificate(leaf, policy_, o);
  }

  std::optional<crypto::PrivateKey> platform_key_;
  std::shared_ptr<attestation::sim::SimAttester> attester_;
  ServerClaims claims_;
  std::optional<RaTlsIssuer> issuer_;
  crypto::TimePoint now_;
  std::optional<crypto::TlsIdentity> identity_;
  attestation::Policy policy_;
};

TEST_F(RaTlsTest, GenuineServerIsAcceptedWithItsClaims) {
  auto v = Verify(identity_->cert);
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_TRUE(v->claims.simulated());
  EXPECT_EQ(v->claims.measurement(), Bytes(48, 0x33));
  EXPECT_EQ(v->payload.model_name, "stories260K");
  EXPECT_EQ(v->payload.platform, "sim");
}

TEST_F(RaTlsTest, RelayPresentingItsOwnKeyWithReplayedEvidenceIsRefused) {
  // The relay copies the genuine extension into a certificate for its own key.
  auto relay_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  crypto::CertSpec spec;
  spec.common_name = "relay";
  spec.not_before = now_ - std::chrono::minutes(1);
  spec.not_after = now_ + std::chrono::minutes(10);
  spec.extensions.push_back({kAttestationExtensionOid, false, *identity_->cert.Extension(kAttestationExtensionOid)});
  auto forged = crypto::IssueCertificate(spec, relay_key.public_key(), relay_key, nullptr).value();
  auto v = Verify(forged);
  EXPECT_EQ(v.code(), ChannelErrc::kCertEvidenceMismatch) << v.detail();
}

TEST_F(RaTlsTest, ChangedClaimsBreakTheBinding) {
  // Same key and evidence, but the payload says another model.
  auto payload = DecodePayload(*identity_->cert.Extension(kAttestationExtensionOid)).value();
  payload.model_digest.fill(0xEE);
  VerifyOptions o;
  o.at = now_;
  auto v = VerifyPayloadForKey(payload, identity_->cert.GetPublicKey()->ToSpkiDer(), policy_, o);
  EXPECT_EQ(v.code(), ChannelErrc::kCertEvidenceMismatch);
}

TEST_F(RaTlsTest, PolicyRefusalsNameTheField) {
  policy_.model_digests = {Bytes(32, 0xAA)};
  auto v = Verify(identity_->cert);
  EXPECT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied);
  EXPECT_NE(v.detail().find("model_digest"), std::string::npos) << v.detail();
  policy_.model_digests.clear();
  policy_.binary_digests = {Bytes(32, 0xAA)};
  v = Verify(identity_->cert);
  EXPECT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied);
  EXPECT_NE(v.detail().find("binary_digest"), std::string::npos) << v.detail();
  policy_.binary_digests.clear();
  policy_.per_platform[Platform::kSim].measurements = {Bytes(48, 0x44)};
  v = Verify(identity_->cert);
  EXPECT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied);
  EXPECT_NE(v.detail().find("measurement"), std::string::npos) << v.detail();
}

// A chat template the host supplies (--chat-template) shapes every prompt
// the model sees: the server names its digest in the evidence, and a client
// accepts it only when its policy lists that digest. The claim cannot be
// dropped or swapped without breaking the binding.
TEST_F(RaTlsTest, HostSuppliedChatTemplateMustBeListedInThePolicy) {
  claims_.serving.chat_template_digest.emplace().fill(0x7E);
  RaTlsIssuer issuer(attester_, claims_);
  const auto identity = issuer.Issue(now_).value();
  auto v = Verify(identity.cert);
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("chat_template_digest"), std::string::npos) << v.detail();
  EXPECT_NE(v.detail().find(HexEncode(Bytes(32, 0x7E))), std::string::npos) << v.detail();
  EXPECT_NE(v.detail().find("cllm policy pin --chat-template"), std::string::npos) << v.detail();
  policy_.chat_template_digests = {Bytes(32, 0x7F)};  // another template
  EXPECT_EQ(Verify(identity.cert).code(), ChannelErrc::kPolicyNotSatisfied);
  policy_.chat_template_digests.push_back(Bytes(32, 0x7E));
  v = Verify(identity.cert);
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->payload.serving.chat_template_digest, claims_.serving.chat_template_digest);
  // The model's own template needs no entry: the server above without an override is still accepted.
  EXPECT_TRUE(Verify(identity_->cert).ok());

  // A relay that strips the claim (or swaps the digest for a pinned one) breaks the binding.
  const Bytes spki = identity.cert.GetPublicKey()->ToSpkiDer();
  VerifyOptions o;
  o.at = now_;
  auto payload = DecodePayload(*identity.cert.Extension(kAttestationExtensionOid)).value();
  payload.serving.chat_template_digest.reset();
  EXPECT_EQ(VerifyPayloadForKey(payload, spki, policy_, o).code(), ChannelErrc::kCertEvidenceMismatch);
  payload.serving.chat_template_digest.emplace().fill(0x7F);
  EXPECT_EQ(VerifyPayloadForKey(payload, spki, policy_, o).code(), ChannelErrc::kCertEvidenceMismatch);
}

TEST_F(RaTlsTest, ModelMappedFromAnUntrustedDiskNeedsThePolicysConsent) {
  claims_.serving.model_from_untrusted_disk = true;
  RaTlsIssuer issuer(attester_, claims_);
  const auto identity = issuer.Issue(now_).value();
  auto v = Verify(identity.cert);
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("allow_untrusted_disk_model"), std::string::npos) << v.detail();
  policy_.allow_untrusted_disk_model = true;
  v = Verify(identity.cert);
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_TRUE(v->payload.serving.model_from_untrusted_disk);
  // Hiding the flag breaks the binding.
  auto payload = DecodePayload(*identity.cert.Extension(kAttestationExtensionOid)).value();
  payload.serving.model_from_untrusted_disk = false;
  policy_.allow_untrusted_disk_model = false;
  VerifyOptions o;
  o.at = now_;
  EXPECT_EQ(VerifyPayloadForKey(payload, identity.cert.GetPublicKey()->ToSpkiDer(), policy_, o).code(),
            ChannelErrc::kCertEvidenceMismatch);
}

TEST_F(RaTlsTest, UnlockedMemoryNeedsThePolicysConsent) {
  claims_.serving.memory_unlocked = true;
  RaTlsIssuer issuer(attester_, claims_);
  const auto identity = issuer.Issue(now_).value();
  auto v = Verify(identity.cert);
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("allow_unlocked_memory"), std::string::npos) << v.detail();
  policy_.allow_untrusted_disk_model = true;  // another consent does not count
  EXPECT_EQ(Verify(identity.cert).code(), ChannelErrc::kPolicyNotSatisfied);
  policy_.allow_unlocked_memory = true;
  v = Verify(identity.cert);
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_TRUE(v->payload.serving.memory_unlocked);
  auto payload = DecodePayload(*identity.cert.Extension(kAttestationExtensionOid)).value();
  payload.serving.memory_unlocked = false;
  VerifyOptions o;
  o.at = now_;
  EXPECT_EQ(VerifyPayloadForKey(payload, identity.cert.GetPublicKey()->ToSpkiDer(), policy_, o).code(),
            ChannelErrc::kCertEvidenceMismatch);
}

// Record padding below the policy's floor (by default the server's own
// default, 512) lets the network read streamed token lengths: refused.
TEST_F(RaTlsTest, RecordPaddingBelowThePolicysFloorIsRefused) {
  for (uint32_t pad : {0u, 256u, 1024u}) {
    claims_.serving.stream_pad = pad;
    RaTlsIssuer issuer(attester_, claims_);
    const auto identity = issuer.Issue(now_).value();
    policy_.min_stream_pad = 512;
    auto v = Verify(identity.cert);
    if (pad < 512) {
      ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << pad << ": " << v.detail();
      EXPECT_NE(v.detail().find("min_stream_pad"), std::string::npos) << v.detail();
    } else {
      ASSERT_TRUE(v.ok()) << v.detail();
      EXPECT_EQ(v->payload.serving.stream_pad, pad);
    }
    policy_.min_stream_pad = pad;
    EXPECT_TRUE(Verify(identity.cert).ok()) << pad;
    policy_.min_stream_pad = pad + 1;
    EXPECT_EQ(Verify(identity.cert).code(), ChannelErrc::kPolicyNotSatisfied) << pad;
  }
}

// A policy may require streamed text held per event (--stream-coalesce-ms):
// a server that streams token by token, or holds it less long, is refused.
TEST_F(RaTlsTest, StreamCoalescingBelowThePolicysFloorIsRefused) {
  for (uint32_t ms : {0u, 50u, 200u}) {
    claims_.serving.stream_coalesce_ms = ms;
    RaTlsIssuer issuer(attester_, claims_);
    const auto identity = issuer.Issue(now_).value();
    policy_.min_stream_coalesce_ms = 0;
    auto v = Verify(identity.cert);
    ASSERT_TRUE(v.ok()) << ms << ": " << v.detail();
    EXPECT_EQ(v->payload.serving.stream_coalesce_ms, ms);
    policy_.min_stream_coalesce_ms = 100;
    v = Verify(identity.cert);
    if (ms < 100) {
      ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << ms << ": " << v.detail();
      EXPECT_NE(v.detail().find("min_stream_coalesce_ms"), std::string::npos) << v.detail();
    } else {
      EXPECT_TRUE(v.ok()) << v.detail();
    }
  }
  claims_.serving.stream_coalesce_ms = 0;
}

// A plain listener beside the attested one (--debug-listen) needs the
// policy's consent; the claim cannot be stripped or added without breaking
// the binding.
TEST_F(RaTlsTest, DebugListenerNeedsThePolicysConsent) {
  claims_.serving = {};
  claims_.serving.debug_listener = true;
  policy_.allow_debug_listener = false;
  RaTlsIssuer issuer(attester_, claims_);
  const auto identity = issuer.Issue(now_).value();
  auto v = Verify(identity.cert);
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("allow_debug_listener"), std::string::npos) << v.detail();
  policy_.allow_unlocked_memory = policy_.allow_untrusted_disk_model = true;  // other consents do not count
  policy_.allow_metrics_keys = true;
  EXPECT_EQ(Verify(identity.cert).code(), ChannelErrc::kPolicyNotSatisfied);
  policy_.allow_debug_listener = true;
  v = Verify(identity.cert);
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_TRUE(v->payload.serving.debug_listener);
  auto payload = DecodePayload(*identity.cert.Extension(kAttestationExtensionOid)).value();
  payload.serving.debug_listener = false;
  VerifyOptions o;
  o.at = now_;
  EXPECT_EQ(VerifyPayloadForKey(payload, identity.cert.GetPublicKey()->ToSpkiDer(), policy_, o).code(),
            ChannelErrc::kCertEvidenceMismatch);
  // And added: a server without the listener cannot be made to look like one
  // that has it (nor the reverse), so a claim a client sees is the server's.
  claims_.serving = {};
  RaTlsIssuer plain(attester_, claims_);
  const auto plain_identity = plain.Issue(now_).value();
  auto added = DecodePayload(*plain_identity.cert.Extension(kAttestationExtensionOid)).value();
  added.serving.debug_listener = true;
  EXPECT_EQ(VerifyPayloadForKey(added, plain_identity.cert.GetPublicKey()->ToSpkiDer(), policy_, o).code(),
            ChannelErrc::kCertEvidenceMismatch);
}

// /metrics on the attested listener for the holders of named keys
// (--metrics-keys): refused without consent, accepted by allow_metrics_keys
// (any readers) or when every reader is in the policy's metrics_readers; the
// readers cannot be dropped, swapped or added without breaking the binding.
TEST_F(RaTlsTest, MetricsReadersNeedThePolicysConsentKeyByKey) {
  std::array<uint8_t, kDigestSize> a{}, b{}, c{};
  a.fill(0x0a), b.fill(0x0b), c.fill(0x0c);
  claims_.serving = {};
  claims_.serving.metrics_readers = {a, b};
  policy_.allow_debug_listener = policy_.allow_unlocked_memory = policy_.allow_untrusted_disk_model = true;
  RaTlsIssuer issuer(attester_, claims_);
  const auto identity = issuer.Issue(now_).value();
  auto v = Verify(identity.cert);
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find("metrics_readers"), std::string::npos) << v.detail();
  EXPECT_NE(v.detail().find("allow_metrics_keys"), std::string::npos) << v.detail();
  policy_.metrics_readers = {Bytes(a.begin(), a.end()), Bytes(c.begin(), c.end())};  // b not listed
  v = Verify(identity.cert);
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied) << v.detail();
  EXPECT_NE(v.detail().find(HexEncode(b)), std::string::npos) << v.detail();
  EXPECT_EQ(v.detail().find(HexEncode(a)), std::string::npos) << v.detail();
  policy_.metrics_readers.push_back(Bytes(b.begin(), b.end()));
  v = Verify(identity.cert);
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->payload.serving.metrics_readers, claims_.serving.metrics_readers);
  policy_.metrics_readers.clear();
  policy_.allow_metrics_keys = true;
  ASSERT_TRUE(Verify(identity.cert).ok());

  const auto payload = DecodePayload(*identity.cert.Extension(kAttestationExtensionOid)).value();
  VerifyOptions o;
  o.at = now_;
  for (const auto& readers : std::vector<std::vector<std::array<uint8_t, kDigestSize>>>{{}, {a}, {a, c}, {a, b, c}}) {
    auto forged = payload;
    forged.serving.metrics_readers = readers;
    EXPECT_EQ(VerifyPayloadForKey(forged, identity.cert.GetPublicKey()->ToSpkiDer(), policy_, o).code(),
              ChannelErrc::kCertEvidenceMismatch)
        << readers.size();
  }
}

// A server checking its clients (mutual mode): serving claims are a
// server's. A client's default payload is not held to the policy's serving
// keys (a floor above 512 used to refuse every client), and a client whose
// evidence makes a serving claim is refused even where a server's would pass.
TEST_F(RaTlsTest, ClientsAreNotAppraisedAsServers) {
  policy_.min_stream_pad = 1024;
  VerifyOptions o;
  o.at = now_;
  EXPECT_EQ(VerifyServerCertificate(identity_->cert, policy_, o).code(), ChannelErrc::kPolicyNotSatisfied);
  o.peer = PeerRole::kClient;
  auto v = VerifyServerCertificate(identity_->cert, policy_, o);
  ASSERT_TRUE(v.ok()) << v.detail();

  claims_.serving.debug_listener = true;
  policy_.allow_debug_listener = true;
  RaTlsIssuer claiming(attester_, claims_);
  const auto identity = claiming.Issue(now_).value();
  policy_.min_stream_pad = 512;
  o.peer = PeerRole::kServer;
  EXPECT_TRUE(VerifyServerCertificate(identity.cert, policy_, o).ok());
  o.peer = PeerRole::kClient;
  v = VerifyServerCertificate(identity.cert, policy_, o);
  ASSERT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied);
  EXPECT_NE(v.detail().find("a client's evidence makes serving claims"), std::string::npos) << v.detail();
  // Refused before its evidence is verified: with no platform key to verify
  // it under, the refusal is still the serving claim, not the evidence.
  policy_.sim_platform_keys.clear();
  EXPECT_EQ(VerifyServerCertificate(identity.cert, policy_, o).code(), ChannelErrc::kPolicyNotSatisfied);
  o.peer = PeerRole::kServer;
  EXPECT_EQ(VerifyServerCertificate(identity.cert, policy_, o).code(), ChannelErrc::kPlatformChainInvalid);
}

// Another machine's genuine hardware evidence, replayed under this key, is
// refused for its binding before its chain is checked: no certificates or
// collateral are given here, so verifying it would have failed on the chain
// (kPlatformChainInvalid, and a server in mutual mode would have paid for
// that verification). Evidence that does not parse still reaches the verifier.
TEST_F(RaTlsTest, ReplayedHardwareEvidenceIsRefusedBeforeItsChainIsChecked) {
  struct Sample {
    Platform platform;
    const char* file;
  };
  const Sample samples[] = {
      {Platform::kSnp, "testdata/attestation/snp/trustee_milan_v2_report.bin"},
      {Platform::kSnp, "testdata/attestation/snp/trustee_genoa_v3_e2e_evidence.json"},
      {Platform::kTdx, "testdata/attestation/tdx/trustee_v4_quote_4_fmspc50806f.dat"},
      {Platform::kTdx, "testdata/attestation/tdx/gotdxguest_v5_td15_quote_fmspc90c06f.dat"},
      {Platform::kCsv, "testdata/attestation/csv/trustee_csv_evidence_v1_chip_KPA64911240507.json"},
      {Platform::kCsv, "testdata/attestation/csv/trustee_csv_v1_report_4096B_chip_KPA64911240507.bin"},
      {Platform::kTpm, "testdata/attestation/tpm/trustee_swtpm_quote_evidence.json"},
      {Platform::kTpm, "testdata/attestation/tpm/azure_tdx_tpm_quote.json"},
  };
  const Bytes spki = identity_->cert.GetPublicKey()->ToSpkiDer();
  auto payload = DecodePayload(*identity_->cert.Extension(kAttestationExtensionOid)).value();
  policy_.platforms = {Platform::kSnp, Platform::kTdx, Platform::kCsv, Platform::kTpm};
  VerifyOptions o;
  o.at = now_;
  for (const Sample& sample : samples) {
    CLLM_SHARED_PATH(path, sample.file);
    const Bytes evidence = ReadFile(path).value();
    auto peeked = attestation::PeekReportData(sample.platform, evidence);
    ASSERT_TRUE(peeked.ok()) << sample.file << ": " << peeked.detail();
    ASSERT_EQ(peeked->size(), 64u) << sample.file;
    auto replayed = payload;
    replayed.platform = attestation::PlatformName(sample.platform);
    replayed.evidence = evidence;
    auto v = VerifyPayloadForKey(replayed, spki, policy_, o);
    EXPECT_EQ(v.code(), ChannelErrc::kCertEvidenceMismatch) << sample.file << ": " << v.detail();
    EXPECT_NE(v.detail().find(HexEncode(*peeked).substr(0, 32)), std::string::npos) << v.detail();
    replayed.evidence.resize(replayed.evidence.size() / 2);  // unparseable: the verifier reports it
    EXPECT_EQ(VerifyPayloadForKey(replayed, spki, policy_, o).code(), ChannelErrc::kPlatformChainInvalid)
        << sample.file;
  }
}

TEST_F(RaTlsTest, SimulatedServerNeedsAPolicyThatAllowsIt) {
  policy_.platforms = {Platform::kSnp, Platform::kTdx};
  auto v = Verify(identity_->cert);
  EXPECT_EQ(v.code(), ChannelErrc::kPolicyNotSatisfied);
  EXPECT_NE(v.detail().find("simulated_not_allowed"), std::string::npos) << v.detail();
}

TEST_F(RaTlsTest, EvidenceFromAnUnpinnedPlatformIsAChainError) {
  policy_.sim_platform_keys = {attestation::sim::GenerateSimPlatformKey().value().public_key()};
  EXPECT_EQ(Verify(identity_->cert).code(), ChannelErrc::kPlatformChainInvalid);
}

TEST_F(RaTlsTest, PlainCertificatesAndStaleOnesAreRefused) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  crypto::CertSpec spec;
  spec.common_name = "plain";
  spec.not_before = now_ - std::chrono::minutes(1);
  spec.not_after = now_ + std::chrono::minutes(10);
  auto plain = crypto::IssueCertificate(spec, key.public_key(), key, nullptr).value();
  EXPECT_EQ(Verify(plain).code(), ChannelErrc::kNoEvidence);
  now_ += std::chrono::hours(2);  // past the certificate's validity
  EXPECT_EQ(Verify(identity_->cert).code(), ChannelErrc::kStale);
}

// An issue time so far ahead that, as nanoseconds, it wraps the clock to
// "now" is no issue time (found by review: 2^64 ns past now passed).
TEST_F(RaTlsTest, AnIssueTimePastTheClocksRangeIsRefused) {
  auto spki = identity_->cert.GetPublicKey()->ToSpkiDer();
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now_.time_since_epoch()).count();
  Bytes wrapped(8);
  uint64_t v = static_cast<uint64_t>(now_s) + 18446744074ull;  // now + 2^64 ns, in seconds
  for (int i = 7; i >= 0; --i, v >>= 8) wrapped[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
  auto payload = issuer_->PayloadFor(spki, wrapped).value();
  VerifyOptions o;
  o.at = now_;
  auto r = VerifyPayloadForKey(payload, spki, policy_, o);
  EXPECT_EQ(r.code(), ChannelErrc::kStale) << (r.ok() ? "accepted" : r.detail());
  EXPECT_TRUE(VerifyPayloadForKey(issuer_->PayloadFor(spki, TimestampFreshness(now_)).value(), spki, policy_, o).ok());
}

// The certificate's common name holds at most 32 bytes of the model's name,
// cut between characters (found by review: a cut inside "é" made the
// certificate, and the server's start, fail).
TEST_F(RaTlsTest, ALongUtf8ModelNameIsCutBetweenCharacters) {
  ServerClaims claims = claims_;
  claims.model_name = "a";
  for (int i = 0; i < 20; ++i) claims.model_name += "\xc3\xa9";
  RaTlsIssuer issuer(attester_, claims);
  auto id = issuer.Issue(now_);
  ASSERT_TRUE(id.ok()) << id.detail();
  auto v = Verify(id->cert);
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->payload.model_name, claims.model_name);
}

// The platform name is the server's (unverified) bytes: an error quoting it
// carries no terminal controls and stays UTF-8 (found by review: an escape
// sequence reached the user's terminal).
TEST_F(RaTlsTest, AnUnknownPlatformIsQuotedEscaped) {
  auto spki = identity_->cert.GetPublicKey()->ToSpkiDer();
  auto payload = issuer_->PayloadFor(spki, TimestampFreshness(now_)).value();
  payload.platform = "\x1b[2J\xff";
  VerifyOptions o;
  o.at = now_;
  auto r = VerifyPayloadForKey(payload, spki, policy_, o);
  ASSERT_EQ(r.code(), ChannelErrc::kMalformed);
  EXPECT_EQ(r.detail().find('\x1b'), std::string::npos) << r.detail();
  EXPECT_NE(r.detail().find("\\x1b[2J\\xff"), std::string::npos) << r.detail();
}

TEST_F(RaTlsTest, NonceModeRequiresOurNonce) {
  Bytes nonce(32, 0x77);
  auto spki = identity_->cert.GetPublicKey()->ToSpkiDer();
  auto payload = issuer_->PayloadFor(spki, nonce).value();
  VerifyOptions o;
  o.at = now_;
  o.expected_freshness = nonce;
  EXPECT_TRUE(VerifyPayloadForKey(payload, spki, policy_, o).ok());
  o.expected_freshness = Bytes(32, 0x78);
  EXPECT_EQ(VerifyPayloadForKey(payload, spki, policy_, o).code(), ChannelErrc::kStale);
}

// Over a real TLS 1.3 handshake: success records the server, refusal keeps
// the typed error.
std::pair<bool, std::shared_ptr<PeerVerdict>> Handshake(const crypto::TlsIdentity& id, const attestation::Policy& p) {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto server_ctx = crypto::TlsContext::Server(id).value();
  auto verdict = std::make_shared<PeerVerdict>();
  auto client_ctx = crypto::TlsContext::Client(MakePeerVerifier(p, verdict)).value();
  auto server = std::async(std::launch::async, [&] {
    auto s = crypto::TlsSession::Handshake(server_ctx, fds[0]);
    ::close(fds[0]);  // a refused client must not leave the server blocked
    return s.ok();
  });
  auto c = crypto::TlsSession::Handshake(client_ctx, fds[1], "localhost");
  ::close(fds[1]);
  server.wait();
  return {c.ok(), verdict};
}

TEST_F(RaTlsTest, HandshakeAcceptsTheAttestedServerAndRefusesOthers) {
  auto [ok, verdict] = Handshake(*identity_, policy_);
  EXPECT_TRUE(ok);
  ASSERT_TRUE(verdict->server.has_value());
  EXPECT_EQ(verdict->server->payload.model_name, "stories260K");

  policy_.model_digests = {Bytes(32, 0xAA)};
  auto [refused, why] = Handshake(*identity_, policy_);
  EXPECT_FALSE(refused);
  ASSERT_TRUE(why->error.has_value());
  EXPECT_EQ(why->error->code, ChannelErrc::kPolicyNotSatisfied);
}

TEST_F(RaTlsTest, MutualModeRequiresAndVerifiesClientEvidence) {
  // The client has its own (simulated) TEE and identity.
  auto client_platform = attestation::sim::GenerateSimPlatformKey().value();
  auto client_attester = std::make_shared<attestation::sim::SimAttester>(
      attestation::sim::SimAttester::Create(client_platform).value());
  ServerClaims client_claims;
  client_claims.model_name = "client";
  RaTlsIssuer client_issuer(client_attester, client_claims);
  auto client_id = client_issuer.Issue(now_).value();

  attestation::Policy client_policy = attestation::Policy::Default();
  client_policy.platforms = {Platform::kSim};
  client_policy.sim_platform_keys = {client_platform.public_key()};
  // Serving keys are a server's: a floor above the default does not refuse
  // clients (whose evidence makes no serving claims).
  client_policy.min_stream_pad = 1024;

  auto run = [&](std::optional<crypto::TlsIdentity> presented) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    auto server_verdict = std::make_shared<PeerVerdict>();
    auto server_ctx = crypto::TlsContext::Server(*identity_, MakePeerVerifier(client_policy, server_verdict, nullptr,
                                                                                    PeerRole::kClient))
                         .value();
    auto verdict = std::make_shared<PeerVerdict>();
    auto client_ctx = crypto::TlsContext::Client(MakePeerVerifier(policy_, verdict), presented).value();
    auto server = std::async(std::launch::async, [&] {
      auto s = crypto::TlsSession::Handshake(server_ctx, fds[0]);
      // TLS 1.3: the client finishes before the server has checked its
      // certificate; the server's refusal shows on the server side.
      ::close(fds[0]);
      return s.ok();
    });
    auto c = crypto::TlsSession::Handshake(client_ctx, fds[1], "localhost");
    bool server_ok = server.get();
    ::close(fds[1]);
    return std::make_pair(server_ok, server_verdict);
  };
  auto [accepted, v] = run(client_id);
  EXPECT_TRUE(accepted);
  ASSERT_TRUE(v->server.has_value());
  EXPECT_EQ(v->server->payload.model_name, "client");

  auto [anonymous, v2] = run(std::nullopt);
  EXPECT_FALSE(anonymous);  // no client certificate: refused

  client_policy.sim_platform_keys = {attestation::sim::GenerateSimPlatformKey().value().public_key()};
  auto [untrusted, v3] = run(client_id);
  EXPECT_FALSE(untrusted);
  ASSERT_TRUE(v3->error.has_value());
  EXPECT_EQ(v3->error->code, ChannelErrc::kPlatformChainInvalid);
}

}  // namespace
}  // namespace cllm::channel
