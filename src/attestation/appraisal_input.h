// appraisal_input.h — the normalised claims appraisal reads, from one of two
// sources.
//
// There is one appraisal (Appraise, policy.h) and two ways to obtain the
// verified claims it appraises:
//   - evidence a platform verifier checked against the vendor's roots
//     (VerifiedEvidence, built only with a VerifierPass);
//   - the claim set of a cllm-trust token whose ES256 signature the trust
//     layer verified against the service's JWKS (built only with a
//     TokenPass, internal/token_pass.h, which only src/trust includes).
// Both become the same VerifiedEvidence::Data, so a policy means the same
// thing whichever way a relying party learned about the TEE: debug, TCB
// status, TCB floors, measurements and required fields are checked by the
// same code (docs/attestation.md#one-appraisal-two-sources).
#pragma once

#include "attestation/claims.h"
#include "attestation/verified.h"

namespace cllm::attestation {

class TokenPass;  // see internal/token_pass.h

class AppraisalInput {
 public:
  // FromEvidence wraps evidence a platform verifier produced.
  static AppraisalInput FromEvidence(const VerifiedEvidence& evidence) {
    return AppraisalInput(ClaimsSource::kEvidence, evidence.data());
  }
  // The token source: only the trust layer holds a TokenPass, and only after
  // the token's signature, issuer and lifetime verified.
  AppraisalInput(const TokenPass&, VerifiedEvidence::Data data)
      : AppraisalInput(ClaimsSource::kTrustToken, std::move(data)) {}

  const VerifiedEvidence::Data& data() const { return data_; }
  ClaimsSource source() const { return source_; }

 private:
  AppraisalInput(ClaimsSource source, VerifiedEvidence::Data data) : source_(source), data_(std::move(data)) {}

  ClaimsSource source_;
  VerifiedEvidence::Data data_;
};

}  // namespace cllm::attestation
