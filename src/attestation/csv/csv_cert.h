// csv_cert.h — Hygon's binary certificate formats and their SM2 signatures.
//
// Hygon CSV uses two fixed-size formats (no X.509, no validity dates):
//   * the "CA" format (832 bytes) for the Hygon Root Key (HRK, self-signed)
//     and the per-chip Hygon Signing Key (HSK) — shaped like AMD SEV's CA
//     certificate (SEV API spec, appendix C.1);
//   * the "CSV" format (2084 bytes) for the Chip Endorsement Key (CEK) and the
//     Platform Endorsement Key (PEK), with two signature slots — shaped like
//     AMD SEV's platform certificate (appendix C.2).
// The chain is HRK → HSK → CEK → PEK; the PEK signs the attestation report.
//
// CA certificate (all integers little-endian):
//   0x000  4  version (1)            0x040   4  pubkey.curve_id (3 = SM2-256)
//   0x004 16  key_id                 0x044  72  pubkey.qx (LE, low 32 bytes used)
//   0x014 16  certifying_id          0x08C  72  pubkey.qy
//   0x024  4  key_usage              0x0D4 256  pubkey.user_id (u16 len + 254 bytes)
//   0x028 24  reserved               0x1D4 108  reserved
//   0x240 144 signature r[72] ‖ s[72] (LE)      0x2D0 112 reserved
//   signed: bytes [0x000, 0x240)
// CSV certificate:
//   0x000  4  version (1)            0x010 404  pubkey (curve_id, qx, qy, user_id as above)
//   0x004  1  api_major              0x1A4 624  reserved
//   0x005  1  api_minor              0x414   4  sig1_usage   0x418 4 sig1_algo  0x41C 144 sig1
//   0x006  2  reserved               0x4AC 368  reserved
//   0x008  4  pubkey_usage           0x61C   4  sig2_usage   0x620 4 sig2_algo  0x624 144 sig2
//   0x00C  4  pubkey_algo (4 = SM2)  0x6B4 368  reserved
//   signed: bytes [0x000, 0x414)
//
// SM2 signatures are over SM3 with Z computed from the *signer's* user_id
// (e.g. "HYGON-SSD-HRK") rather than GM/T 0009's default identifier.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "attestation/errors.h"
#include "base/bytes.h"
#include "crypto/keys.h"

namespace cllm::attestation::csv {

inline constexpr size_t kCaCertSize = 832;
inline constexpr size_t kCaCertSignedSize = 0x240;
inline constexpr size_t kCsvCertSize = 2084;
inline constexpr size_t kCsvCertSignedSize = 0x414;
inline constexpr size_t kEccFieldSize = 72;   // one coordinate / r / s field
inline constexpr size_t kUserIdFieldSize = 256;

// Key usages (Hygon CSV API; the CSV ones follow AMD SEV's numbering).
inline constexpr uint32_t kUsageHrk = 0x0;
inline constexpr uint32_t kUsageHsk = 0x13;
inline constexpr uint32_t kUsageInvalid = 0x1000;
inline constexpr uint32_t kUsageOca = 0x1001;
inline constexpr uint32_t kUsagePek = 0x1002;
inline constexpr uint32_t kUsageCek = 0x1004;
inline constexpr uint32_t kCurveSm2 = 3;
inline constexpr uint32_t kAlgoSm2Sa = 4;

// An SM2 public key as stored in a certificate, coordinates converted to
// big-endian.
struct Sm2PubKey {
  uint32_t curve_id = 0;
  std::array<uint8_t, 32> x{};
  std::array<uint8_t, 32> y{};
  std::string user_id;  // the signer identity used in Z when this key signs
};

// An SM2 signature, r and s converted to big-endian.
struct Sm2Sig {
  std::array<uint8_t, 32> r{};
  std::array<uint8_t, 32> s{};
};

struct CaCert {
  uint32_t version = 0;
  std::array<uint8_t, 16> key_id{};
  std::array<uint8_t, 16> certifying_id{};
  uint32_t key_usage = 0;
  Sm2PubKey pubkey;
  Sm2Sig signature;
  Bytes bytes;  // the whole certificate as given
};

struct CsvCertSignature {
  uint32_t usage = kUsageInvalid;  // the signer's key usage
  uint32_t algo = 0;
  Sm2Sig sig;
};

struct CsvCert {
  uint32_t version = 0;
  uint8_t api_major = 0;
  uint8_t api_minor = 0;
  uint32_t pubkey_usage = 0;
  uint32_t pubkey_algo = 0;
  Sm2PubKey pubkey;
  std::array<CsvCertSignature, 2> sigs;
  Bytes bytes;
};

// ReadSm2PubKey / ReadSm2Sig decode the 404-byte key and 144-byte signature
// fields (exported for the report parser); kMalformed when a coordinate uses
// more than 32 bytes or the user_id length exceeds its field.
[[nodiscard]] AttestResult<Sm2PubKey> ReadSm2PubKey(ByteSpan field);
[[nodiscard]] AttestResult<Sm2Sig> ReadSm2Sig(ByteSpan field);

// ParseCaCert / ParseCsvCert decode the two formats; kMalformed on a wrong
// size, kUnsupportedVersion on a version other than 1 or a curve other than
// SM2-256.
[[nodiscard]] AttestResult<CaCert> ParseCaCert(ByteSpan bytes);
[[nodiscard]] AttestResult<CsvCert> ParseCsvCert(ByteSpan bytes);

// Sm2KeyOf turns a certificate key into a crypto key; kMalformed when the
// point is not on the SM2 curve.
[[nodiscard]] AttestResult<crypto::PublicKey> Sm2KeyOf(const Sm2PubKey& key);

// VerifySm2 checks `sig` over `msg` with `signer`, using the signer's user_id
// as the SM2 distinguishing identifier; kBadSignature when it does not verify.
[[nodiscard]] AttestStatus VerifySm2(const Sm2PubKey& signer, ByteSpan msg, const Sm2Sig& sig);

// VerifyCaCertIssuedBy checks that `issuer` (HRK) signed `cert` (HSK, or the
// HRK itself): certifying_id must equal the issuer's key_id and the SM2
// signature over [0, 0x240) must verify; kChainInvalid otherwise.
[[nodiscard]] AttestStatus VerifyCaCertIssuedBy(const CaCert& cert, const CaCert& issuer);

// VerifyCsvCertIssuedBy checks the signature slot of `cert` whose usage is
// `issuer_usage` against `issuer_key` (CEK by the HSK, PEK by the CEK);
// kChainInvalid when no slot has that usage or it does not verify.
[[nodiscard]] AttestStatus VerifyCsvCertIssuedBy(const CsvCert& cert, uint32_t issuer_usage,
                                                 const Sm2PubKey& issuer_key);

// SerializeSm2PubKey / SerializeSm2Sig write the stored forms (for tests
// building synthetic chains and reports).
Bytes SerializeSm2PubKey(const Sm2PubKey& key);
Bytes SerializeSm2Sig(const Sm2Sig& sig);

}  // namespace cllm::attestation::csv
