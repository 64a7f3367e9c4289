// The "any genuine CVM is accepted" attack (issue #11 item 1), at the unit
// level: real hardware evidence that passes every signature and chain check
// is still refused by a client policy that does not pin its launch values —
// and each open value is named with the value seen and how to pin it.
//
// SNP and TDX go through the full verifiers on real samples (injected
// clock, see /work/shared/testdata/attestation/*/PROVENANCE.md). The real
// CSV and TPM samples cannot be fully verified offline (CSV: the HSK/CEK of
// that chip are not public; TPM: the AK anchor needs hardware collateral), so
// for those the measurement is parsed from the real report / TPMS_ATTEST and
// wrapped as verified evidence; pinning looks at nothing else.
#include "attestation/pinning.h"

#include <gtest/gtest.h>

#include "attestation/csv/csv_report.h"
#include "attestation/internal/verifier_pass.h"  // CSV/TPM/sim evidence built from parsed real values
#include "attestation/tpm/tpm_quote.h"
#include "attestation/verify.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/time.h"
#include "support/shared_data.h"

namespace cllm::attestation {
namespace {

Bytes Load(const std::filesystem::path& p) {
  auto b = ReadFile(p, 1 << 22);
  EXPECT_TRUE(b.ok()) << p;
  return b.ok() ? std::move(b).value() : Bytes{};
}

crypto::TimePoint At(const char* text) { return ParseRfc3339(text).value(); }

VerifiedEvidence Wrap(Platform platform, Bytes measurement) {
  VerifiedEvidence::Data d;
  d.platform = platform;
  d.simulated = platform == Platform::kSim;
  d.measurement = std::move(measurement);
  d.report_data = Bytes(64, 0);
  return VerifiedEvidence(VerifierPass::Issue(), std::move(d));
}

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::vector<std::string> Names(const std::vector<UnpinnedValue>& open) {
  std::vector<std::string> out;
  for (const auto& u : open) out.push_back(u.name);
  return out;
}

const Bytes kModel(32, 0xab);

TEST(PinningTest, GenuineSnpWithDefaultPolicyIsRefusedNamingMeasurementAndModel) {
  CLLM_SHARED_PATH(report, "testdata/attestation/snp/trustee_genoa_v3_report.bin");
  CLLM_SHARED_PATH(vcek, "testdata/attestation/snp/trustee_genoa_v3_vcek.der");
  CLLM_SHARED_PATH(chain, "testdata/attestation/snp/amd_genoa_ask_ark_vcek_chain.pem");
  const Bytes ev = Load(report);
  EvidenceInput in;
  in.evidence = ev;
  in.cert_files = {Load(vcek), Load(chain)};
  in.at = At("2026-01-01T00:00:00Z");  // inside the VCEK's validity
  auto v = VerifyEvidence(Platform::kSnp, in);
  ASSERT_TRUE(v.ok()) << v.detail();
  const std::string seen = HexEncode(v->data().measurement);

  // The default client policy appraises it fine: genuine, not debug, ...
  Policy policy = Policy::Default();
  policy.tcb_statuses.insert(v->data().tcb_status);
  ASSERT_TRUE(Appraise(*v, policy).ok());
  // ... but pins nothing, so a client must refuse it.
  PinningSubject subject = SubjectOf(v->data());
  subject.model_digest = kModel;
  EXPECT_EQ(Names(FindUnpinned(policy, subject)), (std::vector<std::string>{"SNP MEASUREMENT", "model digest"}));
  EXPECT_TRUE(NothingPinned(policy, subject));
  auto st = CheckPinned(policy, subject);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), AttestErrc::kNotPinned);
  EXPECT_TRUE(Has(st.detail(), "SNP MEASUREMENT is not pinned: the server reported " + seen)) << st.detail();
  EXPECT_TRUE(Has(st.detail(), "cllm policy pin --snp-measurement HEX")) << st.detail();
  EXPECT_TRUE(Has(st.detail(), "model digest is not pinned: the server reported " + HexEncode(kModel)));
  EXPECT_TRUE(Has(st.detail(), "cllm policy pin --model FILE"));

  // Pinning the measurement leaves the model; pinning both passes.
  policy.per_platform[Platform::kSnp].measurements = {v->data().measurement};
  EXPECT_EQ(Names(FindUnpinned(policy, subject)), (std::vector<std::string>{"model digest"}));
  EXPECT_FALSE(NothingPinned(policy, subject));
  policy.model_digests = {kModel};
  EXPECT_TRUE(CheckPinned(policy, subject).ok());
  // Offline evidence carries no model digest: the measurement alone suffices.
  policy.model_digests.clear();
  EXPECT_TRUE(CheckPinned(policy, SubjectOf(v->data())).ok());
}

TEST(PinningTest, TdxMrtdAloneIsNotEnoughRtmrsMustBePinned) {
  CLLM_SHARED_PATH(quote, "testdata/attestation/tdx/gotdxguest_v5_td15_quote_fmspc90c06f.dat");
  CLLM_SHARED_PATH(coll, "testdata/attestation/tdx/dcapqvl_collateral_fmspc90c06f_2026-02-18.json");
  const Bytes ev = Load(quote);
  EvidenceInput in;
  in.evidence = ev;
  in.collateral = Load(coll);
  in.at = At("2026-03-01T00:00:00Z");
  auto v = VerifyEvidence(Platform::kTdx, in);
  ASSERT_TRUE(v.ok()) << v.detail();
  const auto& d = v->data();
  Policy policy = Policy::Default();
  const PinningSubject subject = SubjectOf(d);
  EXPECT_EQ(Names(FindUnpinned(policy, subject)),
            (std::vector<std::string>{"TDX MRTD", "TDX RTMR0", "TDX RTMR1", "TDX RTMR2", "TDX RTMR3"}));
  auto st = CheckPinned(policy, subject, "the evidence");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Has(st.detail(), "TDX MRTD is not pinned: the evidence reported " + HexEncode(d.measurement)));
  EXPECT_TRUE(Has(st.detail(), "TDX RTMR2 is not pinned: the evidence reported " + d.fields.at("rtmr2")));
  EXPECT_TRUE(Has(st.detail(), "--tdx-rtmr3 HEX"));

  // The attack: pin only MRTD (the firmware) and boot any kernel/OS on it.
  policy.per_platform[Platform::kTdx].measurements = {d.measurement};
  EXPECT_EQ(Names(FindUnpinned(policy, subject)),
            (std::vector<std::string>{"TDX RTMR0", "TDX RTMR1", "TDX RTMR2", "TDX RTMR3"}));
  for (int i = 0; i < 3; ++i) {
    const std::string key = "rtmr" + std::to_string(i);
    policy.per_platform[Platform::kTdx].fields[key] = d.fields.at(key);
  }
  EXPECT_EQ(Names(FindUnpinned(policy, subject)), (std::vector<std::string>{"TDX RTMR3"}));
  policy.per_platform[Platform::kTdx].fields["rtmr3"] = d.fields.at("rtmr3");
  EXPECT_TRUE(CheckPinned(policy, subject).ok());
  EXPECT_TRUE(Appraise(*v, policy).ok());  // and Appraise compares the pinned values
}

TEST(PinningTest, CsvLaunchDigestMustBePinned) {
  CLLM_SHARED_PATH(report, "testdata/attestation/csv/trustee_csv_v1_report_4096B_chip_KPA64911240507.bin");
  auto rep = csv::ParseCsvReport(Load(report));
  ASSERT_TRUE(rep.ok()) << rep.detail();
  const Bytes measure(rep->measure.begin(), rep->measure.end());
  auto v = Wrap(Platform::kCsv, measure);
  Policy policy = Policy::Default();
  auto st = CheckPinned(policy, SubjectOf(v.data()));
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Has(st.detail(), "CSV launch digest is not pinned: the server reported " + HexEncode(measure)));
  EXPECT_TRUE(Has(st.detail(), "--csv-measurement HEX"));
  policy.per_platform[Platform::kCsv].measurements = {measure};
  EXPECT_TRUE(CheckPinned(policy, SubjectOf(v.data())).ok());
}

TEST(PinningTest, TpmPcrDigestMustBePinned) {
  CLLM_SHARED_PATH(attest, "testdata/attestation/tpm/trustee_swtpm_quote_tpms_attest.bin");
  auto a = tpm::ParseTpmsAttest(Load(attest));
  ASSERT_TRUE(a.ok()) << a.detail();
  auto v = Wrap(Platform::kTpm, a->pcr_digest);
  Policy policy = Policy::Default();
  PinningSubject subject = SubjectOf(v.data());
  subject.model_digest = kModel;
  EXPECT_EQ(Names(FindUnpinned(policy, subject)),
            (std::vector<std::string>{"TPM PCR digest", "TPM vTPM provider's SNP or TDX measurement", "model digest"}));
  auto st = CheckPinned(policy, subject);
  EXPECT_TRUE(Has(st.detail(), "TPM PCR digest is not pinned: the server reported " + HexEncode(a->pcr_digest)));
  policy.per_platform[Platform::kTpm].measurements = {a->pcr_digest};
  policy.model_digests = {kModel};
  EXPECT_EQ(Names(FindUnpinned(policy, subject)),
            (std::vector<std::string>{"TPM vTPM provider's SNP or TDX measurement"}));
  policy.per_platform[Platform::kTpm].fields["snp.measurement"] = std::string(96, 'a');
  EXPECT_TRUE(CheckPinned(policy, subject).ok());
}

// A vTPM's key is vouched for by a hardware report any guest of that TEE
// could have asked for, binding a key of its own (found by review): the
// PCR digest, signed by that key, proves nothing alone. The provider's
// (paravisor's) launch measurement must be pinned too, for the TEE the
// evidence names.
TEST(PinningTest, TpmNeedsTheVtpmProvidersMeasurementOfItsTee) {
  auto v = Wrap(Platform::kTpm, Bytes(32, 0x11));
  PinningSubject subject = SubjectOf(v.data());
  subject.fields["hcl.report_type"] = "snp";
  subject.fields["snp.measurement"] = std::string(96, 'b');
  Policy policy = Policy::Default();
  policy.per_platform[Platform::kTpm].measurements = {Bytes(32, 0x11)};
  auto st = CheckPinned(policy, subject);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Has(st.detail(), "TPM vTPM provider's SNP measurement is not pinned: the server reported " +
                                   std::string(96, 'b')))
      << st.detail();
  EXPECT_TRUE(Has(st.detail(), "--tpm-hcl-snp-measurement"));
  policy.per_platform[Platform::kTpm].fields["tdx.measurement"] = std::string(96, 'b');
  EXPECT_FALSE(CheckPinned(policy, subject).ok()) << "the other TEE's pin does not count";
  policy.per_platform[Platform::kTpm].fields["snp.measurement"] = std::string(96, 'b');
  EXPECT_TRUE(CheckPinned(policy, subject).ok());
}

// Sim is an explicit opt-in (platform listed + key pinned); its measurement
// is whatever the key holder signs, so only the model digest is required.
TEST(PinningTest, SimNeedsOnlyTheModelDigest) {
  auto v = Wrap(Platform::kSim, Bytes(48, 0x5a));
  Policy policy;
  policy.platforms = {Platform::kSim};
  PinningSubject subject = SubjectOf(v.data());
  EXPECT_TRUE(CheckPinned(policy, subject).ok());  // offline sim report: no model digest to ask for
  subject.model_digest = kModel;
  auto st = CheckPinned(policy, subject);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(Names(FindUnpinned(policy, subject)), (std::vector<std::string>{"model digest"}));
  EXPECT_TRUE(Has(st.detail(), "model digest is not pinned: the server reported " + HexEncode(kModel)));
  policy.model_digests = {Bytes(32, 0x01)};  // some model pinned: pinning is satisfied, Connect compares
  EXPECT_TRUE(CheckPinned(policy, subject).ok());
}

TEST(PinningTest, PinnedMeasurementOfAnotherPlatformDoesNotCount) {
  CLLM_SHARED_PATH(report, "testdata/attestation/csv/trustee_csv_v1_report_4096B_chip_KPA64911240507.bin");
  auto rep = csv::ParseCsvReport(Load(report));
  ASSERT_TRUE(rep.ok());
  auto v = Wrap(Platform::kCsv, Bytes(rep->measure.begin(), rep->measure.end()));
  Policy policy = Policy::Default();
  policy.per_platform[Platform::kSnp].measurements = {Bytes(48, 1)};
  EXPECT_EQ(Names(FindUnpinned(policy, SubjectOf(v.data()))), (std::vector<std::string>{"CSV launch digest"}));
}

}  // namespace
}  // namespace cllm::attestation
