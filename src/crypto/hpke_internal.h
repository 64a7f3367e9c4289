// hpke_internal.h — internal to hpke.cc / hpke_kem.cc: algorithm tables and
// the labeled HKDF of RFC 9180 §4.
#pragma once

#include <string_view>

#include "crypto/digest.h"
#include "crypto/hpke.h"

namespace cllm::crypto::hpke::internal {

// KemInfo describes one DHKEM (RFC 9180 §7.1 table; SM2 per the cllm contract).
struct KemInfo {
  Kem kem;
  HashAlg hash;     // the KEM's own KDF (independent of the suite's KDF)
  size_t n_secret;  // Nsecret
  size_t n_enc;     // Nenc
  size_t n_pk;      // Npk
  size_t n_sk;      // Nsk
  int curve_nid;    // NID of the EC group; 0 for X25519
};

// FindKem returns the table entry of `kem`, or kUnsupported.
CryptoResult<const KemInfo*> FindKem(Kem kem);

// KdfHash returns the hash of an HKDF id, or kUnsupported.
CryptoResult<HashAlg> KdfHash(Kdf kdf);

// LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm).
SecretBytes LabeledExtract(HashAlg hash, ByteSpan suite_id, ByteSpan salt, std::string_view label,
                           ByteSpan ikm);

// LabeledExpand(prk, label, info, L) =
//   Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label ‖ info, L).
// kInvalidArgument when L is 0 or above 255 * Nh.
CryptoResult<SecretBytes> LabeledExpand(HashAlg hash, ByteSpan suite_id, ByteSpan prk,
                                        std::string_view label, ByteSpan info, size_t len);

// DecapWith is Decap / AuthDecap (`auth`) with the recipient's public key
// given (pkR) or, when pkR is empty, computed from skR.
CryptoResult<SecretBytes> DecapWith(Kem kem, ByteSpan enc, ByteSpan skR, ByteSpan pkR, ByteSpan pkS, bool auth);

// AppendU16 appends I2OSP(v, 2).
inline void AppendU16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

}  // namespace cllm::crypto::hpke::internal
