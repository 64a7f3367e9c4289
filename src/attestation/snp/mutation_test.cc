// mutation_test.cc — deliberately altered real reports and certificate sets:
// each alteration must fail with its specific error code.
#include <gtest/gtest.h>

#include <cstdio>

#include "attestation/snp/report.h"
#include "attestation/snp/verify.h"
#include "base/file.h"
#include "support/shared_data.h"

namespace cllm::attestation::snp {
namespace {

crypto::TimePoint At(int year, int month, int day) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}
const crypto::TimePoint kNow = At(2026, 11, 23);

Bytes Load(const std::filesystem::path& p) {
  auto b = ReadFile(p.string(), 1 << 20);
  EXPECT_TRUE(b.ok()) << p;
  return b.ok() ? std::move(b).value() : Bytes{};
}

AttestResult<VerifiedEvidence> Verify(const Bytes& report, const std::vector<Bytes>& certs,
                                      crypto::TimePoint at = kNow) {
  EvidenceInput in;
  in.evidence = report;
  in.cert_files = certs;
  in.at = at;
  return VerifySnpEvidence(in);
}

std::string Hex3(size_t offset) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%03zX", offset);
  return buf;
}

// S2 (trustee_milan_v2_*): a valid Milan v2 report with its VCEK and chain.
#define LOAD_S2()                                                                                  \
  CLLM_SHARED_PATH(report_path, "testdata/attestation/snp/trustee_milan_v2_report.bin");           \
  CLLM_SHARED_PATH(vcek_path, "testdata/attestation/snp/trustee_milan_v2_vcek.der");               \
  CLLM_SHARED_PATH(chain_path, "testdata/attestation/snp/amd_milan_ask_ark_vcek_chain.pem");       \
  const Bytes report = Load(report_path);                                                          \
  const Bytes vcek = Load(vcek_path);                                                              \
  const Bytes chain = Load(chain_path);                                                            \
  ASSERT_TRUE(Verify(report, {vcek, chain}).ok())

struct Flip {
  size_t offset;
  const char* group;
  AttestErrc want;
};

TEST(SnpMutationTest, FlippingAByteInEachFieldGroupFails) {
  LOAD_S2();
  const Flip flips[] = {
      {0x004, "GUEST_SVN", AttestErrc::kBadSignature},
      {0x008, "POLICY", AttestErrc::kBadSignature},
      {0x010, "FAMILY_ID", AttestErrc::kBadSignature},
      {42, "IMAGE_ID (trustee's byte 42)", AttestErrc::kBadSignature},
      {0x030, "VMPL", AttestErrc::kBadSignature},
      {0x038, "CURRENT_TCB", AttestErrc::kBadSignature},
      {0x040, "PLATFORM_INFO", AttestErrc::kBadSignature},
      {0x048, "KEY_INFO.AUTHOR_KEY_EN", AttestErrc::kBadSignature},
      {0x050, "REPORT_DATA", AttestErrc::kBadSignature},
      {0x08F, "REPORT_DATA (last byte)", AttestErrc::kBadSignature},
      {0x090, "MEASUREMENT", AttestErrc::kBadSignature},
      {0x0C0, "HOST_DATA", AttestErrc::kBadSignature},
      {0x0E0, "ID_KEY_DIGEST", AttestErrc::kBadSignature},
      {0x110, "AUTHOR_KEY_DIGEST", AttestErrc::kBadSignature},
      {0x140, "REPORT_ID", AttestErrc::kBadSignature},
      {0x160, "REPORT_ID_MA", AttestErrc::kBadSignature},
      {0x180, "REPORTED_TCB.boot_loader (trustee's byte 384)", AttestErrc::kTcbMismatch},
      {0x186, "REPORTED_TCB.snp", AttestErrc::kTcbMismatch},
      {0x187, "REPORTED_TCB.microcode", AttestErrc::kTcbMismatch},
      {0x1A0, "CHIP_ID", AttestErrc::kHwIdMismatch},
      {0x1E0, "COMMITTED_TCB", AttestErrc::kBadSignature},
      {0x1E8, "CURRENT_BUILD", AttestErrc::kBadSignature},
      {0x1EC, "COMMITTED_BUILD", AttestErrc::kBadSignature},
      {0x1F0, "LAUNCH_TCB", AttestErrc::kBadSignature},
      {0x2A0, "SIGNATURE.R", AttestErrc::kBadSignature},
      {0x2E8, "SIGNATURE.S", AttestErrc::kBadSignature},
  };
  for (const auto& f : flips) {
    Bytes bad = report;
    bad[f.offset] ^= 0x01;
    auto r = Verify(bad, {vcek, chain});
    ASSERT_FALSE(r.ok()) << f.group;
    EXPECT_EQ(r.code(), f.want) << f.group << ": " << AttestErrcName(r.code()) << " " << r.detail();
  }
}

TEST(SnpMutationTest, NonZeroReservedBytesNameTheirOffset) {
  LOAD_S2();
  // v2: 0x04C..0x04F, 0x188..0x19F (CPUID bytes are reserved in v2), 0x1EB,
  // 0x1EF, 0x1F8..0x29F, high 24 bytes of R and S, 0x330..0x49F.
  const size_t offsets[] = {0x04C, 0x04F, 0x188, 0x18A, 0x19F, 0x1EB, 0x1EF, 0x1F8, 0x200, 0x29F,
                            0x2D0, 0x2E7, 0x318, 0x32F, 0x330, 0x49F};
  for (size_t off : offsets) {
    Bytes bad = report;
    bad[off] = 0x80;
    auto r = Verify(bad, {vcek, chain});
    ASSERT_FALSE(r.ok()) << Hex3(off);
    EXPECT_EQ(r.code(), AttestErrc::kReservedNonZero) << Hex3(off) << ": " << r.detail();
    EXPECT_NE(r.detail().find(Hex3(off)), std::string::npos) << r.detail();
  }
  Bytes bad = report;
  bad[0x048] |= 0x20;  // KEY_INFO bit 5: reserved
  EXPECT_EQ(Verify(bad, {vcek, chain}).code(), AttestErrc::kReservedNonZero);
}

TEST(SnpMutationTest, VersionsAlgorithmsAndSigningKeys) {
  LOAD_S2();
  for (uint8_t v : {0, 1, 4, 6, 0xFF}) {
    Bytes bad = report;
    bad[0] = v;
    EXPECT_EQ(Verify(bad, {vcek, chain}).code(), AttestErrc::kUnsupportedVersion) << int(v);
  }
  Bytes algo = report;
  algo[0x034] = 2;
  EXPECT_EQ(Verify(algo, {vcek, chain}).code(), AttestErrc::kUnsupportedVersion);
  Bytes reserved_key = report;
  reserved_key[0x048] = 2 << 2;  // SIGNING_KEY = 2 (reserved)
  EXPECT_EQ(Verify(reserved_key, {vcek, chain}).code(), AttestErrc::kUnsupportedVersion);
  Bytes none = report;
  none[0x048] = 7 << 2;  // SIGNING_KEY = 7: no signature
  EXPECT_EQ(Verify(none, {vcek, chain}).code(), AttestErrc::kBadSignature);
  Bytes vlek = report;
  vlek[0x048] = 1 << 2;  // claims VLEK, only a VCEK is supplied
  EXPECT_EQ(Verify(vlek, {vcek, chain}).code(), AttestErrc::kCollateralMissing);
  Bytes masked = report;
  masked[0x048] = 2;  // MASK_CHIP_KEY: the VCEK did not sign
  EXPECT_EQ(Verify(masked, {vcek, chain}).code(), AttestErrc::kBadSignature);
}

TEST(SnpMutationTest, WrongSizesAreMalformed) {
  LOAD_S2();
  Bytes short_report(report.begin(), report.end() - 1);
  EXPECT_EQ(Verify(short_report, {vcek, chain}).code(), AttestErrc::kMalformed);
  EXPECT_EQ(Verify({}, {vcek, chain}).code(), AttestErrc::kMalformed);
  Bytes trailing = report;
  trailing.push_back(0);  // not a certificate table
  EXPECT_EQ(Verify(trailing, {vcek, chain}).code(), AttestErrc::kMalformed);
}

TEST(SnpMutationTest, VcekOfAnotherChipWithTheSameTcbIsHwIdMismatch) {
  // S5 (Azure Milan) has the same REPORTED_TCB as S2 but another CHIP_ID.
  LOAD_S2();
  CLLM_SHARED_PATH(azure_path, "testdata/attestation/snp/azure_milan_v2_report_from_hcl.bin");
  auto r = Verify(Load(azure_path), {vcek, chain});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), AttestErrc::kHwIdMismatch) << r.detail();
}

TEST(SnpMutationTest, VcekOfAnotherChipAndTcbIsTcbMismatch) {
  LOAD_S2();
  CLLM_SHARED_PATH(other_vcek, "testdata/attestation/snp/gosevguest_milan_v2_vcek.der");
  auto r = Verify(report, {Load(other_vcek), chain});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), AttestErrc::kTcbMismatch) << r.detail();
}

TEST(SnpMutationTest, ValidityWindowOfTheVcek) {
  LOAD_S2();  // VCEK valid 2023-01-24 .. 2030-01-24
  EXPECT_EQ(Verify(report, {vcek, chain}, At(2022, 6, 1)).code(), AttestErrc::kCertNotYetValid);
  EXPECT_EQ(Verify(report, {vcek, chain}, At(2030, 6, 1)).code(), AttestErrc::kCertExpired);
  EXPECT_TRUE(Verify(report, {vcek, chain}, At(2023, 2, 1)).ok());
}

TEST(SnpMutationTest, MissingCertificatesAreCollateralMissing) {
  LOAD_S2();
  EXPECT_EQ(Verify(report, {chain}).code(), AttestErrc::kCollateralMissing);  // no VCEK
  EXPECT_EQ(Verify(report, {vcek}).code(), AttestErrc::kCollateralMissing);   // no ASK, no ARK
  auto bundle = crypto::Certificate::ParsePemBundle(AsChars(chain));
  ASSERT_TRUE(bundle.ok());
  const Bytes ask = (*bundle)[0].Der();
  const Bytes ark = (*bundle)[1].Der();
  EXPECT_EQ(Verify(report, {vcek, ask}).code(), AttestErrc::kCollateralMissing);  // no ARK
  EXPECT_EQ(Verify(report, {vcek, ark}).code(), AttestErrc::kCollateralMissing);  // no ASK
  EXPECT_TRUE(Verify(report, {vcek, ask, ark}).ok());
}

TEST(SnpMutationTest, VcekWithTheVlekIntermediateDoesNotChain) {
  LOAD_S2();
  CLLM_SHARED_PATH(vlek_chain, "testdata/attestation/snp/amd_milan_asvk_ark_vlek_chain.pem");
  auto r = Verify(report, {vcek, Load(vlek_chain)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), AttestErrc::kCollateralMissing) << r.detail();  // the ASK is missing
}

TEST(SnpMutationTest, AlteredArkIsNotPinned) {
  LOAD_S2();
  auto bundle = crypto::Certificate::ParsePemBundle(AsChars(chain));
  ASSERT_TRUE(bundle.ok());
  // Re-encoding with one signature bit flipped keeps the subject but changes
  // the digest: the root is no longer the pinned ARK.
  Bytes ark = (*bundle)[1].Der();
  ark[ark.size() - 1] ^= 0x01;
  auto r = Verify(report, {vcek, (*bundle)[0].Der(), ark});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), AttestErrc::kChainInvalid) << r.detail();
}

TEST(SnpMutationTest, CollateralFileIsACertificateSource) {
  LOAD_S2();
  EvidenceInput in;
  in.evidence = report;
  in.cert_files = {vcek};
  in.collateral = chain;
  in.at = kNow;
  EXPECT_TRUE(VerifySnpEvidence(in).ok());
  in.collateral = ToBytes("garbage");
  EXPECT_EQ(VerifySnpEvidence(in).code(), AttestErrc::kCollateralInvalid);
}

TEST(SnpMutationTest, GarbageCertFileIsCollateralInvalid) {
  LOAD_S2();
  EXPECT_EQ(Verify(report, {vcek, chain, ToBytes("not a certificate")}).code(), AttestErrc::kCollateralInvalid);
}

}  // namespace
}  // namespace cllm::attestation::snp
