// device_attesters.h — evidence through the guest drivers' ioctls.
//
//   /dev/sev-guest  SNP_GET_EXT_REPORT (linux/sev-guest.h): report + certificate table
//   /dev/tdx_guest  TDX_CMD_GET_REPORT0 (linux/tdx-guest.h): a 1024-byte TDREPORT,
//                   which only the local quoting enclave can verify; remote
//                   parties need a quote, which Linux provides via configfs-tsm
//   /dev/csv-guest  CSV_CMD_GET_REPORT (Hygon csv-guest driver): a CSV attestation report
//
// The ioctls cannot run outside a guest, so the request building and
// response parsing are separate functions with unit tests.
#pragma once

#include <filesystem>
#include <vector>

#include "attestation/attester.h"

namespace cllm::attestation {

// --- SEV-SNP -----------------------------------------------------------------

inline constexpr size_t kSnpReportSize = 0x4A0;        // ATTESTATION_REPORT (SNP ABI spec table 22)
inline constexpr size_t kSnpReportRespSize = 4000;     // struct snp_report_resp
inline constexpr size_t kSnpCertsInitialLen = 4 * 4096;
inline constexpr size_t kSnpCertsMaxLen = 1 << 20;

// ParseSnpReportResponse extracts the report from MSG_REPORT_RSP (SNP ABI
// spec table 25: status u32 @0, report_size u32 @4, reserved @8..0x1F, report
// @0x20); kIo on a firmware status, kMalformed on a bad size.
[[nodiscard]] AttestResult<Bytes> ParseSnpReportResponse(ByteSpan resp);

struct SnpCertEntry {
  std::array<uint8_t, 16> guid{};  // e.g. VCEK 63da758d-e664-4564-adc5-f4b93be8accd
  Bytes data;
};
// ParseSnpCertTable decodes the GHCB extended-report certificate table
// (entries of GUID(16) ‖ offset u32 ‖ length u32, ended by an all-zero entry;
// offsets relative to the table start). Used for /dev/sev-guest certs and the
// configfs-tsm auxblob. kMalformed on out-of-bounds entries.
[[nodiscard]] AttestResult<std::vector<SnpCertEntry>> ParseSnpCertTable(ByteSpan table);

class SevGuestAttester : public Attester {
 public:
  explicit SevGuestAttester(std::filesystem::path device = "/dev/sev-guest", uint32_t vmpl = 0)
      : device_(std::move(device)), vmpl_(vmpl) {}
  Platform platform() const override { return Platform::kSnp; }
  std::string name() const override { return "sev-guest"; }
  AttestResult<Bytes> GetEvidence(ByteSpan report_data_64) override;
  // GetExtendedReport returns the report and the raw certificate table.
  [[nodiscard]] AttestResult<std::pair<Bytes, Bytes>> GetExtendedReport(ByteSpan report_data_64);

 private:
  std::filesystem::path device_;
  uint32_t vmpl_;
};

// --- TDX -----------------------------------------------------------------------

inline constexpr size_t kTdReportSize = 1024;           // TDREPORT_STRUCT
inline constexpr size_t kTdReportDataOffset = 128;      // REPORTMACSTRUCT.REPORTDATA

// ParseTdReport checks the TDREPORT size and type (REPORTMACSTRUCT.REPORTTYPE
// type 0x81 = TDX) and returns its REPORTDATA; kMalformed otherwise.
[[nodiscard]] AttestResult<Bytes> TdReportReportData(ByteSpan td_report);

class TdxGuestAttester : public Attester {
 public:
  explicit TdxGuestAttester(std::filesystem::path device = "/dev/tdx_guest") : device_(std::move(device)) {}
  Platform platform() const override { return Platform::kTdx; }
  std::string name() const override { return "tdx-guest"; }
  // GetEvidence returns the TDREPORT (local evidence, not a quote).
  AttestResult<Bytes> GetEvidence(ByteSpan report_data_64) override;

 private:
  std::filesystem::path device_;
};

// --- Hygon CSV -------------------------------------------------------------------

inline constexpr size_t kCsvUserDataLen = 64;
inline constexpr size_t kCsvMnonceLen = 16;
inline constexpr size_t kCsvHashLen = 32;
inline constexpr size_t kCsvReportBufferLen = 4096;

// BuildCsvReportInput lays out the request buffer the csv-guest driver
// expects: user_data[64] ‖ mnonce[16] ‖ SM3(user_data ‖ mnonce)[32], zero
// padded to 4096 bytes (the firmware overwrites it with the report).
Bytes BuildCsvReportInput(ByteSpan report_data_64, ByteSpan mnonce_16);

class CsvGuestAttester : public Attester {
 public:
  explicit CsvGuestAttester(std::filesystem::path device = "/dev/csv-guest") : device_(std::move(device)) {}
  Platform platform() const override { return Platform::kCsv; }
  std::string name() const override { return "csv-guest"; }
  AttestResult<Bytes> GetEvidence(ByteSpan report_data_64) override;

 private:
  std::filesystem::path device_;
};

}  // namespace cllm::attestation
