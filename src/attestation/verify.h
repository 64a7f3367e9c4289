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

}  // namespace cllm::attestation
