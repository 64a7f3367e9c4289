// report_test.cc — the report layout at its offsets, TCB decoding, product
// mapping, VCEK extension encodings, sniffing and the certificate table.
#include "attestation/snp/report.h"

#include <gtest/gtest.h>

#include "attestation/policy.h"
#include "attestation/snp/cert_table.h"
#include "attestation/snp/vek.h"
#include "attestation/snp/verify.h"
#include "attestation/verify.h"
#include "base/byte_reader.h"
#include "base/file.h"
#include "support/shared_data.h"

namespace cllm::attestation::snp {
namespace {

// A report whose every field holds a distinct marker, to check offsets.
Bytes MarkedReport(uint32_t version) {
  Bytes b(kReportSize, 0);
  auto put32 = [&](size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  auto put64 = [&](size_t off, uint64_t v) {
    for (int i = 0; i < 8; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put32(0x000, version);
  put32(0x004, 0x11223344);             // GUEST_SVN
  put64(0x008, 0x00000000000b0000ull);  // POLICY
  b[0x010] = 0xF1;                      // FAMILY_ID
  b[0x020] = 0x1D;                      // IMAGE_ID
  put32(0x030, 2);                      // VMPL
  put32(0x034, 1);                      // SIGNATURE_ALGO
  put64(0x038, 0x0102030405060708ull);  // CURRENT_TCB
  put64(0x040, 0x25);                   // PLATFORM_INFO
  put32(0x048, 0x5);                    // KEY_INFO: AUTHOR_KEY_EN, SIGNING_KEY 1
  b[0x050] = 0xDA;                      // REPORT_DATA
  b[0x090] = 0x3E;                      // MEASUREMENT
  b[0x0C0] = 0x40;                      // HOST_DATA
  b[0x0E0] = 0xE0;                      // ID_KEY_DIGEST
  b[0x110] = 0xA0;                      // AUTHOR_KEY_DIGEST
  b[0x140] = 0x14;                      // REPORT_ID
  b[0x160] = 0x16;                      // REPORT_ID_MA
  put64(0x180, 0x4400000000000302ull);  // REPORTED_TCB
  if (version >= 3) {
    b[0x188] = 0x19;
    b[0x189] = 0xA0;
    b[0x18A] = 2;
  }
  b[0x1A0] = 0xC1;                      // CHIP_ID
  b[0x1DF] = 0xC2;
  put64(0x1E0, 0x1111111111111111ull);  // COMMITTED_TCB
  b[0x1E8] = 40;                        // CURRENT_BUILD, MINOR, MAJOR
  b[0x1E9] = 55;
  b[0x1EA] = 1;
  b[0x1EC] = 39;
  b[0x1ED] = 54;
  b[0x1EE] = 1;
  put64(0x1F0, 0x2222222222222222ull);  // LAUNCH_TCB
  if (version >= 5) {
    put64(0x1F8, 0x3);
    put64(0x200, 0x7);
  }
  b[0x2A0] = 0x01;  // R, least significant byte
  b[0x2CF] = 0x02;  // R, byte 47 (most significant)
  b[0x2E8] = 0x03;  // S
  return b;
}

TEST(SnpReportTest, ParsesEveryFieldAtItsOffset) {
  auto r = ParseReport(MarkedReport(5));
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->version, 5u);
  EXPECT_EQ(r->guest_svn, 0x11223344u);
  EXPECT_EQ(r->policy, 0xb0000u);
  EXPECT_EQ(r->family_id[0], 0xF1);
  EXPECT_EQ(r->image_id[0], 0x1D);
  EXPECT_EQ(r->vmpl, 2u);
  EXPECT_EQ(r->current_tcb, 0x0102030405060708ull);
  EXPECT_EQ(r->platform_info, 0x25u);
  EXPECT_TRUE(r->author_key_en());
  EXPECT_EQ(r->signing_key(), kSigningKeyVlek);
  EXPECT_EQ(r->report_data[0], 0xDA);
  EXPECT_EQ(r->measurement[0], 0x3E);
  EXPECT_EQ(r->host_data[0], 0x40);
  EXPECT_EQ(r->id_key_digest[0], 0xE0);
  EXPECT_EQ(r->author_key_digest[0], 0xA0);
  EXPECT_EQ(r->report_id[0], 0x14);
  EXPECT_EQ(r->report_id_ma[0], 0x16);
  EXPECT_EQ(r->reported_tcb, 0x4400000000000302ull);
  EXPECT_EQ(r->cpuid_fam_id, 0x19);
  EXPECT_EQ(r->cpuid_mod_id, 0xA0);
  EXPECT_EQ(r->cpuid_step, 2);
  EXPECT_EQ(r->chip_id[0], 0xC1);
  EXPECT_EQ(r->chip_id[63], 0xC2);
  EXPECT_EQ(r->committed_tcb, 0x1111111111111111ull);
  EXPECT_EQ(r->current_build, 40);
  EXPECT_EQ(r->current_minor, 55);
  EXPECT_EQ(r->current_major, 1);
  EXPECT_EQ(r->committed_build, 39);
  EXPECT_EQ(r->launch_tcb, 0x2222222222222222ull);
  EXPECT_EQ(r->launch_mit_vector, 3u);
  EXPECT_EQ(r->current_mit_vector, 7u);
  // R and S are little-endian on the wire, big-endian in the struct.
  EXPECT_EQ(r->sig_r[47], 0x01);
  EXPECT_EQ(r->sig_r[0], 0x02);
  EXPECT_EQ(r->sig_s[47], 0x03);
  // Serialisation is the exact inverse.
  EXPECT_EQ(SerializeReport(*r), MarkedReport(5));
}

TEST(SnpReportTest, CpuidBytesAreReservedInVersion2) {
  Bytes v2 = MarkedReport(2);
  ASSERT_TRUE(ParseReport(v2).ok());
  v2[0x189] = 1;
  auto r = ParseReport(v2);
  EXPECT_EQ(r.code(), AttestErrc::kReservedNonZero);
  EXPECT_NE(r.detail().find("0x189"), std::string::npos) << r.detail();
}

TEST(SnpReportTest, MitigationVectorsAreReservedBeforeVersion5) {
  Bytes v3 = MarkedReport(3);
  ASSERT_TRUE(ParseReport(v3).ok());
  v3[0x1F8] = 1;
  EXPECT_EQ(ParseReport(v3).code(), AttestErrc::kReservedNonZero);
  Bytes v3b = MarkedReport(3);
  v3b[0x200] = 1;
  EXPECT_EQ(ParseReport(v3b).code(), AttestErrc::kReservedNonZero);
}

TEST(SnpReportTest, DecodesBothTcbLayouts) {
  // Milan/Genoa: bl, tee, 4 reserved, snp, ucode.
  TcbVersion g = DecodeTcb(0x7300000000000003ull | 8ull << 48, Product::kGenoa);
  EXPECT_EQ(g.bootloader, 3);
  EXPECT_EQ(g.tee, 0);
  EXPECT_EQ(g.snp, 8);
  EXPECT_EQ(g.microcode, 0x73);
  EXPECT_FALSE(g.fmc.has_value());
  // Turin: fmc, bl, tee, snp, 3 reserved, ucode.
  TcbVersion t = DecodeTcb(0x0900000004030201ull, Product::kTurin);
  EXPECT_EQ(t.fmc, 1);
  EXPECT_EQ(t.bootloader, 2);
  EXPECT_EQ(t.tee, 3);
  EXPECT_EQ(t.snp, 4);
  EXPECT_EQ(t.microcode, 9);
  EXPECT_EQ(TcbHex(0x7300080000000003ull), "0300000000080073");
}

TEST(SnpReportTest, ProductFromCpuid) {
  EXPECT_EQ(ProductFromCpuid(0x19, 0x01), Product::kMilan);
  EXPECT_EQ(ProductFromCpuid(0x19, 0x11), Product::kGenoa);
  EXPECT_EQ(ProductFromCpuid(0x19, 0xA0), Product::kGenoa);
  EXPECT_EQ(ProductFromCpuid(0x1A, 0x02), Product::kTurin);
  EXPECT_EQ(ProductFromCpuid(0x19, 0x21), std::nullopt);  // client Zen 3
  EXPECT_EQ(ProductFromCpuid(0x17, 0x31), std::nullopt);
  EXPECT_EQ(ParseProductName("Milan-B0"), Product::kMilan);
  EXPECT_EQ(ParseProductName("Genoa"), Product::kGenoa);
  EXPECT_EQ(ParseProductName("Turin"), Product::kTurin);
  EXPECT_EQ(ParseProductName("Naples"), std::nullopt);
  EXPECT_EQ(ParseProductName(""), std::nullopt);
}

TEST(SnpReportTest, SplIntegerAndHwIdEncodings) {
  EXPECT_EQ(DecodeSplInteger(Bytes{0x02, 0x01, 0x44}), 68);
  EXPECT_EQ(DecodeSplInteger(Bytes{0x02, 0x02, 0x00, 0xA9}), 169);  // N2's ucodeSPL
  EXPECT_EQ(DecodeSplInteger(Bytes{0x02, 0x01, 0x80}), std::nullopt);  // negative
  EXPECT_EQ(DecodeSplInteger(Bytes{0x02, 0x02, 0x00, 0x05}), std::nullopt);  // not minimal
  EXPECT_EQ(DecodeSplInteger(Bytes{0x02, 0x02, 0x01, 0x00}), std::nullopt);  // 256
  EXPECT_EQ(DecodeSplInteger(Bytes{0x04, 0x01, 0x01}), std::nullopt);
  EXPECT_EQ(DecodeSplInteger(Bytes{}), std::nullopt);

  Bytes raw(64);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(DecodeHwId(raw), raw);
  Bytes wrapped(2 + raw.size());  // (sized up front: GCC 12 -Warray-bounds false positive on insert)
  wrapped[0] = 0x04;
  wrapped[1] = 0x40;
  std::copy(raw.begin(), raw.end(), wrapped.begin() + 2);
  EXPECT_EQ(DecodeHwId(wrapped), raw);
  EXPECT_EQ(DecodeHwId(Bytes(8, 7)), Bytes(8, 7));
  EXPECT_EQ(DecodeHwId(Bytes(63, 0)), std::nullopt);
  wrapped[1] = 0x3F;
  EXPECT_EQ(DecodeHwId(wrapped), std::nullopt);
}

TEST(SnpReportTest, SyntheticVceksParseBothHwIdEncodings) {
  // PROVENANCE N2/N3: hwID = 00 01 .. 3f, raw and as an OCTET STRING.
  Bytes want(64);
  for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<uint8_t>(i);
  for (const char* file : {"trustee_SYNTHETIC_vcek_badsig_hwid_raw.der",
                           "trustee_SYNTHETIC_vcek_badsig_hwid_octetstring.der"}) {
    CLLM_SHARED_PATH(path, std::string("testdata/attestation/snp/") + file);
    auto der = ReadFile(path.string(), 1 << 16);
    ASSERT_TRUE(der.ok());
    auto cert = crypto::Certificate::FromDer(*der);
    ASSERT_TRUE(cert.ok()) << file;
    auto ext = ParseVekExtensions(*cert);
    ASSERT_TRUE(ext.ok()) << file << ": " << ext.detail();
    EXPECT_EQ(ext->hw_id, want) << file;
    EXPECT_EQ(ext->product_name, "Milan-B0");
  }
}

TEST(SnpReportTest, SniffIsConservative) {
  EXPECT_TRUE(LooksLikeReport(MarkedReport(2)));
  EXPECT_TRUE(LooksLikeReport(MarkedReport(5)));
  EXPECT_EQ(SniffPlatform(MarkedReport(3)), Platform::kSnp);
  EXPECT_FALSE(LooksLikeReport(Bytes(kReportSize - 1, 0)));
  Bytes v4 = MarkedReport(3);
  v4[0] = 4;
  EXPECT_FALSE(LooksLikeReport(v4));
  // A TDX quote header: u16 version 4, u16 attestation key type 2, u32 TEE
  // type 0x81: as a u32 version that is 0x00020004, never 2/3/5.
  Bytes tdx(5000, 0);
  tdx[0] = 4;
  tdx[2] = 2;
  tdx[4] = 0x81;
  EXPECT_FALSE(LooksLikeReport(tdx));
  EXPECT_NE(SniffPlatform(tdx), Platform::kSnp);
}

// --- certificate table ----------------------------------------------------------

Bytes Table(std::initializer_list<std::tuple<Guid, uint32_t, uint32_t>> entries, size_t data_len) {
  Bytes out;
  for (const auto& [g, off, len] : entries) {
    out.insert(out.end(), g.begin(), g.end());
    PutU32Le(out, off);
    PutU32Le(out, len);
  }
  out.insert(out.end(), kCertTableEntrySize, 0);
  out.insert(out.end(), data_len, 0xCC);
  return out;
}

TEST(SnpCertTableTest, RoundTripAndKinds) {
  std::vector<CertTableEntry> in = {{GuidFor(CertKind::kVcek), CertKind::kVcek, Bytes(10, 1)},
                                    {GuidFor(CertKind::kArk), CertKind::kArk, Bytes(3, 2)}};
  auto out = ParseCertTable(BuildCertTable(in));
  ASSERT_TRUE(out.ok()) << out.detail();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].kind, CertKind::kVcek);
  EXPECT_EQ((*out)[0].data, Bytes(10, 1));
  EXPECT_EQ((*out)[1].kind, CertKind::kArk);
  EXPECT_EQ(GuidToString(GuidFor(CertKind::kVcek)), "63da758d-e664-4564-adc5-f4b93be8accd");
  EXPECT_EQ(GuidToString(GuidFor(CertKind::kVlek)), "a8074bc2-a25a-483e-aae6-39c045a0b8a1");
  EXPECT_EQ(GuidToString(GuidFor(CertKind::kAsk)), "4ab7b379-bbac-4fe4-a02f-05aef327c782");
  EXPECT_EQ(GuidToString(GuidFor(CertKind::kArk)), "c0b406a4-a803-4952-9743-3fb6014cd0ae");
  auto empty = ParseCertTable(Bytes(kCertTableEntrySize, 0));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(SnpCertTableTest, RejectsOutOfBoundsAndOverlappingEntries) {
  const Guid vcek = GuidFor(CertKind::kVcek);
  EXPECT_TRUE(ParseCertTable(Table({{vcek, 48, 16}}, 16)).ok());
  EXPECT_EQ(ParseCertTable(Table({{vcek, 48, 17}}, 16)).code(), AttestErrc::kMalformed);           // past end
  EXPECT_EQ(ParseCertTable(Table({{vcek, 0xFFFFFFFF, 2}}, 16)).code(), AttestErrc::kMalformed);    // offset
  EXPECT_EQ(ParseCertTable(Table({{vcek, 48, 0xFFFFFFFF}}, 16)).code(), AttestErrc::kMalformed);   // length
  EXPECT_EQ(ParseCertTable(Table({{vcek, 0, 16}}, 16)).code(), AttestErrc::kMalformed);            // header
  EXPECT_EQ(ParseCertTable(Table({{vcek, 40, 8}}, 16)).code(), AttestErrc::kMalformed);            // terminator
  EXPECT_EQ(ParseCertTable(Table({{vcek, 48, 0}}, 16)).code(), AttestErrc::kMalformed);            // empty
  Bytes no_terminator(kCertTableEntrySize * 2, 0x11);
  EXPECT_EQ(ParseCertTable(no_terminator).code(), AttestErrc::kMalformed);
  EXPECT_EQ(ParseCertTable(Bytes(23, 0)).code(), AttestErrc::kMalformed);
  // 65 entries: more than any host sends.
  Bytes many;
  for (int i = 0; i < 65; ++i) {
    many.insert(many.end(), vcek.begin(), vcek.end());
    PutU32Le(many, 66 * kCertTableEntrySize);
    PutU32Le(many, 1);
  }
  many.insert(many.end(), kCertTableEntrySize + 1, 0);
  EXPECT_EQ(ParseCertTable(many).code(), AttestErrc::kMalformed);
}

TEST(SnpCertTableTest, UnknownGuidsAreKeptAsOther) {
  Guid crl = {0x92, 0xf8, 0x1b, 0xc3, 0x58, 0x11, 0x4d, 0x3d, 0x97, 0xff, 0xd1, 0x9f, 0x88, 0xdc, 0x67, 0xea};
  auto out = ParseCertTable(Table({{crl, 48, 4}}, 4));
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].kind, CertKind::kOther);
  EXPECT_FALSE(LooksLikeCertTable(Table({{crl, 48, 4}}, 4)));
  EXPECT_TRUE(LooksLikeCertTable(Table({{GuidFor(CertKind::kAsk), 48, 4}}, 4)));
}

// --- appraisal of verified SNP evidence ---------------------------------------------

TEST(SnpReportTest, DefaultPolicyRejectsTheDebugReportAndAcceptsTheOthers) {
  CLLM_SHARED_PATH(s1, "testdata/attestation/snp/gosevguest_milan_v2_report.bin");
  CLLM_SHARED_PATH(s1_vcek, "testdata/attestation/snp/gosevguest_milan_v2_vcek.der");
  CLLM_SHARED_PATH(s2, "testdata/attestation/snp/trustee_milan_v2_report.bin");
  CLLM_SHARED_PATH(s2_vcek, "testdata/attestation/snp/trustee_milan_v2_vcek.der");
  CLLM_SHARED_PATH(chain, "testdata/attestation/snp/amd_milan_ask_ark_vcek_chain.pem");
  auto load = [](const std::filesystem::path& p) { return ReadFile(p.string(), 1 << 20).value(); };
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 10;
  tm.tm_mday = 23;
  auto verify = [&](const Bytes& report, const Bytes& vcek) {
    EvidenceInput in;
    in.evidence = report;
    in.cert_files = {vcek, load(chain)};
    in.at = std::chrono::system_clock::from_time_t(timegm(&tm));
    return VerifySnpEvidence(in);
  };
  Policy policy = Policy::Default();
  policy.platforms = {Platform::kSnp};
  auto debug = verify(load(s1), load(s1_vcek));
  ASSERT_TRUE(debug.ok()) << debug.detail();
  EXPECT_EQ(Appraise(*debug, policy).code(), AttestErrc::kDebugEnabled);
  auto fine = verify(load(s2), load(s2_vcek));
  ASSERT_TRUE(fine.ok()) << fine.detail();
  // No TCB status source: refused until the policy pins a floor.
  EXPECT_EQ(Appraise(*fine, policy).code(), AttestErrc::kTcbTooLow);
  policy.per_platform[Platform::kSnp].min_tcb = {
      {"snp.bootloader", 3}, {"snp.tee", 0}, {"snp.snp", 8}, {"snp.microcode", 115}};
  auto claims = Appraise(*fine, policy);
  ASSERT_TRUE(claims.ok()) << claims.detail();
  EXPECT_EQ(claims->platform(), Platform::kSnp);
  EXPECT_FALSE(claims->simulated());
  EXPECT_EQ(claims->tcb_status(), TcbStatus::kNotEvaluated);
  // A TCB floor above the reported microcode (115) fails.
  policy.per_platform[Platform::kSnp].min_tcb["snp.microcode"] = 116;
  EXPECT_EQ(Appraise(*fine, policy).code(), AttestErrc::kTcbTooLow);
}

}  // namespace
}  // namespace cllm::attestation::snp
