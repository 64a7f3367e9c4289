// Fuzzes DCAP collateral handling: the collateral file classifier (dcap-qvl
// JSON, PCS responses, PEM, DER CRLs), raw JSON member extraction, the TCB
// Info / QE Identity decoders and the PCK SGX extension DER walker.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "attestation/tdx/collateral.h"
#include "attestation/tdx/pck.h"

using namespace cllm;
using namespace cllm::attestation::tdx;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan in(data, size);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto raw = LoadCollateral(Bytes(in.begin(), in.end()), {}); raw.ok()) {
    if (raw->tcb_info) (void)ParseTcbInfo(raw->tcb_info->body);
    if (raw->qe_identity) (void)ParseQeIdentity(raw->qe_identity->body);
  }
  if (auto member = ExtractRawMember(text, "tcbInfo")) {
    // The extracted value is a substring of the input.
    if (member->size() > size) __builtin_trap();
  }
  (void)ParseTcbInfo(text);
  (void)ParseQeIdentity(text);
  (void)ParseUtcTime(text);
  (void)ParsePckExtensions(in);
  return 0;
}
