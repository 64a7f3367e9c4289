// Signature known-answer tests: RFC 6979 appendix A.2.5/A.2.6 (ECDSA P-256 /
// P-384, message "sample"), GM/T 0003.5-2012 example (SM2 on the recommended
// curve, ID 1234567812345678, message "message digest").
#include <gtest/gtest.h>
#include <openssl/x509.h>

#include "base/encoding.h"
#include "crypto/keys.h"

namespace cllm::crypto {
namespace {

Bytes H(std::string_view hex) { return HexDecode(hex).value(); }

TEST(EcdsaTest, Rfc6979P256Sample) {
  auto key = PublicKey::FromEcPoint(
      KeyType::kEcP256, H("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"),
      H("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"));
  ASSERT_TRUE(key.ok()) << key.detail();
  EXPECT_EQ(key->type(), KeyType::kEcP256);
  Bytes sig = H("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
                "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8");
  EXPECT_TRUE(EcdsaVerify(*key, HashAlg::kSha256, AsBytes("sample"), sig, SigFormat::kRaw).ok());
  EXPECT_EQ(EcdsaVerify(*key, HashAlg::kSha256, AsBytes("samplf"), sig, SigFormat::kRaw).code(),
            CryptoErrc::kBadSignature);
  // The same signature in DER form verifies too.
  Bytes der = RawSigToDer(sig).value();
  EXPECT_TRUE(EcdsaVerify(*key, HashAlg::kSha256, AsBytes("sample"), der, SigFormat::kDer).ok());
  EXPECT_EQ(DerSigToRaw(der, 32).value(), sig);
}

TEST(EcdsaTest, Rfc6979P384Sample) {
  auto key = PublicKey::FromEcPoint(
      KeyType::kEcP384,
      H("EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64DEF8F0EA9055866064A254515480BC13"),
      H("8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1288B231C3AE0D4FE7344FD2533264720"));
  ASSERT_TRUE(key.ok()) << key.detail();
  Bytes sig = H("94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46"
                "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8");
  EXPECT_TRUE(EcdsaVerify(*key, HashAlg::kSha384, AsBytes("sample"), sig, SigFormat::kRaw).ok());
  sig[10] ^= 1;
  EXPECT_EQ(EcdsaVerify(*key, HashAlg::kSha384, AsBytes("sample"), sig, SigFormat::kRaw).code(),
            CryptoErrc::kBadSignature);
}

TEST(EcdsaTest, RejectsPointOffCurveAndBadEncodings) {
  Bytes x = H("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6");
  Bytes y = H("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462298");  // last bit off
  EXPECT_EQ(PublicKey::FromEcPoint(KeyType::kEcP256, x, y).code(), CryptoErrc::kParse);
  EXPECT_EQ(PublicKey::FromEcPoint(KeyType::kEcP256, x, Bytes(31, 1)).code(),
            CryptoErrc::kInvalidArgument);
  EXPECT_EQ(DerSigToRaw(H("3006020101020101ff"), 32).code(), CryptoErrc::kParse);  // trailing byte
}

TEST(EcdsaTest, SignVerifyRoundTripBothCurvesBothFormats) {
  for (KeyType t : {KeyType::kEcP256, KeyType::kEcP384}) {
    auto priv = PrivateKey::Generate(t);
    ASSERT_TRUE(priv.ok());
    PublicKey pub = priv->public_key();
    for (SigFormat f : {SigFormat::kDer, SigFormat::kRaw}) {
      Bytes sig = EcdsaSign(*priv, HashAlg::kSha384, AsBytes("msg"), f).value();
      EXPECT_TRUE(EcdsaVerify(pub, HashAlg::kSha384, AsBytes("msg"), sig, f).ok());
    }
    // Key serialisations round-trip.
    auto again = PrivateKey::FromPkcs8Der(priv->ToPkcs8Der().span());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->public_key().ToSpkiDer(), pub.ToSpkiDer());
    EXPECT_EQ(PublicKey::FromPem(pub.ToPem())->ToSpkiDer(), pub.ToSpkiDer());
    EXPECT_EQ(PrivateKey::FromPem(priv->ToPem())->public_key().ToSpkiDer(), pub.ToSpkiDer());
    Bytes point = pub.EcPoint().value();
    size_t n = t == KeyType::kEcP256 ? 32 : 48;
    auto rebuilt = PublicKey::FromEcPoint(t, ByteSpan(point).first(n), ByteSpan(point).subspan(n));
    ASSERT_TRUE(rebuilt.ok());
    EXPECT_EQ(rebuilt->ToSpkiDer(), pub.ToSpkiDer());
  }
}

// ToSpkiDer writes P-256/P-384 SubjectPublicKeyInfo itself (a fixed prefix
// and the point): the bytes must be OpenSSL's encoding exactly, and a key
// kept in compressed form must keep its encoding (the general path).
TEST(PublicKeyTest, EcSpkiEqualsOpenSslEncoding) {
  for (KeyType t : {KeyType::kEcP256, KeyType::kEcP384}) {
    for (int i = 0; i < 8; ++i) {
      PublicKey pub = PrivateKey::Generate(t)->public_key();
      unsigned char* der = nullptr;
      int len = i2d_PUBKEY(pub.get(), &der);
      ASSERT_GT(len, 0);
      Bytes want(der, der + len);
      OPENSSL_free(der);
      EXPECT_EQ(pub.ToSpkiDer(), want);
      EXPECT_EQ(PublicKey::FromSpkiDer(want)->ToSpkiDer(), want);
    }
  }
  // P-256 generator G in compressed form (SEC 1 §2.3.3): 02/03 ‖ x.
  Bytes compressed = H("3039301306072a8648ce3d020106082a8648ce3d03010703220003"
                       "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
  auto key = PublicKey::FromSpkiDer(compressed);
  ASSERT_TRUE(key.ok()) << key.detail();
  EXPECT_EQ(key->ToSpkiDer(), compressed);
}

TEST(Sm2Test, GmT0003ExampleOnRecommendedCurve) {
  auto key = PublicKey::FromEcPoint(
      KeyType::kSm2, H("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"),
      H("CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"));
  ASSERT_TRUE(key.ok()) << key.detail();
  EXPECT_EQ(key->type(), KeyType::kSm2);
  Bytes sig = H("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
                "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA");
  EXPECT_TRUE(Sm2Verify(*key, AsBytes("message digest"), sig, SigFormat::kRaw).ok());
  // A different distinguishing ID changes Z, so the signature must fail.
  EXPECT_EQ(Sm2Verify(*key, AsBytes("message digest"), sig, SigFormat::kRaw, "ALICE123@YAHOO.COM").code(),
            CryptoErrc::kBadSignature);
  EXPECT_EQ(Sm2Verify(*key, AsBytes("message digesT"), sig, SigFormat::kRaw).code(),
            CryptoErrc::kBadSignature);
}

TEST(Sm2Test, SignVerifyRoundTrip) {
  auto priv = PrivateKey::Generate(KeyType::kSm2);
  ASSERT_TRUE(priv.ok()) << priv.detail();
  PublicKey pub = priv->public_key();
  EXPECT_EQ(pub.type(), KeyType::kSm2);
  Bytes sig = Sm2Sign(*priv, AsBytes("hello"), SigFormat::kRaw).value();
  EXPECT_TRUE(Sm2Verify(pub, AsBytes("hello"), sig, SigFormat::kRaw).ok());
  // SM2 keys cannot be used for ECDSA and vice versa.
  EXPECT_EQ(EcdsaVerify(pub, HashAlg::kSha256, AsBytes("hello"), sig, SigFormat::kRaw).code(),
            CryptoErrc::kInvalidArgument);
}

// The RFC 6979 A.2.5 P-256 key (x = C9AFA9D8...) as PKCS#8, made with Python
// cryptography: ec.derive_private_key(0xC9AF...6721, SECP256R1()).
constexpr std::string_view kRfc6979P256Pem = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgya+p2EW6dRZrXCFX
Z7HWk05Qw9s26JsSe4piKxIPZyGhRANCAARg/tS6JVqdMclh63TGNW1owEm4kjth
+mzmaWIuYPKftnkD/hAIuLyZpBrp6VYovGTy8bIMLX6fUXejwpTURiKZ
-----END PRIVATE KEY-----
)";

TEST(PrivateScalarTest, ExportsRfc6979KeyAndPadsToCurveSize) {
  auto priv = PrivateKey::FromPem(kRfc6979P256Pem);
  ASSERT_TRUE(priv.ok()) << priv.detail();
  auto d = priv->PrivateScalar();
  ASSERT_TRUE(d.ok()) << d.detail();
  EXPECT_EQ(HexEncode(d->span()), "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721");
  EXPECT_EQ(HexEncode(priv->public_key().EcPoint().value()),
            "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
            "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299");
  // Fresh keys: always the curve's size, even when d has leading zero bytes.
  for (KeyType t : {KeyType::kEcP256, KeyType::kEcP384, KeyType::kSm2}) {
    for (int i = 0; i < 8; ++i) {
      auto k = PrivateKey::Generate(t).value();
      EXPECT_EQ(k.PrivateScalar().value().size(), t == KeyType::kEcP384 ? 48u : 32u);
    }
  }
}

TEST(RsaComponentsTest, BuildsKeyAndRejectsWeakParameters) {
  Bytes n(256, 0);
  n[0] = 0x80;   // 2048-bit modulus
  n[255] = 0x01; // odd
  const Bytes e = {0x01, 0x00, 0x01};
  auto key = PublicKey::FromRsaComponents(n, e);
  ASSERT_TRUE(key.ok()) << key.detail();
  EXPECT_EQ(key->type(), KeyType::kRsa);
  EXPECT_EQ(key->Bits(), 2048);
  auto again = PublicKey::FromSpkiDer(key->ToSpkiDer());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ToSpkiDer(), key->ToSpkiDer());
  // A leading zero byte does not change the value.
  Bytes padded = n;
  padded.insert(padded.begin(), 0);
  EXPECT_EQ(PublicKey::FromRsaComponents(padded, e)->ToSpkiDer(), key->ToSpkiDer());

  EXPECT_EQ(PublicKey::FromRsaComponents(ByteSpan(n).subspan(128), e).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(PublicKey::FromRsaComponents(n, Bytes{0x01, 0x00, 0x00}).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(PublicKey::FromRsaComponents(n, Bytes{0x01}).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(PublicKey::FromRsaComponents(n, Bytes{}).code(), CryptoErrc::kInvalidArgument);
}

}  // namespace
}  // namespace cllm::crypto
