// vek.h — the AMD extensions of a VCEK or VLEK certificate.
//
// AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
// Specification" (57230), table "VCEK Certificate Extensions" (the VLEK
// certificate uses the same OIDs, without hwID):
//
//   1.3.6.1.4.1.3704.1.1    structVersion  INTEGER
//   1.3.6.1.4.1.3704.1.2    productName    IA5String ("Milan-B0", "Genoa", "Turin")
//   1.3.6.1.4.1.3704.1.3.1  blSPL          INTEGER   (TCB boot loader SVN)
//   1.3.6.1.4.1.3704.1.3.2  teeSPL         INTEGER
//   1.3.6.1.4.1.3704.1.3.3  snpSPL         INTEGER
//   1.3.6.1.4.1.3704.1.3.8  ucodeSPL       INTEGER
//   1.3.6.1.4.1.3704.1.3.9  fmcSPL         INTEGER   (Turin)
//   1.3.6.1.4.1.3704.1.4    hwID           the chip id: 64 bytes (8 on Turin),
//                                          raw or wrapped in an OCTET STRING
//   1.3.6.1.4.1.3704.1.5    cspId          IA5String (VLEK: the cloud provider)
#pragma once

#include <optional>
#include <string>

#include "attestation/errors.h"
#include "attestation/snp/report.h"
#include "base/bytes.h"
#include "crypto/x509.h"

namespace cllm::attestation::snp {

inline constexpr char kOidProductName[] = "1.3.6.1.4.1.3704.1.2";
inline constexpr char kOidBlSpl[] = "1.3.6.1.4.1.3704.1.3.1";
inline constexpr char kOidTeeSpl[] = "1.3.6.1.4.1.3704.1.3.2";
inline constexpr char kOidSnpSpl[] = "1.3.6.1.4.1.3704.1.3.3";
inline constexpr char kOidUcodeSpl[] = "1.3.6.1.4.1.3704.1.3.8";
inline constexpr char kOidFmcSpl[] = "1.3.6.1.4.1.3704.1.3.9";
inline constexpr char kOidHwId[] = "1.3.6.1.4.1.3704.1.4";
inline constexpr char kOidCspId[] = "1.3.6.1.4.1.3704.1.5";

struct VekExtensions {
  std::optional<std::string> product_name;  // as in the certificate ("Milan-B0")
  std::optional<uint8_t> bl_spl, tee_spl, snp_spl, ucode_spl, fmc_spl;
  std::optional<Bytes> hw_id;               // raw chip id bytes (encoding removed)
  std::optional<std::string> csp_id;        // VLEK only
};

// ParseVekExtensions reads the extensions above; absent ones stay nullopt.
// kCollateralInvalid when one is present but malformed (an SPL that is not a
// DER INTEGER in 0..255, a productName that is not an IA5String, a hwID that
// is neither 8/64 raw bytes nor an OCTET STRING of them).
[[nodiscard]] AttestResult<VekExtensions> ParseVekExtensions(const crypto::Certificate& cert);

// DecodeSplInteger parses the DER INTEGER of an SPL extension (0..255,
// minimal encoding); exposed for tests.
std::optional<uint8_t> DecodeSplInteger(ByteSpan der);
// DecodeHwId strips the optional OCTET STRING wrapper of a hwID extension.
std::optional<Bytes> DecodeHwId(ByteSpan value);

}  // namespace cllm::attestation::snp
