// verify.h — one entry point over the platform verifiers.
//
// SniffPlatform guesses the evidence format from its bytes (for
// `--platform auto` and for transports that carry unlabelled evidence);
// VerifyEvidence runs the named platform's verifier. Neither appraises:
// callers pass the result to Appraise (policy.h).
#pragma once

#include <optional>

#include "attestation/claims.h"
#include "attestation/errors.h"
#include "attestation/evidence_input.h"
#include "attestation/verified.h"

namespace cllm::attestation {

// SniffPlatform returns the platform whose format `evidence` looks like, or
// nullopt. It only inspects headers; verification still decides.
std::optional<Platform> SniffPlatform(ByteSpan evidence);

// VerifyEvidence dispatches to VerifySnpEvidence, VerifyTdxEvidence,
// VerifyCsvEvidence, VerifyTpmEvidence or sim::VerifySimEvidence;
// kUnavailable when this build has no verifier for `platform`.
[[nodiscard]] AttestResult<VerifiedEvidence> VerifyEvidence(Platform platform, const EvidenceInput& input);

// PeekReportData returns the 64 bytes VerifyEvidence would report as
// report_data for `evidence`, read from its structure alone: no signature,
// chain or collateral is checked, so a match proves nothing. Its one use is
// refusing early: evidence whose report_data cannot bind the caller's key is
// refused before the costly verification (a peer replaying another
// machine's genuine evidence costs no chain or signature check). An error
// (the parser's code) when the structure does not parse: callers then let
// VerifyEvidence say why. Sim, SNP (report or JSON bundle), TDX, CSV (report
// or JSON bundle) and TPM (extraData zero-padded to 64, as verified).
[[nodiscard]] AttestResult<Bytes> PeekReportData(Platform platform, ByteSpan evidence);

}  // namespace cllm::attestation
