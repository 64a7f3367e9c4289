// json_bundle.h — SNP evidence as the JSON the `sev` Rust crate serialises
// (Trustee / Confidential Containers "snp" evidence):
//
//   {"attestation_report": {"version": 3, "guest_svn": 0, "policy": 196608,
//      "family_id": [16 bytes], ..., "current_tcb": {"fmc": null,
//      "bootloader": 10, "tee": 0, "snp": 23, "microcode": 25}, ...,
//      "signature": {"r": [72 bytes], "s": [72 bytes]}},
//    "cert_chain": [{"cert_type": "VCEK", "data": [DER bytes]}, ...]}
//
// The report is rebuilt into its 1184-byte form (reserved bytes zero) and
// then verified like any other: the signature covers every field, so a JSON
// value that does not match what the firmware signed fails kBadSignature.
#pragma once

#include <vector>

#include "attestation/errors.h"
#include "attestation/snp/certs.h"
#include "base/bytes.h"

namespace cllm::attestation::snp {

struct JsonBundle {
  Bytes report;                   // 1184 bytes
  std::vector<PooledCert> certs;  // cert_chain entries (VCEK, VLEK, ASK, ARK)
};

// LooksLikeJsonBundle: a JSON object (first non-space byte '{') that
// mentions "attestation_report".
bool LooksLikeJsonBundle(ByteSpan evidence);

// ParseJsonBundle: kMalformed on invalid JSON, a missing or out-of-range
// field, a byte array of the wrong length or a cert_chain entry that is not
// a DER certificate.
[[nodiscard]] AttestResult<JsonBundle> ParseJsonBundle(ByteSpan evidence);

}  // namespace cllm::attestation::snp
