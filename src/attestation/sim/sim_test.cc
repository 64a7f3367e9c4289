// The simulated TEE: report layout, signing, verification and the rule that
// its evidence is never accepted unless a policy explicitly allows it.
#include <gtest/gtest.h>

#include "attestation/policy.h"
#include "attestation/sim/sim_attester.h"
#include "attestation/sim/sim_report.h"
#include "attestation/verify.h"
#include "crypto/keys.h"

namespace cllm::attestation::sim {
namespace {

class SimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = GenerateSimPlatformKey().value();
    SimAttesterOptions o;
    o.measurement.emplace();
    o.measurement->fill(0xAB);
    o.tcb = {1, 2, 3, 4};
    attester_.emplace(SimAttester::Create(*key_, o).value());
    report_data_.assign(64, 0x5A);
    evidence_ = attester_->GetEvidence(report_data_).value();
  }

  AttestResult<VerifiedEvidence> Verify(ByteSpan evidence) {
    EvidenceInput in;
    in.evidence = evidence;
    in.sim_platform_keys.push_back(key_->public_key());
    in.trace = &trace_;
    auto v = VerifyEvidence(Platform::kSim, in);
    // What the verifier reports as report_data, the unverified peek reads too.
    if (v.ok()) {
      auto peeked = PeekReportData(Platform::kSim, evidence);
      EXPECT_TRUE(peeked.ok() && *peeked == v->data().report_data) << peeked.detail();
    }
    return v;
  }

  std::optional<crypto::PrivateKey> key_;
  std::optional<SimAttester> attester_;
  Bytes report_data_;
  Bytes evidence_;
  std::vector<CheckStep> trace_;
};

TEST_F(SimTest, RoundTripExposesFieldsAndIsLabelledSimulated) {
  ASSERT_EQ(evidence_.size(), kSimReportSize);
  EXPECT_EQ(SniffPlatform(evidence_), Platform::kSim);
  auto v = Verify(evidence_);
  ASSERT_TRUE(v.ok()) << v.detail();
  const auto& d = v->data();
  EXPECT_EQ(d.platform, Platform::kSim);
  EXPECT_TRUE(d.simulated);
  EXPECT_EQ(d.report_data, report_data_);
  EXPECT_EQ(d.measurement, Bytes(48, 0xAB));
  EXPECT_FALSE(d.debug);
  EXPECT_EQ(d.tcb.at("sim.microcode"), 4u);
  ASSERT_EQ(trace_.size(), 3u);
  for (const auto& s : trace_) {
    EXPECT_TRUE(s.ok);
    EXPECT_NE(s.detail.find("SIMULATED"), std::string::npos) << s.name;
  }
}

TEST_F(SimTest, EverySignedByteIsCovered) {
  // Flip one byte in each field group; reserved bytes are rejected by the
  // parser, everything else by the signature.
  struct Case {
    size_t offset;
    AttestErrc want;
  };
  for (Case c : {Case{0x004, AttestErrc::kUnsupportedVersion}, Case{0x008, AttestErrc::kReservedNonZero},
                 Case{0x010, AttestErrc::kBadSignature}, Case{0x014, AttestErrc::kReservedNonZero},
                 Case{0x020, AttestErrc::kBadSignature}, Case{0x050, AttestErrc::kBadSignature},
                 Case{0x090, AttestErrc::kBadSignature}, Case{0x0B0, AttestErrc::kChainInvalid},
                 Case{0x0F0, AttestErrc::kReservedNonZero}, Case{0x100, AttestErrc::kUnsupportedVersion},
                 Case{0x104, AttestErrc::kReservedNonZero}, Case{0x110, AttestErrc::kBadSignature},
                 Case{0x16F, AttestErrc::kBadSignature}}) {
    Bytes bad = evidence_;
    bad[c.offset] ^= 0x02;  // bit 1: policy bit 0 (debug) would be a valid, signed change
    auto v = Verify(bad);
    EXPECT_EQ(v.code(), c.want) << "offset 0x" << std::hex << c.offset << ": " << v.detail();
  }
}

TEST_F(SimTest, MalformedInputIsRejectedNotCrashed) {
  EXPECT_EQ(Verify(ByteSpan(evidence_).first(100)).code(), AttestErrc::kMalformed);
  Bytes longer = evidence_;
  longer.push_back(0);
  EXPECT_EQ(Verify(longer).code(), AttestErrc::kMalformed);
  Bytes bad_magic = evidence_;
  bad_magic[0] = 'X';
  EXPECT_EQ(Verify(bad_magic).code(), AttestErrc::kMalformed);
  EXPECT_EQ(Verify({}).code(), AttestErrc::kMalformed);
}

TEST_F(SimTest, OnlyPinnedPlatformKeysAreTrusted) {
  EvidenceInput in;
  in.evidence = evidence_;
  auto none = VerifyEvidence(Platform::kSim, in);
  EXPECT_EQ(none.code(), AttestErrc::kChainInvalid);
  EXPECT_NE(none.detail().find("no sim platform key is pinned"), std::string::npos);
  in.sim_platform_keys.push_back(GenerateSimPlatformKey().value().public_key());
  EXPECT_EQ(VerifyEvidence(Platform::kSim, in).code(), AttestErrc::kChainInvalid);
}

TEST_F(SimTest, ForgedReportWithAnotherKeyButCopiedPlatformIdFails) {
  auto other = GenerateSimPlatformKey().value();
  SimReport rep = ParseSimReport(evidence_).value();
  Bytes forged = SignSimReport(rep, other).value();
  // Put back the genuine platform id: the signature no longer verifies.
  std::copy(evidence_.begin() + 0xB0, evidence_.begin() + 0xF0, forged.begin() + 0xB0);
  EXPECT_EQ(Verify(forged).code(), AttestErrc::kBadSignature);
  ASSERT_FALSE(trace_.empty());
  EXPECT_FALSE(trace_.back().ok);
}

TEST_F(SimTest, AttesterRejectsWrongReportDataSize) {
  EXPECT_EQ(attester_->GetEvidence(Bytes(32, 1)).code(), AttestErrc::kMalformed);
}

TEST_F(SimTest, SimulatedEvidenceNeedsAPolicyThatAllowsIt) {
  auto v = Verify(evidence_).value();
  auto refused = Appraise(v, Policy::Default());
  EXPECT_EQ(refused.code(), AttestErrc::kSimulatedNotAllowed);
  EXPECT_NE(refused.detail().find("[SIMULATED TEE]"), std::string::npos);
  Policy p = Policy::Default();
  p.platforms.insert(Platform::kSim);
  auto claims = Appraise(v, p);
  ASSERT_TRUE(claims.ok()) << claims.detail();
  EXPECT_TRUE(claims->simulated());
  EXPECT_EQ(claims->platform(), Platform::kSim);
}

TEST_F(SimTest, DebugBitIsSignedAndRefusedByDefault) {
  SimAttesterOptions o;
  o.measurement.emplace();
  o.debug = true;
  auto dbg = SimAttester::Create(*key_, o).value();
  auto v = Verify(dbg.GetEvidence(report_data_).value());
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_TRUE(v->data().debug);
  Policy p = Policy::Default();
  p.platforms = {Platform::kSim};
  EXPECT_EQ(Appraise(*v, p).code(), AttestErrc::kDebugEnabled);
  p.allow_debug = true;
  EXPECT_TRUE(Appraise(*v, p).ok());
}

}  // namespace
}  // namespace cllm::attestation::sim
