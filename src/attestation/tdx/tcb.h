// tcb.h — TCB status of a TDX platform from verified collateral.
//
// Follows Intel's Quote Verification Library (QVL) rules for TDX:
//  1. QE identity: MRSIGNER, ISVPRODID, masked MISCSELECT and ATTRIBUTES must
//     match; the QE TCB level is the first level with isvsvn <= QE ISVSVN.
//  2. Platform TCB level: the first tcbLevel (PCS lists them newest first)
//     whose 16 SGX components and PCESVN are <= the PCK certificate's values
//     and whose 16 TDX components are <= TEE_TCB_SVN (bytes 0-1 skipped when
//     TEE_TCB_SVN[1] > 0: the module identity evaluates them).
//  3. TDX module: with TEE_TCB_SVN[1] == 0, MRSIGNER_SEAM / SEAM_ATTRIBUTES
//     against tdxModule; otherwise identity "TDX_%02X" % TEE_TCB_SVN[1] must
//     exist in tdxModuleIdentities, supplies the expected values, and its
//     level is the first with isvsvn <= TEE_TCB_SVN[0].
//  4. Convergence: an OutOfDate module or QE turns UpToDate/SWHardeningNeeded
//     into OutOfDate and Configuration* into OutOfDateConfigurationNeeded;
//     Revoked anywhere is Revoked. Advisory IDs are the union.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attestation/claims.h"
#include "attestation/errors.h"
#include "attestation/tdx/collateral.h"
#include "attestation/tdx/pck.h"
#include "attestation/tdx/quote.h"

namespace cllm::attestation::tdx {

struct TcbEvaluation {
  TcbStatus status = TcbStatus::kOutOfDate;  // converged
  std::vector<std::string> advisory_ids;
  std::string tcb_date;         // of the matching platform level
  std::string platform_status;  // the level's tcbStatus as written
  std::string module_id;        // "TDX_01", or "" when no module identity applied
  std::string module_status;
  std::string qe_status;
  std::string qe_tcb_date;
};

// ParseTcbStatus maps Intel's tcbStatus strings; nullopt when unknown.
std::optional<TcbStatus> ParseTcbStatus(std::string_view s);

// EvaluateTcb applies the rules above. Errors: kCollateralInvalid (TCB info /
// QE identity for another FMSPC, PCE, product or QE; unknown status string),
// kTcbUnknown (no level matches). A Revoked result is returned as a status;
// the verifier turns it into kTcbRevoked.
[[nodiscard]] AttestResult<TcbEvaluation> EvaluateTcb(const Quote& quote, const PckExtensions& pck,
                                                      const TcbInfo& tcb_info, const QeIdentity& qe_identity);

}  // namespace cllm::attestation::tdx
