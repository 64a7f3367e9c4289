// hcl_report.cc — parsing Azure's HCL report and its runtime data (the AK).
// Layout in hcl_report.h.
#include "attestation/tpm/hcl_report.h"

#include <cstring>

#include <nlohmann/json.hpp>

#include "base/byte_reader.h"
#include "base/encoding.h"
#include "base/json_guard.h"
#include "crypto/digest.h"

namespace cllm::attestation::tpm {
namespace {

using nlohmann::json;

template <typename T>
AttestResult<T> Read(Result<T> r, const char* what) {
  if (!r.ok()) return MakeError(AttestErrc::kMalformed, std::string("HCL report ") + what + ": " + r.detail());
  return std::move(r).value();
}

constexpr char kHclMagic[4] = {'H', 'C', 'L', 'A'};
constexpr uint32_t kHashTypeSha256 = 1;
constexpr size_t kIgvmHeaderSize = 20;
constexpr size_t kSnpReportDataOffset = 0x50;  // SEV-SNP ABI, ATTESTATION_REPORT.REPORT_DATA

// The AK is the JWK with kid "HCLAkPub"; Azure's vTPM AK is RSA (2048-bit).
AttestResult<crypto::PublicKey> AkFromRuntimeData(const json& rd) {
  if (!rd.contains("keys") || !rd["keys"].is_array()) {
    return MakeError(AttestErrc::kMalformed, "HCL runtime data has no \"keys\" array");
  }
  for (const auto& k : rd["keys"]) {
    if (!k.is_object() || !k.contains("kid") || k["kid"] != "HCLAkPub") continue;
    if (!k.contains("kty") || k["kty"] != "RSA" || !k.contains("n") || !k["n"].is_string() || !k.contains("e") ||
        !k["e"].is_string()) {
      return MakeError(AttestErrc::kMalformed, "HCLAkPub is not an RSA JWK with n and e");
    }
    auto n = Base64UrlDecode(k["n"].get<std::string>());
    auto e = Base64UrlDecode(k["e"].get<std::string>());
    if (!n.ok() || !e.ok()) return MakeError(AttestErrc::kMalformed, "HCLAkPub n/e are not base64url");
    auto key = crypto::PublicKey::FromRsaComponents(*n, *e);
    if (!key.ok()) return MakeError(AttestErrc::kMalformed, "HCLAkPub: " + key.detail());
    return std::move(key).value();
  }
  return MakeError(AttestErrc::kMalformed, "HCL runtime data has no HCLAkPub key");
}

}  // namespace

bool LooksLikeHclReport(ByteSpan bytes) {
  return bytes.size() >= sizeof(kHclMagic) && std::memcmp(bytes.data(), kHclMagic, sizeof(kHclMagic)) == 0;
}

AttestResult<HclReport> ParseHclReport(ByteSpan bytes) {
  if (!LooksLikeHclReport(bytes)) return MakeError(AttestErrc::kMalformed, "HCL report does not start with \"HCLA\"");
  ByteReader r(bytes);
  HclReport h;
  CLLM_RETURN_IF_ERROR(Read(r.Skip(4), "signature"));                                  // 0x000
  CLLM_ASSIGN_OR_RETURN(h.version, Read(r.U32Le(), "version"));                        // 0x004
  CLLM_ASSIGN_OR_RETURN(uint32_t report_size, Read(r.U32Le(), "report size"));         // 0x008
  CLLM_ASSIGN_OR_RETURN(uint32_t request_type, Read(r.U32Le(), "request type"));       // 0x00C
  (void)request_type;
  CLLM_RETURN_IF_ERROR(Read(r.Skip(16), "reserved"));                                  // 0x010
  CLLM_ASSIGN_OR_RETURN(ByteSpan hw, Read(r.Bytes(kHclHardwareReportSize), "hardware report"));  // 0x020
  CLLM_ASSIGN_OR_RETURN(uint32_t data_size, Read(r.U32Le(), "IGVM data_size"));        // 0x4C0
  CLLM_ASSIGN_OR_RETURN(uint32_t igvm_version, Read(r.U32Le(), "IGVM version"));       // 0x4C4
  CLLM_ASSIGN_OR_RETURN(h.report_type, Read(r.U32Le(), "IGVM report_type"));           // 0x4C8
  CLLM_ASSIGN_OR_RETURN(uint32_t hash_type, Read(r.U32Le(), "IGVM hash type"));        // 0x4CC
  CLLM_ASSIGN_OR_RETURN(uint32_t var_size, Read(r.U32Le(), "IGVM variable_data_size")); // 0x4D0
  if (igvm_version != 1) {
    return MakeError(AttestErrc::kUnsupportedVersion, "HCL IGVM request data version " + std::to_string(igvm_version));
  }
  if (hash_type != kHashTypeSha256) {
    return MakeError(AttestErrc::kUnsupportedVersion, "HCL user data hash type " + std::to_string(hash_type) +
                                                          ", only 1 (SHA-256) is supported");
  }
  // The sizes must agree: a runtime data length that disagrees with the
  // header means we would hash something other than what the HCL hashed.
  if (uint64_t{data_size} != kIgvmHeaderSize + uint64_t{var_size} ||
      uint64_t{report_size} != kHclRuntimeDataOffset + uint64_t{var_size}) {
    return MakeError(AttestErrc::kMalformed, "HCL report sizes disagree (report " + std::to_string(report_size) +
                                                 ", data " + std::to_string(data_size) + ", runtime data " +
                                                 std::to_string(var_size) + ")");
  }
  CLLM_ASSIGN_OR_RETURN(ByteSpan rd, Read(r.Bytes(var_size), "runtime data"));         // 0x4D4
  h.runtime_data.assign(rd.begin(), rd.end());

  if (h.report_type == kHclReportTypeSnp) {
    h.hardware_report.assign(hw.begin(), hw.end());
    std::memcpy(h.report_data.data(), hw.data() + kSnpReportDataOffset, h.report_data.size());
  } else if (h.report_type == kHclReportTypeTdx) {
    h.hardware_report.assign(hw.begin(), hw.begin() + kTdReportSize);
    std::memcpy(h.report_data.data(), hw.data() + kTdReportReportDataOffset, h.report_data.size());
  } else {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "HCL report_type " + std::to_string(h.report_type) + " (only 2 = SNP, 4 = TDX)");
  }

  if (!JsonDepthWithin(AsChars(rd))) return MakeError(AttestErrc::kMalformed, "HCL runtime data nests too deeply");
  json j = json::parse(AsChars(rd), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return MakeError(AttestErrc::kMalformed, "HCL runtime data is not JSON");
  CLLM_ASSIGN_OR_RETURN(crypto::PublicKey ak, AkFromRuntimeData(j));
  h.ak.emplace(std::move(ak));
  if (j.contains("vm-configuration") && j["vm-configuration"].is_object() &&
      j["vm-configuration"].contains("vmUniqueId") && j["vm-configuration"]["vmUniqueId"].is_string()) {
    h.vm_unique_id = j["vm-configuration"]["vmUniqueId"].get<std::string>();
  }
  if (j.contains("user-data") && j["user-data"].is_string()) h.user_data = j["user-data"].get<std::string>();
  return h;
}

AttestStatus CheckRuntimeDataBinding(const HclReport& hcl) {
  const auto digest = crypto::Sha256(hcl.runtime_data);
  if (std::memcmp(digest.data(), hcl.report_data.data(), digest.size()) != 0) {
    return MakeError(AttestErrc::kBindingMismatch,
                     "SHA-256(runtime data) " + HexEncode(digest) + " but hardware REPORT_DATA[0:32] is " +
                         HexEncode(ByteSpan(hcl.report_data).first(32)));
  }
  return OkStatus();
}

}  // namespace cllm::attestation::tpm
