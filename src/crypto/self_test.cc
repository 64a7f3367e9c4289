#include "crypto/self_test.h"

#include <functional>

#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/digest.h"
#include "crypto/keys.h"

namespace cllm::crypto {
namespace {


Bytes Hex(std::string_view h) { return HexDecode(h).value(); }

struct Kat {
  const char* name;
  std::function<bool()> run;
};

// The vectors are published ones (FIPS 180-4, GB/T 32905, the GCM spec,
// RFC 6979 A.2.5, GM/T 0003.5); the same values are asserted in crypto_test.
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
