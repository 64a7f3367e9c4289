// Fuzzes the RA-TLS attestation payload decoder (bytes from a peer certificate).
#include <cstddef>
#include <cstdint>

#include "base/check.h"
#include "channel/payload.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto p = cllm::channel::DecodePayload(cllm::ByteSpan(data, size));
  if (p.ok()) {
    // Anything that decodes must re-encode to the same bytes (canonical form),
    // apart from field order, which the encoder fixes.
    auto again = cllm::channel::DecodePayload(cllm::channel::EncodePayload(*p));
    CLLM_CHECK(again.ok());
    (void)cllm::channel::ComputeReportData(cllm::ByteSpan(data, size), *p);
  }
  return 0;
}
