// csv_verify.cc — VerifyCsvEvidence: the Hygon CSV checklist.
//
//   1. evidence structure (raw report or JSON bundle), unmasking
//   2. report signature by the PEK embedded in the report
//   3. HRK: a supplied HRK must match a pin and be self-signed; without one
//      the pinned HRK key is used
//   4. HSK signed by the HRK, CEK signed by the HSK, PEK signed by the CEK
// Nothing in the CSV formats carries a validity period or revocation, so the
// verification time is not used (docs/attestation/csv.md).
#include <algorithm>
#include <cctype>
#include <optional>

#include <nlohmann/json.hpp>

#include "attestation/csv/csv_report.h"
#include "attestation/csv/csv_serde.h"
#include "attestation/internal/trace.h"
#include "attestation/internal/verifier_pass.h"
#include "base/check.h"
#include "base/encoding.h"
#include "base/json_guard.h"
#include "crypto/digest.h"

namespace cllm::attestation::csv {
namespace {

using nlohmann::json;

// The Hygon Root Key, published at https://cert.hygon.cn/hrk (832-byte CA
// certificate; also shipped as hrk.cert by Hygon's csv-rs and trustee).
// SHA-256 of the certificate bytes:
constexpr char kHrkSha256[] = "296efa97580464aca0ab5eefe42199ee05862182508d1629f29cf4dc175b10cd";
// Its key, used when no HRK certificate is supplied (big-endian coordinates).
constexpr char kHrkKeyId[] = "3ae86a9701355cce333a589de21583d7";
constexpr char kHrkX[] = "be62e14d62a4f14cf3d702db09563a75c80935e785cd1f502af5f21d92c2f62d";
constexpr char kHrkY[] = "3bab123a57bb7015584f8b97164e95384a640c10b9be884738744d68b41eb946";
constexpr char kHrkUserId[] = "HYGON-SSD-HRK";

template <size_t N>
std::array<uint8_t, N> HexArray(std::string_view hex) {
  auto b = HexDecode(hex);
  CLLM_CHECK(b.ok() && b->size() == N);
  std::array<uint8_t, N> out{};
  std::copy(b->begin(), b->end(), out.begin());
  return out;
}

CaCert BuiltinHrk() {
  CaCert c;
  c.version = 1;
  c.key_id = HexArray<16>(kHrkKeyId);
  c.certifying_id = c.key_id;
  c.key_usage = kUsageHrk;
  c.pubkey.curve_id = kCurveSm2;
  c.pubkey.x = HexArray<32>(kHrkX);
  c.pubkey.y = HexArray<32>(kHrkY);
  c.pubkey.user_id = kHrkUserId;
  return c;
}

// --- evidence container ---------------------------------------------------------

struct Bundle {
  Bytes report;
  std::optional<std::string> serial_number;  // from the JSON bundle
  std::vector<Bytes> cert_blobs;             // cert_chain.hsk_cek when given as bytes
};

// JSON byte strings come as arrays of 0..255 (serde's Vec<u8>) or base64.
AttestResult<Bytes> JsonBytes(const json& j, const char* what) {
  if (j.is_string()) {
    auto b = Base64Decode(j.get<std::string>());
    if (!b.ok()) return MakeError(AttestErrc::kMalformed, std::string(what) + ": " + b.detail());
    return std::move(b).value();
  }
  if (!j.is_array()) return MakeError(AttestErrc::kMalformed, std::string(what) + " is not a byte array");
  Bytes out;
  out.reserve(j.size());
  for (const auto& v : j) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 255) {
      return MakeError(AttestErrc::kMalformed, std::string(what) + " holds a value that is not a byte");
    }
    out.push_back(static_cast<uint8_t>(v.get<uint64_t>()));
  }
  return out;
}

AttestResult<Bundle> DecodeEvidence(ByteSpan evidence) {
  Bundle b;
  size_t i = 0;
  while (i < evidence.size() && std::isspace(evidence[i])) ++i;
  if (i == evidence.size() || evidence[i] != '{') {
    b.report.assign(evidence.begin(), evidence.end());
    return b;
  }
  if (!JsonDepthWithin(AsChars(evidence))) return MakeError(AttestErrc::kMalformed, "CSV evidence JSON nests too deeply");
  json j = json::parse(AsChars(evidence), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return MakeError(AttestErrc::kMalformed, "CSV evidence is not valid JSON");
  if (!j.contains("attestation_report") || !j["attestation_report"].is_object()) {
    return MakeError(AttestErrc::kMalformed, "CSV evidence JSON has no \"attestation_report\" object");
  }
  const json& ar = j["attestation_report"];
  if (!ar.contains("data")) return MakeError(AttestErrc::kMalformed, "attestation_report has no \"data\"");
  CLLM_ASSIGN_OR_RETURN(b.report, JsonBytes(ar["data"], "attestation_report.data"));
  // magic all-zero with flags 0 is the legacy v1 report; "ATTESTATION_EXT"
  // with flags 1/3 are the extended reports we do not support.
  if (ar.contains("magic")) {
    CLLM_ASSIGN_OR_RETURN(Bytes magic, JsonBytes(ar["magic"], "attestation_report.magic"));
    for (uint8_t x : magic) {
      if (x != 0) return MakeError(AttestErrc::kUnsupportedVersion, "extended CSV report (non-zero magic)");
    }
  }
  if (ar.contains("flags") && (!ar["flags"].is_number_unsigned() || ar["flags"].get<uint64_t>() != 0)) {
    return MakeError(AttestErrc::kUnsupportedVersion, "CSV report flags are not 0 (extended report)");
  }
  if (j.contains("serial_number")) {
    CLLM_ASSIGN_OR_RETURN(Bytes sn, JsonBytes(j["serial_number"], "serial_number"));
    size_t n = 0;
    while (n < sn.size() && sn[n] != 0) ++n;
    b.serial_number.emplace(AsChars(ByteSpan(sn).first(n)));
  }
  // Certificates: trustee's newer shape {"pek", "hsk_cek": {"hsk", "cek"}},
  // its older {"hsk", "cek", "pek"} (csv-rs serde structs), or hsk_cek as
  // bytes (the KDS file). The PEK is the report's own; "pek" is not used.
  if (j.contains("cert_chain") && j["cert_chain"].is_object()) {
    const json& cc = j["cert_chain"];
    const json* pair = &cc;
    if (cc.contains("hsk_cek") && !cc["hsk_cek"].is_null()) {
      if (!cc["hsk_cek"].is_object()) {
        CLLM_ASSIGN_OR_RETURN(Bytes hc, JsonBytes(cc["hsk_cek"], "cert_chain.hsk_cek"));
        b.cert_blobs.push_back(std::move(hc));
      }
      pair = &cc["hsk_cek"];
    }
    if (pair->is_object() && pair->contains("hsk") && (*pair)["hsk"].is_object()) {
      CLLM_ASSIGN_OR_RETURN(Bytes hsk, CaCertBytesFromSerde((*pair)["hsk"]));
      b.cert_blobs.push_back(std::move(hsk));
    }
    if (pair->is_object() && pair->contains("cek") && (*pair)["cek"].is_object()) {
      CLLM_ASSIGN_OR_RETURN(Bytes cek, CsvCertBytesFromSerde((*pair)["cek"]));
      b.cert_blobs.push_back(std::move(cek));
    }
  }
  return b;
}

// --- certificates ----------------------------------------------------------------

struct Certs {
  std::vector<CaCert> hrks;
  std::vector<CaCert> hsks;
  std::vector<CsvCert> ceks;
};

AttestStatus AddCertFile(ByteSpan blob, Certs& out) {
  auto add_ca = [&](ByteSpan b) -> AttestStatus {
    auto c = ParseCaCert(b);
    if (!c.ok()) return MakeError(AttestErrc::kCollateralInvalid, "Hygon CA certificate: " + c.detail());
    if (c->key_usage == kUsageHrk) out.hrks.push_back(std::move(c).value());
    else if (c->key_usage == kUsageHsk) out.hsks.push_back(std::move(c).value());
    return OkStatus();
  };
  auto add_csv = [&](ByteSpan b) -> AttestStatus {
    auto c = ParseCsvCert(b);
    if (!c.ok()) return MakeError(AttestErrc::kCollateralInvalid, "Hygon CSV certificate: " + c.detail());
    if (c->pubkey_usage == kUsageCek) out.ceks.push_back(std::move(c).value());
    return OkStatus();
  };
  if (blob.size() == kCaCertSize) return add_ca(blob);
  if (blob.size() == kCsvCertSize) return add_csv(blob);
  if (blob.size() == kCaCertSize + kCsvCertSize) {  // Hygon KDS hsk_cek: HSK ‖ CEK
    CLLM_RETURN_IF_ERROR(add_ca(blob.first(kCaCertSize)));
    return add_csv(blob.subspan(kCaCertSize));
  }
  return MakeError(AttestErrc::kCollateralInvalid,
                   "certificate file of " + std::to_string(blob.size()) +
                       " bytes is not a Hygon CA (832), CSV (2084) or HSK+CEK (2916) certificate");
}

// ResolveHrk returns the trusted HRK: a supplied one whose SHA-256 is pinned
// (and which is self-signed), else the built-in pinned key.
AttestResult<CaCert> ResolveHrk(const EvidenceInput& in, const Certs& certs, std::string& out_detail) {
  std::vector<Bytes> pins = in.hygon_root_pins;
  if (pins.empty()) pins.push_back(HexDecode(kHrkSha256).value());
  for (const auto& hrk : certs.hrks) {
    const auto digest = crypto::Sha256(hrk.bytes);
    bool pinned = false;
    for (const auto& p : pins) pinned = pinned || (p.size() == 32 && ConstantTimeEqual(p, digest));
    if (!pinned) continue;
    // The HRK is self-signed (certifying_id = key_id); a pinned file that is
    // not is corrupt or not an HRK.
    auto self = VerifyCaCertIssuedBy(hrk, hrk);
    if (!self.ok()) return MakeError(AttestErrc::kChainInvalid, "pinned HRK self-signature: " + self.detail());
    out_detail = "supplied HRK, SHA-256 " + HexEncode(digest) + " pinned, self-signed";
    return hrk;
  }
  if (!certs.hrks.empty()) {
    return MakeError(AttestErrc::kChainInvalid, "supplied HRK (SHA-256 " + HexEncode(crypto::Sha256(certs.hrks[0].bytes)) +
                                                    ") matches no pinned Hygon root");
  }
  if (!in.hygon_root_pins.empty()) {
    return MakeError(AttestErrc::kCollateralMissing, "no HRK certificate supplied for the injected root pins");
  }
  out_detail = "built-in pinned HRK key (key_id " + std::string(kHrkKeyId) + ")";
  return BuiltinHrk();
}

std::string Hex(ByteSpan b) { return HexEncode(b); }

// CekKeyBytes is the CEK's public point, x ‖ y big-endian (64 bytes, the
// uncompressed point without its 0x04): what cek.pubkey_sha256 digests.
Bytes CekKeyBytes(const CsvCert& cek) {
  Bytes out(cek.pubkey.x.begin(), cek.pubkey.x.end());
  out.insert(out.end(), cek.pubkey.y.begin(), cek.pubkey.y.end());
  return out;
}

}  // namespace

AttestResult<Bytes> PeekCsvUserData(ByteSpan evidence) {
  CLLM_ASSIGN_OR_RETURN(Bundle bundle, DecodeEvidence(evidence));
  CLLM_ASSIGN_OR_RETURN(CsvReport rep, ParseCsvReport(bundle.report));
  return Bytes(rep.user_data.begin(), rep.user_data.end());
}

AttestResult<VerifiedEvidence> VerifyCsvEvidence(const EvidenceInput& in) {
  // --- 1. structure ----------------------------------------------------------------
  auto bundle = DecodeEvidence(in.evidence);
  if (!bundle.ok()) return FailStep(in, "CSV evidence structure", std::move(bundle).error());
  auto parsed = ParseCsvReport(bundle->report);
  if (!parsed.ok()) return FailStep(in, "CSV evidence structure", std::move(parsed).error());
  const CsvReport& rep = *parsed;
  // The bundle names the chip it fetched certificates for; it must be the
  // chip that produced the report.
  if (bundle->serial_number && *bundle->serial_number != rep.chip_id) {
    return FailStep(in, "CSV evidence structure",
                    MakeError(AttestErrc::kBindingMismatch, "bundle serial_number \"" + *bundle->serial_number +
                                                                "\" is not the report's chip \"" + rep.chip_id + "\""));
  }
  Step(in, "CSV evidence structure",
       "v1 report, anonce 0x" + Hex(Bytes{static_cast<uint8_t>(rep.anonce >> 24), static_cast<uint8_t>(rep.anonce >> 16),
                                          static_cast<uint8_t>(rep.anonce >> 8), static_cast<uint8_t>(rep.anonce)}) +
           ", chip " + rep.chip_id + (rep.signer_was_masked ? ", signer block masked" : ", signer block restored"));

  // --- 2. report signature --------------------------------------------------------
  // The PEK must be a PEK: a CEK or OCA key signing a report is not the CSV
  // protocol (Hygon CSV API, GUEST_ATTESTATION).
  if (rep.pek.pubkey_usage != kUsagePek) {
    return FailStep(in, "report signature by the PEK",
                    MakeError(AttestErrc::kChainInvalid, "report signer certificate has usage " +
                                                             std::to_string(rep.pek.pubkey_usage) + ", not PEK"));
  }
  if (auto st = VerifySm2(rep.pek.pubkey, rep.signed_bytes, rep.signature); !st.ok()) {
    return FailStep(in, "report signature by the PEK",
                    MakeError(AttestErrc::kBadSignature, "over TEE_INFO [0x000, 0x0B4): " + st.detail()));
  }
  Step(in, "report signature by the PEK", "SM2/SM3 over the masked TEE_INFO [0x000, 0x0B4)");

  // --- 3. root ------------------------------------------------------------------------
  Certs certs;
  for (const auto& f : in.cert_files) {
    if (auto st = AddCertFile(f, certs); !st.ok()) return FailStep(in, "Hygon certificates", std::move(st).error());
  }
  for (const auto& f : bundle->cert_blobs) {
    if (auto st = AddCertFile(f, certs); !st.ok()) return FailStep(in, "Hygon certificates", std::move(st).error());
  }
  std::string hrk_detail;
  auto hrk = ResolveHrk(in, certs, hrk_detail);
  if (!hrk.ok()) return FailStep(in, "HRK pinned", std::move(hrk).error());
  Step(in, "HRK pinned", hrk_detail);

  // --- 4. HRK → HSK → CEK → PEK ----------------------------------------------------
  if (certs.hsks.empty() || certs.ceks.empty()) {
    return FailStep(in, "HSK and CEK certificates",
                    MakeError(AttestErrc::kCollateralMissing,
                              std::string(certs.hsks.empty() ? "HSK" : "CEK") + " certificate for chip " + rep.chip_id +
                                  " not supplied (https://cert.hygon.cn/hsk_cek?snumber=" + rep.chip_id + ")"));
  }
  const CaCert* hsk = nullptr;
  AttestStatus last = OkStatus();
  for (const auto& c : certs.hsks) {
    last = VerifyCaCertIssuedBy(c, *hrk);
    if (last.ok()) { hsk = &c; break; }
  }
  if (hsk == nullptr) return FailStep(in, "HSK signed by HRK", MakeError(AttestErrc::kChainInvalid, last.detail()));
  Step(in, "HSK signed by HRK", "HSK key_id " + Hex(hsk->key_id));
  const CsvCert* cek = nullptr;
  for (const auto& c : certs.ceks) {
    last = VerifyCsvCertIssuedBy(c, kUsageHsk, hsk->pubkey);
    if (last.ok()) { cek = &c; break; }
  }
  if (cek == nullptr) return FailStep(in, "CEK signed by HSK", MakeError(AttestErrc::kChainInvalid, last.detail()));
  Step(in, "CEK signed by HSK", "CEK user_id " + cek->pubkey.user_id);
  if (auto st = VerifyCsvCertIssuedBy(rep.pek, kUsageCek, cek->pubkey); !st.ok()) {
    return FailStep(in, "PEK signed by CEK", std::move(st).error());
  }
  Step(in, "PEK signed by CEK", "PEK firmware " + std::to_string(rep.pek.api_major) + "." +
                                    std::to_string(rep.pek.api_minor));

  // --- result -------------------------------------------------------------------------
  VerifiedEvidence::Data d;
  d.platform = Platform::kCsv;
  d.simulated = false;
  d.measurement.assign(rep.measure.begin(), rep.measure.end());
  d.report_data.assign(rep.user_data.begin(), rep.user_data.end());
  // NODBG clear means the host may debug (decrypt) guest memory.
  d.debug = (rep.policy & kPolicyNoDbg) == 0;
  // CSV has no TCB status service: a chain to the HRK says the chip is
  // genuine, not that its firmware is current. The v1 report's only version
  // statement is the firmware API version in the PEK (signed by the CEK);
  // policies pin floors on it with min_tcb.
  d.tcb_status = TcbStatus::kNotEvaluated;
  d.tcb = {{"csv.api_major", rep.pek.api_major}, {"csv.api_minor", rep.pek.api_minor}};
  // Only what a signature covers is a field a policy can pin. The chip serial
  // (sn) and anonce are outside every signature in v1 (the report signature
  // covers [0x000, 0x0B4); the PEK certificate's signature covers the PEK
  // only): the chip's authenticated identity is its CEK, signed by the HSK.
  d.fields = {{"cek.pubkey_sha256", Hex(crypto::Sha256(CekKeyBytes(*cek)))},
              {"user_pubkey_digest", Hex(rep.user_pubkey_digest)},
              {"vm_id", Hex(rep.vm_id)},
              {"vm_version", Hex(rep.vm_version)},
              {"user_data", Hex(rep.user_data)},
              {"mnonce", Hex(rep.mnonce)},
              {"measure", Hex(rep.measure)},
              {"policy", std::to_string(rep.policy)},
              {"policy.nodbg", (rep.policy & kPolicyNoDbg) ? "1" : "0"},
              {"policy.noks", (rep.policy & kPolicyNoKs) ? "1" : "0"},
              {"policy.es", (rep.policy & kPolicyEs) ? "1" : "0"},
              {"policy.nosend", (rep.policy & kPolicyNoSend) ? "1" : "0"},
              {"policy.domain", (rep.policy & kPolicyDomain) ? "1" : "0"},
              {"policy.sev", (rep.policy & kPolicySev) ? "1" : "0"},
              {"policy.csv3", (rep.policy & kPolicyCsv3) ? "1" : "0"},
              {"sig_usage", std::to_string(rep.sig_usage)},
              {"sig_algo", std::to_string(rep.sig_algo)},
              {"pek.api_major", std::to_string(rep.pek.api_major)},
              {"pek.api_minor", std::to_string(rep.pek.api_minor)},
              {"hsk.key_id", Hex(hsk->key_id)}};
  if (in.trace != nullptr) d.steps = *in.trace;
  return VerifiedEvidence(VerifierPass::Issue(), std::move(d));
}

}  // namespace cllm::attestation::csv
