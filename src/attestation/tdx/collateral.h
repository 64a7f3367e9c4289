// collateral.h — Intel PCS collateral for DCAP quote verification: TCB Info,
// QE Identity, CRLs and their issuer chains.
//
// Accepted inputs (docs/attestation/tdx.md):
//  * one JSON file in the dcap-qvl "QuoteCollateralV3" shape: tcb_info (the
//    signed JSON text, a string), tcb_info_signature (hex r‖s),
//    tcb_info_issuer_chain (PEM), qe_identity, qe_identity_signature,
//    qe_identity_issuer_chain, pck_crl and root_ca_crl (hex DER, or PEM),
//    pck_crl_issuer_chain (PEM);
//  * separate pieces, as --collateral and/or --certs files: Intel PCS response
//    bodies {"tcbInfo": {...}, "signature": "..."} and
//    {"enclaveIdentity": {...}, "signature": "..."}, CRLs (DER or PEM) and PEM
//    certificate bundles (the TCB signing chain).
// Signatures are over the exact bytes of the tcbInfo / enclaveIdentity value
// as it appears in the file; it is never re-serialised.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "attestation/errors.h"
#include "base/bytes.h"
#include "crypto/x509.h"

namespace cllm::attestation::tdx {

// A signed JSON object: its exact text and the ECDSA P-256 signature (r‖s).
struct SignedJson {
  std::string body;
  Bytes signature;
};

struct RawCollateral {
  std::optional<SignedJson> tcb_info;
  std::optional<SignedJson> qe_identity;
  std::vector<crypto::Crl> crls;            // root CA CRL and PCK CRL, any order
  std::vector<crypto::Certificate> certs;   // issuer chains (TCB signing, PCK CA, root)
};

// LoadCollateral classifies the collateral file and every cert file.
// kCollateralInvalid on a malformed piece; missing pieces are left empty
// (the verifier reports kCollateralMissing for what it needs).
[[nodiscard]] AttestResult<RawCollateral> LoadCollateral(const std::optional<Bytes>& collateral,
                                                         const std::vector<Bytes>& cert_files);

// ExtractRawMember returns the exact text of the value of top-level member
// `key` of the JSON object `doc`, or nullopt.
std::optional<std::string> ExtractRawMember(std::string_view doc, std::string_view key);

// ParseUtcTime parses "YYYY-MM-DDTHH:MM:SSZ" (optionally with fractional
// seconds), the time format of Intel PCS collateral.
std::optional<crypto::TimePoint> ParseUtcTime(std::string_view text);

// --- parsed TCB Info (Intel PCS API v4, TCB Info v3) and QE Identity v2 -------

struct IsvTcbLevel {
  uint16_t isvsvn = 0;
  std::string tcb_date;
  std::string tcb_status;
  std::vector<std::string> advisory_ids;
};

struct TcbLevel {
  std::array<uint8_t, 16> sgx_components{};
  uint16_t pce_svn = 0;
  std::array<uint8_t, 16> tdx_components{};
  std::string tcb_date;
  std::string tcb_status;
  std::vector<std::string> advisory_ids;
};

struct TdxModuleIdentity {
  std::string id;  // "TDX_01"
  Bytes mrsigner;  // 48 bytes
  Bytes attributes, attributes_mask;  // 8 bytes each
  std::vector<IsvTcbLevel> tcb_levels;
};

struct TcbInfo {
  std::string id;  // "TDX" (or "SGX")
  int version = 0;
  crypto::TimePoint issue_date, next_update;
  std::array<uint8_t, 6> fmspc{};
  std::array<uint8_t, 2> pce_id{};
  uint32_t tcb_evaluation_data_number = 0;
  std::optional<TdxModuleIdentity> tdx_module;  // id empty
  std::vector<TdxModuleIdentity> tdx_module_identities;
  std::vector<TcbLevel> tcb_levels;
};

struct QeIdentity {
  std::string id;  // "TD_QE" (or "QE")
  int version = 0;
  crypto::TimePoint issue_date, next_update;
  uint32_t tcb_evaluation_data_number = 0;
  uint32_t miscselect = 0, miscselect_mask = 0;
  std::array<uint8_t, 16> attributes{}, attributes_mask{};
  std::array<uint8_t, 32> mrsigner{};
  uint16_t isvprodid = 0;
  std::vector<IsvTcbLevel> tcb_levels;
};

// ParseTcbInfo / ParseQeIdentity decode the signed body; kCollateralInvalid
// on any missing or ill-typed field.
[[nodiscard]] AttestResult<TcbInfo> ParseTcbInfo(std::string_view body);
[[nodiscard]] AttestResult<QeIdentity> ParseQeIdentity(std::string_view body);

}  // namespace cllm::attestation::tdx
