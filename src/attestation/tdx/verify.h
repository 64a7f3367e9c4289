// verify.h — Intel TDX DCAP quote verification.
//
// VerifyTdxEvidence: parse (quote.h) → PCK chain to the pinned Intel SGX Root
// CA with the CRLs → QE report signature by the PCK key → QE report binds the
// attestation key → quote signature → TCB Info / QE Identity signatures and
// validity → TCB status (tcb.h). The checklist with spec references and error
// codes is in docs/attestation/tdx.md.
#pragma once

#include <vector>

#include "attestation/errors.h"
#include "attestation/evidence_input.h"
#include "attestation/tdx/pck.h"
#include "attestation/tdx/quote.h"
#include "attestation/verified.h"
#include "crypto/x509.h"

namespace cllm::attestation::tdx {

// SHA-256 of the DER of the Intel SGX Root CA (CN=Intel SGX Root CA, serial
// 22650cd6..., valid 2018-05-21..2049-12-31), published by Intel at
// https://certificates.trustedservices.intel.com/Intel_SGX_Provisioning_Certification_RootCA.der
inline constexpr char kIntelSgxRootCaSha256[] = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

// Intel's QE vendor ID (939A7233-F79C-4CA9-940A-0DB3957F0607).
inline constexpr uint8_t kIntelQeVendorId[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                                 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

// The result of the collateral-free checks on a quote.
struct QuoteCheck {
  crypto::Certificate pck;                  // the PCK leaf
  std::vector<crypto::Certificate> chain;   // as embedded: leaf, CA, root
  PckExtensions pck_ext;
};

// TrustedRoots returns `input.roots` if non-empty, else the certificates among
// `candidates` whose DER SHA-256 equals the pinned Intel SGX Root CA digest.
std::vector<crypto::Certificate> TrustedRoots(const EvidenceInput& input,
                                              const std::vector<crypto::Certificate>& candidates);

// VerifyQuoteSignatures runs every check that needs no collateral: Intel QE
// vendor, PCK chain (with `crls` when given), QE report signature, QE report
// data binding, quote signature, PCK SGX extensions. Errors: kWrongProduct,
// kChainInvalid, kCertExpired, kCertNotYetValid, kRevoked, kBadSignature,
// kBindingMismatch, kMalformed.
[[nodiscard]] AttestResult<QuoteCheck> VerifyQuoteSignatures(const Quote& quote, const EvidenceInput& input,
                                                             const std::vector<crypto::Crl>& crls);

// VerifyTdxEvidence verifies a TDX quote with its collateral at input.at.
// Collateral comes from input.collateral and input.cert_files (collateral.h);
// anything missing is kCollateralMissing. Success yields platform kTdx with
// the fields listed in docs/attestation/tdx.md; TCB status Revoked is
// kTcbRevoked, no matching TCB level kTcbUnknown.
[[nodiscard]] AttestResult<VerifiedEvidence> VerifyTdxEvidence(const EvidenceInput& input);

}  // namespace cllm::attestation::tdx
