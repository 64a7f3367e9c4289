// trace.h — recording the verification checklist (verifier code only).
//
// Every verifier calls Step() after a check passes and returns FailStep(...)
// when one fails, so `cllm attest verify` can print the whole checklist with
// the failing check last, its detail saying expected vs found.
#pragma once

#include <string>

#include "attestation/errors.h"
#include "attestation/evidence_input.h"

namespace cllm::attestation {

inline void Step(const EvidenceInput& in, std::string name, std::string detail) {
  if (in.trace != nullptr) in.trace->push_back({std::move(name), std::move(detail), true});
}

// FailStep records the failing check (with the error's detail) and returns
// the error, e.g. `return FailStep(in, "VCEK signature", MakeError(...));`.
inline Error<AttestErrc> FailStep(const EvidenceInput& in, const std::string& name, Error<AttestErrc> e) {
  if (in.trace != nullptr) in.trace->push_back({name, e.detail, false});
  return e;
}

}  // namespace cllm::attestation
