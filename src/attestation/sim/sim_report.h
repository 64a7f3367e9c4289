// sim_report.h — the simulated TEE's report: format, signing, verification.
//
// The simulated TEE is a software "platform" with its own ECDSA P-384 key (a
// platform key file the operator creates with `cllm attest sim-keygen`). Its
// report is modelled on the SEV-SNP ATTESTATION_REPORT, shrunk to what cllm
// uses; the byte layout (little-endian, 368 bytes) is in docs/attestation.md:
//
//   0x000  4  magic "CLSM"             0x050 64  report_data
//   0x004  4  version (1)              0x090 32  host_data
//   0x008  8  policy (bit 0 = debug)   0x0B0 64  platform_id = SHA-512(SPKI of platform key)
//   0x010  4  tcb: bootloader, tee,    0x0F0 16  reserved (zero)
//             fw, microcode (u8 each)  0x100  4  signature_algo (1 = ECDSA P-384 SHA-384)
//   0x014 12  reserved (zero)          0x104 12  reserved (zero)
//   0x020 48  measurement              0x110 96  signature r ‖ s (big-endian, 48 bytes each)
//
// The signature covers bytes [0x000, 0x110). A verifier trusts only platform
// keys its policy pins (EvidenceInput::sim_platform_keys); there is no
// built-in key, so sim evidence can never pass for hardware by default.
#pragma once

#include <array>
#include <cstdint>

#include "attestation/errors.h"
#include "attestation/evidence_input.h"
#include "attestation/verified.h"
#include "base/bytes.h"
#include "crypto/keys.h"

namespace cllm::attestation::sim {

inline constexpr size_t kSimReportSize = 0x170;
inline constexpr size_t kSimSignedSize = 0x110;
inline constexpr uint32_t kSimReportVersion = 1;
inline constexpr uint32_t kSimSigAlgoEcdsaP384Sha384 = 1;
inline constexpr uint64_t kSimPolicyDebug = 1;  // POLICY bit 0; all other bits reserved

struct SimTcb {
  uint8_t bootloader = 0;
  uint8_t tee = 0;
  uint8_t fw = 0;
  uint8_t microcode = 0;
};

struct SimReport {
  uint32_t version = kSimReportVersion;
  uint64_t policy = 0;
  SimTcb tcb;
  std::array<uint8_t, 48> measurement{};
  std::array<uint8_t, 64> report_data{};
  std::array<uint8_t, 32> host_data{};
  std::array<uint8_t, 64> platform_id{};
  uint32_t signature_algo = kSimSigAlgoEcdsaP384Sha384;
  std::array<uint8_t, 96> signature{};  // r ‖ s
};

// LooksLikeSimReport sniffs the magic (for `cllm attest verify --platform auto`).
bool LooksLikeSimReport(ByteSpan evidence);

// ParseSimReport decodes the layout; kMalformed on a wrong size or magic,
// kUnsupportedVersion, kReservedNonZero on any reserved byte or policy bit.
[[nodiscard]] AttestResult<SimReport> ParseSimReport(ByteSpan evidence);
// SerializeSimReport encodes a report (signature included as stored).
Bytes SerializeSimReport(const SimReport& report);

// PlatformId is SHA-512 of the platform public key's SubjectPublicKeyInfo.
std::array<uint8_t, 64> PlatformId(const crypto::PublicKey& platform_key);

// SignSimReport fills platform_id and signature with `platform_key` (P-384)
// and returns the serialized report; kInternal if signing fails.
[[nodiscard]] AttestResult<Bytes> SignSimReport(SimReport report, const crypto::PrivateKey& platform_key);

// VerifySimEvidence parses the report, finds the pinned platform key whose id
// matches platform_id (kChainInvalid when none does) and checks the signature
// (kBadSignature). The result has platform kSim and simulated = true.
[[nodiscard]] AttestResult<VerifiedEvidence> VerifySimEvidence(const EvidenceInput& input);

}  // namespace cllm::attestation::sim
