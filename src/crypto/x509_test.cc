// X.509 tests on real AMD KDS certificates (RSA-PSS SHA-384 chains) from
// ../shared/testdata/attestation/snp, verified at injected times.
#include "crypto/x509.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <chrono>

#include "base/file.h"
#include "support/shared_data.h"

namespace cllm::crypto {
namespace {

using std::chrono::system_clock;

TimePoint At(int year, int month, int day) {
  struct tm tm = {};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  return system_clock::from_time_t(timegm(&tm));
}

std::vector<Certificate> LoadPem(const std::filesystem::path& p) {
  return Certificate::ParsePemBundle(ReadTextFile(p).value()).value();
}

// Splits an ASK+ARK bundle into (intermediates, roots) by self-issuance.
void Split(const std::vector<Certificate>& certs, std::vector<Certificate>* inter,
           std::vector<Certificate>* roots) {
  for (const auto& c : certs) (c.IsSelfIssued() ? roots : inter)->push_back(c);
}

TEST(X509Test, AmdMilanVcekChainVerifiesAtValidTime) {
  CLLM_SHARED_PATH(chain_path, "testdata/attestation/snp/amd_milan_ask_ark_vcek_chain.pem");
  CLLM_SHARED_PATH(vcek_path, "testdata/attestation/snp/trustee_milan_v2_vcek.der");
  std::vector<Certificate> inter, roots;
  Split(LoadPem(chain_path), &inter, &roots);
  ASSERT_EQ(roots.size(), 1u);
  ASSERT_EQ(inter.size(), 1u);
  auto vcek = Certificate::FromDer(ReadFile(vcek_path).value());
  ASSERT_TRUE(vcek.ok());
  EXPECT_EQ(roots[0].SubjectCommonName(), "ARK-Milan");
  EXPECT_EQ(inter[0].SubjectCommonName(), "SEV-Milan");
  EXPECT_EQ(vcek->SubjectCommonName(), "SEV-VCEK");
  EXPECT_EQ(vcek->GetPublicKey()->type(), KeyType::kEcP384);

  ChainOptions opts;
  opts.at = At(2025, 1, 1);
  auto ok = VerifyChain(*vcek, inter, roots, opts);
  EXPECT_TRUE(ok.ok()) << ok.detail();

  opts.at = At(2020, 1, 1);  // before the VCEK was issued (2023-01-24)
  EXPECT_EQ(VerifyChain(*vcek, inter, roots, opts).code(), CryptoErrc::kNotYetValid);
  opts.at = At(2031, 1, 1);  // after it expired (2030-01-24)
  EXPECT_EQ(VerifyChain(*vcek, inter, roots, opts).code(), CryptoErrc::kExpired);
}

TEST(X509Test, WrongProductRootIsRejected) {
  CLLM_SHARED_PATH(milan, "testdata/attestation/snp/amd_milan_ask_ark_vcek_chain.pem");
  CLLM_SHARED_PATH(genoa, "testdata/attestation/snp/amd_genoa_ask_ark_vcek_chain.pem");
  CLLM_SHARED_PATH(vcek_path, "testdata/attestation/snp/trustee_milan_v2_vcek.der");
  std::vector<Certificate> m_inter, m_roots, g_inter, g_roots;
  Split(LoadPem(milan), &m_inter, &m_roots);
  Split(LoadPem(genoa), &g_inter, &g_roots);
  auto vcek = Certificate::FromDer(ReadFile(vcek_path).value()).value();
  ChainOptions opts;
  opts.at = At(2025, 1, 1);
  EXPECT_EQ(VerifyChain(vcek, g_inter, g_roots, opts).code(), CryptoErrc::kChainInvalid);
  // Milan intermediates but Genoa root: no path to a trusted root.
  EXPECT_EQ(VerifyChain(vcek, m_inter, g_roots, opts).code(), CryptoErrc::kChainInvalid);
  EXPECT_EQ(VerifyChain(vcek, m_inter, {}, opts).code(), CryptoErrc::kChainInvalid);
}

TEST(X509Test, RsaPssSignatureOfAskByArk) {
  CLLM_SHARED_PATH(chain_path, "testdata/attestation/snp/amd_genoa_ask_ark_vcek_chain.pem");
  std::vector<Certificate> inter, roots;
  Split(LoadPem(chain_path), &inter, &roots);
  ASSERT_FALSE(inter.empty());
  ASSERT_FALSE(roots.empty());
  const Certificate& ask = inter[0];
  PublicKey ark_key = roots[0].GetPublicKey().value();
  EXPECT_EQ(ark_key.type(), KeyType::kRsa);
  EXPECT_EQ(ark_key.Bits(), 4096);
  EXPECT_EQ(ask.SignatureAlgorithm(), "rsassaPss");
  // AMD signs with RSASSA-PSS, SHA-384, MGF1-SHA-384, salt length 48.
  EXPECT_TRUE(RsaPssVerify(ark_key, HashAlg::kSha384, ask.TbsDer(), ask.SignatureValue(), 48).ok());
  Bytes tbs = ask.TbsDer();
  tbs[tbs.size() / 2] ^= 1;
  EXPECT_EQ(RsaPssVerify(ark_key, HashAlg::kSha384, tbs, ask.SignatureValue(), 48).code(),
            CryptoErrc::kBadSignature);
  EXPECT_TRUE(ask.VerifySignedBy(ark_key).ok());
  EXPECT_TRUE(roots[0].VerifySignedBy(ark_key).ok());
  EXPECT_EQ(roots[0].VerifySignedBy(ask.GetPublicKey().value()).code(), CryptoErrc::kBadSignature);
}

TEST(X509Test, ExtensionsByOid) {
  CLLM_SHARED_PATH(vcek_path, "testdata/attestation/snp/trustee_milan_v2_vcek.der");
  auto vcek = Certificate::FromDer(ReadFile(vcek_path).value()).value();
  // hwID (1.3.6.1.4.1.3704.1.4) holds the 64-byte chip id.
  auto hwid = vcek.Extension("1.3.6.1.4.1.3704.1.4");
  ASSERT_TRUE(hwid.has_value());
  EXPECT_GE(hwid->size(), 64u);
  EXPECT_FALSE(vcek.Extension("1.2.3.4.5").has_value());
  auto oids = vcek.ExtensionOids();
  EXPECT_NE(std::find(oids.begin(), oids.end(), "1.3.6.1.4.1.3704.1.3.1"), oids.end());
  EXPECT_EQ(Certificate::FromDer(vcek.Der())->SerialHex(), vcek.SerialHex());
}

TEST(X509Test, MalformedInputIsAnErrorNotACrash) {
  EXPECT_EQ(Certificate::FromDer(Bytes{0x30, 0x82, 0xff}).code(), CryptoErrc::kParse);
  EXPECT_EQ(Certificate::FromPem("garbage").code(), CryptoErrc::kParse);
  EXPECT_EQ(Certificate::ParsePemBundle("").code(), CryptoErrc::kParse);
  EXPECT_EQ(Crl::FromDer(Bytes{1, 2, 3}).code(), CryptoErrc::kParse);
  EXPECT_EQ(PublicKey::FromSpkiDer(Bytes{0x30, 0x00}).code(), CryptoErrc::kParse);
  std::string broken =
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  EXPECT_EQ(Certificate::ParsePemBundle(broken).code(), CryptoErrc::kParse);
}

// WithValidity makes a self-signed certificate whose validity is the two
// times as written (ASN.1 text), which TimePoint could not express.
Certificate WithValidity(const char* not_before, const char* not_after) {
  auto key = PrivateKey::Generate(KeyType::kEcP256);
  EXPECT_TRUE(key.ok());
  X509* x = X509_new();
  EXPECT_EQ(X509_set_version(x, 2), 1);
  EXPECT_EQ(ASN1_TIME_set_string_X509(X509_getm_notBefore(x), not_before), 1);
  EXPECT_EQ(ASN1_TIME_set_string_X509(X509_getm_notAfter(x), not_after), 1);
  EXPECT_EQ(X509_set_pubkey(x, key->get()), 1);
  EXPECT_GT(X509_sign(x, key->get(), EVP_sha256()), 0);
  unsigned char* der = nullptr;
  const int len = i2d_X509(x, &der);
  Bytes bytes(der, der + len);
  OPENSSL_free(der);
  X509_free(x);
  return Certificate::FromDer(bytes).value();
}

TEST(X509Test, DatesPastTheClockRangeAreNeverNotWrapped) {
  // RFC 5280 §4.1.2.5: 99991231235959Z is "no well-defined expiration".
  const Certificate forever = WithValidity("20240101000000Z", "99991231235959Z");
  const auto now = std::chrono::system_clock::now();
  EXPECT_GT(forever.NotAfter(), now + std::chrono::hours(24 * 365 * 200)) << "a year-9999 end wrapped into the past";
  EXPECT_LT(forever.NotBefore(), now);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(forever.NotBefore()), 1704067200);
  // A start that far ahead never comes, and margins can be taken off either end.
  const Certificate later = WithValidity("99990101000000Z", "99991231235959Z");
  EXPECT_GT(later.NotBefore() - std::chrono::minutes(5), now + std::chrono::hours(24 * 365 * 200));
  const Certificate old = WithValidity("19500101000000Z", "19600101000000Z");
  EXPECT_LT(old.NotAfter(), now);
  EXPECT_LT(old.NotBefore(), old.NotAfter());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(old.NotAfter()), -315619200);
}

}  // namespace
}  // namespace cllm::crypto
