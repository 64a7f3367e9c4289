// json_bundle.cc — rebuild an SNP report and its certificates from JSON.
#include "attestation/snp/json_bundle.h"

#include <nlohmann/json.hpp>

#include <string_view>

#include "attestation/snp/report.h"
#include "base/json_guard.h"

namespace cllm::attestation::snp {
namespace {

using nlohmann::json;

constexpr size_t kMaxBundleSize = 1 << 20;

Error<AttestErrc> Bad(const std::string& what) {
  return MakeError(AttestErrc::kMalformed, "SNP JSON evidence: " + what);
}

AttestResult<uint64_t> Uint(const json& obj, const char* key, uint64_t max) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_unsigned() || it->get<uint64_t>() > max) {
    return Bad(std::string("\"") + key + "\" is missing or not an integer in 0.." + std::to_string(max));
  }
  return it->get<uint64_t>();
}

AttestResult<Bytes> ByteArray(const json& obj, const char* key, size_t max_len) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array() || it->size() > max_len) {
    return Bad(std::string("\"") + key + "\" is missing or not an array of at most " + std::to_string(max_len) +
               " bytes");
  }
  Bytes out;
  out.reserve(it->size());
  for (const auto& v : *it) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 0xFF) return Bad(std::string("\"") + key + "\" has a non-byte");
    out.push_back(static_cast<uint8_t>(v.get<uint64_t>()));
  }
  return out;
}

template <size_t N>
AttestStatus Fixed(const json& obj, const char* key, std::array<uint8_t, N>* out) {
  CLLM_ASSIGN_OR_RETURN(Bytes b, ByteArray(obj, key, N));
  if (b.size() != N) return Bad(std::string("\"") + key + "\" must be " + std::to_string(N) + " bytes");
  std::copy(b.begin(), b.end(), out->begin());
  return OkStatus();
}

// Tcb encodes {"fmc", "bootloader", "tee", "snp", "microcode"}: the Turin
// layout when "fmc" is a number, the Milan/Genoa layout when it is null or
// absent (report.h).
AttestResult<uint64_t> Tcb(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_object()) return Bad(std::string("\"") + key + "\" is not an object");
  const json& t = *it;
  CLLM_ASSIGN_OR_RETURN(uint64_t bl, Uint(t, "bootloader", 0xFF));
  CLLM_ASSIGN_OR_RETURN(uint64_t tee, Uint(t, "tee", 0xFF));
  CLLM_ASSIGN_OR_RETURN(uint64_t snp, Uint(t, "snp", 0xFF));
  CLLM_ASSIGN_OR_RETURN(uint64_t ucode, Uint(t, "microcode", 0xFF));
  auto fmc = t.find("fmc");
  if (fmc != t.end() && !fmc->is_null()) {
    CLLM_ASSIGN_OR_RETURN(uint64_t f, Uint(t, "fmc", 0xFF));
    return f | bl << 8 | tee << 16 | snp << 24 | ucode << 56;
  }
  return bl | tee << 8 | snp << 48 | ucode << 56;
}

AttestStatus FirmwareVersion(const json& obj, const char* key, uint8_t* major, uint8_t* minor, uint8_t* build) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_object()) return Bad(std::string("\"") + key + "\" is not an object");
  CLLM_ASSIGN_OR_RETURN(uint64_t ma, Uint(*it, "major", 0xFF));
  CLLM_ASSIGN_OR_RETURN(uint64_t mi, Uint(*it, "minor", 0xFF));
  CLLM_ASSIGN_OR_RETURN(uint64_t bu, Uint(*it, "build", 0xFF));
  *major = static_cast<uint8_t>(ma);
  *minor = static_cast<uint8_t>(mi);
  *build = static_cast<uint8_t>(bu);
  return OkStatus();
}

// Sig reads one 72-byte little-endian R or S into its 48 big-endian bytes;
// the high 24 bytes must be zero as in the binary form.
AttestStatus Sig(const json& sig, const char* key, std::array<uint8_t, 48>* out) {
  std::array<uint8_t, 72> le;
  CLLM_RETURN_IF_ERROR(Fixed(sig, key, &le));
  for (size_t i = 48; i < 72; ++i) {
    if (le[i] != 0) return MakeError(AttestErrc::kReservedNonZero, std::string("signature ") + key + " byte " +
                                                                       std::to_string(i) + " is not zero");
  }
  for (size_t i = 0; i < 48; ++i) (*out)[i] = le[47 - i];
  return OkStatus();
}

AttestResult<Report> ReportFromJson(const json& j) {
  Report r;
  uint64_t v = 0;
  CLLM_ASSIGN_OR_RETURN(v, Uint(j, "version", 0xFFFFFFFF));
  r.version = static_cast<uint32_t>(v);
  CLLM_ASSIGN_OR_RETURN(v, Uint(j, "guest_svn", 0xFFFFFFFF));
  r.guest_svn = static_cast<uint32_t>(v);
  CLLM_ASSIGN_OR_RETURN(r.policy, Uint(j, "policy", UINT64_MAX));
  CLLM_RETURN_IF_ERROR(Fixed(j, "family_id", &r.family_id));
  CLLM_RETURN_IF_ERROR(Fixed(j, "image_id", &r.image_id));
  CLLM_ASSIGN_OR_RETURN(v, Uint(j, "vmpl", 0xFFFFFFFF));
  r.vmpl = static_cast<uint32_t>(v);
  CLLM_ASSIGN_OR_RETURN(v, Uint(j, "sig_algo", 0xFFFFFFFF));
  r.signature_algo = static_cast<uint32_t>(v);
  CLLM_ASSIGN_OR_RETURN(r.current_tcb, Tcb(j, "current_tcb"));
  CLLM_ASSIGN_OR_RETURN(r.platform_info, Uint(j, "plat_info", UINT64_MAX));
  CLLM_ASSIGN_OR_RETURN(v, Uint(j, "key_info", 0xFFFFFFFF));
  r.key_info = static_cast<uint32_t>(v);
  CLLM_RETURN_IF_ERROR(Fixed(j, "report_data", &r.report_data));
  CLLM_RETURN_IF_ERROR(Fixed(j, "measurement", &r.measurement));
  CLLM_RETURN_IF_ERROR(Fixed(j, "host_data", &r.host_data));
  CLLM_RETURN_IF_ERROR(Fixed(j, "id_key_digest", &r.id_key_digest));
  CLLM_RETURN_IF_ERROR(Fixed(j, "author_key_digest", &r.author_key_digest));
  CLLM_RETURN_IF_ERROR(Fixed(j, "report_id", &r.report_id));
  CLLM_RETURN_IF_ERROR(Fixed(j, "report_id_ma", &r.report_id_ma));
  CLLM_ASSIGN_OR_RETURN(r.reported_tcb, Tcb(j, "reported_tcb"));
  if (r.has_cpuid()) {
    CLLM_ASSIGN_OR_RETURN(v, Uint(j, "cpuid_fam_id", 0xFF));
    r.cpuid_fam_id = static_cast<uint8_t>(v);
    CLLM_ASSIGN_OR_RETURN(v, Uint(j, "cpuid_mod_id", 0xFF));
    r.cpuid_mod_id = static_cast<uint8_t>(v);
    CLLM_ASSIGN_OR_RETURN(v, Uint(j, "cpuid_step", 0xFF));
    r.cpuid_step = static_cast<uint8_t>(v);
  }
  CLLM_RETURN_IF_ERROR(Fixed(j, "chip_id", &r.chip_id));
  CLLM_ASSIGN_OR_RETURN(r.committed_tcb, Tcb(j, "committed_tcb"));
  CLLM_RETURN_IF_ERROR(FirmwareVersion(j, "current", &r.current_major, &r.current_minor, &r.current_build));
  CLLM_RETURN_IF_ERROR(FirmwareVersion(j, "committed", &r.committed_major, &r.committed_minor, &r.committed_build));
  CLLM_ASSIGN_OR_RETURN(r.launch_tcb, Tcb(j, "launch_tcb"));
  if (r.version >= 5) {
    CLLM_ASSIGN_OR_RETURN(r.launch_mit_vector, Uint(j, "launch_mit_vector", UINT64_MAX));
    CLLM_ASSIGN_OR_RETURN(r.current_mit_vector, Uint(j, "current_mit_vector", UINT64_MAX));
  }
  auto sig = j.find("signature");
  if (sig == j.end() || !sig->is_object()) return Bad("\"signature\" is not an object");
  CLLM_RETURN_IF_ERROR(Sig(*sig, "r", &r.sig_r));
  CLLM_RETURN_IF_ERROR(Sig(*sig, "s", &r.sig_s));
  return r;
}

}  // namespace

bool LooksLikeJsonBundle(ByteSpan evidence) {
  std::string_view text = AsChars(evidence);
  size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{' &&
         text.find("\"attestation_report\"") != std::string_view::npos;
}

AttestResult<JsonBundle> ParseJsonBundle(ByteSpan evidence) {
  std::string_view text = AsChars(evidence);
  if (text.size() > kMaxBundleSize) return Bad("larger than 1 MiB");
  if (!JsonDepthWithin(text)) return Bad("nested too deeply");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad("not a JSON object");
  auto rep = j.find("attestation_report");
  if (rep == j.end() || !rep->is_object()) return Bad("\"attestation_report\" is not an object");
  CLLM_ASSIGN_OR_RETURN(Report report, ReportFromJson(*rep));
  // Versions the binary parser would reject must not be re-encoded under a
  // layout they do not have.
  if (report.version != 2 && report.version != 3 && report.version != 5) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "ATTESTATION_REPORT VERSION is " + std::to_string(report.version) + ", accepted: 2, 3, 5");
  }
  JsonBundle out;
  out.report = SerializeReport(report);

  auto chain = j.find("cert_chain");
  if (chain != j.end() && !chain->is_null()) {
    if (!chain->is_array()) return Bad("\"cert_chain\" is not an array");
    for (const auto& entry : *chain) {
      if (!entry.is_object()) return Bad("a \"cert_chain\" entry is not an object");
      auto type = entry.find("cert_type");
      if (type == entry.end() || !type->is_string()) return Bad("a \"cert_chain\" entry has no \"cert_type\"");
      const std::string t = type->get<std::string>();
      CertKind kind = t == "VCEK" ? CertKind::kVcek
                      : t == "VLEK" ? CertKind::kVlek
                      : t == "ASK"  ? CertKind::kAsk
                      : t == "ARK"  ? CertKind::kArk
                                    : CertKind::kOther;
      if (kind == CertKind::kOther) continue;  // CRLs and others are not used
      CLLM_ASSIGN_OR_RETURN(Bytes der, ByteArray(entry, "data", 1 << 16));
      auto cert = crypto::Certificate::FromDer(der);
      if (!cert.ok()) return Bad("cert_chain " + t + " is not a DER certificate: " + cert.detail());
      out.certs.push_back({std::move(cert).value(), kind});
    }
  }
  return out;
}

}  // namespace cllm::attestation::snp
