#include "attestation/errors.h"

namespace cllm::attestation {

const char* AttestErrcName(AttestErrc code) {
  switch (code) {
    case AttestErrc::kMalformed: return "malformed";
    case AttestErrc::kUnsupportedVersion: return "unsupported_version";
    case AttestErrc::kReservedNonZero: return "reserved_nonzero";
    case AttestErrc::kBadSignature: return "bad_signature";
    case AttestErrc::kChainInvalid: return "chain_invalid";
    case AttestErrc::kCertExpired: return "cert_expired";
    case AttestErrc::kCertNotYetValid: return "cert_not_yet_valid";
    case AttestErrc::kRevoked: return "revoked";
    case AttestErrc::kWrongProduct: return "wrong_product";
    case AttestErrc::kTcbMismatch: return "tcb_mismatch";
    case AttestErrc::kHwIdMismatch: return "hwid_mismatch";
    case AttestErrc::kBindingMismatch: return "binding_mismatch";
    case AttestErrc::kCollateralMissing: return "collateral_missing";
    case AttestErrc::kCollateralExpired: return "collateral_expired";
    case AttestErrc::kCollateralInvalid: return "collateral_invalid";
    case AttestErrc::kTcbRevoked: return "tcb_revoked";
    case AttestErrc::kTcbUnknown: return "tcb_unknown";
    case AttestErrc::kPolicyViolation: return "policy_violation";
    case AttestErrc::kDebugEnabled: return "debug_enabled";
    case AttestErrc::kTcbTooLow: return "tcb_too_low";
    case AttestErrc::kReportDataMismatch: return "report_data_mismatch";
    case AttestErrc::kSimulatedNotAllowed: return "simulated_not_allowed";
    case AttestErrc::kPolicyInvalid: return "policy_invalid";
    case AttestErrc::kNotPinned: return "not_pinned";
    case AttestErrc::kUnavailable: return "unavailable";
    case AttestErrc::kIo: return "io";
    case AttestErrc::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace cllm::attestation
