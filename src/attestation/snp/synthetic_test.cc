// synthetic_test.cc — reports and chains the shared data lacks (Turin v5,
// VLEK, product disagreements, hwID encodings), built with
// crypto/cert_builder.h and signed with a test VEK. EvidenceInput::roots
// replaces the pinned ARKs, as the verifier allows for tests.
#include <gtest/gtest.h>

#include "attestation/policy.h"
#include "attestation/snp/cert_table.h"
#include "attestation/snp/report.h"
#include "attestation/snp/verify.h"
#include "crypto/cert_builder.h"

namespace cllm::attestation::snp {
namespace {

using namespace std::chrono_literals;
using crypto::CertExtension;
using crypto::CertSpec;
using crypto::Certificate;
using crypto::KeyType;
using crypto::PrivateKey;

const crypto::TimePoint kT0 = std::chrono::system_clock::from_time_t(1800000000);

Bytes SplDer(uint8_t v) { return v < 0x80 ? Bytes{0x02, 0x01, v} : Bytes{0x02, 0x02, 0x00, v}; }
Bytes Ia5(const std::string& s) {
  Bytes out(2 + s.size());  // sized up front: GCC 12 -Warray-bounds false positive on insert
  out[0] = 0x16;
  out[1] = static_cast<uint8_t>(s.size());
  std::copy(s.begin(), s.end(), out.begin() + 2);
  return out;
}

struct VekSpec {
  CertKind kind = CertKind::kVcek;
  std::string product_name = "Genoa";
  uint8_t bl = 7, tee = 1, snp = 22, ucode = 200;
  std::optional<uint8_t> fmc;
  std::optional<Bytes> hw_id;  // the extension's value as stored (raw or OCTET STRING)
  crypto::TimePoint not_before = kT0 - 24h;
  crypto::TimePoint not_after = kT0 + 24h * 365;
};

// Pki: ARK-<product> → SEV-<product> (or SEV-VLEK-<product>) → SEV-VCEK/VLEK,
// all P-384 (the real ones are RSA-4096 above the VEK; the verifier does not
// depend on the algorithm, the pinned root decides).
struct Pki {
  PrivateKey ark_key = PrivateKey::Generate(KeyType::kEcP384).value();
  PrivateKey ask_key = PrivateKey::Generate(KeyType::kEcP384).value();
  PrivateKey vek_key = PrivateKey::Generate(KeyType::kEcP384).value();
  Certificate ark, ask, vek;

  Pki(Product product, const VekSpec& v) : ark(Ca("ARK-" + std::string(ProductName(product)), nullptr)),
                                            ask(Ca(std::string(v.kind == CertKind::kVlek ? "SEV-VLEK-" : "SEV-") +
                                                       ProductName(product),
                                                   &ark)),
                                            vek(Vek(v)) {}

  Certificate Ca(const std::string& cn, const Certificate* issuer) {
    CertSpec spec{.common_name = cn, .not_before = kT0 - 24h * 3650, .not_after = kT0 + 24h * 3650,
                  .serial = {}, .is_ca = true, .dns_names = {}, .extensions = {}};
    if (issuer == nullptr) return crypto::IssueCertificate(spec, ark_key.public_key(), ark_key, nullptr).value();
    return crypto::IssueCertificate(spec, ask_key.public_key(), ark_key, issuer).value();
  }
  Certificate Vek(const VekSpec& v) {
    std::vector<CertExtension> ext = {{"1.3.6.1.4.1.3704.1.2", false, Ia5(v.product_name)},
                                      {"1.3.6.1.4.1.3704.1.3.1", false, SplDer(v.bl)},
                                      {"1.3.6.1.4.1.3704.1.3.2", false, SplDer(v.tee)},
                                      {"1.3.6.1.4.1.3704.1.3.3", false, SplDer(v.snp)},
                                      {"1.3.6.1.4.1.3704.1.3.8", false, SplDer(v.ucode)}};
    if (v.fmc) ext.push_back({"1.3.6.1.4.1.3704.1.3.9", false, SplDer(*v.fmc)});
    if (v.hw_id) ext.push_back({"1.3.6.1.4.1.3704.1.4", false, *v.hw_id});
    CertSpec spec{.common_name = v.kind == CertKind::kVlek ? "SEV-VLEK" : "SEV-VCEK", .not_before = v.not_before,
                  .not_after = v.not_after, .serial = {}, .is_ca = false, .dns_names = {}, .extensions = ext};
    return crypto::IssueCertificate(spec, vek_key.public_key(), ask_key, &ask).value();
  }
};

// Sign fills R and S (ECDSA P-384/SHA-384 over [0, 0x2A0)) with `key`.
Bytes Sign(Report r, const PrivateKey& key) {
  Bytes bytes = SerializeReport(r);
  auto sig = crypto::EcdsaSign(key, crypto::HashAlg::kSha384, ByteSpan(bytes).first(kSignedSize),
                               crypto::SigFormat::kRaw);
  EXPECT_TRUE(sig.ok());
  std::copy(sig->begin(), sig->begin() + 48, r.sig_r.begin());
  std::copy(sig->begin() + 48, sig->end(), r.sig_s.begin());
  return SerializeReport(r);
}

std::array<uint8_t, 64> ChipId(uint8_t seed, size_t significant = 64) {
  std::array<uint8_t, 64> id{};
  for (size_t i = 0; i < significant; ++i) id[i] = static_cast<uint8_t>(seed + i);
  return id;
}

Bytes RawId(const std::array<uint8_t, 64>& id) { return Bytes(id.begin(), id.end()); }

Bytes OctetString(ByteSpan raw) {
  Bytes out{0x04, static_cast<uint8_t>(raw.size())};
  out.insert(out.end(), raw.begin(), raw.end());
  return out;
}

// A Genoa v3 report whose REPORTED_TCB matches the default VekSpec.
Report GenoaReport() {
  Report r;
  r.version = 3;
  r.policy = 0x30000;
  r.signature_algo = kSigAlgoEcdsaP384Sha384;
  r.reported_tcb = 7ull | 1ull << 8 | 22ull << 48 | 200ull << 56;
  r.current_tcb = r.committed_tcb = r.launch_tcb = r.reported_tcb;
  r.cpuid_fam_id = 0x19;
  r.cpuid_mod_id = 0x11;
  r.cpuid_step = 1;
  r.chip_id = ChipId(1);
  r.measurement.fill(0xAB);
  r.report_data.fill(0x5A);
  return r;
}

AttestResult<VerifiedEvidence> Verify(const Bytes& evidence, const Pki& pki, crypto::TimePoint at = kT0,
                                      std::vector<Bytes> extra = {}) {
  EvidenceInput in;
  in.evidence = evidence;
  in.cert_files = {pki.vek.Der(), pki.ask.Der(), pki.ark.Der()};
  for (auto& e : extra) in.cert_files.push_back(std::move(e));
  in.at = at;
  in.roots = {pki.ark};
  return VerifySnpEvidence(in);
}

std::string Explain(const AttestResult<VerifiedEvidence>& r) {
  return r.ok() ? "ok" : std::string(AttestErrcName(r.code())) + ": " + r.detail();
}

TEST(SnpSyntheticTest, GenoaV3WithOctetStringHwId) {
  VekSpec v;
  v.hw_id = OctetString(ChipId(1));
  Pki pki(Product::kGenoa, v);
  auto r = Verify(Sign(GenoaReport(), pki.vek_key), pki);
  ASSERT_TRUE(r.ok()) << Explain(r);
  EXPECT_EQ(r->data().fields.at("product"), "Genoa");
  EXPECT_EQ(r->data().tcb.at("snp.microcode"), 200u);
}

TEST(SnpSyntheticTest, Turin5UsesTheFmcLayoutAndMitigationVectors) {
  VekSpec v;
  v.product_name = "Turin";
  v.fmc = 3;
  const auto turin_id = ChipId(9);
  v.hw_id = Bytes(turin_id.begin(), turin_id.begin() + 8);  // Turin hwID: 8 bytes
  Pki pki(Product::kTurin, v);
  Report rep = GenoaReport();
  rep.version = 5;
  rep.cpuid_fam_id = 0x1A;
  rep.cpuid_mod_id = 0x02;
  rep.chip_id = ChipId(9, 8);  // 8 significant bytes, the rest zero
  // Turin TCB_VERSION: FMC, BOOT_LOADER, TEE, SNP, 3 reserved, MICROCODE.
  rep.reported_tcb = 3ull | 7ull << 8 | 1ull << 16 | 22ull << 24 | 200ull << 56;
  rep.launch_mit_vector = 0x5;
  rep.current_mit_vector = 0x7;
  auto r = Verify(Sign(rep, pki.vek_key), pki);
  ASSERT_TRUE(r.ok()) << Explain(r);
  const auto& d = r->data();
  EXPECT_EQ(d.fields.at("product"), "Turin");
  EXPECT_EQ(d.fields.at("version"), "5");
  EXPECT_EQ(d.tcb.at("snp.fmc"), 3u);
  EXPECT_EQ(d.tcb.at("snp.bootloader"), 7u);
  EXPECT_EQ(d.tcb.at("snp.tee"), 1u);
  EXPECT_EQ(d.tcb.at("snp.snp"), 22u);
  EXPECT_EQ(d.tcb.at("snp.microcode"), 200u);
  EXPECT_EQ(d.fields.at("launch_mit_vector"), "0x5");
  EXPECT_EQ(d.fields.at("current_mit_vector"), "0x7");

  // fmcSPL is part of the certified TCB.
  Report bad = rep;
  bad.reported_tcb ^= 1;  // FMC 3 → 2
  auto mismatch = Verify(Sign(bad, pki.vek_key), pki);
  EXPECT_EQ(mismatch.code(), AttestErrc::kTcbMismatch) << Explain(mismatch);

  // Non-zero bytes after the 8-byte Turin chip id are not that chip.
  Report other_chip = rep;
  other_chip.chip_id[8] = 1;
  EXPECT_EQ(Verify(Sign(other_chip, pki.vek_key), pki).code(), AttestErrc::kHwIdMismatch);
}

TEST(SnpSyntheticTest, V5ReservedAfterMitigationVectors) {
  VekSpec v;
  v.hw_id = RawId(ChipId(1));
  Pki pki(Product::kGenoa, v);
  Report rep = GenoaReport();
  rep.version = 5;
  Bytes bytes = Sign(rep, pki.vek_key);
  ASSERT_TRUE(Verify(bytes, pki).ok());
  bytes[0x208] = 1;
  auto r = Verify(bytes, pki);
  EXPECT_EQ(r.code(), AttestErrc::kReservedNonZero);
  EXPECT_NE(r.detail().find("0x208"), std::string::npos) << r.detail();
}

TEST(SnpSyntheticTest, VcekWithAnotherKeyButTheRightExtensionsIsBadSignature) {
  VekSpec v;
  v.hw_id = RawId(ChipId(1));
  Pki pki(Product::kGenoa, v);
  auto other = PrivateKey::Generate(KeyType::kEcP384).value();
  auto r = Verify(Sign(GenoaReport(), other), pki);
  EXPECT_EQ(r.code(), AttestErrc::kBadSignature) << Explain(r);
}

TEST(SnpSyntheticTest, ReportCpuidAndCertProductMustAgree) {
  VekSpec v;
  v.product_name = "Milan-B0";
  v.hw_id = RawId(ChipId(1));
  Pki pki(Product::kMilan, v);
  auto r = Verify(Sign(GenoaReport(), pki.vek_key), pki);  // CPUID says Genoa
  EXPECT_EQ(r.code(), AttestErrc::kWrongProduct) << Explain(r);
}

TEST(SnpSyntheticTest, ProductNameMustAgreeWithTheIssuer) {
  VekSpec v;
  v.product_name = "Genoa";
  v.hw_id = RawId(ChipId(1));
  Pki pki(Product::kMilan, v);  // Genoa VCEK issued by "SEV-Milan"
  Report rep = GenoaReport();
  rep.version = 2;  // no CPUID: the certificate decides
  auto r = Verify(Sign(rep, pki.vek_key), pki);
  EXPECT_EQ(r.code(), AttestErrc::kWrongProduct) << Explain(r);
}

TEST(SnpSyntheticTest, UnknownCpuidIsUnsupported) {
  VekSpec v;
  v.hw_id = RawId(ChipId(1));
  Pki pki(Product::kGenoa, v);
  Report rep = GenoaReport();
  rep.cpuid_fam_id = 0x17;  // Zen 2: no SEV-SNP
  EXPECT_EQ(Verify(Sign(rep, pki.vek_key), pki).code(), AttestErrc::kUnsupportedVersion);
}

TEST(SnpSyntheticTest, VlekSignedReport) {
  VekSpec v;
  v.kind = CertKind::kVlek;
  Pki pki(Product::kGenoa, v);
  Report rep = GenoaReport();
  rep.key_info = kSigningKeyVlek << 2;
  rep.chip_id = {};
  auto r = Verify(Sign(rep, pki.vek_key), pki);
  ASSERT_TRUE(r.ok()) << Explain(r);
  EXPECT_EQ(r->data().fields.at("signing_key"), "vlek");

  // A VLEK past its notAfter (they are issued for about a year).
  VekSpec old = v;
  old.not_after = kT0 - 1h;
  old.not_before = kT0 - 24h * 365;
  Pki expired(Product::kGenoa, old);
  EXPECT_EQ(Verify(Sign(rep, expired.vek_key), expired).code(), AttestErrc::kCertExpired);
}

TEST(SnpSyntheticTest, VcekNotYetValid) {
  VekSpec v;
  v.hw_id = RawId(ChipId(1));
  v.not_before = kT0 + 1h;
  Pki pki(Product::kGenoa, v);
  EXPECT_EQ(Verify(Sign(GenoaReport(), pki.vek_key), pki).code(), AttestErrc::kCertNotYetValid);
}

TEST(SnpSyntheticTest, VcekWithoutHwIdIsCollateralInvalid) {
  VekSpec v;  // no hwID
  Pki pki(Product::kGenoa, v);
  EXPECT_EQ(Verify(Sign(GenoaReport(), pki.vek_key), pki).code(), AttestErrc::kCollateralInvalid);
}

TEST(SnpSyntheticTest, SyntheticRootIsNotPinnedWithoutOverride) {
  VekSpec v;
  v.hw_id = RawId(ChipId(1));
  Pki pki(Product::kGenoa, v);
  EvidenceInput in;
  Bytes ev = Sign(GenoaReport(), pki.vek_key);
  in.evidence = ev;
  in.cert_files = {pki.vek.Der(), pki.ask.Der(), pki.ark.Der()};
  in.at = kT0;
  auto r = VerifySnpEvidence(in);
  EXPECT_EQ(r.code(), AttestErrc::kChainInvalid) << Explain(r);
}

TEST(SnpSyntheticTest, SuppliedCrlsAreHonoured) {
  VekSpec v;
  v.hw_id = RawId(ChipId(1));
  Pki pki(Product::kGenoa, v);
  const Bytes ev = Sign(GenoaReport(), pki.vek_key);
  auto crl = [&](const std::vector<Certificate>& revoked, crypto::TimePoint next_update,
                 const PrivateKey* key = nullptr) {
    return crypto::IssueCrl(pki.ark, key ? *key : pki.ark_key, revoked, kT0 - 24h, next_update).value().Der();
  };
  // An ARK CRL that does not list the ASK: accepted.
  auto ok = Verify(ev, pki, kT0, {crl({}, kT0 + 24h)});
  ASSERT_TRUE(ok.ok()) << Explain(ok);
  // Revocation is checked only when the evidence comes with a CRL: a policy
  // that needs it pins the field (found by review: a server that left its
  // CRLs out was never checked for revocation, and nothing said so).
  EXPECT_EQ(ok->data().fields.at("revocation"), "checked");
  auto without = Verify(ev, pki, kT0, {});
  ASSERT_TRUE(without.ok()) << Explain(without);
  EXPECT_EQ(without->data().fields.at("revocation"), "unchecked");
  Policy needs_crl;
  needs_crl.platforms = {Platform::kSnp};
  needs_crl.tcb_statuses.insert(TcbStatus::kNotEvaluated);
  needs_crl.per_platform[Platform::kSnp].fields["revocation"] = "checked";
  EXPECT_TRUE(Appraise(*ok, needs_crl).ok());
  EXPECT_EQ(Appraise(*without, needs_crl).code(), AttestErrc::kPolicyViolation);
  // The ASK revoked.
  EXPECT_EQ(Verify(ev, pki, kT0, {crl({pki.ask}, kT0 + 24h)}).code(), AttestErrc::kRevoked);
  // A CRL past its nextUpdate.
  EXPECT_EQ(Verify(ev, pki, kT0, {crl({}, kT0 - 1h)}).code(), AttestErrc::kCollateralExpired);
  // A CRL in the ARK's name signed by another key.
  auto other = PrivateKey::Generate(KeyType::kEcP384).value();
  EXPECT_EQ(Verify(ev, pki, kT0, {crl({}, kT0 + 24h, &other)}).code(), AttestErrc::kBadSignature);
  // A CRL by the ASK revoking the VCEK.
  auto ask_crl = crypto::IssueCrl(pki.ask, pki.ask_key, {pki.vek}, kT0 - 24h, kT0 + 24h).value().Der();
  EXPECT_EQ(Verify(ev, pki, kT0, {ask_crl}).code(), AttestErrc::kRevoked);
  // Another product's CRL does not apply.
  VekSpec mv = v;
  mv.product_name = "Milan";
  Pki milan(Product::kMilan, mv);
  auto foreign = crypto::IssueCrl(milan.ark, milan.ark_key, {}, kT0 - 24h, kT0 - 1h).value().Der();
  EXPECT_TRUE(Verify(ev, pki, kT0, {foreign}).ok());
}

TEST(SnpSyntheticTest, ExtendedReportCertTableAsTheOnlyCertificateSource) {
  VekSpec v;
  v.hw_id = RawId(ChipId(1));
  Pki pki(Product::kGenoa, v);
  Bytes ev = Sign(GenoaReport(), pki.vek_key);
  Bytes table = BuildCertTable({{GuidFor(CertKind::kVcek), CertKind::kVcek, pki.vek.Der()},
                                {GuidFor(CertKind::kAsk), CertKind::kAsk, pki.ask.Der()},
                                {GuidFor(CertKind::kArk), CertKind::kArk, pki.ark.Der()}});
  ev.insert(ev.end(), table.begin(), table.end());
  EvidenceInput in;
  in.evidence = ev;
  in.at = kT0;
  in.roots = {pki.ark};
  auto r = VerifySnpEvidence(in);
  EXPECT_TRUE(r.ok()) << Explain(r);

  // A table entry pointing past the end is malformed evidence.
  Bytes bad = ev;
  bad[kReportSize + 16] = 0xFF;  // first entry's offset
  bad[kReportSize + 19] = 0x7F;
  in.evidence = bad;
  EXPECT_EQ(VerifySnpEvidence(in).code(), AttestErrc::kMalformed);
}

}  // namespace
}  // namespace cllm::attestation::snp
