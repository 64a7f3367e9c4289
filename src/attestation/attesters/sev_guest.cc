// sev_guest.cc — SNP_GET_EXT_REPORT on /dev/sev-guest.
//
// Layouts are the kernel's uapi (linux/sev-guest.h) and the SEV-SNP firmware
// ABI (MSG_REPORT_RSP, table 25); the certificate table is the GHCB spec's
// (section 4.1.8.1, "SNP Extended Guest Request").
#include <fcntl.h>
#include <linux/sev-guest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "attestation/attesters/device_attesters.h"
#include "base/byte_reader.h"

namespace cllm::attestation {
namespace {

static_assert(sizeof(snp_report_req) == 96, "uapi snp_report_req");
static_assert(sizeof(snp_report_resp) == kSnpReportRespSize, "uapi snp_report_resp");

constexpr uint8_t kMsgVersion = 1;  // the only MSG_REPORT_REQ version

// Fd closes a descriptor on every path.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

template <typename T>
AttestResult<T> Malformed(Result<T> r, const char* what) {
  if (!r.ok()) return MakeError(AttestErrc::kMalformed, std::string(what) + ": " + r.detail());
  return std::move(r).value();
}

}  // namespace

AttestResult<Bytes> ParseSnpReportResponse(ByteSpan resp) {
  ByteReader r(resp);
  CLLM_ASSIGN_OR_RETURN(uint32_t status, Malformed(r.U32Le(), "MSG_REPORT_RSP.status"));
  CLLM_ASSIGN_OR_RETURN(uint32_t report_size, Malformed(r.U32Le(), "MSG_REPORT_RSP.report_size"));
  if (status != 0) {
    // 0x16 = INVALID_PARAM (e.g. a VMPL below the caller's).
    return MakeError(AttestErrc::kIo, "firmware MSG_REPORT_RSP status 0x" + std::to_string(status));
  }
  if (report_size != kSnpReportSize) {
    return MakeError(AttestErrc::kMalformed, "MSG_REPORT_RSP.report_size is " + std::to_string(report_size) +
                                                 ", expected " + std::to_string(kSnpReportSize));
  }
  CLLM_RETURN_IF_ERROR(Malformed(r.Skip(24), "MSG_REPORT_RSP.reserved"));
  CLLM_ASSIGN_OR_RETURN(ByteSpan report, Malformed(r.Bytes(report_size), "MSG_REPORT_RSP.report"));
  return Bytes(report.begin(), report.end());
}

AttestResult<std::vector<SnpCertEntry>> ParseSnpCertTable(ByteSpan table) {
  std::vector<SnpCertEntry> out;
  ByteReader r(table);
  for (;;) {
    CLLM_ASSIGN_OR_RETURN(auto guid, Malformed(r.Array<16>(), "cert table entry GUID"));
    CLLM_ASSIGN_OR_RETURN(uint32_t offset, Malformed(r.U32Le(), "cert table entry offset"));
    CLLM_ASSIGN_OR_RETURN(uint32_t length, Malformed(r.U32Le(), "cert table entry length"));
    bool zero_guid = true;
    for (uint8_t b : guid) zero_guid = zero_guid && b == 0;
    if (zero_guid && offset == 0 && length == 0) break;  // terminator
    uint64_t end = 0;
    if (!CheckedAdd(offset, length, &end) || end > table.size()) {
      return MakeError(AttestErrc::kMalformed, "cert table entry " + std::to_string(out.size()) + " [" +
                                                   std::to_string(offset) + ", +" + std::to_string(length) +
                                                   ") exceeds the " + std::to_string(table.size()) + "-byte table");
    }
    SnpCertEntry e;
    e.guid = guid;
    e.data.assign(table.begin() + offset, table.begin() + static_cast<std::ptrdiff_t>(end));
    out.push_back(std::move(e));
    if (out.size() > 64) return MakeError(AttestErrc::kMalformed, "cert table has more than 64 entries");
  }
  return out;
}

AttestResult<std::pair<Bytes, Bytes>> SevGuestAttester::GetExtendedReport(ByteSpan report_data_64) {
  if (report_data_64.size() != kReportDataSize) {
    return MakeError(AttestErrc::kMalformed, "report_data must be 64 bytes");
  }
  Fd dev{::open(device_.c_str(), O_RDWR | O_CLOEXEC)};
  if (dev.fd < 0) return MakeError(AttestErrc::kUnavailable, device_.string() + ": " + std::strerror(errno));

  snp_ext_report_req req{};
  std::memcpy(req.data.user_data, report_data_64.data(), kReportDataSize);
  req.data.vmpl = vmpl_;
  snp_report_resp resp{};
  Bytes certs(kSnpCertsInitialLen);
  for (int attempt = 0; attempt < 2; ++attempt) {
    req.certs_address = reinterpret_cast<uint64_t>(certs.data());
    req.certs_len = static_cast<uint32_t>(certs.size());
    snp_guest_request_ioctl io{};
    io.msg_version = kMsgVersion;
    io.req_data = reinterpret_cast<uint64_t>(&req);
    io.resp_data = reinterpret_cast<uint64_t>(&resp);
    if (::ioctl(dev.fd, SNP_GET_EXT_REPORT, &io) == 0) {
      CLLM_ASSIGN_OR_RETURN(Bytes report, ParseSnpReportResponse(ByteSpan(resp.data, sizeof(resp.data))));
      return std::make_pair(std::move(report), std::move(certs));
    }
    const int err = errno;
    const uint64_t vmm_error = io.exitinfo2 >> SNP_GUEST_VMM_ERR_SHIFT;
    // The host needs a bigger buffer: it wrote the size it needs to certs_len.
    if (vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN && req.certs_len > certs.size() &&
        req.certs_len <= kSnpCertsMaxLen) {
      certs.assign(req.certs_len, 0);
      continue;
    }
    return MakeError(AttestErrc::kIo, "SNP_GET_EXT_REPORT: " + std::string(std::strerror(err)) +
                                          ", exitinfo2 0x" + std::to_string(io.exitinfo2));
  }
  return MakeError(AttestErrc::kIo, "SNP_GET_EXT_REPORT: certificate buffer size kept changing");
}

AttestResult<Bytes> SevGuestAttester::GetEvidence(ByteSpan report_data_64) {
  // Report ‖ certificate table: the SNP verifier takes the VCEK/VLEK (and
  // ASK/ARK) from the table, so a remote verifier needs nothing else.
  CLLM_ASSIGN_OR_RETURN(auto both, GetExtendedReport(report_data_64));
  Bytes out = std::move(both.first);
  out.insert(out.end(), both.second.begin(), both.second.end());
  return out;
}

}  // namespace cllm::attestation
