// tpm_quote.h — TPM 2.0 quotes: TPMS_ATTEST, TPMT_SIGNATURE, PCR digest.
//
// TPM2_Quote (TPM 2.0 Library Part 3 §18.4) signs a TPMS_ATTEST structure
// (Part 2 §10.12.12), all integers big-endian:
//
//   u32  magic             TPM_GENERATED_VALUE 0xff544347 ("\xffTCG")
//   u16  type              TPM_ST_ATTEST_QUOTE 0x8018
//   TPM2B_NAME qualifiedSigner   u16 size ‖ name (nameAlg u16 ‖ digest)
//   TPM2B_DATA extraData         u16 size ‖ data (the caller's nonce, ≤ 64)
//   TPMS_CLOCK_INFO clockInfo    u64 clock, u32 resetCount, u32 restartCount, u8 safe
//   u64  firmwareVersion
//   TPMS_QUOTE_INFO attested:
//     TPML_PCR_SELECTION pcrSelect   u32 count ‖ count × {u16 hash, u8 sizeofSelect, bitmap}
//     TPM2B_DIGEST pcrDigest         u16 size ‖ H(selected PCR values, in order)
//
// The signature is a TPMT_SIGNATURE (Part 2 §11.3.4: u16 sigAlg, u16 hash,
// then TPM2B signature for RSASSA/RSAPSS or TPM2B r ‖ TPM2B s for ECDSA), or
// — as Azure's vTPM tooling stores it — the bare RSASSA-PKCS1-v1_5 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attestation/errors.h"
#include "base/bytes.h"
#include "crypto/digest.h"
#include "crypto/keys.h"

namespace cllm::attestation::tpm {

inline constexpr uint32_t kTpmGeneratedValue = 0xff544347;
inline constexpr uint16_t kTpmStAttestQuote = 0x8018;

// TPM_ALG_ID values (TCG Algorithm Registry).
inline constexpr uint16_t kAlgSha1 = 0x0004;
inline constexpr uint16_t kAlgSha256 = 0x000B;
inline constexpr uint16_t kAlgSha384 = 0x000C;
inline constexpr uint16_t kAlgSha512 = 0x000D;
inline constexpr uint16_t kAlgRsassa = 0x0014;
inline constexpr uint16_t kAlgRsapss = 0x0016;
inline constexpr uint16_t kAlgEcdsa = 0x0018;

struct PcrSelection {
  uint16_t hash = 0;
  Bytes bitmap;  // bit j of byte i selects PCR 8*i + j
};

struct TpmsAttest {
  uint32_t magic = 0;
  uint16_t type = 0;
  Bytes qualified_signer;  // TPM2B_NAME contents
  Bytes extra_data;        // TPM2B_DATA contents
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  uint8_t safe = 0;
  uint64_t firmware_version = 0;
  std::vector<PcrSelection> pcr_select;
  Bytes pcr_digest;
};

// ParseTpmsAttest decodes a quote's TPMS_ATTEST; kMalformed on truncation,
// a wrong magic, oversize TPM2B fields, safe not 0/1 or trailing bytes;
// kUnsupportedVersion for an attestation type other than a quote.
[[nodiscard]] AttestResult<TpmsAttest> ParseTpmsAttest(ByteSpan bytes);

// HashOfAlg maps a TPM hash algorithm to ours; kUnsupportedVersion for SHA-1
// and unknown ids.
[[nodiscard]] AttestResult<crypto::HashAlg> HashOfAlg(uint16_t alg);

// SelectedPcrs returns the selected PCR indices of the single bank the quote
// covers (in digest order); kUnsupportedVersion when more than one bank is
// selected (the evidence carries one list of values).
[[nodiscard]] AttestResult<std::vector<unsigned>> SelectedPcrs(const TpmsAttest& attest);

// CheckPcrDigest recomputes pcrDigest as H(concatenation of the selected
// PCR values) where H is the signing scheme's hash (Part 3 §18.4.1), `pcrs[i]`
// being PCR i's value in the selected bank; kMalformed when a selected PCR
// is missing or not the bank's digest size, kBindingMismatch when the digest
// differs.
[[nodiscard]] AttestStatus CheckPcrDigest(const TpmsAttest& attest, const std::vector<Bytes>& pcrs,
                                          crypto::HashAlg digest_alg);

// VerifyQuoteSignature checks `signature` (TPMT_SIGNATURE or bare RSASSA
// bytes of the modulus size) over `attest_bytes` with the AK;
// kBadSignature when it does not verify, kMalformed / kUnsupportedVersion on
// an undecodable or unsupported signature, kBindingMismatch when the scheme
// does not fit the key type. Returns the scheme's hash; `out_scheme` names
// what was checked.
[[nodiscard]] AttestResult<crypto::HashAlg> VerifyQuoteSignature(ByteSpan attest_bytes, ByteSpan signature,
                                                const crypto::PublicKey& ak, std::string* out_scheme);

}  // namespace cllm::attestation::tpm
