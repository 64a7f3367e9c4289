// tpm_evidence.cc — reading the TPM evidence containers and sorting the
// supplied files (tpm_verify.h lists the shapes).
#include <cctype>
#include <cstring>
#include <string_view>

#include <nlohmann/json.hpp>

#include "attestation/tpm/hcl_report.h"
#include "attestation/tpm/tpm_quote.h"
#include "attestation/tpm/tpm_verify.h"
#include "base/encoding.h"
#include "base/json_guard.h"
#include "crypto/x509.h"

namespace cllm::attestation::tpm {
namespace {

using nlohmann::json;

constexpr size_t kMaxPcrs = 256;

bool IsHex(std::string_view s) {
  if (s.empty() || s.size() % 2 != 0) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// JSON byte strings: arrays of 0..255 (serde Vec<u8>), hex (Azure tooling)
// or base64 (trustee's TPM evidence). Hex is tried first; a base64 string of
// only hex digits would be misread, which none of these producers emits for
// the fields read here (a misread value then fails the signature check).
AttestResult<Bytes> JsonBytes(const json& j, const std::string& what) {
  if (j.is_array()) {
    Bytes out;
    out.reserve(j.size());
    for (const auto& v : j) {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > 255) {
        return MakeError(AttestErrc::kMalformed, what + " holds a value that is not a byte");
      }
      out.push_back(static_cast<uint8_t>(v.get<uint64_t>()));
    }
    return out;
  }
  if (!j.is_string()) return MakeError(AttestErrc::kMalformed, what + " is not a byte string");
  const std::string s = j.get<std::string>();
  if (IsHex(s)) return HexDecode(s).value();
  if (auto b = Base64Decode(s); b.ok()) return std::move(b).value();
  if (auto b = Base64UrlDecode(s); b.ok()) return std::move(b).value();
  return MakeError(AttestErrc::kMalformed, what + " is neither hex nor base64");
}

AttestStatus ReadQuoteObject(const json& q, TpmEvidence& out) {
  for (const char* key : {"message", "signature", "pcrs"}) {
    if (!q.contains(key)) return MakeError(AttestErrc::kMalformed, std::string("TPM quote has no \"") + key + "\"");
  }
  CLLM_ASSIGN_OR_RETURN(out.attest, JsonBytes(q["message"], "quote message"));
  CLLM_ASSIGN_OR_RETURN(out.signature, JsonBytes(q["signature"], "quote signature"));
  if (!q["pcrs"].is_array() || q["pcrs"].size() > kMaxPcrs) {
    return MakeError(AttestErrc::kMalformed, "quote pcrs is not an array of at most 256 values");
  }
  for (size_t i = 0; i < q["pcrs"].size(); ++i) {
    CLLM_ASSIGN_OR_RETURN(Bytes v, JsonBytes(q["pcrs"][i], "pcrs[" + std::to_string(i) + "]"));
    out.pcrs.push_back(std::move(v));
  }
  return OkStatus();
}

bool LooksLikeTdQuote(ByteSpan b) {
  // Quote header: u16 version (4 or 5), u16 attestation key type (2 = ECDSA
  // P-256), u32 TEE type (0x81 = TDX).
  return b.size() > 48 && (b[0] == 4 || b[0] == 5) && b[1] == 0 && b[2] == 2 && b[3] == 0 && b[4] == 0x81 &&
         b[5] == 0 && b[6] == 0 && b[7] == 0;
}

// SortFile files one supplied blob under what it is.
AttestStatus SortFile(ByteSpan f, TpmEvidence& out) {
  if (LooksLikeHclReport(f)) {
    out.hcl_report.emplace(f.begin(), f.end());
    return OkStatus();
  }
  if (LooksLikeTdQuote(f)) {
    out.td_quote.emplace(f.begin(), f.end());
    return OkStatus();
  }
  const std::string_view text = AsChars(f);
  if (text.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    out.certs.emplace_back(f.begin(), f.end());
    return OkStatus();
  }
  if (text.find("-----BEGIN PUBLIC KEY-----") != std::string_view::npos) {
    auto key = crypto::PublicKey::FromPem(text);
    if (!key.ok()) return MakeError(AttestErrc::kCollateralInvalid, "AK public key PEM: " + key.detail());
    out.ak_spki = key->ToSpkiDer();
    return OkStatus();
  }
  if (crypto::Certificate::FromDer(f).ok()) {
    out.certs.emplace_back(f.begin(), f.end());
    return OkStatus();
  }
  if (crypto::PublicKey::FromSpkiDer(f).ok()) {
    out.ak_spki.emplace(f.begin(), f.end());
    return OkStatus();
  }
  return MakeError(AttestErrc::kCollateralInvalid,
                   "file of " + std::to_string(f.size()) +
                       " bytes is not an HCL report, TD quote, AK public key or X.509 certificate");
}

}  // namespace

bool LooksLikeTpmEvidence(ByteSpan evidence) {
  if (evidence.size() >= 6 && evidence[0] == 0xff && evidence[1] == 'T' && evidence[2] == 'C' &&
      evidence[3] == 'G' && evidence[4] == 0x80 && evidence[5] == 0x18) {
    return true;
  }
  const std::string_view text = AsChars(evidence);
  if (text.empty() || text.find('{') == std::string_view::npos) return false;
  return text.find("\"message\"") != std::string_view::npos && text.find("\"signature\"") != std::string_view::npos &&
         text.find("\"pcrs\"") != std::string_view::npos;
}

AttestResult<TpmEvidence> DecodeTpmEvidence(const EvidenceInput& input) {
  TpmEvidence ev;
  ByteSpan in = input.evidence;
  if (in.size() >= 4 && in[0] == 0xff && in[1] == 'T' && in[2] == 'C' && in[3] == 'G') {
    return MakeError(AttestErrc::kMalformed,
                     "a bare TPMS_ATTEST carries no signature or PCR values: pass the JSON container "
                     "{\"message\", \"signature\", \"pcrs\"}");
  }
  if (!JsonDepthWithin(AsChars(in))) return MakeError(AttestErrc::kMalformed, "TPM evidence JSON nests too deeply");
  json j = json::parse(AsChars(in), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return MakeError(AttestErrc::kMalformed, "TPM evidence is not a JSON object");
  const json* q = &j;
  if (j.contains("quote") && j["quote"].is_object()) q = &j["quote"];
  else if (j.contains("tpm_quote") && j["tpm_quote"].is_object()) q = &j["tpm_quote"];
  CLLM_RETURN_IF_ERROR(ReadQuoteObject(*q, ev));
  for (const char* key : {"report", "hcl_report"}) {
    if (j.contains(key) && !j[key].is_null()) {
      CLLM_ASSIGN_OR_RETURN(Bytes hcl, JsonBytes(j[key], key));
      ev.hcl_report = std::move(hcl);
    }
  }
  if (j.contains("ak_public") && !j["ak_public"].is_null()) {
    CLLM_ASSIGN_OR_RETURN(Bytes ak, JsonBytes(j["ak_public"], "ak_public"));
    ev.ak_spki = std::move(ak);
  }
  if (j.contains("td_quote") && !j["td_quote"].is_null()) {
    CLLM_ASSIGN_OR_RETURN(Bytes tdq, JsonBytes(j["td_quote"], "td_quote"));
    ev.td_quote = std::move(tdq);
  }
  if (j.contains("vcek") && j["vcek"].is_string()) {
    const std::string pem = j["vcek"].get<std::string>();
    ev.certs.emplace_back(pem.begin(), pem.end());
  }
  for (const auto& f : input.cert_files) CLLM_RETURN_IF_ERROR(SortFile(f, ev));
  if (input.collateral && LooksLikeHclReport(*input.collateral)) ev.hcl_report = *input.collateral;
  return ev;
}

}  // namespace cllm::attestation::tpm
