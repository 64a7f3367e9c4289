// pck.h — the Intel SGX extensions of a PCK certificate.
//
// Intel "SGX PCK Certificate and CRL Profile", section 3.5: extension
// 1.2.840.113741.1.13.1 is a SEQUENCE of SEQUENCE { OID, value }:
//   .1 PPID OCTET STRING(16)
//   .2 TCB  SEQUENCE of SEQUENCE { .2.1 ... .2.16 INTEGER (SGX TCB comp SVNs),
//                                  .2.17 INTEGER PCESVN, .2.18 OCTET STRING(16) CPUSVN }
//   .3 PCE-ID OCTET STRING(2)      .4 FMSPC OCTET STRING(6)
//   .5 SGX Type ENUMERATED         (.6 PlatformInstanceID, .7 Configuration: ignored)
#pragma once

#include <array>
#include <cstdint>

#include "attestation/errors.h"
#include "base/bytes.h"
#include "crypto/x509.h"

namespace cllm::attestation::tdx {

inline constexpr char kSgxExtensionsOid[] = "1.2.840.113741.1.13.1";

struct PckExtensions {
  std::array<uint8_t, 16> cpu_svn{};
  std::array<uint8_t, 16> sgx_tcb_comp_svn{};  // components 1..16 at [0..15]
  uint16_t pce_svn = 0;
  std::array<uint8_t, 2> pce_id{};
  std::array<uint8_t, 6> fmspc{};
};

// ParsePckExtensions decodes the DER of the SGX extensions value (the
// extnValue contents). kMalformed on any encoding error or missing entry.
[[nodiscard]] AttestResult<PckExtensions> ParsePckExtensions(ByteSpan der);

// PckExtensionsOf finds the extension in `pck` and parses it; kMalformed when absent.
[[nodiscard]] AttestResult<PckExtensions> PckExtensionsOf(const crypto::Certificate& pck);

}  // namespace cllm::attestation::tdx
