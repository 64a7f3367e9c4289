// keys.h — public and private keys (RAII over EVP_PKEY) and signatures:
// ECDSA P-256/P-384, RSA-PSS / RSA PKCS#1 v1.5 verification, SM2.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/secure.h"
#include "crypto/digest.h"
#include "crypto/error.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace cllm::crypto {

enum class KeyType { kEcP256, kEcP384, kSm2, kRsa, kOther };
const char* KeyTypeName(KeyType type);

// How an ECDSA/SM2 signature is encoded: ASN.1 DER SEQUENCE{r, s}, or the raw
// big-endian r ‖ s form (each half the curve's size: 32 or 48 bytes).
enum class SigFormat { kDer, kRaw };

// The default SM2 distinguishing identifier (GB/T 32918, GM/T 0009).
inline constexpr std::string_view kSm2DefaultId = "1234567812345678";

class PublicKey {
 public:
  // FromSpkiDer parses a DER SubjectPublicKeyInfo.
  static CryptoResult<PublicKey> FromSpkiDer(ByteSpan der);
  // FromPem parses "-----BEGIN PUBLIC KEY-----".
  static CryptoResult<PublicKey> FromPem(std::string_view pem);
  // FromEcPoint builds an EC key from big-endian affine coordinates x and y
  // (each the curve's size); fails with kParse if the point is not on the curve.
  static CryptoResult<PublicKey> FromEcPoint(KeyType curve, ByteSpan x, ByteSpan y);
  // FromRsaComponents builds an RSA key from the big-endian modulus and public
  // exponent (JWK "n"/"e", TPM2B_PUBLIC_KEY_RSA); kInvalidArgument when the
  // modulus is under 2048 bits or the exponent is even or below 3.
  static CryptoResult<PublicKey> FromRsaComponents(ByteSpan n, ByteSpan e);
  // Checked takes an untrusted key OpenSSL parsed (from a certificate, say):
  // kParse when it does not encode back as a SubjectPublicKeyInfo, which
  // ToSpkiDer then relies on. Takes ownership either way.
  static CryptoResult<PublicKey> Checked(EVP_PKEY* owned);

  KeyType type() const;
  // Bits returns the key size (curve bits or RSA modulus bits).
  int Bits() const;
  Bytes ToSpkiDer() const;
  std::string ToPem() const;
  // EcPoint returns the uncompressed point without the 0x04 prefix (x ‖ y).
  CryptoResult<Bytes> EcPoint() const;

  EVP_PKEY* get() const { return pkey_.get(); }
  explicit PublicKey(EVP_PKEY* owned);

 private:
  std::shared_ptr<EVP_PKEY> pkey_;
};

class PrivateKey {
 public:
  // Generate makes a fresh key of `type` (kEcP256, kEcP384 or kSm2).
  static CryptoResult<PrivateKey> Generate(KeyType type);
  static CryptoResult<PrivateKey> FromPkcs8Der(ByteSpan der);
  static CryptoResult<PrivateKey> FromPem(std::string_view pem);

  // ToPkcs8Der returns the unencrypted PKCS#8 encoding (a secret).
  SecretBytes ToPkcs8Der() const;
  std::string ToPem() const;
  PublicKey public_key() const;
  KeyType type() const;
  // PrivateScalar returns the EC private scalar d, big-endian and left-padded
  // to the curve size (32 or 48 bytes; the JWK "d" member, RFC 7518 §6.2.2.1).
  // kInvalidArgument for keys that are not P-256/P-384/SM2.
  CryptoResult<SecretBytes> PrivateScalar() const;
  EVP_PKEY* get() const { return pkey_.get(); }
  explicit PrivateKey(EVP_PKEY* owned);

 private:
  std::shared_ptr<EVP_PKEY> pkey_;
};

// EcdsaSign signs Hash_alg(msg) with an EC key.
CryptoResult<Bytes> EcdsaSign(const PrivateKey& key, HashAlg alg, ByteSpan msg, SigFormat format);
// EcdsaVerify checks an ECDSA signature over Hash_alg(msg); kBadSignature when
// it does not verify, kParse when the signature encoding is malformed.
CryptoStatus EcdsaVerify(const PublicKey& key, HashAlg alg, ByteSpan msg, ByteSpan sig,
                         SigFormat format);

// RsaPssVerify checks RSASSA-PSS with MGF1 using the same hash; `salt_len` of
// -1 means "equal to the digest length" (what AMD's KDS certificates use).
CryptoStatus RsaPssVerify(const PublicKey& key, HashAlg alg, ByteSpan msg, ByteSpan sig,
                          int salt_len = -1);
// RsaPkcs1Verify checks RSASSA-PKCS1-v1_5 (TPM AK signatures).
CryptoStatus RsaPkcs1Verify(const PublicKey& key, HashAlg alg, ByteSpan msg, ByteSpan sig);

// Sm2Sign / Sm2Verify implement SM2 signatures with SM3 and the
// distinguishing identifier `id` (Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ G ‖ P)).
CryptoResult<Bytes> Sm2Sign(const PrivateKey& key, ByteSpan msg, SigFormat format,
                            std::string_view id = kSm2DefaultId);
CryptoStatus Sm2Verify(const PublicKey& key, ByteSpan msg, ByteSpan sig, SigFormat format,
                       std::string_view id = kSm2DefaultId);

// RawSigToDer / DerSigToRaw convert between the two ECDSA/SM2 encodings;
// `half` is the byte size of r and s in the raw form (32 or 48).
CryptoResult<Bytes> RawSigToDer(ByteSpan raw);
CryptoResult<Bytes> DerSigToRaw(ByteSpan der, size_t half);

}  // namespace cllm::crypto
