// tdx_csv_guest.cc — TDX_CMD_GET_REPORT0 on /dev/tdx_guest and
// CSV_CMD_GET_REPORT on /dev/csv-guest.
//
// The TDX layout is linux/tdx-guest.h (struct tdx_report_req) and the TDX
// module ABI (TDREPORT_STRUCT, REPORTMACSTRUCT); the CSV request is Hygon's
// csv-guest driver (struct csv_report_req {u8 *report_data; int len;}).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "attestation/attesters/device_attesters.h"
#include "crypto/digest.h"
#include "crypto/random.h"

namespace cllm::attestation {
namespace {

// linux/tdx-guest.h (not shipped by every distribution's headers).
struct TdxReportReq {
  uint8_t reportdata[64];
  uint8_t tdreport[kTdReportSize];
};
static_assert(sizeof(TdxReportReq) == 1088);
constexpr unsigned long kTdxCmdGetReport0 = _IOWR('T', 1, TdxReportReq);

// Hygon drivers/virt/coco/csv-guest/csv-guest.h.
struct CsvReportReq {
  uint8_t* report_data;
  int len;
};
constexpr unsigned long kCsvCmdGetReport = _IOWR('D', 1, CsvReportReq);

constexpr uint8_t kTdxReportType = 0x81;  // REPORTTYPE.TYPE for TDX

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

AttestResult<Bytes> TdReportReportData(ByteSpan td_report) {
  if (td_report.size() != kTdReportSize) {
    return MakeError(AttestErrc::kMalformed, "TDREPORT must be 1024 bytes, found " + std::to_string(td_report.size()));
  }
  if (td_report[0] != kTdxReportType) {
    return MakeError(AttestErrc::kMalformed, "REPORTTYPE.TYPE is " + std::to_string(td_report[0]) + ", expected 0x81 (TDX)");
  }
  auto rd = td_report.subspan(kTdReportDataOffset, kReportDataSize);
  return Bytes(rd.begin(), rd.end());
}

AttestResult<Bytes> TdxGuestAttester::GetEvidence(ByteSpan report_data_64) {
  if (report_data_64.size() != kReportDataSize) return MakeError(AttestErrc::kMalformed, "report_data must be 64 bytes");
  Fd dev{::open(device_.c_str(), O_RDWR | O_CLOEXEC)};
  if (dev.fd < 0) return MakeError(AttestErrc::kUnavailable, device_.string() + ": " + std::strerror(errno));
  TdxReportReq req{};
  std::memcpy(req.reportdata, report_data_64.data(), kReportDataSize);
  if (::ioctl(dev.fd, kTdxCmdGetReport0, &req) != 0) {
    return MakeError(AttestErrc::kIo, "TDX_CMD_GET_REPORT0: " + std::string(std::strerror(errno)));
  }
  Bytes report(req.tdreport, req.tdreport + kTdReportSize);
  // The module echoes REPORTDATA; anything else means a broken driver.
  CLLM_ASSIGN_OR_RETURN(Bytes echoed, TdReportReportData(report));
  if (!std::equal(echoed.begin(), echoed.end(), report_data_64.begin())) {
    return MakeError(AttestErrc::kBindingMismatch, "TDREPORT.REPORTDATA differs from the requested report_data");
  }
  return report;
}

Bytes BuildCsvReportInput(ByteSpan report_data_64, ByteSpan mnonce_16) {
  CLLM_CHECK(report_data_64.size() == kCsvUserDataLen && mnonce_16.size() == kCsvMnonceLen);
  Bytes buf(kCsvReportBufferLen, 0);
  std::memcpy(buf.data(), report_data_64.data(), kCsvUserDataLen);
  std::memcpy(buf.data() + kCsvUserDataLen, mnonce_16.data(), kCsvMnonceLen);
  // The firmware checks this SM3 digest over user_data ‖ mnonce before it
  // accepts the request (integrity of the input across the hypervisor).
  auto hash = crypto::Sm3(ByteSpan(buf).first(kCsvUserDataLen + kCsvMnonceLen));
  std::memcpy(buf.data() + kCsvUserDataLen + kCsvMnonceLen, hash.data(), kCsvHashLen);
  return buf;
}

AttestResult<Bytes> CsvGuestAttester::GetEvidence(ByteSpan report_data_64) {
  if (report_data_64.size() != kReportDataSize) return MakeError(AttestErrc::kMalformed, "report_data must be 64 bytes");
  Fd dev{::open(device_.c_str(), O_RDWR | O_CLOEXEC)};
  if (dev.fd < 0) return MakeError(AttestErrc::kUnavailable, device_.string() + ": " + std::strerror(errno));
  Bytes mnonce = crypto::RandomBytes(kCsvMnonceLen);
  Bytes buf = BuildCsvReportInput(report_data_64, mnonce);
  CsvReportReq req{buf.data(), static_cast<int>(buf.size())};
  if (::ioctl(dev.fd, kCsvCmdGetReport, &req) != 0) {
    return MakeError(AttestErrc::kIo, "CSV_CMD_GET_REPORT: " + std::string(std::strerror(errno)));
  }
  return buf;  // the 4096-byte buffer now holds the CSV attestation report
}

}  // namespace cllm::attestation
