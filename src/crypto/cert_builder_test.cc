#include "crypto/cert_builder.h"

#include <gtest/gtest.h>

namespace cllm::crypto {
namespace {

using namespace std::chrono_literals;

struct TestPki {
  PrivateKey ca_key = PrivateKey::Generate(KeyType::kEcP384).value();
  PrivateKey leaf_key = PrivateKey::Generate(KeyType::kEcP256).value();
  TimePoint t0 = std::chrono::system_clock::from_time_t(1800000000);
  Certificate ca = IssueCa();
  Certificate leaf = IssueLeaf();

  Certificate IssueCa() {
    CertSpec spec{.common_name = "cllm test CA", .not_before = t0, .not_after = t0 + 24h * 365,
                  .serial = {}, .is_ca = true, .dns_names = {}, .extensions = {}};
    return IssueCertificate(spec, ca_key.public_key(), ca_key, nullptr).value();
  }
  Certificate IssueLeaf() {
    CertSpec spec{.common_name = "server", .not_before = t0, .not_after = t0 + 10min,
                  .serial = {}, .is_ca = false, .dns_names = {"localhost"},
                  .extensions = {{"2.23.133.5.4.9", false, Bytes{0x04, 0x02, 0xca, 0xfe}}}};
    return IssueCertificate(spec, leaf_key.public_key(), ca_key, &ca).value();
  }
};

TEST(CertBuilderTest, IssuedChainVerifiesAndCarriesExtension) {
  TestPki pki;
  ChainOptions opts;
  opts.at = pki.t0 + 1min;
  auto ok = VerifyChain(pki.leaf, {}, {pki.ca}, opts);
  EXPECT_TRUE(ok.ok()) << ok.detail();
  EXPECT_EQ(pki.leaf.Extension("2.23.133.5.4.9"), (Bytes{0x04, 0x02, 0xca, 0xfe}));
  EXPECT_EQ(pki.leaf.SubjectCommonName(), "server");
  EXPECT_EQ(pki.leaf.GetPublicKey()->ToSpkiDer(), pki.leaf_key.public_key().ToSpkiDer());
  EXPECT_TRUE(pki.leaf.VerifySignedBy(pki.ca_key.public_key()).ok());

  opts.at = pki.t0 + 11min;  // leaf lives 10 minutes
  EXPECT_EQ(VerifyChain(pki.leaf, {}, {pki.ca}, opts).code(), CryptoErrc::kExpired);
  opts.at = pki.t0 - 1min;
  EXPECT_EQ(VerifyChain(pki.leaf, {}, {pki.ca}, opts).code(), CryptoErrc::kNotYetValid);
}

TEST(CertBuilderTest, ATlsServerChainNeedsServerAuthWhereUsageIsRestricted) {
  TestPki pki;
  ChainOptions opts;
  opts.at = pki.t0 + 1min;
  opts.tls_server = true;
  auto unrestricted = VerifyChain(pki.leaf, {}, {pki.ca}, opts);
  EXPECT_TRUE(unrestricted.ok()) << unrestricted.detail();
  // extKeyUsage (2.5.29.37) = SEQUENCE { clientAuth 1.3.6.1.5.5.7.3.2 }: a client's certificate.
  const Bytes client_auth = {0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02};
  CertSpec spec{.common_name = "client", .not_before = pki.t0, .not_after = pki.t0 + 10min,
                .serial = {}, .is_ca = false, .dns_names = {"localhost"},
                .extensions = {{"2.5.29.37", false, client_auth}}};
  const Certificate client = IssueCertificate(spec, pki.leaf_key.public_key(), pki.ca_key, &pki.ca).value();
  EXPECT_EQ(VerifyChain(client, {}, {pki.ca}, opts).code(), CryptoErrc::kChainInvalid);
  opts.tls_server = false;  // attestation chains: usage is not asked
  EXPECT_TRUE(VerifyChain(client, {}, {pki.ca}, opts).ok());
}

TEST(CertBuilderTest, CrlRevokesLeaf) {
  TestPki pki;
  auto crl = IssueCrl(pki.ca, pki.ca_key, {pki.leaf}, pki.t0, pki.t0 + 24h);
  ASSERT_TRUE(crl.ok()) << crl.detail();
  EXPECT_TRUE(crl->IsRevoked(pki.leaf));
  EXPECT_FALSE(crl->IsRevoked(pki.ca));
  EXPECT_TRUE(crl->VerifySignedBy(pki.ca_key.public_key()).ok());
  // DER round trip keeps the CRL (and its signature) intact.
  auto again = Crl::FromDer(crl->Der());
  ASSERT_TRUE(again.ok()) << again.detail();
  EXPECT_TRUE(again->IsRevoked(pki.leaf));
  EXPECT_TRUE(again->VerifySignedBy(pki.ca_key.public_key()).ok());
  ChainOptions opts;
  opts.at = pki.t0 + 1min;
  opts.crls = {*crl};
  EXPECT_EQ(VerifyChain(pki.leaf, {}, {pki.ca}, opts).code(), CryptoErrc::kRevoked);

  auto empty = IssueCrl(pki.ca, pki.ca_key, {}, pki.t0, pki.t0 + 24h);
  opts.crls = {*empty};
  EXPECT_TRUE(VerifyChain(pki.leaf, {}, {pki.ca}, opts).ok());
  opts.at = pki.t0 + 48h;  // CRL past nextUpdate (leaf expired too)
  EXPECT_FALSE(VerifyChain(pki.leaf, {}, {pki.ca}, opts).ok());
}

TEST(CertBuilderTest, RequireCrlsFailsWhenMissing) {
  TestPki pki;
  ChainOptions opts;
  opts.at = pki.t0 + 1min;
  opts.require_crls = true;
  EXPECT_EQ(VerifyChain(pki.leaf, {}, {pki.ca}, opts).code(), CryptoErrc::kChainInvalid);
}

TEST(CertBuilderTest, SelfSignedAndEmptyValidityRejected) {
  auto key = PrivateKey::Generate(KeyType::kEcP256).value();
  TimePoint t = std::chrono::system_clock::from_time_t(1800000000);
  CertSpec spec{.common_name = "self", .not_before = t, .not_after = t + 5min, .serial = {},
                .is_ca = false, .dns_names = {}, .extensions = {}};
  auto cert = IssueCertificate(spec, key.public_key(), key, nullptr);
  ASSERT_TRUE(cert.ok());
  EXPECT_TRUE(cert->IsSelfIssued());
  EXPECT_TRUE(cert->VerifySignedBy(key.public_key()).ok());
  spec.not_after = t;
  EXPECT_EQ(IssueCertificate(spec, key.public_key(), key, nullptr).code(), CryptoErrc::kInvalidArgument);
}

}  // namespace
}  // namespace cllm::crypto
