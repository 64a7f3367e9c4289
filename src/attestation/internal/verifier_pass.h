// verifier_pass.h — the capability to construct VerifiedEvidence.
//
// Include this only from verifier implementations (snp/verify.cc,
// tdx/verify.cc, ...), after every signature, chain and collateral check has
// passed. Never from appraisal, CLI or transport code.
#pragma once

#include "attestation/verified.h"

namespace cllm::attestation {

class VerifierPass {
 public:
  static VerifierPass Issue() { return VerifierPass(); }

 private:
  VerifierPass() = default;
};

}  // namespace cllm::attestation
