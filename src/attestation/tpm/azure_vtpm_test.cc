// Azure vTPM on SEV-SNP / TDX: the HCL report binding and the whole verifier
// on the shared samples (PROVENANCE P1-P4, N-P1..N-P4). The hardware report
// itself is checked by the SNP / TDX verifiers through VerifyEvidence; where
// this build has none, the verifier must stop there with kUnavailable (fail
// closed) after every TPM-side check passed.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "attestation/policy.h"
#include "attestation/tpm/hcl_report.h"
#include "attestation/tpm/tpm_verify.h"
#include "attestation/verify.h"
#include "base/encoding.h"
#include "base/file.h"
#include "support/shared_data.h"

namespace cllm::attestation::tpm {
namespace {

constexpr char kDir[] = "testdata/attestation/tpm/";
constexpr char kAnchorStep[] = "AK anchored in hardware";

Bytes Load(const std::filesystem::path& p) { return ReadFile(p).value(); }

// 2025-06-01T00:00:00Z: inside the VCEK validity of the Azure samples.
crypto::TimePoint At() { return std::chrono::system_clock::time_point(std::chrono::seconds(1748736000)); }

bool HaveVerifier(Platform p) {
  EvidenceInput in;
  return VerifyEvidence(p, in).code() != AttestErrc::kUnavailable;
}

struct AzureRun {
  AttestResult<VerifiedEvidence> result;
  std::vector<CheckStep> trace;
};

AzureRun Verify(ByteSpan evidence, std::vector<Bytes> certs) {
  AzureRun run{MakeError(AttestErrc::kInternal, "not run"), {}};
  EvidenceInput in;
  in.evidence = evidence;
  in.cert_files = std::move(certs);
  in.at = At();
  in.trace = &run.trace;
  run.result = VerifyEvidence(Platform::kTpm, in);
  // What the verifier reports as report_data, the unverified peek reads too.
  if (run.result.ok()) {
    auto peeked = PeekReportData(Platform::kTpm, evidence);
    EXPECT_TRUE(peeked.ok() && *peeked == run.result->data().report_data) << peeked.detail();
  }
  return run;
}

const CheckStep* FindStep(const AzureRun& run, const std::string& name) {
  for (const auto& s : run.trace) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// The TPM-side checks all passed; the outcome is then the hardware verifier's.
void ExpectValidOrHardwarePending(const AzureRun& run, Platform hw) {
  for (const char* name : {"TPMS_ATTEST structure", "HCL report structure", "HCL runtime data bound to REPORT_DATA",
                           "quote signature by the AK", "pcrDigest over the supplied PCR values"}) {
    const CheckStep* s = FindStep(run, name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_TRUE(s->ok) << name << ": " << s->detail;
  }
  if (!HaveVerifier(hw)) {
    ASSERT_FALSE(run.result.ok());
    EXPECT_EQ(run.result.code(), AttestErrc::kUnavailable) << run.result.detail();
    EXPECT_EQ(run.trace.back().name, kAnchorStep);
  } else {
    ASSERT_TRUE(run.result.ok()) << run.result.detail();
  }
}

TEST(AzureHclTest, ParsesAllThreeReports) {
  struct Case {
    const char* file;
    uint32_t version, type;
    const char* vm_id;
  };
  for (const Case& c : {Case{"azure_snp_milan_hcl_report.bin", 1, kHclReportTypeSnp,
                             "911B0EF8-9DBA-48B0-B275-4E4DF2D39252"},
                        Case{"azure_snp_genoa_hcl_report.bin", 2, kHclReportTypeSnp,
                             "390CBCF5-6C67-4D9B-98EF-C3F1699CC8FC"},
                        Case{"azure_tdx_hcl_report.bin", 2, kHclReportTypeTdx,
                             "6332533D-5649-4D02-8AA7-8F64B7C3EE21"}}) {
    CLLM_SHARED_PATH(p, std::string(kDir) + c.file);
    auto h = ParseHclReport(Load(p));
    ASSERT_TRUE(h.ok()) << c.file << ": " << h.detail();
    EXPECT_EQ(h->version, c.version);
    EXPECT_EQ(h->report_type, c.type);
    EXPECT_EQ(h->hardware_report.size(), c.type == kHclReportTypeSnp ? 1184u : 1024u);
    EXPECT_EQ(h->vm_unique_id, c.vm_id);
    EXPECT_EQ(h->ak->type(), crypto::KeyType::kRsa);
    EXPECT_EQ(h->ak->Bits(), 2048);
    EXPECT_TRUE(CheckRuntimeDataBinding(*h).ok()) << c.file;
  }
  CLLM_SHARED_PATH(tdx, std::string(kDir) + "azure_tdx_hcl_report.bin");
  auto h = ParseHclReport(Load(tdx)).value();
  EXPECT_EQ(HexEncode(ByteSpan(h.report_data).first(32)),
            "9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839");
}

TEST(AzureHclTest, StructuralMutations) {
  CLLM_SHARED_PATH(p, std::string(kDir) + "azure_snp_milan_hcl_report.bin");
  const Bytes good = Load(p);
  Bytes magic = good;
  magic[0] = 'X';
  EXPECT_EQ(ParseHclReport(magic).code(), AttestErrc::kMalformed);
  Bytes size = good;
  size[0x4D0] ^= 1;  // variable_data_size disagrees with data_size
  EXPECT_EQ(ParseHclReport(size).code(), AttestErrc::kMalformed);
  Bytes type = good;
  type[0x4C8] = 3;
  EXPECT_EQ(ParseHclReport(type).code(), AttestErrc::kUnsupportedVersion);
  Bytes hash = good;
  hash[0x4CC] = 2;
  EXPECT_EQ(ParseHclReport(hash).code(), AttestErrc::kUnsupportedVersion);
  EXPECT_EQ(ParseHclReport(ByteSpan(good).first(0x600)).code(), AttestErrc::kMalformed);
  // N-P3: a NUL inside the runtime data JSON: the AK cannot be read.
  Bytes nul = good;
  nul[0x540] = 0;
  EXPECT_EQ(ParseHclReport(nul).code(), AttestErrc::kMalformed);
  // The hardware REPORT_DATA no longer matches the runtime data.
  Bytes rd = good;
  rd[0x70] ^= 1;
  EXPECT_EQ(CheckRuntimeDataBinding(ParseHclReport(rd).value()).code(), AttestErrc::kBindingMismatch);
}

// P1: Azure SNP (Milan), quote JSON + HCL report + VCEK/ASK/ARK.
TEST(AzureVtpmTest, SnpMilanQuote) {
  CLLM_SHARED_PATH(quote, std::string(kDir) + "azure_snp_milan_tpm_quote.json");
  CLLM_SHARED_PATH(hcl, std::string(kDir) + "azure_snp_milan_hcl_report.bin");
  CLLM_SHARED_PATH(vcek, std::string(kDir) + "azure_snp_milan_vcek_ask_ark.pem");
  const Bytes ev = Load(quote);
  EXPECT_EQ(SniffPlatform(ev), Platform::kTpm);
  AzureRun run = Verify(ev, {Load(hcl), Load(vcek)});
  ExpectValidOrHardwarePending(run, Platform::kSnp);
  if (run.result.ok()) {
    const auto& d = run.result->data();
    EXPECT_EQ(d.platform, Platform::kTpm);
    Bytes want = ToBytes("challenge");
    want.resize(64, 0);
    EXPECT_EQ(d.report_data, want);
    EXPECT_EQ(d.fields.at("extra_data"), "6368616c6c656e6765");
    EXPECT_EQ(d.fields.at("pcr0"), "f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be");
    EXPECT_EQ(d.fields.at("pcr23").size(), 64u);
    EXPECT_EQ(d.measurement, HexDecode(d.fields.at("pcr_digest")).value());
    EXPECT_EQ(d.fields.at("hcl.report_type"), "snp");
    EXPECT_EQ(d.fields.at("hcl.user_data"), std::string(128, '0'));
    EXPECT_EQ(d.fields.at("firmware_version"), std::to_string(0x2020031200120003ull));
    // Appraisal sees the SNP platform's TCB status through the vTPM: SNP has
    // no status source, so the default policy refuses until a floor is pinned.
    EXPECT_EQ(d.tcb_status, TcbStatus::kNotEvaluated);
    EXPECT_EQ(Appraise(*run.result, Policy::Default()).code(), AttestErrc::kTcbTooLow);
    Policy pinned = Policy::Default();
    pinned.per_platform[Platform::kTpm].min_tcb["snp.microcode"] = d.tcb.at("snp.microcode");
    auto claims = Appraise(*run.result, pinned);
    EXPECT_TRUE(claims.ok()) << claims.detail();
  }
}

// P2: Azure SNP (Genoa) evidence JSON carrying quote, HCL report and VCEK.
TEST(AzureVtpmTest, SnpGenoaEvidence) {
  CLLM_SHARED_PATH(evidence, std::string(kDir) + "azure_snp_genoa_vtpm_evidence.json");
  CLLM_SHARED_PATH(chain, "testdata/attestation/snp/amd_genoa_ask_ark_vcek_chain.pem");
  const Bytes ev = Load(evidence);
  EXPECT_EQ(SniffPlatform(ev), Platform::kTpm);
  AzureRun run = Verify(ev, {Load(chain)});
  ExpectValidOrHardwarePending(run, Platform::kSnp);
  if (run.result.ok()) {
    const auto& d = run.result->data();
    EXPECT_EQ(d.fields.at("extra_data"),
              "0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f");
    EXPECT_EQ(d.fields.at("pcr0"), "afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338");
  }
}

// P3: Azure TDX: the TDREPORT needs the TD quote to be verifiable.
TEST(AzureVtpmTest, TdxQuoteBindsThroughTdQuote) {
  CLLM_SHARED_PATH(quote, std::string(kDir) + "azure_tdx_tpm_quote.json");
  CLLM_SHARED_PATH(hcl, std::string(kDir) + "azure_tdx_hcl_report.bin");
  CLLM_SHARED_PATH(td_quote, "testdata/attestation/tdx/azure_tdx_v4_quote_fmspc00806f05.dat");
  const Bytes ev = Load(quote);
  // Without the TD quote the anchor is missing.
  AzureRun missing = Verify(ev, {Load(hcl)});
  EXPECT_EQ(missing.result.code(), AttestErrc::kCollateralMissing) << missing.result.detail();
  EXPECT_EQ(missing.trace.back().name, kAnchorStep);
  // A TD quote of another TD does not bind.
  Bytes other = Load(td_quote);
  other[48 + 520] ^= 1;  // REPORTDATA in the quote body
  AzureRun wrong = Verify(ev, {Load(hcl), other});
  EXPECT_EQ(wrong.result.code(), AttestErrc::kBindingMismatch) << wrong.result.detail();
  // With it, the outcome is the TDX verifier's (which needs Intel collateral).
  AzureRun run = Verify(ev, {Load(hcl), Load(td_quote)});
  for (const char* name : {"HCL runtime data bound to REPORT_DATA", "quote signature by the AK",
                           "pcrDigest over the supplied PCR values"}) {
    const CheckStep* s = FindStep(run, name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_TRUE(s->ok) << name;
  }
  if (!HaveVerifier(Platform::kTdx)) {
    EXPECT_EQ(run.result.code(), AttestErrc::kUnavailable) << run.result.detail();
  }
}

// P4: swtpm: quote and PCRs verify, but a bare AK anchors nothing.
// The SNP report that vouches for the vTPM's key must be the paravisor's
// (VMPL 0): a guest at VMPL 1-3 can ask for a report binding a key of its
// own. Both real Azure samples are VMPL 0.
TEST(AzureVtpmTest, OnlyTheParavisorsReportVouchesForTheKey) {
  VerifiedEvidence::Data hw;
  hw.fields["vmpl"] = "0";
  EXPECT_TRUE(CheckProviderLevel("snp", hw).ok());
  for (const char* level : {"1", "2", "3"}) {
    hw.fields["vmpl"] = level;
    auto st = CheckProviderLevel("snp", hw);
    ASSERT_FALSE(st.ok()) << level;
    EXPECT_EQ(st.code(), AttestErrc::kChainInvalid);
    EXPECT_NE(st.detail().find(std::string("VMPL ") + level), std::string::npos) << st.detail();
  }
  hw.fields.erase("vmpl");
  EXPECT_FALSE(CheckProviderLevel("snp", hw).ok()) << "no VMPL field: refused";
  EXPECT_TRUE(CheckProviderLevel("tdx", hw).ok());
}

TEST(AzureVtpmTest, SwtpmBareAkIsNotTrusted) {
  CLLM_SHARED_PATH(evidence, std::string(kDir) + "trustee_swtpm_quote_evidence.json");
  CLLM_SHARED_PATH(spki, std::string(kDir) + "trustee_swtpm_ak_public_spki.der");
  const Bytes ev = Load(evidence);
  EXPECT_EQ(SniffPlatform(ev), Platform::kTpm);
  for (const auto& certs : {std::vector<Bytes>{}, std::vector<Bytes>{Load(spki)}}) {
    AzureRun run = Verify(ev, certs);
    EXPECT_EQ(run.result.code(), AttestErrc::kChainInvalid) << run.result.detail();
    ASSERT_GE(run.trace.size(), 4u);
    EXPECT_EQ(run.trace.back().name, kAnchorStep);
    EXPECT_TRUE(FindStep(run, "quote signature by the AK")->ok);
    EXPECT_TRUE(FindStep(run, "pcrDigest over the supplied PCR values")->ok);
  }
}

// N-P1 .. N-P4 on the Milan sample.
TEST(AzureVtpmTest, TrusteeNegativeCases) {
  CLLM_SHARED_PATH(attest_p, std::string(kDir) + "azure_snp_milan_tpm_quote_tpms_attest.bin");
  CLLM_SHARED_PATH(sig_p, std::string(kDir) + "azure_snp_milan_tpm_quote_signature.bin");
  CLLM_SHARED_PATH(pcrs_p, std::string(kDir) + "azure_snp_milan_tpm_quote_pcrs_0-23_sha256.bin");
  CLLM_SHARED_PATH(hcl_p, std::string(kDir) + "azure_snp_milan_hcl_report.bin");
  CLLM_SHARED_PATH(vcek_p, std::string(kDir) + "azure_snp_milan_vcek_ask_ark.pem");
  const Bytes attest = Load(attest_p), sig = Load(sig_p), pcrs = Load(pcrs_p), hcl = Load(hcl_p);
  // The Genoa container shape (byte arrays) rebuilt from the Milan files.
  auto make = [&](const Bytes& s, const Bytes& report) {
    nlohmann::json j;
    j["quote"]["message"] = attest;
    j["quote"]["signature"] = s;
    for (size_t i = 0; i < 24; ++i) j["quote"]["pcrs"].push_back(Bytes(pcrs.begin() + 32 * i, pcrs.begin() + 32 * (i + 1)));
    j["report"] = report;
    return j.dump();
  };
  const Bytes vcek = Load(vcek_p);
  ExpectValidOrHardwarePending(Verify(AsBytes(make(sig, hcl)), {vcek}), Platform::kSnp);

  Bytes bad_sig = sig;
  bad_sig[0] ^= 1;  // N-P1
  EXPECT_EQ(Verify(AsBytes(make(bad_sig, hcl)), {vcek}).result.code(), AttestErrc::kBadSignature);
  Bytes np2 = hcl;
  np2[0x6E0] += 1;  // N-P2
  EXPECT_EQ(Verify(AsBytes(make(sig, np2)), {vcek}).result.code(), AttestErrc::kBindingMismatch);
  Bytes np3 = hcl;
  np3[0x540] = 0;  // N-P3
  EXPECT_EQ(Verify(AsBytes(make(sig, np3)), {vcek}).result.code(), AttestErrc::kMalformed);
  Bytes np4 = hcl;
  np4[0x1A6] = 0;  // N-P4: inside the SNP report, only the SNP verifier sees it
  AzureRun run = Verify(AsBytes(make(sig, np4)), {vcek});
  ASSERT_FALSE(run.result.ok());
  EXPECT_EQ(run.trace.back().name, kAnchorStep);
  if (HaveVerifier(Platform::kSnp)) {
    EXPECT_NE(run.result.code(), AttestErrc::kUnavailable);
  }
  // A different AK supplied next to the HCL report.
  CLLM_SHARED_PATH(spki, std::string(kDir) + "trustee_swtpm_ak_public_spki.der");
  EXPECT_EQ(Verify(AsBytes(make(sig, hcl)), {vcek, Load(spki)}).result.code(), AttestErrc::kBindingMismatch);
}

}  // namespace
}  // namespace cllm::attestation::tpm
