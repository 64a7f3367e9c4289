// Tests on a synthetic Intel-shaped hierarchy: test Root CA → PCK Platform CA
// → PCK (carrying the real PCK's SGX extensions) and Root CA → TCB Signing.
// The real v5 quote's header, body and QE report are re-signed, so checks that
// a real signature would shadow (CRL revocation, QE report data, debug TD,
// edited TCB levels) can be reached one at a time.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <functional>

#include "attestation/policy.h"
#include "attestation/tdx/collateral.h"
#include "attestation/tdx/pck.h"
#include "attestation/tdx/quote.h"
#include "attestation/tdx/verify.h"
#include "base/byte_reader.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/cert_builder.h"
#include "crypto/digest.h"
#include "support/shared_data.h"

namespace cllm::attestation::tdx {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr char kQuote[] = "testdata/attestation/tdx/gotdxguest_v5_td15_quote_fmspc90c06f.dat";
constexpr char kCollateral[] = "testdata/attestation/tdx/dcapqvl_collateral_fmspc90c06f_2026-02-18.json";

crypto::TimePoint At() { return *ParseUtcTime("2026-03-01T00:00:00Z"); }

crypto::PrivateKey NewKey() {
  auto k = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  CLLM_CHECK(k.ok());
  return *k;
}

crypto::Certificate Issue(const std::string& cn, const crypto::PrivateKey& subject, const crypto::PrivateKey& issuer_key,
                          const crypto::Certificate* issuer, bool ca, std::vector<crypto::CertExtension> ext = {},
                          crypto::TimePoint not_after = At() + 24h * 3650) {
  crypto::CertSpec spec;
  spec.common_name = cn;
  spec.not_before = At() - 24h * 365;
  spec.not_after = not_after;
  spec.is_ca = ca;
  spec.extensions = std::move(ext);
  auto c = crypto::IssueCertificate(spec, subject.public_key(), issuer_key, issuer);
  CLLM_CHECK(c.ok());
  return *c;
}

Bytes Sign(const crypto::PrivateKey& key, ByteSpan msg) {
  auto s = crypto::EcdsaSign(key, crypto::HashAlg::kSha256, msg, crypto::SigFormat::kRaw);
  CLLM_CHECK(s.ok() && s->size() == 64);
  return *s;
}

void Append(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }

struct Fixture {
  crypto::PrivateKey root_key = NewKey(), ca_key = NewKey(), pck_key = NewKey(), tcb_key = NewKey();
  crypto::Certificate root{nullptr}, ca{nullptr}, pck{nullptr};  // set by Load()
  Quote real;
  Bytes real_bytes;
  json real_collateral;

  // Knobs for the test cases.
  std::function<void(Bytes&)> edit_signed;     // header ‖ body_type ‖ body_size ‖ body
  std::function<void(Bytes&)> edit_qe_report;  // after the binding was written
  std::function<void(std::string&)> edit_tcb_info, edit_qe_identity;
  std::vector<crypto::Certificate> revoked_by_root, revoked_by_ca;
  crypto::TimePoint tcb_not_after = At() + 24h * 3650;

  bool Load() {
    auto q = ReadFile(cllm::testing::SharedDir() / kQuote);
    auto c = ReadFile(cllm::testing::SharedDir() / kCollateral);
    if (!q.ok() || !c.ok()) return false;
    real_bytes = *q;
    auto parsed = ParseQuote(real_bytes);
    if (!parsed.ok()) return false;
    real = *parsed;
    real_collateral = json::parse(AsChars(*c));
    auto chain = crypto::Certificate::ParsePemBundle(
        std::string_view(reinterpret_cast<const char*>(real.pck_chain_pem.data()), real.pck_chain_pem.size()));
    if (!chain.ok()) return false;
    auto ext = (*chain)[0].Extension(kSgxExtensionsOid);
    if (!ext) return false;
    root = Issue("Intel SGX Root CA", root_key, root_key, nullptr, true);
    ca = Issue("Intel SGX PCK Platform CA", ca_key, root_key, &root, true);
    pck = Issue("Intel SGX PCK Certificate", pck_key, ca_key, &ca, false, {{kSgxExtensionsOid, false, *ext}});
    return true;
  }

  Bytes BuildQuote() const {
    Bytes signed_part(real.signed_bytes.begin(), real.signed_bytes.end());
    if (edit_signed) edit_signed(signed_part);
    crypto::PrivateKey ak = NewKey();
    Bytes ak_point = *ak.public_key().EcPoint();
    Bytes qe_report(real.qe_report_bytes.begin(), real.qe_report_bytes.end());
    crypto::Hasher h(crypto::HashAlg::kSha256);
    h.Update(ak_point);
    h.Update(real.qe_auth_data);
    Bytes binding = h.Finish();
    std::copy(binding.begin(), binding.end(), qe_report.begin() + 0x140);
    std::fill(qe_report.begin() + 0x160, qe_report.end(), 0);
    if (edit_qe_report) edit_qe_report(qe_report);

    std::string pem = pck.ToPem() + ca.ToPem() + root.ToPem();
    Bytes outer = qe_report;
    Append(outer, Sign(pck_key, qe_report));
    PutU16Le(outer, static_cast<uint16_t>(real.qe_auth_data.size()));
    Append(outer, real.qe_auth_data);
    PutU16Le(outer, kCertDataPckChain);
    PutU32Le(outer, static_cast<uint32_t>(pem.size()));
    Append(outer, AsBytes(pem));

    Bytes sig = Sign(ak, signed_part);
    Append(sig, ak_point);
    PutU16Le(sig, kCertDataQeReport);
    PutU32Le(sig, static_cast<uint32_t>(outer.size()));
    Append(sig, outer);

    Bytes out = signed_part;
    PutU32Le(out, static_cast<uint32_t>(sig.size()));
    Append(out, sig);
    return out;
  }

  Bytes BuildCollateral() const {
    crypto::PrivateKey signer_key = tcb_key;
    crypto::Certificate signer = Issue("Intel SGX TCB Signing", tcb_key, root_key, &root, false, {}, tcb_not_after);
    std::string tcb_info = real_collateral["tcb_info"];
    std::string qe_identity = real_collateral["qe_identity"];
    if (edit_tcb_info) edit_tcb_info(tcb_info);
    if (edit_qe_identity) edit_qe_identity(qe_identity);
    auto root_crl = crypto::IssueCrl(root, root_key, revoked_by_root, At() - 24h, At() + 24h * 10);
    auto ca_crl = crypto::IssueCrl(ca, ca_key, revoked_by_ca, At() - 24h, At() + 24h * 10);
    CLLM_CHECK(root_crl.ok() && ca_crl.ok());
    json c;
    c["tcb_info"] = tcb_info;
    c["tcb_info_signature"] = HexEncode(Sign(signer_key, AsBytes(tcb_info)));
    c["tcb_info_issuer_chain"] = signer.ToPem() + root.ToPem();
    c["qe_identity"] = qe_identity;
    c["qe_identity_signature"] = HexEncode(Sign(signer_key, AsBytes(qe_identity)));
    c["qe_identity_issuer_chain"] = signer.ToPem() + root.ToPem();
    c["pck_crl_issuer_chain"] = ca.ToPem() + root.ToPem();
    c["root_ca_crl"] = HexEncode(root_crl->Der());
    c["pck_crl"] = HexEncode(ca_crl->Der());
    return ToBytes(c.dump());
  }

  AttestResult<VerifiedEvidence> Verify() const {
    Bytes quote = BuildQuote();
    EvidenceInput in;
    in.evidence = quote;
    in.collateral = BuildCollateral();
    in.at = At();
    in.roots = {root};
    return VerifyTdxEvidence(in);
  }
};

// ReplaceAll edits collateral text; a pattern that no longer occurs fails
// the test (an edit that silently does nothing would prove nothing).
void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  int n = 0;
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()), ++n) {
    s.replace(pos, from.size(), to);
  }
  if (n == 0) ADD_FAILURE() << "pattern not found: " << from;
}

#define FIXTURE(f)                                              \
  CLLM_SHARED_PATH(quote_path_, kQuote);                        \
  Fixture f;                                                    \
  ASSERT_TRUE(f.Load()) << "cannot load the real quote"

TEST(TdxSyntheticTest, ResignedQuoteVerifiesAndDefaultRootsRejectIt) {
  FIXTURE(f);
  auto v = f.Verify();
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->data().tcb_status, TcbStatus::kUpToDate);
  // The same evidence against the pinned Intel root: the test root is not it.
  Bytes quote = f.BuildQuote();
  EvidenceInput in;
  in.evidence = quote;
  in.collateral = f.BuildCollateral();
  in.at = At();
  EXPECT_EQ(VerifyTdxEvidence(in).code(), AttestErrc::kCollateralMissing);
  auto q = ParseQuote(quote);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(VerifyQuoteSignatures(*q, in, {}).code(), AttestErrc::kChainInvalid);
}

TEST(TdxSyntheticTest, RevokedPckOrCaIsRejected) {
  FIXTURE(f);
  f.revoked_by_ca = {f.pck};
  EXPECT_EQ(f.Verify().code(), AttestErrc::kRevoked);
  f.revoked_by_ca = {};
  f.revoked_by_root = {f.ca};
  EXPECT_EQ(f.Verify().code(), AttestErrc::kRevoked);
}

TEST(TdxSyntheticTest, QeReportDataNotBindingTheKeyIsRejected) {
  FIXTURE(f);
  f.edit_qe_report = [](Bytes& r) { r[0x140] ^= 1; };
  EXPECT_EQ(f.Verify().code(), AttestErrc::kBindingMismatch);
  f.edit_qe_report = [](Bytes& r) { r[0x17F] = 1; };  // second half must be zero
  EXPECT_EQ(f.Verify().code(), AttestErrc::kBindingMismatch);
}

TEST(TdxSyntheticTest, DebugTdIsReportedAndRefusedByAppraisal) {
  FIXTURE(f);
  f.edit_signed = [](Bytes& s) { s[54 + 0x078] |= 0x01; };  // TD_ATTRIBUTES bit 0 (TUD.DEBUG)
  auto v = f.Verify();
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_TRUE(v->data().debug);
  EXPECT_EQ(Appraise(*v, Policy::Default()).code(), AttestErrc::kDebugEnabled);
}

TEST(TdxSyntheticTest, TcbStatusesConvergePerIntelRules) {
  FIXTURE(f);
  f.edit_tcb_info = [](std::string& s) { ReplaceAll(s, "\"UpToDate\"", "\"Revoked\""); };
  EXPECT_EQ(f.Verify().code(), AttestErrc::kTcbRevoked);

  f.edit_tcb_info = [](std::string& s) {
    // Platform level ConfigurationNeeded with advisories; module stays UpToDate.
    ReplaceAll(s, "\"tcbDate\":\"2024-11-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"}",
               "\"tcbDate\":\"2024-11-13T00:00:00Z\",\"tcbStatus\":\"ConfigurationNeeded\",\"advisoryIDs\":[\"INTEL-SA-X\"]}");
  };
  auto v = f.Verify();
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->data().tcb_status, TcbStatus::kConfigurationNeeded);
  EXPECT_EQ(v->data().advisory_ids, std::vector<std::string>{"INTEL-SA-X"});

  // An OutOfDate QE turns ConfigurationNeeded into OutOfDateConfigurationNeeded.
  f.edit_qe_identity = [](std::string& s) { ReplaceAll(s, "\"UpToDate\"", "\"OutOfDate\""); };
  v = f.Verify();
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->data().tcb_status, TcbStatus::kOutOfDateConfigurationNeeded);

  // A QE below every QE identity level.
  f.edit_qe_identity = [](std::string& s) { ReplaceAll(s, "\"isvsvn\":4", "\"isvsvn\":9"); };
  EXPECT_EQ(f.Verify().code(), AttestErrc::kTcbUnknown);

  // An OutOfDate TDX module (TDX_01 level 6 → status OutOfDate).
  f.edit_qe_identity = nullptr;
  f.edit_tcb_info = [](std::string& s) {
    ReplaceAll(s, "{\"tcb\":{\"isvsvn\":6},\"tcbDate\":\"2024-11-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"}",
               "{\"tcb\":{\"isvsvn\":6},\"tcbDate\":\"2024-11-13T00:00:00Z\",\"tcbStatus\":\"OutOfDate\"}");
  };
  v = f.Verify();
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->data().tcb_status, TcbStatus::kOutOfDate);
  EXPECT_EQ(v->data().fields.at("tdx_module.tcb_status"), "OutOfDate");

  // An unknown status string is invalid collateral, not silently accepted.
  f.edit_tcb_info = [](std::string& s) { ReplaceAll(s, "\"UpToDate\"", "\"Fine\""); };
  EXPECT_EQ(f.Verify().code(), AttestErrc::kCollateralInvalid);
}

TEST(TdxSyntheticTest, ExpiredTcbSigningCertIsRejected) {
  FIXTURE(f);
  f.tcb_not_after = At() - 1h;
  EXPECT_EQ(f.Verify().code(), AttestErrc::kCertExpired);
}

TEST(TdxSyntheticTest, QeIdentityMismatchIsRejected) {
  FIXTURE(f);
  f.edit_qe_report = [](Bytes& r) { r[0x100] ^= 1; };  // ISVPRODID
  EXPECT_EQ(f.Verify().code(), AttestErrc::kCollateralInvalid);
  f.edit_qe_report = [](Bytes& r) { r[0x080] ^= 1; };  // MRSIGNER
  EXPECT_EQ(f.Verify().code(), AttestErrc::kCollateralInvalid);
}

TEST(TdxSyntheticTest, SwappedOrForeignPckCertificatesAreRejected) {
  FIXTURE(f);
  auto ext = f.pck.Extension(kSgxExtensionsOid);
  ASSERT_TRUE(ext.has_value());
  const std::vector<crypto::CertExtension> sgx = {{kSgxExtensionsOid, false, *ext}};
  const crypto::Certificate good = f.pck;
  // Same issuer name, another CA's key: the chain does not verify.
  crypto::PrivateKey other_ca_key = NewKey();
  f.pck = Issue("Intel SGX PCK Certificate", f.pck_key, other_ca_key, &f.ca, false, sgx);
  EXPECT_EQ(f.Verify().code(), AttestErrc::kChainInvalid);
  // A certificate of the hierarchy that is not a PCK certificate.
  f.pck = Issue("Intel SGX TCB Signing", f.pck_key, f.ca_key, &f.ca, false, sgx);
  EXPECT_EQ(f.Verify().code(), AttestErrc::kWrongProduct);
  // Expired PCK certificate.
  f.pck = Issue("Intel SGX PCK Certificate", f.pck_key, f.ca_key, &f.ca, false, sgx, At() - 1h);
  EXPECT_EQ(f.Verify().code(), AttestErrc::kCertExpired);
  // PCK certificate without the SGX extensions.
  f.pck = Issue("Intel SGX PCK Certificate", f.pck_key, f.ca_key, &f.ca, false, {});
  EXPECT_EQ(f.Verify().code(), AttestErrc::kMalformed);
  f.pck = good;
  EXPECT_TRUE(f.Verify().ok());
}

TEST(TdxSyntheticTest, TdxModuleIdentityMustExistAndMatch) {
  FIXTURE(f);
  // TEE_TCB_SVN[1] = 1 needs identity TDX_01.
  f.edit_tcb_info = [](std::string& s) { ReplaceAll(s, "\"id\":\"TDX_01\"", "\"id\":\"TDX_07\""); };
  EXPECT_EQ(f.Verify().code(), AttestErrc::kTcbUnknown);
  // The identity's MRSIGNER must equal MRSIGNER_SEAM.
  f.edit_tcb_info = [](std::string& s) {
    ReplaceAll(s, "\"id\":\"TDX_01\",\"mrsigner\":\"0", "\"id\":\"TDX_01\",\"mrsigner\":\"1");
  };
  EXPECT_EQ(f.Verify().code(), AttestErrc::kCollateralInvalid);
  // tdxModule describes major version 0 only: a mismatch there is irrelevant here.
  f.edit_tcb_info = [](std::string& s) {
    ReplaceAll(s, "\"tdxModule\":{\"mrsigner\":\"0", "\"tdxModule\":{\"mrsigner\":\"1");
  };
  EXPECT_TRUE(f.Verify().ok());
}

}  // namespace
}  // namespace cllm::attestation::tdx
