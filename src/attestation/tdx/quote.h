// quote.h — the Intel TDX DCAP quote (versions 4 and 5), parsed.
//
// Layout per Intel "TDX DCAP Quoting Library API", Appendix A (all integers
// little-endian):
//
//   v4: header (48) | TD 1.0 body (584)                 | sig_data_len u32 | sig data
//   v5: header (48) | body_type u16 | body_size u32 | body | sig_data_len u32 | sig data
//       body_type 2 = TD 1.0 (584 bytes), 3 = TD 1.5 (648 bytes)
//
//   header: 0x00 version u16, 0x02 att_key_type u16 (2 = ECDSA-256-with-P-256),
//           0x04 tee_type u32 (0x81 TDX), 0x08 qe_svn u16, 0x0A pce_svn u16,
//           0x0C qe_vendor_id [16], 0x1C user_data [20]
//   sig data (ECDSA): quote_signature [64] r‖s over header ‖ (type ‖ size ‖) body,
//           attestation_key [64] x‖y, certification data (type u16, size u32, data)
//   certification data type 6 (QE report certification data):
//           qe_report [384] (SGX REPORT body), qe_report_signature [64] by the PCK key,
//           qe_auth_data_size u16, qe_auth_data, certification data type 5 (PCK chain PEM)
//
// Bytes after sig data are ignored (quotes often arrive in zero-padded buffers):
// the parser stops at sig_data_len, never at the file size.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "attestation/errors.h"
#include "base/bytes.h"

namespace cllm::attestation::tdx {

inline constexpr size_t kHeaderSize = 48;
inline constexpr size_t kTd10BodySize = 584;
inline constexpr size_t kTd15BodySize = 648;
inline constexpr size_t kSgxReportBodySize = 384;
inline constexpr uint16_t kAttKeyTypeEcdsaP256 = 2;
inline constexpr uint32_t kTeeTypeTdx = 0x81;
inline constexpr uint32_t kTeeTypeSgx = 0x00;
inline constexpr uint16_t kBodyTypeTd10 = 2;
inline constexpr uint16_t kBodyTypeTd15 = 3;
inline constexpr uint16_t kCertDataPckChain = 5;
inline constexpr uint16_t kCertDataQeReport = 6;

using Hash48 = std::array<uint8_t, 48>;

struct QuoteHeader {
  uint16_t version = 0;
  uint16_t att_key_type = 0;
  uint32_t tee_type = 0;
  uint16_t qe_svn = 0;
  uint16_t pce_svn = 0;
  std::array<uint8_t, 16> qe_vendor_id{};
  std::array<uint8_t, 20> user_data{};
};

// TD REPORT body (TDX Module ABI, TDREPORT's TDINFO + TEE_TCB_INFO subset).
struct TdReportBody {
  std::array<uint8_t, 16> tee_tcb_svn{};  // 0x000
  Hash48 mr_seam{};                       // 0x010
  Hash48 mr_signer_seam{};                // 0x040
  std::array<uint8_t, 8> seam_attributes{};  // 0x070
  std::array<uint8_t, 8> td_attributes{};    // 0x078 (bit 0 = TUD.DEBUG)
  std::array<uint8_t, 8> xfam{};             // 0x080
  Hash48 mr_td{};                         // 0x088
  Hash48 mr_config_id{};                  // 0x0B8
  Hash48 mr_owner{};                      // 0x0E8
  Hash48 mr_owner_config{};               // 0x118
  std::array<Hash48, 4> rtmr{};           // 0x148
  std::array<uint8_t, 64> report_data{};  // 0x208
  // TD 1.5 only:
  std::array<uint8_t, 16> tee_tcb_svn_2{};  // 0x248
  Hash48 mr_servicetd{};                    // 0x258
};

// SGX REPORT body (the QE's report, 384 bytes; SGX SDM "REPORT").
struct SgxReportBody {
  std::array<uint8_t, 16> cpu_svn{};      // 0x000
  uint32_t misc_select = 0;               // 0x010
  std::array<uint8_t, 16> attributes{};   // 0x030
  std::array<uint8_t, 32> mr_enclave{};   // 0x040
  std::array<uint8_t, 32> mr_signer{};    // 0x080
  uint16_t isv_prod_id = 0;               // 0x100
  uint16_t isv_svn = 0;                   // 0x102
  std::array<uint8_t, 64> report_data{};  // 0x140
};

struct Quote {
  QuoteHeader header;
  uint16_t body_type = kBodyTypeTd10;  // v4 quotes are always TD 1.0
  TdReportBody body;
  ByteSpan signed_bytes;               // header ‖ (body_type ‖ body_size ‖) body; view into input
  std::array<uint8_t, 64> signature{};        // r ‖ s
  std::array<uint8_t, 64> attestation_key{};  // x ‖ y
  SgxReportBody qe_report;
  ByteSpan qe_report_bytes;            // the 384 signed bytes; view into input
  std::array<uint8_t, 64> qe_report_signature{};
  ByteSpan qe_auth_data;               // view into input
  ByteSpan pck_chain_pem;              // certification data type 5; view into input
  size_t quote_size = 0;               // bytes used (without trailing padding)
};

// LooksLikeTdxQuote is the conservative sniff: version 4 or 5, attestation
// key type 2 and TEE type 0x81.
bool LooksLikeTdxQuote(ByteSpan evidence);

// ParseQuote decodes a TDX quote. Views in the result point into `quote`,
// which must outlive it. Errors: kUnsupportedVersion (version not 4/5, SGX TEE
// type, unknown body type, attestation key type, certification data type),
// kMalformed (truncated, inconsistent sizes, bytes left inside a container).
[[nodiscard]] AttestResult<Quote> ParseQuote(ByteSpan quote);

// ParseSgxReportBody decodes a 384-byte SGX REPORT body.
[[nodiscard]] AttestResult<SgxReportBody> ParseSgxReportBody(ByteSpan bytes);

}  // namespace cllm::attestation::tdx
