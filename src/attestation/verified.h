// verified.h — the platform-neutral view of evidence that passed verification.
//
// The type system carries the rule "only a verifier constructs verified
// evidence, only appraisal constructs claims": a VerifiedEvidence can only be
// built with a VerifierPass, which only verifier code creates (it includes
// attestation/internal/verifier_pass.h; nothing else may). Appraisal
// (policy.h) takes a VerifiedEvidence and a Policy and yields Claims.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "attestation/claims.h"
#include "base/bytes.h"

namespace cllm::attestation {

class VerifierPass;  // see internal/verifier_pass.h

// One line of the verification checklist, for `cllm attest verify` output.
struct CheckStep {
  std::string name;    // "VCEK chain to pinned AMD Genoa ARK"
  std::string detail;  // "ARK → ASK → VCEK at 2025-06-01T00:00:00Z"; on failure the error detail
  bool ok = true;      // false only for the failing (last) step
};

class VerifiedEvidence {
 public:
  struct Data {
    Platform platform = Platform::kSim;
    bool simulated = true;
    Bytes measurement;     // launch measurement (SNP MEASUREMENT, TDX MRTD, CSV digest, ...)
    Bytes report_data;     // 64 bytes the guest bound into the evidence
    bool debug = false;    // the TEE permits host debugging of guest memory
    TcbStatus tcb_status = TcbStatus::kNotApplicable;
    std::vector<std::string> advisory_ids;
    // TCB components as numbers for floor checks: "snp.bootloader", "snp.tee",
    // "snp.snp", "snp.microcode", "tdx.tee_tcb_svn[0]", "csv.build", ...
    std::map<std::string, uint64_t> tcb;
    // Every other verified field, spec name → printable value.
    std::map<std::string, std::string> fields;
    std::vector<CheckStep> steps;  // the checks that passed, in order
  };

  VerifiedEvidence(const VerifierPass&, Data data) : data_(std::move(data)) {}
  const Data& data() const { return data_; }

 private:
  Data data_;
};

}  // namespace cllm::attestation
