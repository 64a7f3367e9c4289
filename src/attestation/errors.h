// errors.h — the error codes of the attestation library.
//
// Every failure names one check. The detail string says which field or
// certificate, what was expected and what was found, e.g.
//   kTcbMismatch: "VCEK blSPL extension is 3 but REPORTED_TCB.boot_loader is 4"
// Codes are stable: tests assert them and docs/attestation.md lists them.
#pragma once

#include "base/result.h"

namespace cllm::attestation {

enum class AttestErrc {
  // --- parsing -------------------------------------------------------------
  kMalformed = 1,        // truncated, wrong sizes, bad encoding
  kUnsupportedVersion,   // a report / quote / body version we do not accept
  kReservedNonZero,      // a reserved or must-be-zero field is not zero
  // --- verification (signatures, chains, collateral) -----------------------
  kBadSignature,         // the report / quote / QE report / collateral signature is wrong
  kChainInvalid,         // a certificate chain does not reach the pinned root
  kCertExpired,          // a certificate is expired at the verification time
  kCertNotYetValid,      // a certificate is not valid yet at the verification time
  kRevoked,              // a certificate is on a CRL
  kWrongProduct,         // chain of another product line (e.g. Milan chain for a Genoa report)
  kTcbMismatch,          // endorsement key's TCB does not equal the reported TCB
  kHwIdMismatch,         // endorsement key's hardware id does not equal the report's chip id
  kBindingMismatch,      // a value that must bind two parts does not (QE report data, AK, PCR digest)
  kCollateralMissing,    // needed collateral (certs, TCB info, CRL) was not supplied
  kCollateralExpired,    // collateral is outside its validity window at the verification time
  kCollateralInvalid,    // collateral is malformed or does not apply to this evidence
  kTcbRevoked,           // the platform TCB level is revoked
  kTcbUnknown,           // no TCB level in the collateral matches the platform
  // --- appraisal (policy on verified fields) -------------------------------
  kPolicyViolation,      // a field does not satisfy the policy (detail: field, expected, found)
  kDebugEnabled,         // the TEE allows debugging (host can read guest memory)
  kTcbTooLow,            // the TCB is below the policy floor or status not allowed
  kReportDataMismatch,   // report_data is not what the verifier expected (binding/freshness)
  kSimulatedNotAllowed,  // simulated evidence presented to a policy that does not allow `sim`
  kPolicyInvalid,        // the policy file itself is malformed
  kNotPinned,            // a client policy leaves a launch measurement / model digest open (pinning.h)
  // --- local environment ---------------------------------------------------
  kUnavailable,          // no TEE device / interface on this machine
  kIo,
  kInternal,
};

// AttestErrcName returns a stable snake_case identifier ("bad_signature").
const char* AttestErrcName(AttestErrc code);

template <typename T>
using AttestResult = Result<T, AttestErrc>;
using AttestStatus = Status<AttestErrc>;

}  // namespace cllm::attestation
