// Fuzzes the RA-TLS attestation payload decoder (bytes from a peer certificate)
// and the unverified report_data read every platform's evidence gets before
// verification (attestation::PeekReportData).
#include <cstddef>
#include <cstdint>

#include "attestation/verify.h"
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
    using cllm::attestation::Platform;
    for (Platform platform : {Platform::kSim, Platform::kSnp, Platform::kTdx, Platform::kCsv, Platform::kTpm}) {
      auto peeked = cllm::attestation::PeekReportData(platform, p->evidence);
      CLLM_CHECK(!peeked.ok() || peeked->size() == 64);
    }
  }
  return 0;
}
