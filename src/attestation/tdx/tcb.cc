// tcb.cc — TCB level matching and status convergence (see tcb.h).
#include "attestation/tdx/tcb.h"

#include <algorithm>
#include <cstdio>

#include "base/encoding.h"

namespace cllm::attestation::tdx {
namespace {

Error<AttestErrc> Invalid(const std::string& what) { return MakeError(AttestErrc::kCollateralInvalid, what); }

void AddAdvisories(std::vector<std::string>& out, const std::vector<std::string>& more) {
  for (const auto& a : more) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
}

AttestResult<TcbStatus> Status(const std::string& s, const char* where) {
  auto st = ParseTcbStatus(s);
  if (!st) return Invalid(std::string(where) + " tcbStatus \"" + s + "\" is not a known status");
  return *st;
}

// Intel QVL convergence of the platform status with an OutOfDate / Revoked
// QE or TDX module status.
TcbStatus Converge(TcbStatus platform, TcbStatus other) {
  if (other == TcbStatus::kRevoked) return TcbStatus::kRevoked;
  if (other != TcbStatus::kOutOfDate) return platform;
  switch (platform) {
    case TcbStatus::kUpToDate:
    case TcbStatus::kSwHardeningNeeded: return TcbStatus::kOutOfDate;
    case TcbStatus::kConfigurationNeeded:
    case TcbStatus::kConfigurationAndSwHardeningNeeded: return TcbStatus::kOutOfDateConfigurationNeeded;
    default: return platform;
  }
}

// Masked comparison: (found & mask) == (expected & mask), bytewise.
bool MaskedEqual(ByteSpan found, ByteSpan expected, ByteSpan mask) {
  if (found.size() != expected.size() || found.size() != mask.size()) return false;
  for (size_t i = 0; i < found.size(); ++i) {
    if ((found[i] & mask[i]) != (expected[i] & mask[i])) return false;
  }
  return true;
}

const IsvTcbLevel* IsvLevelFor(const std::vector<IsvTcbLevel>& levels, uint16_t isvsvn) {
  for (const auto& l : levels) {
    if (l.isvsvn <= isvsvn) return &l;
  }
  return nullptr;
}

AttestStatus CheckModule(const TdxModuleIdentity& m, const TdReportBody& body, const std::string& name) {
  if (!std::equal(m.mrsigner.begin(), m.mrsigner.end(), body.mr_signer_seam.begin(), body.mr_signer_seam.end())) {
    return Invalid(name + " mrsigner " + HexEncode(m.mrsigner) + " but MRSIGNERSEAM is " +
                   HexEncode(body.mr_signer_seam));
  }
  if (!MaskedEqual(body.seam_attributes, m.attributes, m.attributes_mask)) {
    return Invalid(name + " attributes do not match SEAMATTRIBUTES " + HexEncode(body.seam_attributes));
  }
  return OkStatus();
}

}  // namespace

std::optional<TcbStatus> ParseTcbStatus(std::string_view s) {
  if (s == "UpToDate") return TcbStatus::kUpToDate;
  if (s == "SWHardeningNeeded") return TcbStatus::kSwHardeningNeeded;
  if (s == "ConfigurationNeeded") return TcbStatus::kConfigurationNeeded;
  if (s == "ConfigurationAndSWHardeningNeeded") return TcbStatus::kConfigurationAndSwHardeningNeeded;
  if (s == "OutOfDate") return TcbStatus::kOutOfDate;
  if (s == "OutOfDateConfigurationNeeded") return TcbStatus::kOutOfDateConfigurationNeeded;
  if (s == "Revoked") return TcbStatus::kRevoked;
  return std::nullopt;
}

AttestResult<TcbEvaluation> EvaluateTcb(const Quote& quote, const PckExtensions& pck, const TcbInfo& info,
                                        const QeIdentity& qe) {
  TcbEvaluation ev;
  const TdReportBody& body = quote.body;

  // --- collateral applies to this platform --------------------------------------
  if (info.id != "TDX") return Invalid("tcbInfo id \"" + info.id + "\", expected \"TDX\"");
  if (qe.id != "TD_QE") return Invalid("enclaveIdentity id \"" + qe.id + "\", expected \"TD_QE\"");
  // The TCB info is per FMSPC and PCE: another platform's levels say nothing here.
  if (info.fmspc != pck.fmspc) {
    return Invalid("tcbInfo fmspc " + HexEncode(info.fmspc) + " but the PCK certificate's FMSPC is " +
                   HexEncode(pck.fmspc));
  }
  if (info.pce_id != pck.pce_id) {
    return Invalid("tcbInfo pceId " + HexEncode(info.pce_id) + " but the PCK certificate's PCE-ID is " +
                   HexEncode(pck.pce_id));
  }

  // --- QE identity (QVL: verifyEnclaveReport) ------------------------------------
  const SgxReportBody& qr = quote.qe_report;
  if (qr.mr_signer != qe.mrsigner) {
    return Invalid("QE MRSIGNER " + HexEncode(qr.mr_signer) + " is not the TD QE's " + HexEncode(qe.mrsigner));
  }
  if (qr.isv_prod_id != qe.isvprodid) {
    return Invalid("QE ISVPRODID " + std::to_string(qr.isv_prod_id) + ", identity says " +
                   std::to_string(qe.isvprodid));
  }
  if ((qr.misc_select & qe.miscselect_mask) != (qe.miscselect & qe.miscselect_mask)) {
    return Invalid("QE MISCSELECT does not match the identity under its mask");
  }
  if (!MaskedEqual(qr.attributes, qe.attributes, qe.attributes_mask)) {
    return Invalid("QE ATTRIBUTES " + HexEncode(qr.attributes) + " do not match the identity under its mask");
  }
  const IsvTcbLevel* qe_level = IsvLevelFor(qe.tcb_levels, qr.isv_svn);
  if (qe_level == nullptr) {
    return MakeError(AttestErrc::kTcbUnknown, "no QE identity TCB level for QE ISVSVN " + std::to_string(qr.isv_svn));
  }
  CLLM_ASSIGN_OR_RETURN(TcbStatus qe_status, Status(qe_level->tcb_status, "QE identity"));
  ev.qe_status = qe_level->tcb_status;
  ev.qe_tcb_date = qe_level->tcb_date;

  // --- platform TCB level ----------------------------------------------------------
  // QVL: with a TDX module major version (TEE_TCB_SVN[1]) above 0, bytes 0-1
  // are the module's SVN and version, evaluated by the module identity instead.
  const bool module_versioned = body.tee_tcb_svn[1] > 0;
  const size_t tdx_first = module_versioned ? 2 : 0;
  const TcbLevel* level = nullptr;
  for (const auto& l : info.tcb_levels) {
    bool ok = pck.pce_svn >= l.pce_svn;
    for (size_t i = 0; ok && i < 16; ++i) ok = pck.sgx_tcb_comp_svn[i] >= l.sgx_components[i];
    for (size_t i = tdx_first; ok && i < 16; ++i) ok = body.tee_tcb_svn[i] >= l.tdx_components[i];
    if (ok) {
      level = &l;
      break;
    }
  }
  if (level == nullptr) {
    return MakeError(AttestErrc::kTcbUnknown,
                     "no matching TCB level: PCK SGX components " + HexEncode(pck.sgx_tcb_comp_svn) + " PCESVN " +
                         std::to_string(pck.pce_svn) + ", TEE_TCB_SVN " + HexEncode(body.tee_tcb_svn) +
                         " are below every level of tcbInfo for FMSPC " + HexEncode(info.fmspc));
  }
  CLLM_ASSIGN_OR_RETURN(TcbStatus status, Status(level->tcb_status, "tcbInfo level"));
  ev.platform_status = level->tcb_status;
  ev.tcb_date = level->tcb_date;
  AddAdvisories(ev.advisory_ids, level->advisory_ids);

  // --- TDX module ------------------------------------------------------------------
  // QVL TdxModuleCheck: a module of major version 0 is described by
  // tdxModule; any later version must have its own identity TDX_%02X, which
  // then gives the expected MRSIGNER_SEAM / SEAM_ATTRIBUTES and a TCB status.
  if (!module_versioned && info.tdx_module) {
    CLLM_RETURN_IF_ERROR(CheckModule(*info.tdx_module, body, "tdxModule"));
  }
  if (module_versioned) {
    char id[8];
    std::snprintf(id, sizeof(id), "TDX_%02X", body.tee_tcb_svn[1]);
    ev.module_id = id;
    auto it = std::find_if(info.tdx_module_identities.begin(), info.tdx_module_identities.end(),
                           [&](const TdxModuleIdentity& m) { return m.id == ev.module_id; });
    if (it == info.tdx_module_identities.end()) {
      return MakeError(AttestErrc::kTcbUnknown, "tcbInfo has no TDX module identity " + ev.module_id +
                                                    " for TEE_TCB_SVN[1] = " + std::to_string(body.tee_tcb_svn[1]));
    }
    CLLM_RETURN_IF_ERROR(CheckModule(*it, body, ev.module_id));
    const IsvTcbLevel* m_level = IsvLevelFor(it->tcb_levels, body.tee_tcb_svn[0]);
    if (m_level == nullptr) {
      return MakeError(AttestErrc::kTcbUnknown, "no " + ev.module_id + " TCB level for TDX module SVN " +
                                                    std::to_string(body.tee_tcb_svn[0]));
    }
    CLLM_ASSIGN_OR_RETURN(TcbStatus m_status, Status(m_level->tcb_status, ev.module_id.c_str()));
    ev.module_status = m_level->tcb_status;
    AddAdvisories(ev.advisory_ids, m_level->advisory_ids);
    status = Converge(status, m_status);
  }

  AddAdvisories(ev.advisory_ids, qe_level->advisory_ids);
  ev.status = Converge(status, qe_status);
  return ev;
}

}  // namespace cllm::attestation::tdx
