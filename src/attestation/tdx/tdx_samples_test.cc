// Real Intel TDX quotes and PCS collateral from /work/shared (see its
// PROVENANCE.md): each case must give exactly the outcome recorded there.
#include <gtest/gtest.h>

#include "attestation/policy.h"
#include "attestation/tdx/collateral.h"
#include "attestation/tdx/quote.h"
#include "attestation/tdx/tcb.h"
#include "attestation/tdx/verify.h"
#include "attestation/verify.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/keys.h"
#include "support/shared_data.h"

namespace cllm::attestation::tdx {
namespace {

constexpr char kDir[] = "testdata/attestation/tdx/";

Bytes Load(const std::filesystem::path& p) {
  auto b = ReadFile(p.string());
  EXPECT_TRUE(b.ok()) << p;
  return b.ok() ? std::move(b).value() : Bytes{};
}

crypto::TimePoint At(const char* text) {
  auto t = ParseUtcTime(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t.value_or(crypto::TimePoint{});
}

#define TDX_FILE(var, name) CLLM_SHARED_PATH(var, std::string(kDir) + (name))

// T1: v5 TD 1.5 quote with its collateral: UpToDate.
TEST(TdxSamplesTest, V5Td15QuoteIsUpToDate) {
  TDX_FILE(quote_path, "gotdxguest_v5_td15_quote_fmspc90c06f.dat");
  TDX_FILE(coll_path, "dcapqvl_collateral_fmspc90c06f_2026-02-18.json");
  Bytes quote = Load(quote_path);
  EvidenceInput in;
  in.evidence = quote;
  in.collateral = Load(coll_path);
  in.at = At("2026-03-01T00:00:00Z");
  std::vector<CheckStep> trace;
  in.trace = &trace;
  ASSERT_EQ(SniffPlatform(quote), Platform::kTdx);
  auto v = VerifyEvidence(Platform::kTdx, in);
  ASSERT_TRUE(v.ok()) << v.detail();
  const auto& d = v->data();
  EXPECT_EQ(PeekReportData(Platform::kTdx, quote).value(), d.report_data);  // the unverified read agrees
  EXPECT_EQ(d.platform, Platform::kTdx);
  EXPECT_FALSE(d.simulated);
  EXPECT_EQ(d.tcb_status, TcbStatus::kUpToDate);
  EXPECT_FALSE(d.debug);
  EXPECT_EQ(HexEncode(d.measurement),
            "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876");
  EXPECT_EQ(d.fields.at("quote_version"), "5");
  EXPECT_EQ(d.fields.at("body_type"), "3");
  EXPECT_EQ(d.fields.at("tee_tcb_svn"), "0b010400000000000000000000000000");
  EXPECT_EQ(d.fields.at("tee_tcb_svn_2"), "0d010400000000000000000000000000");
  EXPECT_EQ(d.fields.at("mr_seam"), "7bf063280e94fb051f5dd7b1fc59ce9aac42bb961df8d44b709c9b0ff87a7b4df648657ba6d1189589feab1d5a3c9a9d");
  EXPECT_EQ(d.fields.at("td_attributes"), "0000001000000000");
  EXPECT_EQ(d.fields.at("xfam"), "e702060000000000");
  EXPECT_EQ(d.fields.at("rtmr0"), "5c8daf76063a71ac8fcef4067564661fc682ed7944c7a5d21dbbced02f61ceff4ba0678c6aef3bdae8cbc614cec24619");
  EXPECT_EQ(d.fields.at("fmspc"), "90c06f000000");
  EXPECT_EQ(d.fields.at("tcb_date"), "2024-11-13T00:00:00Z");
  EXPECT_EQ(d.fields.at("tdx_module.id"), "TDX_01");
  EXPECT_EQ(d.fields.at("tdx_module.tcb_status"), "UpToDate");
  EXPECT_EQ(d.fields.at("tcb_status.qe"), "UpToDate");
  EXPECT_EQ(d.tcb.at("tdx.tee_tcb_svn[0]"), 11u);
  EXPECT_EQ(d.tcb.at("tdx.tee_tcb_svn[1]"), 1u);
  EXPECT_EQ(d.tcb.at("tdx.pce_svn"), 13u);
  EXPECT_EQ(d.tcb.at("tdx.qe_svn"), 7u);
  EXPECT_EQ(d.tcb.at("tdx.tcb_evaluation_data_number"), 18u);
  EXPECT_EQ(d.tcb.at("tdx.qe_identity.tcb_evaluation_data_number"), 18u);
  EXPECT_FALSE(trace.empty());
  for (const auto& s : trace) EXPECT_TRUE(s.ok) << s.name;
  // Default policy accepts UpToDate non-debug hardware.
  EXPECT_TRUE(Appraise(*v, Policy::Default()).ok());
  // The supplier of the evidence picks its collateral among editions still
  // in their window; a floor on the edition refuses older ones even when
  // they say UpToDate (found by review: nothing bounded that choice).
  for (const char* edition : {"tdx.tcb_evaluation_data_number", "tdx.qe_identity.tcb_evaluation_data_number"}) {
    Policy floor = Policy::Default();
    floor.per_platform[Platform::kTdx].min_tcb[edition] = 18;
    EXPECT_TRUE(Appraise(*v, floor).ok()) << edition;
    floor.per_platform[Platform::kTdx].min_tcb[edition] = 19;
    auto refused = Appraise(*v, floor);
    EXPECT_EQ(refused.code(), AttestErrc::kTcbTooLow) << edition;
    EXPECT_NE(refused.detail().find(edition), std::string::npos) << refused.detail();
  }
}

// T2, T3: valid quotes whose platform TCB is below every level.
TEST(TdxSamplesTest, OutdatedV5QuotesMatchNoTcbLevel) {
  TDX_FILE(coll_path, "dcapqvl_collateral_fmspc90c06f_2026-02-18.json");
  for (const char* name : {"dcapqvl_v5_td15_quote_outdated_fmspc90c06f.dat", "trustee_v5_td15_quote_5_fmspc90c06f.dat"}) {
    TDX_FILE(quote_path, name);
    Bytes quote = Load(quote_path);
    EvidenceInput in;
    in.evidence = quote;
    in.collateral = Load(coll_path);
    in.at = At("2026-03-01T00:00:00Z");
    auto v = VerifyTdxEvidence(in);
    ASSERT_FALSE(v.ok()) << name;
    EXPECT_EQ(v.code(), AttestErrc::kTcbUnknown) << name << ": " << v.detail();
  }
}

// T4: go-tdx-guest asserts "no matching TCB level found" at 2023-07-01, with
// the assembled collateral and with the six raw PCS files.
TEST(TdxSamplesTest, SprQuoteMatchesNoTcbLevelWithEitherCollateralShape) {
  TDX_FILE(quote_path, "gotdxguest_v4_quote_spr_e4_fmspc50806f.dat");
  TDX_FILE(coll_path, "gotdxguest_collateral_fmspc50806f_2023-06_ASSEMBLED.json");
  TDX_FILE(tcb_path, "gotdxguest_pcs_tdx_tcbinfo_fmspc50806f_2023-06-18.json");
  TDX_FILE(qe_path, "gotdxguest_pcs_td_qe_identity_2023-06-08.json");
  TDX_FILE(pck_crl_path, "gotdxguest_pcs_pck_platform_crl_2023-06-08.der");
  TDX_FILE(root_crl_path, "gotdxguest_intel_root_ca_crl_2023-04-03.der");
  TDX_FILE(signing_path, "gotdxguest_tcb_signing_chain_2018-2025.pem");
  TDX_FILE(pck_chain_path, "gotdxguest_pck_crl_issuer_chain.pem");
  Bytes quote = Load(quote_path);
  EvidenceInput in;
  in.evidence = quote;
  in.at = At("2023-07-01T00:00:00Z");
  in.collateral = Load(coll_path);
  auto v = VerifyTdxEvidence(in);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), AttestErrc::kTcbUnknown) << v.detail();

  in.collateral = Load(tcb_path);
  in.cert_files = {Load(qe_path), Load(pck_crl_path), Load(root_crl_path), Load(signing_path),
                   Load(pck_chain_path)};
  v = VerifyTdxEvidence(in);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), AttestErrc::kTcbUnknown) << v.detail();
}

// T5: UpToDate but a debug TD: verification passes, appraisal refuses it.
TEST(TdxSamplesTest, DebugTdVerifiesButAppraisalRejects) {
  TDX_FILE(quote_path, "trustee_v4_quote_4_fmspc50806f.dat");
  TDX_FILE(coll_path, "gotdxguest_collateral_fmspc50806f_2023-06_ASSEMBLED.json");
  Bytes quote = Load(quote_path);
  EvidenceInput in;
  in.evidence = quote;
  in.collateral = Load(coll_path);
  in.at = At("2023-07-01T00:00:00Z");
  auto v = VerifyTdxEvidence(in);
  ASSERT_TRUE(v.ok()) << v.detail();
  const auto& d = v->data();
  EXPECT_EQ(d.tcb_status, TcbStatus::kUpToDate);
  EXPECT_EQ(d.fields.at("tcb_date"), "2023-02-15T00:00:00Z");
  EXPECT_EQ(d.fields.at("quote_version"), "4");
  EXPECT_EQ(d.fields.at("body_type"), "2");
  EXPECT_EQ(d.fields.count("tee_tcb_svn_2"), 0u);
  EXPECT_EQ(d.fields.at("td_attributes"), "0100001000000000");
  EXPECT_EQ(HexEncode(d.measurement),
            "705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d420483a9ce5f031");
  EXPECT_EQ(HexEncode(d.report_data),
            "7c71fe2c86eff65a7cf8dbc22b3275689fd0464a267baced1bf94fc1324656aeb755da3d44d098c0c87382f3a5f85b45c8a28fee1d3bdb38342bf96671501429");
  EXPECT_TRUE(d.debug);
  auto claims = Appraise(*v, Policy::Default());
  ASSERT_FALSE(claims.ok());
  EXPECT_EQ(claims.code(), AttestErrc::kDebugEnabled);
}

// T6: TCB Info + QE Identity without CRLs: the verifier cannot check
// revocation (kCollateralMissing); the TCB evaluation alone gives OutOfDate.
TEST(TdxSamplesTest, QuoteSixIsOutOfDateButCrlsAreMissing) {
  TDX_FILE(quote_path, "trustee_v4_quote_6_fmspc00a06d08.dat");
  TDX_FILE(tcb_path, "trustee_pcs_tdx_tcbinfo_fmspc00a06d08_2025-10-27.json");
  TDX_FILE(qe_path, "trustee_pcs_td_qe_identity_2025-10-28.json");
  TDX_FILE(signing_path, "intel_tcb_signing_chain_2025-2032.pem");
  Bytes quote = Load(quote_path);
  EvidenceInput in;
  in.evidence = quote;
  in.collateral = Load(tcb_path);
  in.cert_files = {Load(qe_path), Load(signing_path)};
  in.at = At("2025-11-01T00:00:00Z");
  auto v = VerifyTdxEvidence(in);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), AttestErrc::kCollateralMissing) << v.detail();
  EXPECT_NE(v.detail().find("CRL"), std::string::npos) << v.detail();

  auto q = ParseQuote(quote);
  ASSERT_TRUE(q.ok()) << q.detail();
  auto qc = VerifyQuoteSignatures(*q, in, {});
  ASSERT_TRUE(qc.ok()) << qc.detail();
  auto raw = LoadCollateral(in.collateral, in.cert_files);
  ASSERT_TRUE(raw.ok()) << raw.detail();
  auto info = ParseTcbInfo(raw->tcb_info->body);
  auto qe = ParseQeIdentity(raw->qe_identity->body);
  ASSERT_TRUE(info.ok() && qe.ok());
  auto ev = EvaluateTcb(*q, qc->pck_ext, *info, *qe);
  ASSERT_TRUE(ev.ok()) << ev.detail();
  EXPECT_EQ(ev->status, TcbStatus::kOutOfDate);
  EXPECT_EQ(ev->tcb_date, "2018-01-04T00:00:00Z");
  EXPECT_EQ(ev->module_id, "TDX_03");
  EXPECT_EQ(ev->module_status, "UpToDate");
  EXPECT_EQ(ev->qe_status, "UpToDate");
  EXPECT_EQ(qc->pck_ext.pce_svn, 11);
}

// T7, T8: valid quotes without collateral; the parser stops at sig_data_len.
TEST(TdxSamplesTest, QuotesWithoutCollateralPassTheCryptographicChecks) {
  TDX_FILE(gce_path, "gotdxguest_v4_quote_gce_cos113_8000B_buffer.dat");
  TDX_FILE(azure_path, "azure_tdx_v4_quote_fmspc00806f05.dat");
  Bytes gce = Load(gce_path);
  Bytes azure = Load(azure_path);
  EvidenceInput in;
  in.at = At("2025-01-01T00:00:00Z");

  auto q = ParseQuote(gce);
  ASSERT_TRUE(q.ok()) << q.detail();
  EXPECT_EQ(q->quote_size, 4935u);
  EXPECT_EQ(HexEncode(q->body.mr_td),
            "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a");
  auto qc = VerifyQuoteSignatures(*q, in, {});
  ASSERT_TRUE(qc.ok()) << qc.detail();
  EXPECT_EQ(HexEncode(qc->pck_ext.fmspc), "00806f050000");
  EXPECT_EQ(qc->pck.SerialHex().size() > 0, true);

  auto a = ParseQuote(azure);
  ASSERT_TRUE(a.ok()) << a.detail();
  EXPECT_EQ(a->quote_size, azure.size() - 70);
  EXPECT_EQ(HexEncode(a->body.tee_tcb_svn), "02010600000000000000000000000000");
  EXPECT_EQ(HexEncode(a->body.report_data).substr(0, 64),
            "9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839");
  auto ac = VerifyQuoteSignatures(*a, in, {});
  ASSERT_TRUE(ac.ok()) << ac.detail();
  EXPECT_EQ(ac->pck_ext.pce_svn, 11);

  // Without collateral the full verifier fails closed.
  in.evidence = azure;
  auto v = VerifyTdxEvidence(in);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), AttestErrc::kCollateralMissing);
}

// T9, T10: SGX v3 quotes are not TDX evidence.
TEST(TdxSamplesTest, SgxV3QuotesAreUnsupported) {
  TDX_FILE(coll_path, "dcapqvl_sgx_collateral_fmspc00a06711_2025-06-19.json");
  for (const char* name : {"dcapqvl_sgx_v3_quote_fmspc00a06711.dat", "trustee_sgx_v3_quote_occlum.dat"}) {
    TDX_FILE(quote_path, name);
    Bytes quote = Load(quote_path);
    EXPECT_FALSE(SniffPlatform(quote).has_value()) << name;
    EXPECT_EQ(ParseQuote(quote).code(), AttestErrc::kUnsupportedVersion) << name;
    EvidenceInput in;
    in.evidence = quote;
    in.collateral = Load(coll_path);
    in.at = At("2025-07-01T00:00:00Z");
    auto v = VerifyEvidence(Platform::kTdx, in);
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.code(), AttestErrc::kUnsupportedVersion) << name;
  }
}

// T11: the 2026 TCB Info verifies with either TCB signing certificate (same key).
TEST(TdxSamplesTest, TcbInfoSignatureVerifiesWithBothSigningCerts) {
  TDX_FILE(tcb_path, "gotdxguest_pcs_tdx_tcbinfo_fmspc90c06f_2026-02-01.json");
  TDX_FILE(old_path, "gotdxguest_tcb_signing_chain_2018-2025.pem");
  TDX_FILE(new_path, "intel_tcb_signing_chain_2025-2032.pem");
  auto raw = LoadCollateral(Load(tcb_path), {});
  ASSERT_TRUE(raw.ok()) << raw.detail();
  ASSERT_TRUE(raw->tcb_info.has_value());
  for (const auto& p : {old_path, new_path}) {
    Bytes pem = Load(p);
    auto certs = crypto::Certificate::ParsePemBundle(AsChars(pem));
    ASSERT_TRUE(certs.ok());
    auto key = (*certs)[0].GetPublicKey();
    ASSERT_TRUE(key.ok());
    EXPECT_TRUE(crypto::EcdsaVerify(*key, crypto::HashAlg::kSha256, AsBytes(raw->tcb_info->body),
                                    raw->tcb_info->signature, crypto::SigFormat::kRaw)
                    .ok())
        << p;
  }
  auto info = ParseTcbInfo(raw->tcb_info->body);
  ASSERT_TRUE(info.ok()) << info.detail();
  EXPECT_EQ(HexEncode(info->fmspc), "90c06f000000");
}

// The collateral windows from PROVENANCE.md: outside them, kCollateralExpired.
TEST(TdxSamplesTest, CollateralOutsideItsWindowIsExpired) {
  TDX_FILE(quote_path, "gotdxguest_v5_td15_quote_fmspc90c06f.dat");
  TDX_FILE(coll_path, "dcapqvl_collateral_fmspc90c06f_2026-02-18.json");
  Bytes quote = Load(quote_path);
  EvidenceInput in;
  in.evidence = quote;
  in.collateral = Load(coll_path);
  for (const char* t : {"2026-02-18T10:58:50Z", "2026-03-20T10:41:15Z", "2026-11-23T00:00:00Z", "2026-01-01T00:00:00Z"}) {
    in.at = At(t);
    auto v = VerifyTdxEvidence(in);
    ASSERT_FALSE(v.ok()) << t;
    EXPECT_EQ(v.code(), AttestErrc::kCollateralExpired) << t << ": " << v.detail();
  }
  for (const char* t : {"2026-02-18T10:58:51Z", "2026-03-20T10:41:14Z"}) {
    in.at = At(t);
    auto v = VerifyTdxEvidence(in);
    EXPECT_TRUE(v.ok()) << t << ": " << v.detail();
  }
}

}  // namespace
}  // namespace cllm::attestation::tdx
