// AeadKey (aead_key.h): a key set up once must give, message after message,
// exactly the bytes of the one-shot functions and of RFC 9180's vectors, and
// recover from a forged message without losing the key.
#include "crypto/aead_key.h"

#include <gtest/gtest.h>

#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/random.h"
#include "crypto/sm4_aead.h"

namespace cllm::crypto {
namespace {

Bytes H(std::string_view hex) { return HexDecode(hex).value(); }
const Bytes kPt = ToBytes("Beauty is truth, truth beauty");

// RFC 9180 Appendix A.1.1 (AES-128-GCM) and A.2.1 (ChaCha20Poly1305):
// sequence numbers 0 and 1 under one key — nonce = base_nonce XOR seq,
// aad = "Count-<seq>".
TEST(AeadKeyTest, Rfc9180VectorsMessageAfterMessage) {
  struct Case {
    hpke::Aead aead;
    const char *key, *nonce0, *nonce1, *ct0, *ct1;
  } cases[] = {
      {hpke::Aead::kAes128Gcm, "4531685d41d65f03dc48f6b8302c05b0", "56d890e5accaaf011cff4b7d",
       "56d890e5accaaf011cff4b7c",
       "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
       "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84"},
      {hpke::Aead::kChaCha20Poly1305, "ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91",
       "5c4d98150661b848853b547f", "5c4d98150661b848853b547e",
       "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
       "6b53c051e4199c518de79594e1c4ab18b96f081549d45ce015be002090bb119e85285337cc95ba5f59992dc98c"},
  };
  for (const auto& c : cases) {
    auto sealer = AeadKey::Create(c.aead, H(c.key));
    auto opener = AeadKey::Create(c.aead, H(c.key));
    ASSERT_TRUE(sealer.ok() && opener.ok());
    EXPECT_EQ(HexEncode(sealer->Seal(H(c.nonce0), ToBytes("Count-0"), kPt).value()), c.ct0);
    EXPECT_EQ(HexEncode(sealer->Seal(H(c.nonce1), ToBytes("Count-1"), kPt).value()), c.ct1);
    EXPECT_EQ(opener->Open(H(c.nonce0), ToBytes("Count-0"), H(c.ct0)).value().span().size(), kPt.size());
    auto pt1 = opener->Open(H(c.nonce1), ToBytes("Count-1"), H(c.ct1));
    ASSERT_TRUE(pt1.ok());
    EXPECT_EQ(Bytes(pt1->span().begin(), pt1->span().end()), kPt);
  }
}

// The suites' AEADs against their one-shot functions, at lengths around the
// block size, each key used for a run of messages with fresh nonces; a
// forged message in the middle does not disturb the next one.
TEST(AeadKeyTest, MatchesOneShotOverARunAndRecoversFromForgery) {
  for (auto aead : {hpke::Aead::kAes256Gcm, hpke::Aead::kSm4CtrHmacSm3}) {
    const bool sm4 = aead == hpke::Aead::kSm4CtrHmacSm3;
    const Bytes key = RandomBytes(sm4 ? kSm4CtrHmacSm3KeySize : kAes256KeySize);
    auto sealer = AeadKey::Create(aead, key);
    auto opener = AeadKey::Create(aead, key);
    ASSERT_TRUE(sealer.ok() && opener.ok());
    for (size_t len : {0, 1, 15, 16, 17, 31, 100, 1000, 4097}) {
      SCOPED_TRACE(len);
      const Bytes nonce = RandomBytes(12), aad = RandomBytes(len % 9), pt = RandomBytes(len);
      auto ct = sealer->Seal(nonce, aad, pt);
      ASSERT_TRUE(ct.ok());
      auto one_shot = sm4 ? Sm4CtrHmacSm3Seal(key, nonce, aad, pt) : Aes256GcmSeal(key, nonce, aad, pt);
      EXPECT_EQ(*ct, *one_shot);
      Bytes forged = *ct;
      forged[forged.size() / 2] ^= 1;
      auto bad = opener->Open(nonce, aad, forged);
      ASSERT_FALSE(bad.ok());
      EXPECT_EQ(bad.code(), CryptoErrc::kAuthFailed);
      auto good = opener->Open(nonce, aad, *ct);
      ASSERT_TRUE(good.ok()) << good.detail();
      EXPECT_EQ(Bytes(good->span().begin(), good->span().end()), pt);
    }
  }
}

TEST(AeadKeyTest, RefusesBadKeysNoncesAndShortInput) {
  EXPECT_EQ(AeadKey::Create(hpke::Aead::kExportOnly, Bytes(32)).code(), CryptoErrc::kUnsupported);
  EXPECT_EQ(AeadKey::Create(static_cast<hpke::Aead>(0x7777), Bytes(32)).code(), CryptoErrc::kUnsupported);
  EXPECT_EQ(AeadKey::Create(hpke::Aead::kAes256Gcm, Bytes(16)).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(AeadKey::Create(hpke::Aead::kSm4CtrHmacSm3, Bytes(32)).code(), CryptoErrc::kInvalidArgument);
  for (auto aead : {hpke::Aead::kAes256Gcm, hpke::Aead::kSm4CtrHmacSm3}) {
    auto k = AeadKey::Create(aead, Bytes(aead == hpke::Aead::kAes256Gcm ? 32 : 48, 7));
    ASSERT_TRUE(k.ok());
    EXPECT_EQ(k->Seal(Bytes(11), {}, Bytes(3)).code(), CryptoErrc::kInvalidArgument);
    EXPECT_EQ(k->Open(Bytes(12), {}, Bytes(k->tag_size() - 1)).code(), CryptoErrc::kAuthFailed);
    EXPECT_EQ(k->Open(Bytes(12), {}, Bytes(k->tag_size())).code(), CryptoErrc::kAuthFailed);
  }
}

}  // namespace
}  // namespace cllm::crypto
