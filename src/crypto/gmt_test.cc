// Known-answer tests of the GM/T primitives of the `gmt` suite and of the
// SM4-CTR-HMAC-SM3 AEAD built from them. Every expected value is typed in from
// a published source (cited at each test) or, for our own composition, from
// the openssl command line (commands in the comment, rerunnable).
//
// SM4 and SM4-CTR are OpenSSL's (the AEAD's building blocks), driven through
// EVP directly here: the library exposes only the AEAD.
#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/kdf.h"
#include "crypto/sm4_aead.h"

namespace cllm::crypto {
namespace {

Bytes H(std::string_view hex) { return HexDecode(hex).value(); }
std::string Hex(ByteSpan b) { return HexEncode(b); }

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

// Sm4Raw runs one OpenSSL SM4 mode over `in` (no padding).
Bytes Sm4Raw(const EVP_CIPHER* cipher, ByteSpan key, ByteSpan iv, ByteSpan in) {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  EXPECT_EQ(EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, key.data(),
                               iv.empty() ? nullptr : iv.data()),
            1);
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  Bytes out(in.size() + 16);
  int len = 0, fin = 0;
  EXPECT_EQ(EVP_EncryptUpdate(ctx.get(), out.data(), &len, in.data(), static_cast<int>(in.size())),
            1);
  EXPECT_EQ(EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &fin), 1);
  out.resize(static_cast<size_t>(len + fin));
  return out;
}

// ---------------------------------------------------------------- SM3

// GB/T 32905-2016 Appendix A, examples 1 ("abc") and 2 ("abcd" x 16).
TEST(GmtSm3Test, GbT32905AppendixA) {
  EXPECT_EQ(Hex(Sm3(AsBytes("abc"))),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  std::string m;
  for (int i = 0; i < 16; ++i) m += "abcd";
  EXPECT_EQ(Hex(Sm3(AsBytes(m))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
}

// ---------------------------------------------------------------- SM4

// GB/T 32907-2016 Appendix A, example 1: one encryption, key = plaintext.
TEST(GmtSm4Test, GbT32907Example1) {
  Bytes key = H("0123456789abcdeffedcba9876543210");
  EXPECT_EQ(Hex(Sm4Raw(EVP_sm4_ecb(), key, {}, key)), "681edf34d206965e86b3e94f536e4246");
}

// GB/T 32907-2016 Appendix A, example 2: the same block encrypted 1,000,000
// times with the same key. One EVP context, so this takes well under a second.
TEST(GmtSm4Test, GbT32907Example2MillionEncryptions) {
  Bytes key = H("0123456789abcdeffedcba9876543210");
  Bytes block = key;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  ASSERT_EQ(EVP_EncryptInit_ex(ctx.get(), EVP_sm4_ecb(), nullptr, key.data(), nullptr), 1);
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  uint8_t out[16];
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000000; ++i) {
    int len = 0;
    ASSERT_EQ(EVP_EncryptUpdate(ctx.get(), out, &len, block.data(), 16), 1);
    std::copy(out, out + 16, block.begin());
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(Hex(block), "595298c7c6fd271f0402f804c33d3f66");
  RecordProperty("elapsed_ms", static_cast<int>(ms));
}

// draft-ribose-cfrg-sm4-10 §A.2.5 (SM4-CTR examples 1 and 2): 16-byte counter
// block 000102…0f incremented as one 128-bit big-endian integer — the
// counter convention our AEAD relies on.
TEST(GmtSm4Test, CtrDraftRiboseCfrgSm4Examples) {
  Bytes iv = H("000102030405060708090a0b0c0d0e0f");
  Bytes pt = H("aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
               "eeeeeeeeeeeeeeeeffffffffffffffffaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb");
  EXPECT_EQ(Hex(Sm4Raw(EVP_sm4_ctr(), H("0123456789abcdeffedcba9876543210"), iv, pt)),
            "ac3236cb970cc20791364c395a1342d1a3cbc1878c6f30cd074cce385cdd70c7"
            "f234bc0e24c11980fd1286310ce37b926e02fcd0faa0baf38b2933851d824514");
  EXPECT_EQ(Hex(Sm4Raw(EVP_sm4_ctr(), H("fedcba98765432100123456789abcdef"), iv, pt)),
            "5dcccd25b95ab07417a08512ee160e2f8f661521cbbab44cc87138445bc29e5c"
            "0ae0297205d62704173b21239b887f6c8cb5b800917a2488284bde9e16ea2906");
}

// ---------------------------------------------------------------- HMAC-SM3

// GM/T 0042-2015 Appendix D.3, the four HMAC-SM3 examples (as reproduced in
// the Linux kernel's crypto/testmgr.h, intel-ipsec-mb and libxcrypt tests).
TEST(GmtHmacSm3Test, GmT0042AppendixD3) {
  Bytes key32 = H("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
  std::string abcd = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(Hex(Hmac(HashAlg::kSm3, key32, AsBytes(abcd + abcd))),
            "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a");
  Bytes key37 = H("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
                  "2122232425");
  EXPECT_EQ(Hex(Hmac(HashAlg::kSm3, key37, Bytes(50, 0xcd))),
            "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae");
  EXPECT_EQ(Hex(Hmac(HashAlg::kSm3, Bytes(32, 0x0b), AsBytes("Hi There"))),
            "c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e");
  EXPECT_EQ(Hex(Hmac(HashAlg::kSm3, AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882");
}

// ---------------------------------------------------------------- AEAD

// Our composition, recomputed independently with the openssl CLI (3.0):
//   KE=000102030405060708090a0b0c0d0e0f
//   KM=101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f
//   N=cafebabefacedbaddecaf888  AAD=feedfacedeadbeeffeedfacedeadbeefabaddad2
//   printf '%s' 'cllm gmt suite: SM4-CTR + HMAC-SM3 EtM' > pt.bin
//   openssl enc -sm4-ctr -K $KE -iv ${N}00000001 -in pt.bin -out ct.bin
//   { printf 0000000000000014 | xxd -r -p; printf $AAD | xxd -r -p;
//     printf $N | xxd -r -p; cat ct.bin; } > macin.bin
//   openssl dgst -sm3 -mac HMAC -macopt hexkey:$KM macin.bin
// and with empty plaintext and aad:
//   { printf 0000000000000000 | xxd -r -p; printf $N | xxd -r -p; } > macin0.bin
//   openssl dgst -sm3 -mac HMAC -macopt hexkey:$KM macin0.bin
constexpr std::string_view kKatKey =
    "000102030405060708090a0b0c0d0e0f"
    "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f";
constexpr std::string_view kKatNonce = "cafebabefacedbaddecaf888";
constexpr std::string_view kKatAad = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
constexpr std::string_view kKatPt = "cllm gmt suite: SM4-CTR + HMAC-SM3 EtM";
constexpr std::string_view kKatSealed =
    "96c5481ccf0cd1308006b4b0f367ee7004d27babec5b9c3152f3bc1e598d34b579972885ce93"  // ct
    "63e7a7245d0d12f93d0a72e1eaab52f7bb676693b00d29e77d4b52a5bfa0b2d4";             // tag
constexpr std::string_view kKatEmptyTag =
    "55e8caf98fe7382b023a7d12a64d3ef0939a474f947a123e307e02cb8beb7915";

TEST(Sm4CtrHmacSm3Test, MatchesOpensslCliComposition) {
  auto sealed = Sm4CtrHmacSm3Seal(H(kKatKey), H(kKatNonce), H(kKatAad), AsBytes(kKatPt));
  ASSERT_TRUE(sealed.ok()) << sealed.error().detail;
  EXPECT_EQ(Hex(*sealed), kKatSealed);
  auto opened = Sm4CtrHmacSm3Open(H(kKatKey), H(kKatNonce), H(kKatAad), H(kKatSealed));
  ASSERT_TRUE(opened.ok()) << opened.error().detail;
  EXPECT_EQ(AsChars(opened->span()), kKatPt);
}

TEST(Sm4CtrHmacSm3Test, EmptyPlaintextAndAadIsTagOnly) {
  auto sealed = Sm4CtrHmacSm3Seal(H(kKatKey), H(kKatNonce), {}, {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(Hex(*sealed), kKatEmptyTag);
  auto opened = Sm4CtrHmacSm3Open(H(kKatKey), H(kKatNonce), {}, *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->empty());
}

TEST(Sm4CtrHmacSm3Test, RoundTripsAtBlockBoundaries) {
  Bytes key = H(kKatKey);
  Bytes nonce = H(kKatNonce);
  for (size_t n : {0u, 1u, 15u, 16u, 17u, 4096u + 3u}) {
    Bytes pt(n);
    for (size_t i = 0; i < n; ++i) pt[i] = static_cast<uint8_t>(i * 7 + 1);
    auto sealed = Sm4CtrHmacSm3Seal(key, nonce, AsBytes("aad"), pt);
    ASSERT_TRUE(sealed.ok()) << n;
    ASSERT_EQ(sealed->size(), n + kSm4CtrHmacSm3TagSize) << n;
    auto opened = Sm4CtrHmacSm3Open(key, nonce, AsBytes("aad"), *sealed);
    ASSERT_TRUE(opened.ok()) << n;
    EXPECT_EQ(Bytes(opened->span().begin(), opened->span().end()), pt) << n;
  }
}

// Every byte of the MAC key, nonce, aad, ciphertext and tag matters, and so
// does the length split between aad and ciphertext.
TEST(Sm4CtrHmacSm3Test, TamperOfEveryPartFailsWithoutPlaintext) {
  const Bytes key = H(kKatKey), nonce = H(kKatNonce), aad = H(kKatAad), sealed = H(kKatSealed);
  auto expect_auth_failed = [](const CryptoResult<SecretBytes>& r, const std::string& what) {
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.code(), CryptoErrc::kAuthFailed) << what;
  };
  // Km (key bytes 16..47) keys the MAC: any change is caught.
  for (size_t i = 16; i < key.size(); ++i) {
    Bytes k = key;
    k[i] ^= 0x01;
    expect_auth_failed(Sm4CtrHmacSm3Open(k, nonce, aad, sealed), "Km byte " + std::to_string(i));
  }
  // Ke (key bytes 0..15) is not under the MAC — as in every encrypt-then-MAC
  // with split keys (RFC 7518 §5.2): the tag authenticates the ciphertext, and
  // a wrong Ke decrypts it to other bytes. Keys come from the HPKE schedule,
  // never from the peer, so this is no attack surface; pinned here so nobody
  // relies on key commitment.
  for (size_t i = 0; i < 16; ++i) {
    Bytes k = key;
    k[i] ^= 0x01;
    auto r = Sm4CtrHmacSm3Open(k, nonce, aad, sealed);
    ASSERT_TRUE(r.ok()) << i;
    EXPECT_NE(AsChars(r->span()), kKatPt) << i;
  }
  for (size_t i = 0; i < nonce.size(); ++i) {
    Bytes n = nonce;
    n[i] ^= 0x80;
    expect_auth_failed(Sm4CtrHmacSm3Open(key, n, aad, sealed), "nonce byte " + std::to_string(i));
  }
  for (size_t i = 0; i < aad.size(); ++i) {
    Bytes a = aad;
    a[i] ^= 0x01;
    expect_auth_failed(Sm4CtrHmacSm3Open(key, nonce, a, sealed), "aad byte " + std::to_string(i));
  }
  for (size_t i = 0; i < sealed.size(); ++i) {  // ciphertext then tag
    Bytes s = sealed;
    s[i] ^= 0x01;
    expect_auth_failed(Sm4CtrHmacSm3Open(key, nonce, aad, s), "sealed byte " + std::to_string(i));
  }
  expect_auth_failed(Sm4CtrHmacSm3Open(key, nonce, {}, sealed), "aad dropped");
  // Moving one byte from the ciphertext into the aad keeps the concatenation
  // but changes the length prefix.
  Bytes shifted_aad = aad;
  shifted_aad.push_back(sealed[0]);
  Bytes shifted_sealed(sealed.begin() + 1, sealed.end());
  expect_auth_failed(Sm4CtrHmacSm3Open(key, nonce, shifted_aad, shifted_sealed), "aad/ct split");
  Bytes truncated(sealed.begin(), sealed.end() - 1);
  expect_auth_failed(Sm4CtrHmacSm3Open(key, nonce, aad, truncated), "truncated");
  Bytes extended = sealed;
  extended.push_back(0);
  expect_auth_failed(Sm4CtrHmacSm3Open(key, nonce, aad, extended), "extended");
}

TEST(Sm4CtrHmacSm3Test, WrongSizesAreInvalidArguments) {
  const Bytes key = H(kKatKey), nonce = H(kKatNonce);
  for (size_t n : {0u, 16u, 32u, 47u, 49u}) {
    EXPECT_EQ(Sm4CtrHmacSm3Seal(Bytes(n, 1), nonce, {}, {}).code(), CryptoErrc::kInvalidArgument);
    EXPECT_EQ(Sm4CtrHmacSm3Open(Bytes(n, 1), nonce, {}, Bytes(32)).code(),
              CryptoErrc::kInvalidArgument);
  }
  for (size_t n : {0u, 8u, 11u, 13u, 16u}) {
    EXPECT_EQ(Sm4CtrHmacSm3Seal(key, Bytes(n, 1), {}, {}).code(), CryptoErrc::kInvalidArgument);
    EXPECT_EQ(Sm4CtrHmacSm3Open(key, Bytes(n, 1), {}, Bytes(32)).code(),
              CryptoErrc::kInvalidArgument);
  }
  EXPECT_EQ(Sm4CtrHmacSm3Open(key, nonce, {}, Bytes(31)).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(Sm4CtrHmacSm3Open(key, nonce, {}, {}).code(), CryptoErrc::kInvalidArgument);
}

// The length limit keeps the 32-bit block counter (starting at 1) from
// wrapping into the nonce: 2^32 - 1 blocks at most. Checked on a span that is
// never read (the size check comes first).
TEST(Sm4CtrHmacSm3Test, RefusesPlaintextPastTheCounterLimit) {
  EXPECT_EQ(kSm4CtrHmacSm3MaxPlaintext, 68719476720u);  // (2^32 - 1) * 16
  if constexpr (sizeof(size_t) >= 8) {
    static const uint8_t kByte = 0;
    ByteSpan huge(&kByte, static_cast<size_t>(kSm4CtrHmacSm3MaxPlaintext + 1));
    EXPECT_EQ(Sm4CtrHmacSm3Seal(H(kKatKey), H(kKatNonce), {}, huge).code(),
              CryptoErrc::kInvalidArgument);
    ByteSpan huge_sealed(&kByte,
                         static_cast<size_t>(kSm4CtrHmacSm3MaxPlaintext + 1 + kSm4CtrHmacSm3TagSize));
    EXPECT_EQ(Sm4CtrHmacSm3Open(H(kKatKey), H(kKatNonce), {}, huge_sealed).code(),
              CryptoErrc::kInvalidArgument);
  }
}

}  // namespace
}  // namespace cllm::crypto
