// verify.h — verify SEV-SNP evidence: report signature, VCEK/VLEK chain to a
// pinned AMD ARK, and the endorsement key's TCB and chip id against the
// report (docs/attestation/snp.md lists every check and its error code).
//
// Evidence (EvidenceInput::evidence) is one of:
//   - a 1184-byte ATTESTATION_REPORT;
//   - a report immediately followed by the extended-report certificate table
//     (what SNP_GET_EXT_REPORT / configfs-tsm return, concatenated);
//   - a JSON bundle {"attestation_report": {...}, "cert_chain": [...]} as
//     written by the `sev` Rust crate (Trustee / CoCo), see json_bundle.h.
// Certificates also come from EvidenceInput::cert_files (PEM bundles, DER
// certificates, certificate tables), e.g. the KDS VCEK and cert_chain.
#pragma once

#include "attestation/errors.h"
#include "attestation/evidence_input.h"
#include "attestation/snp/chain.h"
#include "attestation/snp/report.h"
#include "attestation/verified.h"

namespace cllm::attestation::snp {

// LooksLikeSnpEvidence sniffs a report (LooksLikeReport) or a JSON bundle.
bool LooksLikeSnpEvidence(ByteSpan evidence);

// VerifySnpEvidence runs the whole checklist at input.at and returns evidence
// with platform kSnp on success. Error codes: kMalformed,
// kUnsupportedVersion, kReservedNonZero (parsing); kCollateralMissing /
// kCollateralInvalid (certificates absent or unusable); kWrongProduct;
// kChainInvalid, kCertExpired, kCertNotYetValid, kBadSignature (chain);
// kRevoked, kCollateralExpired (supplied CRLs);
// kTcbMismatch, kHwIdMismatch; kBadSignature (report).
[[nodiscard]] AttestResult<VerifiedEvidence> VerifySnpEvidence(const EvidenceInput& input);

}  // namespace cllm::attestation::snp
