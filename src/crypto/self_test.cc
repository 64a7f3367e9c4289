#include "crypto/self_test.h"

#include <functional>

#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/digest.h"
#include "crypto/kdf.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/sm4_aead.h"

namespace cllm::crypto {
namespace {


Bytes Hex(std::string_view h) { return HexDecode(h).value(); }

// Sm4Block encrypts one block with OpenSSL's SM4 (ECB, no padding).
bool Sm4Block(ByteSpan key, ByteSpan in, uint8_t out[16]) {
  ossl::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  return ctx && in.size() == 16 &&
         EVP_EncryptInit_ex(ctx.get(), EVP_sm4_ecb(), nullptr, key.data(), nullptr) == 1 &&
         EVP_CIPHER_CTX_set_padding(ctx.get(), 0) == 1 &&
         EVP_EncryptUpdate(ctx.get(), out, &len, in.data(), 16) == 1 && len == 16;
}

struct Kat {
  const char* name;
  std::function<bool()> run;
};

// The vectors are published ones (FIPS 180-4, GB/T 32905, GB/T 32907,
// GM/T 0042, the GCM spec, RFC 6979 A.2.5, GM/T 0003.5) or, for the
// SM4-CTR-HMAC-SM3 composition, computed with the openssl CLI; the same values
// are asserted in crypto_test / gmt_test.
std::vector<Kat> Kats() {
  return {
      {"SHA-256 (FIPS 180-4 'abc')",
       [] {
         return HexEncode(Sha256(AsBytes("abc"))) ==
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
       }},
      {"SM3 (GB/T 32905 'abc')",
       [] {
         return HexEncode(Sm3(AsBytes("abc"))) ==
                "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
       }},
      {"SM4 (GB/T 32907 example 1)",
       [] {
         Bytes k = Hex("0123456789abcdeffedcba9876543210");
         uint8_t out[16];
         return Sm4Block(k, k, out) &&
                HexEncode(ByteSpan(out, 16)) == "681edf34d206965e86b3e94f536e4246";
       }},
      {"HMAC-SM3 (GM/T 0042 D.3 'Jefe')",
       [] {
         return HexEncode(Hmac(HashAlg::kSm3, AsBytes("Jefe"),
                               AsBytes("what do ya want for nothing?"))) ==
                "2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882";
       }},
      // Our composition; expected value from the openssl CLI (commands in
      // gmt_test.cc), then the same sealed bytes altered must not open.
      {"SM4-CTR-HMAC-SM3 AEAD (openssl CLI KAT)",
       [] {
         Bytes key = Hex("000102030405060708090a0b0c0d0e0f"
                         "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f");
         Bytes nonce = Hex("cafebabefacedbaddecaf888");
         Bytes aad = Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
         auto pt = AsBytes("cllm gmt suite: SM4-CTR + HMAC-SM3 EtM");
         auto sealed = Sm4CtrHmacSm3Seal(key, nonce, aad, pt);
         if (!sealed.ok() ||
             HexEncode(*sealed) !=
                 "96c5481ccf0cd1308006b4b0f367ee7004d27babec5b9c3152f3bc1e598d34b579972885ce93"
                 "63e7a7245d0d12f93d0a72e1eaab52f7bb676693b00d29e77d4b52a5bfa0b2d4") {
           return false;
         }
         auto opened = Sm4CtrHmacSm3Open(key, nonce, aad, *sealed);
         Bytes tampered = *sealed;
         tampered[0] ^= 1;
         auto refused = Sm4CtrHmacSm3Open(key, nonce, aad, tampered);
         return opened.ok() && AsChars(opened->span()) == AsChars(pt) && !refused.ok() &&
                refused.code() == CryptoErrc::kAuthFailed;
       }},
      {"AES-256-GCM (GCM spec case 14)",
       [] {
         auto s = Aes256GcmSeal(Bytes(32, 0), Bytes(12, 0), {}, Bytes(16, 0));
         return s.ok() && HexEncode(*s) ==
                              "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919";
       }},
      {"ECDSA P-256 verify (RFC 6979 A.2.5)",
       [] {
         auto key = PublicKey::FromEcPoint(
             KeyType::kEcP256,
             Hex("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"),
             Hex("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"));
         Bytes sig = Hex("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
                         "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8");
         return key.ok() &&
                EcdsaVerify(*key, HashAlg::kSha256, AsBytes("sample"), sig,
                                    SigFormat::kRaw).ok() &&
                !EcdsaVerify(*key, HashAlg::kSha256, AsBytes("sampld"), sig,
                                     SigFormat::kRaw).ok();
       }},
      {"SM2 verify (GM/T 0003.5 example)",
       [] {
         auto key = PublicKey::FromEcPoint(
             KeyType::kSm2,
             Hex("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"),
             Hex("CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"));
         Bytes sig = Hex("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
                         "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA");
         return key.ok() &&
                Sm2Verify(*key, AsBytes("message digest"), sig, SigFormat::kRaw).ok();
       }},
      {"ECDSA P-384 sign/verify round trip",
       [] {
         auto priv = PrivateKey::Generate(KeyType::kEcP384);
         if (!priv.ok()) return false;
         auto sig = EcdsaSign(*priv, HashAlg::kSha384, AsBytes("cllm"), SigFormat::kRaw);
         return sig.ok() && EcdsaVerify(priv->public_key(), HashAlg::kSha384, AsBytes("cllm"),
                                                *sig, SigFormat::kRaw).ok();
       }},
  };
}

}  // namespace

std::vector<SelfTestResult> RunSelfTests() {
  std::vector<SelfTestResult> out;
  for (const auto& kat : Kats()) out.push_back({kat.name, kat.run()});
  return out;
}

}  // namespace cllm::crypto
