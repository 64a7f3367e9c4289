// hcl_report.h — Azure confidential VM "HCL report": the paravisor's (HCL)
// hardware report that binds the vTPM's attestation key.
//
// Microsoft's HCL (the paravisor under an Azure SNP/TDX CVM) asks the
// hardware for a report whose REPORT_DATA[0:32] is SHA-256 of a JSON
// "runtime data" document holding the vTPM AK and EK public keys
// ({"keys": [{"kid": "HCLAkPub", "kty": "RSA", "n", "e"}, ...], ...}). The
// HCL report wraps both (read from vTPM NV index 0x01400001); layout,
// little-endian, from Microsoft's azure-cvm tooling and the samples:
//
//   0x000    4  signature "HCLA"
//   0x004    4  version (1, 2)
//   0x008    4  report size (header + hardware report + IGVM request data)
//   0x00C    4  request type (2 = attestation)
//   0x010   16  reserved
//   0x020 1184  hardware report: SNP ATTESTATION_REPORT (1184 bytes), or a
//               TDX TDREPORT_STRUCT (1024 bytes) padded to 1184
//   0x4C0    4  IGVM request data: data_size (= 20 + variable_data_size)
//   0x4C4    4  version (1)
//   0x4C8    4  report_type (2 = SNP, 4 = TDX)
//   0x4CC    4  user_data hash type (1 = SHA-256)
//   0x4D0    4  variable_data_size
//   0x4D4    n  runtime data JSON (UTF-8)
// The file is usually zero-padded (2600 bytes in the samples).
//
// REPORT_DATA is at SNP report offset 0x50 (HCL 0x70) and at TDREPORT
// REPORTMACSTRUCT offset 0x80 (HCL 0xA0).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "attestation/errors.h"
#include "base/bytes.h"
#include "crypto/keys.h"

namespace cllm::attestation::tpm {

inline constexpr size_t kHclHardwareReportOffset = 0x20;
inline constexpr size_t kHclHardwareReportSize = 1184;
inline constexpr size_t kHclRuntimeDataOffset = 0x4D4;
inline constexpr size_t kTdReportSize = 1024;
inline constexpr uint32_t kHclReportTypeSnp = 2;
inline constexpr uint32_t kHclReportTypeTdx = 4;

struct HclReport {
  uint32_t version = 0;
  uint32_t report_type = 0;     // kHclReportTypeSnp or kHclReportTypeTdx
  Bytes hardware_report;        // SNP: 1184 bytes; TDX: the 1024-byte TDREPORT
  std::array<uint8_t, 64> report_data{};  // the hardware report's REPORT_DATA
  Bytes runtime_data;           // the JSON bytes exactly as hashed
  std::optional<crypto::PublicKey> ak;  // JWK "HCLAkPub" (always set by ParseHclReport)
  std::string vm_unique_id;     // vm-configuration.vmUniqueId, when present
  std::string user_data;        // "user-data" (hex, 64 bytes the guest asked the HCL to bind), when present
};

// LooksLikeHclReport checks the "HCLA" tag.
bool LooksLikeHclReport(ByteSpan bytes);

// ParseHclReport decodes the layout, the runtime data JSON and the AK.
// kMalformed on truncation, inconsistent sizes, unparsable JSON or a missing
// / unusable HCLAkPub; kUnsupportedVersion for a report type other than SNP
// or TDX or a hash type other than SHA-256.
[[nodiscard]] AttestResult<HclReport> ParseHclReport(ByteSpan bytes);

// CheckRuntimeDataBinding checks REPORT_DATA[0:32] == SHA-256(runtime data): what
// ties the AK to the hardware report; kBindingMismatch otherwise.
[[nodiscard]] AttestStatus CheckRuntimeDataBinding(const HclReport& hcl);

// Offsets inside a TDREPORT_STRUCT (Intel TDX module ABI):
// REPORTMACSTRUCT.REPORTDATA and TDINFO.MRTD.
inline constexpr size_t kTdReportReportDataOffset = 0x80;
inline constexpr size_t kTdReportMrTdOffset = 0x210;

}  // namespace cllm::attestation::tpm
