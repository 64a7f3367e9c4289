// Fuzzes the simulated-TEE report parser and verifier (bytes from a peer).
#include <cstddef>
#include <cstdint>

#include "attestation/sim/sim_report.h"
#include "base/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cllm::ByteSpan in(data, size);
  auto rep = cllm::attestation::sim::ParseSimReport(in);
  if (rep.ok()) {
    // A report that parses re-serializes to exactly the same bytes.
    CLLM_CHECK(cllm::attestation::sim::SerializeSimReport(*rep) == cllm::Bytes(in.begin(), in.end()));
  }
  cllm::attestation::EvidenceInput input;
  input.evidence = in;
  (void)cllm::attestation::sim::VerifySimEvidence(input);  // no pinned key: must fail cleanly
  return 0;
}
