// token_pass.h — the capability to turn a token's claim set into appraisal
// input (appraisal_input.h).
//
// Include this only from the trust layer's token decoding
// (src/trust/token_claims.cc), after the token's signature, issuer and
// lifetime verified against cllm-trust's JWKS. Never from transport, CLI or
// appraisal code: an unverified claim set must never reach Appraise.
#pragma once

#include "attestation/appraisal_input.h"

namespace cllm::attestation {

class TokenPass {
 public:
  static TokenPass Issue() { return TokenPass(); }

 private:
  TokenPass() = default;
};

}  // namespace cllm::attestation
