// tpm_verify.cc — VerifyTpmEvidence: the TPM quote checklist and the Azure
// vTPM binding to the confidential VM's hardware report.
#include "attestation/tpm/tpm_verify.h"

#include <cstring>

#include "attestation/internal/trace.h"
#include "attestation/internal/verifier_pass.h"
#include "attestation/tpm/hcl_report.h"
#include "attestation/tpm/tpm_quote.h"
#include "attestation/verify.h"
#include "base/encoding.h"
#include "crypto/digest.h"

namespace cllm::attestation::tpm {
namespace {

// TD quote (v4, v5) offsets of the TD report body fields we compare with the
// TDREPORT (Intel TDX DCAP Quote Generation Library, "TD Quote Body").
constexpr size_t kQuoteHeaderSize = 48;
constexpr size_t kQuoteBodyMrTd = 136;
constexpr size_t kQuoteBodyReportData = 520;

AttestResult<ByteSpan> TdQuoteBody(ByteSpan quote) {
  if (quote.size() < kQuoteHeaderSize) return MakeError(AttestErrc::kMalformed, "TD quote shorter than its header");
  size_t body = kQuoteHeaderSize;
  if (quote[0] == 5) body += 2 + 4;  // v5: u16 body type, u32 body size
  if (quote.size() < body + kQuoteBodyReportData + 64) {
    return MakeError(AttestErrc::kMalformed, "TD quote too short for its report body");
  }
  return quote.subspan(body);
}

struct Hardware {
  std::string name;  // "snp" / "tdx"
  VerifiedEvidence::Data data;
};

// VerifyHardware checks the hardware report the HCL report carries with the
// platform's own verifier (and, for TDX, binds the TD quote to the TDREPORT,
// which is only MAC'd for local use and cannot be checked remotely).
AttestResult<Hardware> VerifyHardware(const EvidenceInput& in, const TpmEvidence& ev, const HclReport& hcl) {
  EvidenceInput sub;
  sub.cert_files = ev.certs;
  sub.collateral = in.collateral;
  sub.at = in.at;
  sub.roots = in.roots;
  std::vector<CheckStep> steps;
  sub.trace = &steps;
  Hardware hw;
  Platform platform = Platform::kSnp;
  if (hcl.report_type == kHclReportTypeSnp) {
    hw.name = "snp";
    sub.evidence = hcl.hardware_report;
  } else {
    hw.name = "tdx";
    platform = Platform::kTdx;
    if (!ev.td_quote) {
      return MakeError(AttestErrc::kCollateralMissing,
                       "the HCL report carries a TDX TDREPORT, which only a TD quote makes verifiable; none supplied");
    }
    CLLM_ASSIGN_OR_RETURN(ByteSpan body, TdQuoteBody(*ev.td_quote));
    ByteSpan td = hcl.hardware_report;
    if (std::memcmp(body.data() + kQuoteBodyReportData, td.data() + kTdReportReportDataOffset, 64) != 0 ||
        std::memcmp(body.data() + kQuoteBodyMrTd, td.data() + kTdReportMrTdOffset, 48) != 0) {
      return MakeError(AttestErrc::kBindingMismatch, "TD quote REPORTDATA/MRTD differ from the HCL TDREPORT's");
    }
    sub.evidence = *ev.td_quote;
  }
  auto v = VerifyEvidence(platform, sub);
  if (in.trace != nullptr) {
    for (auto& s : steps) in.trace->push_back({hw.name + ": " + s.name, s.detail, s.ok});
  }
  if (!v.ok()) {
    return MakeError(v.code(), "embedded " + hw.name + " report: " + v.detail());
  }
  // The hardware verifier saw the same REPORT_DATA we bound the AK to (for
  // TDX through the quote); check it anyway so the binding cannot drift.
  if (v->data().report_data.size() != 64 ||
      std::memcmp(v->data().report_data.data(), hcl.report_data.data(), 64) != 0) {
    return MakeError(AttestErrc::kBindingMismatch, "verified hardware report_data differs from the HCL report's");
  }
  if (auto st = CheckProviderLevel(hw.name, v->data()); !st.ok()) return st.error();
  hw.data = v->data();
  return hw;
}

std::string U64(uint64_t v) { return std::to_string(v); }

}  // namespace

AttestStatus CheckProviderLevel(const std::string& tee, const VerifiedEvidence::Data& hardware) {
  if (tee != "snp") return OkStatus();  // TDX: the TD quote covers the whole TD (the paravisor is its firmware)
  auto vmpl = hardware.fields.find("vmpl");
  if (vmpl == hardware.fields.end() || vmpl->second != "0") {
    return MakeError(AttestErrc::kChainInvalid,
                     "embedded snp report: requested at VMPL " +
                         (vmpl == hardware.fields.end() ? std::string("?") : vmpl->second) +
                         ", not by the paravisor (VMPL 0): it does not vouch for the vTPM's key");
  }
  return OkStatus();
}

AttestResult<VerifiedEvidence> VerifyTpmEvidence(const EvidenceInput& in) {
  // --- 1. structure --------------------------------------------------------------
  auto decoded = DecodeTpmEvidence(in);
  if (!decoded.ok()) return FailStep(in, "TPM evidence structure", std::move(decoded).error());
  const TpmEvidence& ev = *decoded;
  auto parsed = ParseTpmsAttest(ev.attest);
  if (!parsed.ok()) return FailStep(in, "TPMS_ATTEST structure", std::move(parsed).error());
  const TpmsAttest& attest = *parsed;
  Step(in, "TPMS_ATTEST structure",
       "TPM_ST_ATTEST_QUOTE, extraData " + std::to_string(attest.extra_data.size()) + " bytes, " +
           std::to_string(ev.pcrs.size()) + " PCR values supplied");

  // --- 2. the AK and what binds it -------------------------------------------------
  std::optional<HclReport> hcl;
  std::optional<crypto::PublicKey> ak;
  if (ev.hcl_report) {
    auto h = ParseHclReport(*ev.hcl_report);
    if (!h.ok()) return FailStep(in, "HCL report structure", std::move(h).error());
    hcl = std::move(h).value();
    Step(in, "HCL report structure",
         std::string(hcl->report_type == kHclReportTypeSnp ? "SEV-SNP report" : "TDX TDREPORT") +
             ", runtime data " + std::to_string(hcl->runtime_data.size()) + " bytes with HCLAkPub");
    // The hardware signs REPORT_DATA; the runtime data (with the AK) is only
    // trusted through SHA-256(runtime data) = REPORT_DATA[0:32].
    if (auto st = CheckRuntimeDataBinding(*hcl); !st.ok()) {
      return FailStep(in, "HCL runtime data bound to REPORT_DATA", std::move(st).error());
    }
    Step(in, "HCL runtime data bound to REPORT_DATA", "SHA-256(runtime data) = REPORT_DATA[0:32]");
    ak = hcl->ak;
    if (ev.ak_spki && *ev.ak_spki != ak->ToSpkiDer()) {
      return FailStep(in, "HCL runtime data bound to REPORT_DATA",
                      MakeError(AttestErrc::kBindingMismatch, "supplied AK public key is not the HCL report's HCLAkPub"));
    }
  } else if (ev.ak_spki) {
    auto k = crypto::PublicKey::FromSpkiDer(*ev.ak_spki);
    if (!k.ok()) return FailStep(in, "AK public key", MakeError(AttestErrc::kMalformed, "AK SPKI: " + k.detail()));
    ak = std::move(k).value();
  } else {
    return FailStep(in, "AK public key",
                    MakeError(AttestErrc::kCollateralMissing, "no AK: supply the Azure HCL report or the AK public key"));
  }
  const std::string ak_fingerprint = HexEncode(crypto::Sha256(ak->ToSpkiDer()));

  // --- 3. quote signature ------------------------------------------------------------
  std::string scheme;
  auto hash = VerifyQuoteSignature(ev.attest, ev.signature, *ak, &scheme);
  if (!hash.ok()) return FailStep(in, "quote signature by the AK", std::move(hash).error());
  Step(in, "quote signature by the AK", scheme + ", AK SHA-256(SPKI) " + ak_fingerprint.substr(0, 16) + "…");

  // --- 4. PCR values -------------------------------------------------------------------
  // pcrDigest is all the signature covers; the individual values are only
  // evidence once they hash to it.
  if (auto st = CheckPcrDigest(attest, ev.pcrs, *hash); !st.ok()) {
    return FailStep(in, "pcrDigest over the supplied PCR values", std::move(st).error());
  }
  auto selected = SelectedPcrs(attest);  // cannot fail after CheckPcrDigest
  if (!selected.ok()) return FailStep(in, "pcrDigest over the supplied PCR values", std::move(selected).error());
  Step(in, "pcrDigest over the supplied PCR values", std::to_string(selected->size()) + " PCRs selected");

  // --- 5. AK anchored in hardware ---------------------------------------------------
  if (!hcl) {
    return FailStep(in, "AK anchored in hardware",
                    MakeError(AttestErrc::kChainInvalid,
                              "the AK is a bare public key: no HCL report binds it to a TEE and AK/EK certificate "
                              "chains are not supported, so the quote is not trustworthy"));
  }
  auto hw = VerifyHardware(in, ev, *hcl);
  if (!hw.ok()) return FailStep(in, "AK anchored in hardware", std::move(hw).error());
  Step(in, "AK anchored in hardware", hw->name + " report verified, its REPORT_DATA binds the runtime data");

  // --- result ----------------------------------------------------------------------
  VerifiedEvidence::Data d;
  d.platform = Platform::kTpm;
  d.simulated = false;
  d.measurement = attest.pcr_digest;
  // extraData (the verifier's nonce, at most 64 bytes) zero-padded to the
  // 64-byte report_data every platform exposes; fields["extra_data"] is exact.
  d.report_data = attest.extra_data;
  d.report_data.resize(64, 0);
  d.debug = hw->data.debug;
  // The quote has no TCB of its own; the AK is only as trustworthy as the
  // hardware that vouches for it, so its TCB status is the evidence's.
  d.tcb_status = hw->data.tcb_status;
  d.tcb = hw->data.tcb;
  d.advisory_ids = hw->data.advisory_ids;
  for (unsigned idx : *selected) d.fields["pcr" + std::to_string(idx)] = HexEncode(ev.pcrs[idx]);
  d.fields["pcr_digest"] = HexEncode(attest.pcr_digest);
  d.fields["extra_data"] = HexEncode(attest.extra_data);
  d.fields["qualified_signer"] = HexEncode(attest.qualified_signer);
  d.fields["clock"] = U64(attest.clock);
  d.fields["reset_count"] = U64(attest.reset_count);
  d.fields["restart_count"] = U64(attest.restart_count);
  d.fields["safe"] = U64(attest.safe);
  d.fields["firmware_version"] = U64(attest.firmware_version);
  d.fields["ak_fingerprint"] = ak_fingerprint;
  d.fields["signature_scheme"] = scheme;
  d.fields["hcl.report_type"] = hw->name;
  if (!hcl->vm_unique_id.empty()) d.fields["hcl.vm_unique_id"] = hcl->vm_unique_id;
  if (!hcl->user_data.empty()) d.fields["hcl.user_data"] = hcl->user_data;
  d.fields[hw->name + ".measurement"] = HexEncode(hw->data.measurement);
  d.fields[hw->name + ".report_data"] = HexEncode(hw->data.report_data);
  d.fields[hw->name + ".tcb_status"] = TcbStatusName(hw->data.tcb_status);
  for (const auto& [k, v] : hw->data.fields) d.fields[hw->name + "." + k] = v;
  if (in.trace != nullptr) d.steps = *in.trace;
  return VerifiedEvidence(VerifierPass::Issue(), std::move(d));
}

}  // namespace cllm::attestation::tpm
