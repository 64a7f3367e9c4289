// verify_test.cc — every real sample in testdata/attestation/snp/ gives the
// outcome its PROVENANCE.md states, with the field values it lists.
#include "attestation/snp/verify.h"

#include <gtest/gtest.h>

#include "attestation/snp/cert_table.h"
#include "attestation/snp/json_bundle.h"
#include "attestation/snp/vek.h"
#include "crypto/digest.h"
#include "attestation/verify.h"
#include "base/encoding.h"
#include "base/file.h"
#include "support/shared_data.h"

namespace cllm::attestation::snp {
namespace {

// Times inside every stated validity window (VCEKs 2022..2029+, VLEK
// 2024-12-10..2025-12-10).
crypto::TimePoint At(int year, int month, int day) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}
const crypto::TimePoint kNow = At(2026, 11, 23);
const crypto::TimePoint kVlekValid = At(2025, 6, 1);

Bytes Load(const std::filesystem::path& p) {
  auto b = ReadFile(p.string(), 1 << 20);
  EXPECT_TRUE(b.ok()) << p << ": " << (b.ok() ? "" : b.detail());
  return b.ok() ? std::move(b).value() : Bytes{};
}

struct Sample {
  Bytes report;
  std::vector<Bytes> certs;
};

// Run verifies `s` at `at` and returns the result; the trace is kept so a
// failure explains itself.
AttestResult<VerifiedEvidence> VerifyAt(const Sample& s, crypto::TimePoint at, std::vector<CheckStep>* trace = nullptr) {
  EvidenceInput in;
  in.evidence = s.report;
  in.cert_files = s.certs;
  in.at = at;
  in.trace = trace;
  return VerifySnpEvidence(in);
}

std::string Explain(const AttestResult<VerifiedEvidence>& r) {
  return r.ok() ? "ok" : std::string(AttestErrcName(r.code())) + ": " + r.detail();
}

#define SNP_SAMPLE(var, report, vek, chain)                          \
  CLLM_SHARED_PATH(var##_report, "testdata/attestation/snp/" report); \
  CLLM_SHARED_PATH(var##_vek, "testdata/attestation/snp/" vek);       \
  CLLM_SHARED_PATH(var##_chain, "testdata/attestation/snp/" chain);   \
  Sample var{Load(var##_report), {Load(var##_vek), Load(var##_chain)}}

TEST(SnpVerifyTest, S1GoSevGuestMilanV2DebugPolicy) {
  SNP_SAMPLE(s, "gosevguest_milan_v2_report.bin", "gosevguest_milan_v2_vcek.der", "amd_milan_ask_ark_vcek_chain.pem");
  auto r = VerifyAt(s, kNow);
  ASSERT_TRUE(r.ok()) << Explain(r);
  const auto& d = r->data();
  EXPECT_EQ(d.platform, Platform::kSnp);
  EXPECT_FALSE(d.simulated);
  EXPECT_TRUE(d.debug);  // POLICY 0xb0000: DEBUG (bit 19) set
  EXPECT_EQ(d.fields.at("policy"), "0xb0000");
  EXPECT_EQ(d.fields.at("policy.debug"), "1");
  EXPECT_EQ(d.fields.at("product"), "Milan");
  EXPECT_EQ(d.fields.at("version"), "2");
  EXPECT_EQ(HexEncode(d.measurement),
            "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01");
  EXPECT_EQ(HexEncode(d.report_data).substr(0, 12), "010203040500");
  EXPECT_EQ(d.fields.at("report_id"), "8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a");
  EXPECT_EQ(d.fields.at("chip_id").substr(0, 16), "3ac3fe21e13fb099");
  EXPECT_EQ(d.fields.at("reported_tcb"), "0200000000000544");
  EXPECT_EQ(d.tcb.at("snp.bootloader"), 2u);
  EXPECT_EQ(d.tcb.at("snp.tee"), 0u);
  EXPECT_EQ(d.tcb.at("snp.snp"), 5u);
  EXPECT_EQ(d.tcb.at("snp.microcode"), 68u);
  EXPECT_EQ(d.tcb.count("snp.fmc"), 0u);
  EXPECT_EQ(d.fields.at("current_version"), "1.49.3");
  EXPECT_EQ(d.fields.at("signing_key"), "vcek");
  EXPECT_EQ(d.fields.count("cpuid_fam_id"), 0u);  // v2 has no CPUID fields
  // SNP has no TCB status source: never UpToDate, only what was reported.
  EXPECT_EQ(d.tcb_status, TcbStatus::kNotEvaluated);
}

TEST(SnpVerifyTest, S2TrusteeMilanV2) {
  SNP_SAMPLE(s, "trustee_milan_v2_report.bin", "trustee_milan_v2_vcek.der", "amd_milan_ask_ark_vcek_chain.pem");
  std::vector<CheckStep> trace;
  auto r = VerifyAt(s, kNow, &trace);
  ASSERT_TRUE(r.ok()) << Explain(r);
  const auto& d = r->data();
  EXPECT_FALSE(d.debug);
  EXPECT_EQ(d.fields.at("guest_svn"), "4");
  EXPECT_EQ(d.fields.at("policy"), "0x3001f");
  EXPECT_EQ(d.fields.at("policy.smt"), "1");
  EXPECT_EQ(d.fields.at("policy.migrate_ma"), "0");
  EXPECT_EQ(d.fields.at("platform_info"), "0x1");
  // CURRENT_TCB differs from REPORTED_TCB: the VCEK certifies REPORTED_TCB.
  EXPECT_EQ(d.fields.at("current_tcb"), "03000000000008ce");
  EXPECT_EQ(d.fields.at("reported_tcb"), "0300000000000873");
  EXPECT_EQ(d.tcb.at("snp.microcode"), 115u);
  EXPECT_EQ(HexEncode(d.measurement),
            "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c");
  EXPECT_EQ(d.fields.at("report_id"), "385eba81216de4776548fcb86f8ead03c1ebc92b6207f3210d9ccebb89c99005");
  EXPECT_EQ(d.steps.size(), trace.size());
  for (const auto& step : trace) EXPECT_TRUE(step.ok) << step.name;
}

TEST(SnpVerifyTest, S3VlekValidInsideWindowExpiredNow) {
  SNP_SAMPLE(s, "trustee_milan_v3_vlek_report.bin", "trustee_milan_vlek_expired_2025-12-10.der",
             "amd_milan_asvk_ark_vlek_chain.pem");
  auto r = VerifyAt(s, kVlekValid);
  ASSERT_TRUE(r.ok()) << Explain(r);
  const auto& d = r->data();
  EXPECT_EQ(d.fields.at("signing_key"), "vlek");
  EXPECT_EQ(d.fields.at("version"), "3");
  EXPECT_EQ(d.fields.at("vmpl"), "1");
  EXPECT_EQ(d.fields.at("platform_info"), "0x27");
  EXPECT_EQ(d.fields.at("cpuid_fam_id"), "0x19");
  EXPECT_EQ(d.fields.at("cpuid_mod_id"), "0x1");
  EXPECT_EQ(d.fields.at("cpuid_step"), "1");
  EXPECT_EQ(d.fields.at("product"), "Milan");
  EXPECT_EQ(d.fields.at("chip_id"), std::string(128, '0'));
  EXPECT_EQ(d.tcb.at("snp.snp"), 24u);
  EXPECT_EQ(d.tcb.at("snp.microcode"), 217u);
  // PROVENANCE: committed_tcb and launch_tcb bl=4 tee=0 snp=24 ucode=219,
  // above the reported 217.
  EXPECT_EQ(d.tcb.at("snp.committed_tcb.bootloader"), 4u);
  EXPECT_EQ(d.tcb.at("snp.committed_tcb.snp"), 24u);
  EXPECT_EQ(d.tcb.at("snp.committed_tcb.microcode"), 219u);
  EXPECT_EQ(d.tcb.at("snp.launch_tcb.microcode"), 219u);
  EXPECT_EQ(d.tcb_status, TcbStatus::kNotEvaluated);
  EXPECT_EQ(d.fields.at("current_version"), "1.55.29");

  auto expired = VerifyAt(s, kNow);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.code(), AttestErrc::kCertExpired) << expired.detail();
}

TEST(SnpVerifyTest, S4TrusteeGenoaV3Reconstructed) {
  SNP_SAMPLE(s, "trustee_genoa_v3_report.bin", "trustee_genoa_v3_vcek.der", "amd_genoa_ask_ark_vcek_chain.pem");
  auto r = VerifyAt(s, kNow);
  ASSERT_TRUE(r.ok()) << Explain(r);
  const auto& d = r->data();
  EXPECT_EQ(d.fields.at("product"), "Genoa");
  EXPECT_EQ(d.fields.at("cpuid_mod_id"), "0xa0");
  EXPECT_EQ(d.fields.at("cpuid_step"), "2");
  EXPECT_EQ(d.fields.at("platform_info"), "0x25");
  EXPECT_EQ(d.fields.at("reported_tcb"), "0a00000000001719");
  EXPECT_EQ(d.tcb.at("snp.bootloader"), 10u);
  EXPECT_EQ(d.tcb.at("snp.snp"), 23u);
  EXPECT_EQ(d.tcb.at("snp.microcode"), 25u);
  EXPECT_EQ(HexEncode(d.measurement),
            "6a6519d757e68c2e939c9dbbbc1828498e8de35d2766dd05f1a2cca5059d0cf4ae62a36d75c837974dd50b315506e73e");
}

TEST(SnpVerifyTest, S4JsonBundleEqualsBinary) {
  CLLM_SHARED_PATH(json_path, "testdata/attestation/snp/trustee_genoa_v3_e2e_evidence.json");
  CLLM_SHARED_PATH(chain, "testdata/attestation/snp/amd_genoa_ask_ark_vcek_chain.pem");
  CLLM_SHARED_PATH(bin, "testdata/attestation/snp/trustee_genoa_v3_report.bin");
  // The bundle carries the report and the VCEK; the ASK/ARK come from a file.
  Sample s{Load(json_path), {Load(chain)}};
  EXPECT_EQ(SniffPlatform(s.report), Platform::kSnp);
  auto r = VerifyAt(s, kNow);
  ASSERT_TRUE(r.ok()) << Explain(r);
  EXPECT_EQ(r->data().fields.at("report_id"), "b34cb907a31ad237beb02efd236ab9899a7ddd66ff5beed2636765183a84e44f");
  EXPECT_EQ(PeekReportData(Platform::kSnp, s.report).value(), r->data().report_data);  // the unverified read agrees
  // Rebuilt report, measured against the independently reconstructed binary.
  auto bundle = ParseJsonBundle(s.report);
  ASSERT_TRUE(bundle.ok()) << bundle.detail();
  EXPECT_EQ(bundle->report, Load(bin));
}

TEST(SnpVerifyTest, S5AzureMilanFromHcl) {
  CLLM_SHARED_PATH(report, "testdata/attestation/snp/azure_milan_v2_report_from_hcl.bin");
  CLLM_SHARED_PATH(bundle, "testdata/attestation/snp/azure_milan_vcek_ask_ark.pem");
  Sample s{Load(report), {Load(bundle)}};  // VCEK, ASK, ARK in one PEM
  auto r = VerifyAt(s, kNow);
  ASSERT_TRUE(r.ok()) << Explain(r);
  const auto& d = r->data();
  EXPECT_EQ(d.fields.at("guest_svn"), "5");
  EXPECT_EQ(d.fields.at("reported_tcb"), "0300000000000873");
  EXPECT_EQ(d.fields.at("current_tcb"), "03000000000008d2");
  EXPECT_EQ(HexEncode(d.report_data).substr(0, 64),
            "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac");
}

TEST(SnpVerifyTest, S6AzureGenoaV3) {
  SNP_SAMPLE(s, "azure_genoa_v3_report_from_hcl.bin", "azure_genoa_vcek.pem", "amd_genoa_ask_ark_vcek_chain.pem");
  auto r = VerifyAt(s, kNow);
  ASSERT_TRUE(r.ok()) << Explain(r);
  const auto& d = r->data();
  EXPECT_EQ(d.fields.at("guest_svn"), "65547");
  EXPECT_EQ(d.fields.at("product"), "Genoa");
  EXPECT_EQ(d.fields.at("cpuid_mod_id"), "0x11");
  EXPECT_EQ(d.fields.at("platform_info"), "0x24");
  EXPECT_EQ(d.tcb.at("snp.microcode"), 84u);
  EXPECT_EQ(d.fields.at("chip_id").substr(0, 16), "0506ffba875e939c");
}

TEST(SnpVerifyTest, N1MilanReportWithGenoaChainIsWrongProduct) {
  SNP_SAMPLE(s, "trustee_milan_v2_report.bin", "trustee_milan_v2_vcek.der", "amd_genoa_ask_ark_vcek_chain.pem");
  auto r = VerifyAt(s, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), AttestErrc::kWrongProduct) << r.detail();
}

TEST(SnpVerifyTest, GenoaReportWithMilanChainIsWrongProduct) {
  SNP_SAMPLE(s, "azure_genoa_v3_report_from_hcl.bin", "azure_genoa_vcek.pem", "amd_milan_ask_ark_vcek_chain.pem");
  auto r = VerifyAt(s, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), AttestErrc::kWrongProduct) << r.detail();
}

TEST(SnpVerifyTest, N2N3SyntheticVceksFailTheAskSignature) {
  // Both SYNTHETIC VCEKs parse (hwID raw and OCTET STRING encodings) but are
  // not signed by the Milan ASK. Paired with the S2 report whose VCEK they imitate.
  for (const char* vek : {"trustee_SYNTHETIC_vcek_badsig_hwid_raw.der",
                          "trustee_SYNTHETIC_vcek_badsig_hwid_octetstring.der"}) {
    SCOPED_TRACE(vek);
    CLLM_SHARED_PATH(report, "testdata/attestation/snp/trustee_milan_v2_report.bin");
    CLLM_SHARED_PATH(vek_path, std::string("testdata/attestation/snp/") + vek);
    CLLM_SHARED_PATH(chain, "testdata/attestation/snp/amd_milan_ask_ark_vcek_chain.pem");
    Sample s{Load(report), {Load(vek_path), Load(chain)}};
    auto r = VerifyAt(s, kNow);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.code(), AttestErrc::kBadSignature) << r.detail();
  }
}

TEST(SnpVerifyTest, C1TurinVcekChainAndExtensions) {
  CLLM_SHARED_PATH(vek, "testdata/attestation/snp/virtee_turin_vcek_no_report.der");
  CLLM_SHARED_PATH(chain, "testdata/attestation/snp/amd_turin_ask_ark_vcek_chain.pem");
  auto cert = crypto::Certificate::FromDer(Load(vek));
  ASSERT_TRUE(cert.ok());
  auto ext = ParseVekExtensions(*cert);
  ASSERT_TRUE(ext.ok()) << ext.detail();
  EXPECT_EQ(ext->product_name, "Turin");
  EXPECT_EQ(ext->fmc_spl, 0);
  EXPECT_EQ(ext->ucode_spl, 9);
  ASSERT_TRUE(ext->hw_id.has_value());
  EXPECT_EQ(ext->hw_id->size(), 8u);
  auto bundle = crypto::Certificate::ParsePemBundle(AsChars(Load(chain)));
  ASSERT_TRUE(bundle.ok());
  ASSERT_EQ(bundle->size(), 2u);
  // The ARK is the pinned Turin root, and the chain verifies inside the window.
  EXPECT_EQ(crypto::Sha256((*bundle)[1].Der()), PinnedArks()[2].der_sha256);
  crypto::ChainOptions opts;
  opts.at = kNow;
  auto st = crypto::VerifyChain(*cert, {(*bundle)[0]}, {(*bundle)[1]}, opts);
  EXPECT_TRUE(st.ok()) << st.detail();
}

TEST(SnpVerifyTest, EveryPinMatchesTheSharedChains) {
  const std::pair<const char*, Product> chains[] = {
      {"amd_milan_ask_ark_vcek_chain.pem", Product::kMilan}, {"amd_milan_asvk_ark_vlek_chain.pem", Product::kMilan},
      {"amd_genoa_ask_ark_vcek_chain.pem", Product::kGenoa}, {"amd_genoa_asvk_ark_vlek_chain.pem", Product::kGenoa},
      {"amd_turin_ask_ark_vcek_chain.pem", Product::kTurin}, {"amd_turin_asvk_ark_vlek_chain.pem", Product::kTurin}};
  for (const auto& [file, product] : chains) {
    CLLM_SHARED_PATH(path, std::string("testdata/attestation/snp/") + file);
    auto bundle = crypto::Certificate::ParsePemBundle(AsChars(Load(path)));
    ASSERT_TRUE(bundle.ok()) << file;
    const auto digest = crypto::Sha256(bundle->back().Der());
    bool found = false;
    for (const auto& pin : PinnedArks()) found = found || (pin.product == product && pin.der_sha256 == digest);
    EXPECT_TRUE(found) << file;
  }
}

TEST(SnpVerifyTest, DispatchAndSniffThroughVerifyEvidence) {
  SNP_SAMPLE(s, "trustee_milan_v2_report.bin", "trustee_milan_v2_vcek.der", "amd_milan_ask_ark_vcek_chain.pem");
  ASSERT_EQ(SniffPlatform(s.report), Platform::kSnp);
  EvidenceInput in;
  in.evidence = s.report;
  in.cert_files = s.certs;
  in.at = kNow;
  auto r = VerifyEvidence(Platform::kSnp, in);
  ASSERT_TRUE(r.ok()) << Explain(r);
  EXPECT_EQ(r->data().platform, Platform::kSnp);
  EXPECT_EQ(PeekReportData(Platform::kSnp, s.report).value(), r->data().report_data);  // the unverified read agrees
}

TEST(SnpVerifyTest, ReportFollowedByCertTableNeedsNoCertFiles) {
  SNP_SAMPLE(s, "trustee_milan_v2_report.bin", "trustee_milan_v2_vcek.der", "amd_milan_ask_ark_vcek_chain.pem");
  auto chain = crypto::Certificate::ParsePemBundle(AsChars(s.certs[1]));
  ASSERT_TRUE(chain.ok());
  Bytes table = BuildCertTable({{GuidFor(CertKind::kVcek), CertKind::kVcek, s.certs[0]},
                                {GuidFor(CertKind::kAsk), CertKind::kAsk, (*chain)[0].Der()},
                                {GuidFor(CertKind::kArk), CertKind::kArk, (*chain)[1].Der()}});
  Sample ext{s.report, {}};
  ext.report.insert(ext.report.end(), table.begin(), table.end());
  EXPECT_EQ(SniffPlatform(ext.report), Platform::kSnp);
  auto r = VerifyAt(ext, kNow);
  ASSERT_TRUE(r.ok()) << Explain(r);

  // The same table as a --certs file.
  Sample as_file{s.report, {table}};
  auto r2 = VerifyAt(as_file, kNow);
  EXPECT_TRUE(r2.ok()) << Explain(r2);
}

}  // namespace
}  // namespace cllm::attestation::snp
