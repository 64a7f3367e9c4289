// csv_report.cc — parsing and unmasking the Hygon CSV v1 attestation report.
// Layout in csv_report.h.
#include "attestation/csv/csv_report.h"

#include <cstring>

#include "base/byte_reader.h"

namespace cllm::attestation::csv {
namespace {

template <typename T>
AttestResult<T> Read(Result<T> r, const char* what) {
  if (!r.ok()) return MakeError(AttestErrc::kMalformed, std::string(what) + ": " + r.detail());
  return std::move(r).value();
}

uint32_t LoadU32Le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Unmask XORs every little-endian u32 word of `bytes` with `anonce`, which is
// what the firmware did word by word (`((uint32_t*)field)[i] ^ anonce`).
Bytes Unmask(ByteSpan bytes, uint32_t anonce) {
  Bytes out(bytes.begin(), bytes.end());
  for (size_t i = 0; i < out.size(); ++i) out[i] ^= static_cast<uint8_t>(anonce >> (8 * (i % 4)));
  return out;
}

constexpr char kExtendedMagic[] = "ATTESTATION_EXT";  // v2/v3 reports, not supported
constexpr size_t kSignerOffset = 0x150;
constexpr size_t kSnOffset = 0x974;
constexpr size_t kMacOffset = 0x9D4;

}  // namespace

bool LooksLikeCsvEvidence(ByteSpan evidence) {
  if (evidence.size() >= kCsvReportSize && evidence.size() <= kCsvReportMaxSize) {
    const uint32_t anonce = LoadU32Le(evidence.data() + 0xBC);
    if ((LoadU32Le(evidence.data() + 0xB4) ^ anonce) == kUsagePek &&
        (LoadU32Le(evidence.data() + 0xB8) ^ anonce) == kAlgoSm2Sa) {
      return true;
    }
  }
  // A JSON bundle: trustee's CSV report object has "magic", "flags" and
  // "data" (an SNP bundle also has "attestation_report" and "cert_chain" but
  // none of these).
  const std::string_view text = AsChars(evidence);
  const size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{' &&
         text.find("\"attestation_report\"") != std::string_view::npos &&
         text.find("\"magic\"") != std::string_view::npos && text.find("\"flags\"") != std::string_view::npos &&
         text.find("\"data\"") != std::string_view::npos;
}

AttestResult<CsvReport> ParseCsvReport(ByteSpan bytes) {
  if (bytes.size() >= sizeof(kExtendedMagic) &&
      std::memcmp(bytes.data(), kExtendedMagic, sizeof(kExtendedMagic)) == 0) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "extended CSV report (magic \"ATTESTATION_EXT\") is not supported, only v1");
  }
  if (bytes.size() < kCsvReportSize || bytes.size() > kCsvReportMaxSize) {
    return MakeError(AttestErrc::kMalformed, "CSV report must be 2548..4096 bytes, found " +
                                                 std::to_string(bytes.size()));
  }
  CsvReport rep;
  rep.anonce = LoadU32Le(bytes.data() + kCsvReportMaskedSize);  // 0x0BC
  rep.signed_bytes.assign(bytes.begin(), bytes.begin() + kCsvReportSignedSize);

  // --- TEE_INFO: every field before anonce is masked -------------------------
  const Bytes tee_info = Unmask(bytes.first(kCsvReportMaskedSize), rep.anonce);
  ByteReader r(tee_info);
  CLLM_ASSIGN_OR_RETURN(rep.user_pubkey_digest, Read(r.Array<32>(), "user_pubkey_digest"));  // 0x000
  CLLM_ASSIGN_OR_RETURN(rep.vm_id, Read(r.Array<16>(), "vm_id"));                            // 0x020
  CLLM_ASSIGN_OR_RETURN(rep.vm_version, Read(r.Array<16>(), "vm_version"));                  // 0x030
  CLLM_ASSIGN_OR_RETURN(rep.user_data, Read(r.Array<64>(), "user_data"));                    // 0x040
  CLLM_ASSIGN_OR_RETURN(rep.mnonce, Read(r.Array<16>(), "mnonce"));                          // 0x080
  CLLM_ASSIGN_OR_RETURN(rep.measure, Read(r.Array<32>(), "measure"));                        // 0x090
  CLLM_ASSIGN_OR_RETURN(rep.policy, Read(r.U32Le(), "policy"));                              // 0x0B0
  CLLM_ASSIGN_OR_RETURN(rep.sig_usage, Read(r.U32Le(), "sig_usage"));                        // 0x0B4
  CLLM_ASSIGN_OR_RETURN(rep.sig_algo, Read(r.U32Le(), "sig_algo"));                          // 0x0B8
  if (rep.sig_algo != kAlgoSm2Sa) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "report sig_algo " + std::to_string(rep.sig_algo) + ", only 4 (SM2-SA) is supported");
  }
  // The report is signed by the PEK; any other usage means the bytes are not
  // a CSV v1 report (or the unmasking went wrong).
  if (rep.sig_usage != kUsagePek) {
    return MakeError(AttestErrc::kMalformed,
                     "report sig_usage " + std::to_string(rep.sig_usage) + " is not the PEK (0x1002)");
  }
  CLLM_ASSIGN_OR_RETURN(rep.signature, ReadSm2Sig(bytes.subspan(0xC0, 2 * kEccFieldSize)));  // 0x0C0

  // --- signer block: PEK certificate and chip serial --------------------------
  // Raw firmware output has them masked; "restored" reports do not. The PEK's
  // version word (1) tells which; the PEK signature by the CEK decides later.
  ByteSpan signer = bytes.subspan(kSignerOffset, kMacOffset - kSignerOffset);
  const uint32_t pek_version = LoadU32Le(signer.data());
  Bytes signer_plain;
  if (pek_version == 1) {
    signer_plain.assign(signer.begin(), signer.end());
  } else if ((pek_version ^ rep.anonce) == 1) {
    signer_plain = Unmask(signer, rep.anonce);
    rep.signer_was_masked = true;
  } else {
    return MakeError(AttestErrc::kMalformed, "PEK certificate version word is neither 1 nor 1 ^ anonce");
  }
  CLLM_ASSIGN_OR_RETURN(rep.pek, ParseCsvCert(ByteSpan(signer_plain).first(kCsvCertSize)));
  ByteSpan sn = ByteSpan(signer_plain).subspan(kSnOffset - kSignerOffset, 64);
  size_t sn_len = 0;
  while (sn_len < sn.size() && sn[sn_len] != 0) ++sn_len;
  rep.chip_id.assign(AsChars(sn.first(sn_len)));
  std::memcpy(rep.mac.data(), bytes.data() + kMacOffset, rep.mac.size());
  return rep;
}

}  // namespace cllm::attestation::csv
