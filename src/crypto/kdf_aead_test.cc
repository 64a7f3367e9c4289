// Known-answer tests: RFC 4231 (HMAC-SHA-2), RFC 5869 (HKDF), the GCM spec's
// AES-256 test cases (McGrew & Viega, as used in NIST's GCM validation).
#include <gtest/gtest.h>

#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/random.h"

namespace cllm::crypto {
namespace {

Bytes H(std::string_view hex) { return HexDecode(hex).value(); }

TEST(HmacTest, Rfc4231Case1) {
  Bytes key(20, 0x0b);
  auto data = AsBytes("Hi There");
  EXPECT_EQ(HexEncode(Hmac(HashAlg::kSha256, key, data)),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HexEncode(Hmac(HashAlg::kSha384, key, data)),
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
            "faea9ea9076ede7f4af152e8b2fa9cb6");
  EXPECT_EQ(HexEncode(Hmac(HashAlg::kSha512, key, data)),
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
            "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854");
}

TEST(HmacTest, Rfc4231Case2) {
  EXPECT_EQ(HexEncode(Hmac(HashAlg::kSha256, AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HkdfTest, Rfc5869Case1) {
  auto okm = Hkdf(HashAlg::kSha256, Bytes(22, 0x0b), H("000102030405060708090a0b0c"),
                  H("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(HexEncode(okm->span()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865");
}

TEST(HkdfTest, Rfc5869Case3EmptySaltAndInfo) {
  auto okm = Hkdf(HashAlg::kSha256, Bytes(22, 0x0b), {}, {}, 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(HexEncode(okm->span()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
            "9d201395faa4b61a96c8");
}

TEST(HkdfTest, RejectsOversizedOutput) {
  EXPECT_EQ(Hkdf(HashAlg::kSha256, Bytes(32, 1), {}, {}, 255 * 32 + 1).code(),
            CryptoErrc::kInvalidArgument);
}

// GCM spec test case 13: zero key, zero IV, empty plaintext.
TEST(AesGcmTest, SpecCase13EmptyPlaintext) {
  auto sealed = Aes256GcmSeal(Bytes(32, 0), Bytes(12, 0), {}, {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(HexEncode(*sealed), "530f8afbc74536b9a963b4f1c4cb738b");
}

// GCM spec test case 14: zero key, zero IV, one zero block.
TEST(AesGcmTest, SpecCase14OneBlock) {
  auto sealed = Aes256GcmSeal(Bytes(32, 0), Bytes(12, 0), {}, Bytes(16, 0));
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(HexEncode(*sealed),
            "cea7403d4d606b6e074ec5d3baf39d18"    // ciphertext
            "d0d1c8a799996bf0265b98b5d48ab919");  // tag
  auto opened = Aes256GcmOpen(Bytes(32, 0), Bytes(12, 0), {}, *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(Bytes(opened->span().begin(), opened->span().end()), Bytes(16, 0));
}

TEST(AesGcmTest, AnyChangeFailsAuthenticationAndLeaksNothing) {
  Bytes key = RandomBytes(32), nonce = RandomBytes(12);
  Bytes aad = ToBytes("chunk 7"), plain = ToBytes("model weights go here");
  Bytes sealed = Aes256GcmSeal(key, nonce, aad, plain).value();
  for (size_t i = 0; i < sealed.size(); ++i) {
    Bytes bad = sealed;
    bad[i] ^= 0x01;
    Bytes out(plain.size(), 0xee);
    EXPECT_EQ(Aes256GcmOpenInto(key, nonce, aad, bad, out).code(), CryptoErrc::kAuthFailed) << i;
    EXPECT_EQ(out, Bytes(plain.size(), 0)) << "unauthenticated plaintext must be wiped";
  }
  EXPECT_EQ(Aes256GcmOpen(key, nonce, ToBytes("chunk 8"), sealed).code(), CryptoErrc::kAuthFailed);
  EXPECT_EQ(Aes256GcmOpen(key, nonce, aad, ByteSpan(sealed).first(10)).code(),
            CryptoErrc::kInvalidArgument);
  EXPECT_EQ(Aes256GcmSeal(Bytes(16, 0), nonce, {}, plain).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(Aes256GcmSeal(key, Bytes(8, 0), {}, plain).code(), CryptoErrc::kInvalidArgument);
}

TEST(RandomTest, ProducesDistinctOutput) {
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
  EXPECT_EQ(RandomBytes(0).size(), 0u);
}

}  // namespace
}  // namespace cllm::crypto
