// collateral.cc — loading DCAP collateral from the accepted file shapes.
//
// The signed JSON bodies are kept as the exact bytes from the file: Intel
// signs the text as served, so re-serialising would break valid signatures
// (and a lenient re-serialiser could make an altered body verify).
#include "attestation/tdx/collateral.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>

#include "base/encoding.h"
#include "base/json_guard.h"

namespace cllm::attestation::tdx {
namespace {

using nlohmann::json;

Error<AttestErrc> Invalid(const std::string& what) {
  return MakeError(AttestErrc::kCollateralInvalid, "collateral: " + what);
}

std::string_view AsText(ByteSpan b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r')) s.remove_prefix(1);
  return s;
}

// A CRL given as hex DER, PEM or raw DER.
AttestResult<crypto::Crl> CrlFromText(std::string_view text, const char* what) {
  text = TrimLeft(text);
  if (StartsWith(text, "-----BEGIN X509 CRL")) {
    auto crl = crypto::Crl::FromPem(text);
    if (!crl.ok()) return Invalid(std::string(what) + ": " + crl.detail());
    return std::move(crl).value();
  }
  auto der = HexDecode(text);
  if (!der.ok()) return Invalid(std::string(what) + " is neither PEM nor hex DER");
  // PCS serves the PCK CRL as PEM by default; tools that hex-encode the raw
  // response bytes then carry hex of PEM text.
  if (StartsWith(AsText(*der), "-----BEGIN X509 CRL")) return CrlFromText(AsText(*der), what);
  auto crl = crypto::Crl::FromDer(*der);
  if (!crl.ok()) return Invalid(std::string(what) + ": " + crl.detail());
  return std::move(crl).value();
}

AttestStatus AddPem(std::string_view pem, RawCollateral& out, const char* what) {
  auto certs = crypto::Certificate::ParsePemBundle(pem);
  if (!certs.ok()) return Invalid(std::string(what) + ": " + certs.detail());
  for (auto& c : *certs) out.certs.push_back(std::move(c));
  return OkStatus();
}

AttestResult<Bytes> HexSignature(const json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_string()) return Invalid(std::string(key) + " missing");
  auto sig = HexDecode(it->get<std::string>());
  if (!sig.ok() || sig->size() != 64) return Invalid(std::string(key) + " must be 64 bytes of hex (r‖s)");
  return std::move(sig).value();
}

AttestStatus LoadOne(ByteSpan file, RawCollateral& out);

// dcap-qvl QuoteCollateralV3: every piece is a string member.
AttestStatus LoadQvlShape(const json& doc, RawCollateral& out) {
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  // tcb_info / qe_identity hold the signed body with the signature beside it,
  // or (Intel QVL's sgx_ql_qve_collateral_t) the whole PCS response body.
  for (const char* key : {"tcb_info", "qe_identity"}) {
    auto body = str(key);
    if (!body) continue;
    const char* inner = std::strcmp(key, "tcb_info") == 0 ? "tcbInfo" : "enclaveIdentity";
    if (ExtractRawMember(*body, inner)) {
      CLLM_RETURN_IF_ERROR(LoadOne(AsBytes(*body), out));
      continue;
    }
    CLLM_ASSIGN_OR_RETURN(Bytes sig, HexSignature(doc, (std::string(key) + "_signature").c_str()));
    (std::strcmp(key, "tcb_info") == 0 ? out.tcb_info : out.qe_identity) = SignedJson{*body, std::move(sig)};
  }
  for (const char* key : {"tcb_info_issuer_chain", "qe_identity_issuer_chain", "pck_crl_issuer_chain"}) {
    if (auto pem = str(key)) CLLM_RETURN_IF_ERROR(AddPem(*pem, out, key));
  }
  for (const char* key : {"root_ca_crl", "pck_crl"}) {
    if (auto text = str(key)) {
      CLLM_ASSIGN_OR_RETURN(crypto::Crl crl, CrlFromText(*text, key));
      out.crls.push_back(std::move(crl));
    }
  }
  return OkStatus();
}

// Intel PCS response body: {"tcbInfo": {...}, "signature": "..."} or
// {"enclaveIdentity": {...}, "signature": "..."}.
AttestStatus LoadPcsShape(std::string_view text, const json& doc, RawCollateral& out) {
  for (const char* key : {"tcbInfo", "enclaveIdentity"}) {
    if (!doc.contains(key)) continue;
    auto raw = ExtractRawMember(text, key);
    if (!raw) return Invalid(std::string("cannot locate the ") + key + " value");
    CLLM_ASSIGN_OR_RETURN(Bytes sig, HexSignature(doc, "signature"));
    auto& slot = std::strcmp(key, "tcbInfo") == 0 ? out.tcb_info : out.qe_identity;
    if (slot) return Invalid(std::string("two ") + key + " documents were supplied");
    slot = SignedJson{std::move(*raw), std::move(sig)};
  }
  return OkStatus();
}

AttestStatus LoadOne(ByteSpan file, RawCollateral& out) {
  std::string_view text = TrimLeft(AsText(file));
  if (StartsWith(text, "{")) {
    if (!JsonDepthWithin(text)) return Invalid("JSON nests too deeply");
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) return Invalid("not a JSON object");
    if (doc.contains("tcbInfo") || doc.contains("enclaveIdentity")) return LoadPcsShape(text, doc, out);
    return LoadQvlShape(doc, out);
  }
  if (StartsWith(text, "-----BEGIN CERTIFICATE")) return AddPem(text, out, "certificate file");
  if (StartsWith(text, "-----BEGIN X509 CRL")) {
    CLLM_ASSIGN_OR_RETURN(crypto::Crl crl, CrlFromText(text, "CRL file"));
    out.crls.push_back(std::move(crl));
    return OkStatus();
  }
  // DER: a CRL or a certificate.
  if (auto crl = crypto::Crl::FromDer(file); crl.ok()) {
    out.crls.push_back(std::move(crl).value());
    return OkStatus();
  }
  if (auto cert = crypto::Certificate::FromDer(file); cert.ok()) {
    out.certs.push_back(std::move(cert).value());
    return OkStatus();
  }
  return Invalid("a file is neither JSON collateral, PEM nor a DER CRL/certificate");
}

// Skips one JSON value starting at text[i]; returns the index after it or npos.
size_t SkipValue(std::string_view t, size_t i) {
  int depth = 0;
  bool in_string = false;
  for (; i < t.size(); ++i) {
    char c = t[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') {
        in_string = false;
        if (depth == 0) return i + 1;
      }
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') ++depth;
    else if (c == '}' || c == ']') {
      if (depth == 0) return i;  // end of the enclosing object: a primitive ended
      if (--depth == 0) return i + 1;
    } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
      return i;
    }
  }
  return std::string_view::npos;
}

size_t SkipWs(std::string_view t, size_t i) {
  while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
  return i;
}

}  // namespace

std::optional<std::string> ExtractRawMember(std::string_view t, std::string_view key) {
  constexpr size_t npos = std::string_view::npos;
  size_t i = SkipWs(t, 0);
  if (i >= t.size() || t[i] != '{') return std::nullopt;
  i = SkipWs(t, i + 1);
  while (i < t.size() && t[i] == '"') {
    size_t key_end = SkipValue(t, i);
    if (key_end == npos) return std::nullopt;
    std::string_view name = t.substr(i + 1, key_end - i - 2);  // keys with escapes never match ours
    i = SkipWs(t, key_end);
    if (i >= t.size() || t[i] != ':') return std::nullopt;
    size_t start = SkipWs(t, i + 1);
    size_t end = SkipValue(t, start);
    if (end == npos || end == start) return std::nullopt;
    if (name == key) return std::string(t.substr(start, end - start));
    i = SkipWs(t, end);
    if (i < t.size() && t[i] == ',') i = SkipWs(t, i + 1);
  }
  return std::nullopt;
}

std::optional<crypto::TimePoint> ParseUtcTime(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  auto num = [&](size_t pos, size_t n) -> int {
    int v = 0;
    for (size_t k = pos; k < pos + n; ++k) {
      if (k >= s.size() || s[k] < '0' || s[k] > '9') return -1;
      v = v * 10 + (s[k] - '0');
    }
    return v;
  };
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  size_t z = 19;
  if (s[z] == '.') {
    ++z;
    while (z < s.size() && s[z] >= '0' && s[z] <= '9') ++z;
  }
  if (z + 1 != s.size() || s[z] != 'Z') return std::nullopt;
  int y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), sec = num(17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60) {
    return std::nullopt;
  }
  std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(mo)),
                                  std::chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(sec);
}

AttestResult<RawCollateral> LoadCollateral(const std::optional<Bytes>& collateral,
                                           const std::vector<Bytes>& cert_files) {
  RawCollateral out;
  if (collateral) CLLM_RETURN_IF_ERROR(LoadOne(*collateral, out));
  for (const Bytes& f : cert_files) CLLM_RETURN_IF_ERROR(LoadOne(f, out));
  return out;
}

}  // namespace cllm::attestation::tdx
