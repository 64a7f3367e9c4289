// hpke_kem.cc — DHKEM (RFC 9180 §4.1) over X25519, P-256 and SM2; key
// serialization and derivation (§7.1); the labeled HKDF (§4).
#include <openssl/obj_mac.h>

#include <algorithm>
#include <array>

#include "crypto/hpke.h"
#include "crypto/hpke_internal.h"
#include "crypto/kdf.h"
#include "crypto/ossl.h"
#include "crypto/random.h"

namespace cllm::crypto::hpke {
namespace internal {

namespace {
constexpr std::string_view kHpkeV1 = "HPKE-v1";

constexpr std::array<KemInfo, 3> kKems = {{
    {Kem::kX25519HkdfSha256, HashAlg::kSha256, 32, 32, 32, 32, 0},
    {Kem::kP256HkdfSha256, HashAlg::kSha256, 32, 65, 65, 32, NID_X9_62_prime256v1},
    {Kem::kSm2HkdfSm3, HashAlg::kSm3, 32, 65, 65, 32, NID_sm2},
}};
}  // namespace

CryptoResult<const KemInfo*> FindKem(Kem kem) {
  for (const KemInfo& k : kKems) {
    if (k.kem == kem) return &k;
  }
  return MakeError(CryptoErrc::kUnsupported,
                   "HPKE KEM id " + std::to_string(static_cast<unsigned>(kem)) + " not supported");
}

SecretBytes LabeledExtract(HashAlg hash, ByteSpan suite_id, ByteSpan salt, std::string_view label,
                           ByteSpan ikm) {
  // labeled_ikm holds secrets (DH outputs, PSKs): a SecretBytes buffer.
  SecretBytes labeled_ikm(kHpkeV1.size() + suite_id.size() + label.size() + ikm.size());
  uint8_t* p = labeled_ikm.data();
  p = std::copy(kHpkeV1.begin(), kHpkeV1.end(), p);
  p = std::copy(suite_id.begin(), suite_id.end(), p);
  p = std::copy(label.begin(), label.end(), p);
  std::copy(ikm.begin(), ikm.end(), p);
  return HkdfExtract(hash, salt, labeled_ikm.span());
}

CryptoResult<SecretBytes> LabeledExpand(HashAlg hash, ByteSpan suite_id, ByteSpan prk,
                                        std::string_view label, ByteSpan info, size_t len) {
  if (len == 0 || len > 255 * DigestSize(hash)) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "HPKE expand length " + std::to_string(len) + " out of range");
  }
  Bytes labeled_info;
  labeled_info.reserve(2 + kHpkeV1.size() + suite_id.size() + label.size() + info.size());
  AppendU16(labeled_info, static_cast<uint16_t>(len));  // len <= 255 * 64 fits
  labeled_info.insert(labeled_info.end(), kHpkeV1.begin(), kHpkeV1.end());
  labeled_info.insert(labeled_info.end(), suite_id.begin(), suite_id.end());
  labeled_info.insert(labeled_info.end(), label.begin(), label.end());
  labeled_info.insert(labeled_info.end(), info.begin(), info.end());
  return HkdfExpand(hash, prk, labeled_info, len);
}

}  // namespace internal

namespace {

using internal::KemInfo;
using BnCtxPtr = std::unique_ptr<BN_CTX, ossl::Deleter<BN_CTX_free>>;
using SecretBnPtr = std::unique_ptr<BIGNUM, ossl::Deleter<BN_clear_free>>;
// The product of a secret scalar is secret: cleared on release.
using SecretPointPtr = std::unique_ptr<EC_POINT, ossl::Deleter<EC_POINT_clear_free>>;

// KemSuiteId = "KEM" ‖ I2OSP(kem_id, 2) (§4.1).
Bytes KemSuiteId(Kem kem) {
  Bytes id = ToBytes("KEM");
  internal::AppendU16(id, static_cast<uint16_t>(kem));
  return id;
}

// ---------------------------------------------------------------------------
// X25519 (RFC 7748) through EVP raw keys
// ---------------------------------------------------------------------------

CryptoResult<Bytes> X25519PublicKey(ByteSpan sk) {
  ossl::PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, sk.data(), sk.size()));
  if (!key) return OpenSslError(CryptoErrc::kInvalidArgument, "X25519 private key");
  Bytes pk(32);
  size_t len = pk.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), pk.data(), &len) != 1 || len != pk.size()) {
    return OpenSslError(CryptoErrc::kInternal, "X25519 public key");
  }
  return pk;
}

CryptoResult<SecretBytes> X25519Dh(ByteSpan sk, ByteSpan pk) {
  ossl::PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, sk.data(), sk.size()));
  ossl::PkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, pk.data(), pk.size()));
  if (!key || !peer) return OpenSslError(CryptoErrc::kInvalidArgument, "X25519 key");
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  SecretBytes dh(32);
  size_t len = dh.size();
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "X25519 derive setup");
  }
  // OpenSSL refuses an all-zero result (a low-order peer point); the explicit
  // check below is RFC 9180 §7.1.4's and does not rely on that.
  if (EVP_PKEY_derive(ctx.get(), dh.data(), &len) != 1 || len != dh.size()) {
    return OpenSslError(CryptoErrc::kInvalidArgument,
                        "X25519 shared secret is zero (low-order public key)");
  }
  uint8_t acc = 0;
  for (uint8_t b : dh.span()) acc |= b;
  if (acc == 0) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "X25519 shared secret is zero (low-order public key)");
  }
  return dh;
}

// ---------------------------------------------------------------------------
// P-256 / SM2: prime-order curves (cofactor 1), SEC1 points, 32-byte scalars
// ---------------------------------------------------------------------------

// EcGroup returns the curve of `kem`; failure is OpenSSL's, not the input's.
// EcGroup returns the KEM's curve, built once per thread: building a named
// group took ~90 µs of the ~1 ms an SM2 request setup cost (bench/e2e_bench),
// several times per request, and a group is only read once built.
CryptoResult<const EC_GROUP*> EcGroup(const KemInfo& k) {
  thread_local ossl::EcGroupPtr p256(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  thread_local ossl::EcGroupPtr sm2(EC_GROUP_new_by_curve_name(NID_sm2));
  const EC_GROUP* group = k.curve_nid == NID_X9_62_prime256v1 ? p256.get() : k.curve_nid == NID_sm2 ? sm2.get() : nullptr;
  if (group == nullptr) return OpenSslError(CryptoErrc::kInternal, "EC group");
  return group;
}

// EcScalar parses a private key: Nsk bytes, 0 < sk < order (§7.1.2).
CryptoResult<SecretBnPtr> EcScalar(const EC_GROUP* group, ByteSpan sk) {
  SecretBnPtr d(BN_secure_new());
  if (!d || BN_bin2bn(sk.data(), static_cast<int>(sk.size()), d.get()) == nullptr) {
    return OpenSslError(CryptoErrc::kInternal, "EC scalar");
  }
  BN_set_flags(d.get(), BN_FLG_CONSTTIME);
  if (BN_is_zero(d.get()) || BN_cmp(d.get(), EC_GROUP_get0_order(group)) >= 0) {
    return MakeError(CryptoErrc::kInvalidArgument, "EC private key out of range");
  }
  return d;
}

// EcPoint parses a serialized public key: 0x04 ‖ x ‖ y on the curve. The
// on-curve check stops invalid-curve attacks on the recipient's key (§7.1.4).
CryptoResult<ossl::EcPointPtr> EcPoint(const EC_GROUP* group, ByteSpan pk, BN_CTX* bn) {
  if (pk.size() != 65 || pk[0] != 0x04) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "EC public key must be a 65-byte uncompressed point");
  }
  ossl::EcPointPtr point(EC_POINT_new(group));
  if (!point) return OpenSslError(CryptoErrc::kInternal, "EC point");
  if (EC_POINT_oct2point(group, point.get(), pk.data(), pk.size(), bn) != 1 ||
      EC_POINT_is_on_curve(group, point.get(), bn) != 1 ||
      EC_POINT_is_at_infinity(group, point.get())) {
    return OpenSslError(CryptoErrc::kParse, "EC public key is not a point on the curve");
  }
  return point;
}

CryptoResult<Bytes> EcPublicKey(const KemInfo& k, ByteSpan sk) {
  CLLM_ASSIGN_OR_RETURN(auto group, EcGroup(k));
  CLLM_ASSIGN_OR_RETURN(auto d, EcScalar(group, sk));
  BnCtxPtr bn(BN_CTX_secure_new());  // temporaries of a secret computation
  ossl::EcPointPtr pub(EC_POINT_new(group));
  Bytes pk(k.n_pk);
  if (!bn || !pub ||
      EC_POINT_mul(group, pub.get(), d.get(), nullptr, nullptr, bn.get()) != 1 ||
      EC_POINT_point2oct(group, pub.get(), POINT_CONVERSION_UNCOMPRESSED, pk.data(),
                         pk.size(), bn.get()) != pk.size()) {
    return OpenSslError(CryptoErrc::kInternal, "EC public key");
  }
  return pk;
}

// EcDh returns the x coordinate of sk·PK (SEC1 §3.3.1, RFC 9180 §4.1 DH()).
// This is what OpenSSL's ECDH does; the scalar multiplication is OpenSSL's
// constant-time path (ladder / nistz256) for a secret scalar.
CryptoResult<SecretBytes> EcDh(const KemInfo& k, ByteSpan sk, ByteSpan pk) {
  CLLM_ASSIGN_OR_RETURN(auto group, EcGroup(k));
  BnCtxPtr bn(BN_CTX_secure_new());  // temporaries of a secret computation
  if (!bn) return OpenSslError(CryptoErrc::kInternal, "BN_CTX");
  CLLM_ASSIGN_OR_RETURN(auto peer, EcPoint(group, pk, bn.get()));
  CLLM_ASSIGN_OR_RETURN(auto d, EcScalar(group, sk));
  SecretPointPtr shared(EC_POINT_new(group));
  SecretBnPtr x(BN_secure_new());
  SecretBytes dh(k.n_secret);
  if (!shared || !x ||
      EC_POINT_mul(group, shared.get(), nullptr, peer.get(), d.get(), bn.get()) != 1 ||
      EC_POINT_get_affine_coordinates(group, shared.get(), x.get(), nullptr, bn.get()) != 1 ||
      BN_bn2binpad(x.get(), dh.data(), static_cast<int>(dh.size())) !=
          static_cast<int>(dh.size())) {
    return OpenSslError(CryptoErrc::kInternal, "EC DH");
  }
  return dh;
}

// ---------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------

CryptoResult<Bytes> PublicKeyOf(const KemInfo& k, ByteSpan sk) {
  if (sk.size() != k.n_sk) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "HPKE private key must be " + std::to_string(k.n_sk) + " bytes");
  }
  return k.curve_nid == 0 ? X25519PublicKey(sk) : EcPublicKey(k, sk);
}

CryptoResult<SecretBytes> Dh(const KemInfo& k, ByteSpan sk, ByteSpan pk) {
  if (sk.size() != k.n_sk) {
    return MakeError(CryptoErrc::kInvalidArgument, "HPKE private key has the wrong size");
  }
  if (pk.size() != k.n_pk) {
    return MakeError(CryptoErrc::kInvalidArgument, "HPKE public key must be " +
                                                       std::to_string(k.n_pk) + " bytes, got " +
                                                       std::to_string(pk.size()));
  }
  return k.curve_nid == 0 ? X25519Dh(sk, pk) : EcDh(k, sk, pk);
}

CryptoResult<KeyPair> DeriveKeyPairFor(const KemInfo& k, ByteSpan ikm) {
  if (ikm.size() < k.n_sk) {
    return MakeError(CryptoErrc::kInvalidArgument, "DeriveKeyPair: ikm shorter than Nsk");
  }
  const Bytes suite_id = KemSuiteId(k.kem);
  SecretBytes dkp_prk = internal::LabeledExtract(k.hash, suite_id, {}, "dkp_prk", ikm);
  KeyPair kp;
  if (k.curve_nid == 0) {
    // §7.1.3 X25519: sk = LabeledExpand(dkp_prk, "sk", "", Nsk).
    CLLM_ASSIGN_OR_RETURN(
        kp.sk, internal::LabeledExpand(k.hash, suite_id, dkp_prk.span(), "sk", {}, k.n_sk));
  } else {
    // §7.1.3 P-256 (and SM2, same size): rejection sampling below the order,
    // bitmask 0xff (the order has 256 bits).
    CLLM_ASSIGN_OR_RETURN(auto group, EcGroup(k));
    for (unsigned counter = 0; counter < 256 && kp.sk.empty(); ++counter) {
      const uint8_t c = static_cast<uint8_t>(counter);
      CLLM_ASSIGN_OR_RETURN(SecretBytes candidate,
                            internal::LabeledExpand(k.hash, suite_id, dkp_prk.span(), "candidate",
                                                    ByteSpan(&c, 1), k.n_sk));
      if (EcScalar(group, candidate.span()).ok()) kp.sk = std::move(candidate);
    }
    // Probability about 2^-8160 for P-256 (§7.1.3 DeriveKeyPairError).
    if (kp.sk.empty()) return MakeError(CryptoErrc::kInternal, "DeriveKeyPair: no valid candidate");
  }
  CLLM_ASSIGN_OR_RETURN(kp.pk, PublicKeyOf(k, kp.sk.span()));
  return kp;
}

// ExtractAndExpand (§4.1): shared_secret from the DH output and kem_context.
CryptoResult<SecretBytes> ExtractAndExpand(const KemInfo& k, ByteSpan dh, ByteSpan kem_context) {
  const Bytes suite_id = KemSuiteId(k.kem);
  SecretBytes eae_prk = internal::LabeledExtract(k.hash, suite_id, {}, "eae_prk", dh);
  return internal::LabeledExpand(k.hash, suite_id, eae_prk.span(), "shared_secret", kem_context,
                                 k.n_secret);
}

Bytes Concat(std::initializer_list<ByteSpan> parts) {
  Bytes out;
  for (ByteSpan p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

SecretBytes ConcatSecret(ByteSpan a, ByteSpan b) {
  SecretBytes out(a.size() + b.size());
  std::copy(b.begin(), b.end(), std::copy(a.begin(), a.end(), out.data()));
  return out;
}

// EncapImpl: Encap when skS is empty, AuthEncap otherwise.
CryptoResult<Encapsulation> EncapImpl(Kem kem, ByteSpan pkR, ByteSpan skS,
                                      std::optional<ByteSpan> ikm_e, bool auth) {
  CLLM_ASSIGN_OR_RETURN(const KemInfo* k, internal::FindKem(kem));
  CLLM_RETURN_IF_ERROR(ValidatePublicKey(kem, pkR));
  KeyPair eph;
  if (ikm_e.has_value()) {
    CLLM_ASSIGN_OR_RETURN(eph, DeriveKeyPairFor(*k, *ikm_e));
  } else {
    CLLM_ASSIGN_OR_RETURN(eph, GenerateKeyPair(kem));
  }
  CLLM_ASSIGN_OR_RETURN(SecretBytes dh, Dh(*k, eph.sk.span(), pkR));
  Bytes kem_context;
  if (auth) {
    CLLM_ASSIGN_OR_RETURN(Bytes pkS, PublicKeyOf(*k, skS));
    CLLM_ASSIGN_OR_RETURN(SecretBytes dh_s, Dh(*k, skS, pkR));
    dh = ConcatSecret(dh.span(), dh_s.span());
    kem_context = Concat({eph.pk, pkR, pkS});
  } else {
    kem_context = Concat({eph.pk, pkR});
  }
  Encapsulation out;
  CLLM_ASSIGN_OR_RETURN(out.shared_secret, ExtractAndExpand(*k, dh.span(), kem_context));
  out.enc = std::move(eph.pk);
  return out;
}

}  // namespace

CryptoResult<SecretBytes> internal::DecapWith(Kem kem, ByteSpan enc, ByteSpan skR, ByteSpan known_pkR, ByteSpan pkS,
                                              bool auth) {
  CLLM_ASSIGN_OR_RETURN(const KemInfo* k, internal::FindKem(kem));
  if (enc.size() != k->n_enc) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "HPKE enc must be " + std::to_string(k->n_enc) + " bytes");
  }
  Bytes pkR;
  if (known_pkR.empty()) {
    CLLM_ASSIGN_OR_RETURN(pkR, PublicKeyOf(*k, skR));
  } else if (known_pkR.size() != k->n_pk) {
    return MakeError(CryptoErrc::kInvalidArgument, "HPKE pkR must be " + std::to_string(k->n_pk) + " bytes");
  } else {
    pkR.assign(known_pkR.begin(), known_pkR.end());
  }
  CLLM_ASSIGN_OR_RETURN(SecretBytes dh, Dh(*k, skR, enc));
  Bytes kem_context;
  if (auth) {
    CLLM_ASSIGN_OR_RETURN(SecretBytes dh_s, Dh(*k, skR, pkS));
    dh = ConcatSecret(dh.span(), dh_s.span());
    kem_context = Concat({enc, pkR, pkS});
  } else {
    kem_context = Concat({enc, pkR});
  }
  return ExtractAndExpand(*k, dh.span(), kem_context);
}

CryptoResult<KeyPair> GenerateKeyPair(Kem kem) {
  CLLM_ASSIGN_OR_RETURN(const KemInfo* k, internal::FindKem(kem));
  SecretBytes ikm(k->n_sk);
  RandomBytes(ikm.mutable_span());
  return DeriveKeyPairFor(*k, ikm.span());
}

CryptoResult<KeyPair> DeriveKeyPair(Kem kem, ByteSpan ikm) {
  CLLM_ASSIGN_OR_RETURN(const KemInfo* k, internal::FindKem(kem));
  return DeriveKeyPairFor(*k, ikm);
}

CryptoResult<Bytes> PublicKeyFromPrivate(Kem kem, ByteSpan sk) {
  CLLM_ASSIGN_OR_RETURN(const KemInfo* k, internal::FindKem(kem));
  return PublicKeyOf(*k, sk);
}

CryptoStatus ValidatePublicKey(Kem kem, ByteSpan pk) {
  CLLM_ASSIGN_OR_RETURN(const KemInfo* k, internal::FindKem(kem));
  if (pk.size() != k->n_pk) {
    return MakeError(CryptoErrc::kInvalidArgument, "HPKE public key must be " +
                                                       std::to_string(k->n_pk) + " bytes, got " +
                                                       std::to_string(pk.size()));
  }
  // Every 32-byte string is an X25519 public key (RFC 7748 §5); low-order
  // points are caught by the zero shared secret check in DH.
  if (k->curve_nid == 0) return OkStatus();
  CLLM_ASSIGN_OR_RETURN(auto group, EcGroup(*k));
  BnCtxPtr bn(BN_CTX_new());
  if (!bn) return OpenSslError(CryptoErrc::kInternal, "BN_CTX");
  CLLM_RETURN_IF_ERROR(EcPoint(group, pk, bn.get()));
  return OkStatus();
}

CryptoResult<Encapsulation> Encap(Kem kem, ByteSpan pkR, std::optional<ByteSpan> ikm_e) {
  return EncapImpl(kem, pkR, {}, ikm_e, false);
}

CryptoResult<Encapsulation> AuthEncap(Kem kem, ByteSpan pkR, ByteSpan skS,
                                      std::optional<ByteSpan> ikm_e) {
  return EncapImpl(kem, pkR, skS, ikm_e, true);
}

CryptoResult<SecretBytes> Decap(Kem kem, ByteSpan enc, ByteSpan skR) {
  return internal::DecapWith(kem, enc, skR, {}, {}, false);
}

CryptoResult<SecretBytes> AuthDecap(Kem kem, ByteSpan enc, ByteSpan skR, ByteSpan pkS) {
  return internal::DecapWith(kem, enc, skR, {}, pkS, true);
}

}  // namespace cllm::crypto::hpke
