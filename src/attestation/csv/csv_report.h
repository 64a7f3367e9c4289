// csv_report.h — the Hygon CSV (v1) attestation report and its verifier.
//
// The report is what the CSV firmware writes for KVM_HC_VM_ATTESTATION (the
// guest's /dev/csv-guest GET_ATTESTATION_REPORT). Layout (little-endian):
//
//   0x000  32  user_pubkey_digest  ┐
//   0x020  16  vm_id               │
//   0x030  16  vm_version          │ stored XOR-masked with anonce, word by
//   0x040  64  user_data           │ word (u32 LE); the signature covers the
//   0x080  16  mnonce              │ *masked* bytes [0x000, 0x0B4)
//   0x090  32  measure             │
//   0x0B0   4  policy              │
//   0x0B4   4  sig_usage (PEK)     │
//   0x0B8   4  sig_algo (4 = SM2)  ┘
//   0x0BC   4  anonce              the mask
//   0x0C0 144  signature r[72] ‖ s[72] (LE) by the PEK
//   0x150 2084 pek_cert (CSV format, csv_cert.h)  ┐ masked with anonce in the
//   0x974  64  sn (chip serial, ASCII)            ┘ firmware output
//   0x9B4  32  reserved
//   0x9D4  32  mac (HMAC-SM3 over pek_cert‖sn‖reserved, keyed by the guest's mnonce)
//   = 0x9F4 bytes; the firmware writes it into a 4 KiB page, so up to 4096
//   bytes are accepted (the tail is not signed and is ignored).
//
// Tools that "restore" a report (e.g. trustee) store pek_cert and sn already
// unmasked; the parser recognises either form by the PEK's version word.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "attestation/csv/csv_cert.h"
#include "attestation/errors.h"
#include "attestation/evidence_input.h"
#include "attestation/verified.h"
#include "base/bytes.h"

namespace cllm::attestation::csv {

inline constexpr size_t kCsvReportSize = 0x9F4;
inline constexpr size_t kCsvReportMaxSize = 4096;
inline constexpr size_t kCsvReportSignedSize = 0xB4;
inline constexpr size_t kCsvReportMaskedSize = 0xBC;  // words masked with anonce in TEE_INFO

// Guest policy bits (same meaning as AMD SEV's guest policy).
inline constexpr uint32_t kPolicyNoDbg = 1u << 0;
inline constexpr uint32_t kPolicyNoKs = 1u << 1;
inline constexpr uint32_t kPolicyEs = 1u << 2;
inline constexpr uint32_t kPolicyNoSend = 1u << 3;
inline constexpr uint32_t kPolicyDomain = 1u << 4;
inline constexpr uint32_t kPolicySev = 1u << 5;
inline constexpr uint32_t kPolicyCsv3 = 1u << 6;

// The report with every masked field already unmasked.
struct CsvReport {
  std::array<uint8_t, 32> user_pubkey_digest{};
  std::array<uint8_t, 16> vm_id{};
  std::array<uint8_t, 16> vm_version{};
  std::array<uint8_t, 64> user_data{};
  std::array<uint8_t, 16> mnonce{};
  std::array<uint8_t, 32> measure{};
  uint32_t policy = 0;
  uint32_t sig_usage = 0;
  uint32_t sig_algo = 0;
  uint32_t anonce = 0;
  Sm2Sig signature;
  CsvCert pek;
  bool signer_was_masked = false;  // pek_cert / sn were stored masked (raw firmware output)
  std::string chip_id;             // sn up to the first NUL
  std::array<uint8_t, 32> mac{};
  Bytes signed_bytes;              // the stored (masked) bytes [0x000, 0x0B4)
};

// LooksLikeCsvEvidence sniffs a raw v1 report (size, unmasked sig_usage and
// sig_algo) or the JSON bundle ("attestation_report" with "magic", "flags",
// "data"; an SNP bundle has none of those three).
bool LooksLikeCsvEvidence(ByteSpan evidence);

// ParseCsvReport decodes and unmasks a raw report. kMalformed on a wrong size
// or undecodable field, kUnsupportedVersion for an extended (v2) report or an
// algorithm other than SM2, kMalformed when sig_usage is not the PEK.
[[nodiscard]] AttestResult<CsvReport> ParseCsvReport(ByteSpan bytes);

// PeekCsvUserData is the user_data VerifyCsvEvidence would report for
// `evidence` (raw or JSON bundle, unmasked), from its structure alone:
// nothing is verified (verify.h, PeekReportData).
[[nodiscard]] AttestResult<Bytes> PeekCsvUserData(ByteSpan evidence);

// VerifyCsvEvidence verifies a raw report or a trustee-style JSON bundle
// {"attestation_report": {"magic", "flags", "data"}, "cert_chain": {...},
// "serial_number"} with the HRK/HSK/CEK certificates from input.cert_files
// (each 832-byte CA cert, 2084-byte CEK, or 2916-byte HSK‖CEK as served by
// Hygon's KDS). Checks, in order (docs/attestation/csv.md):
//   structure → report signature by the PEK (kBadSignature) → HRK pinned
//   (kChainInvalid) → HSK by HRK → CEK by HSK → PEK by CEK (kChainInvalid;
//   kCollateralMissing when HSK or CEK is not supplied).
// The result has platform kCsv, measurement = measure, report_data =
// user_data, debug = !NODBG, tcb_status kNotEvaluated (no status source).
[[nodiscard]] AttestResult<VerifiedEvidence> VerifyCsvEvidence(const EvidenceInput& input);

}  // namespace cllm::attestation::csv
