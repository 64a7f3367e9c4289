// quote.cc — bounds-checked parsing of TDX DCAP quotes v4/v5.
//
// Every length comes from the quote and is checked against what remains
// before it is used; nested certification data must fill its parent exactly.
#include "attestation/tdx/quote.h"

#include <cstring>
#include <string>

#include "base/byte_reader.h"

namespace cllm::attestation::tdx {
namespace {

template <typename T>
AttestResult<T> Read(Result<T> r, const char* what) {
  if (!r.ok()) return MakeError(AttestErrc::kMalformed, std::string("quote ") + what + ": " + r.detail());
  return std::move(r).value();
}

template <size_t N>
AttestStatus ReadInto(ByteReader& r, std::array<uint8_t, N>& out, const char* what) {
  CLLM_ASSIGN_OR_RETURN(out, Read(r.Array<N>(), what));
  return OkStatus();
}

AttestResult<QuoteHeader> ParseHeader(ByteReader& r) {
  QuoteHeader h;
  CLLM_ASSIGN_OR_RETURN(h.version, Read(r.U16Le(), "header.version"));            // 0x00
  CLLM_ASSIGN_OR_RETURN(h.att_key_type, Read(r.U16Le(), "header.att_key_type"));  // 0x02
  CLLM_ASSIGN_OR_RETURN(h.tee_type, Read(r.U32Le(), "header.tee_type"));          // 0x04
  CLLM_ASSIGN_OR_RETURN(h.qe_svn, Read(r.U16Le(), "header.qe_svn"));              // 0x08
  CLLM_ASSIGN_OR_RETURN(h.pce_svn, Read(r.U16Le(), "header.pce_svn"));            // 0x0A
  CLLM_RETURN_IF_ERROR(ReadInto(r, h.qe_vendor_id, "header.qe_vendor_id"));       // 0x0C
  CLLM_RETURN_IF_ERROR(ReadInto(r, h.user_data, "header.user_data"));             // 0x1C
  return h;
}

AttestResult<TdReportBody> ParseBody(ByteReader& r, uint16_t body_type) {
  TdReportBody b;
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.tee_tcb_svn, "body.tee_tcb_svn"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.mr_seam, "body.mr_seam"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.mr_signer_seam, "body.mr_signer_seam"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.seam_attributes, "body.seam_attributes"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.td_attributes, "body.td_attributes"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.xfam, "body.xfam"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.mr_td, "body.mr_td"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.mr_config_id, "body.mr_config_id"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.mr_owner, "body.mr_owner"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.mr_owner_config, "body.mr_owner_config"));
  for (auto& rtmr : b.rtmr) CLLM_RETURN_IF_ERROR(ReadInto(r, rtmr, "body.rtmr"));
  CLLM_RETURN_IF_ERROR(ReadInto(r, b.report_data, "body.report_data"));
  if (body_type == kBodyTypeTd15) {
    CLLM_RETURN_IF_ERROR(ReadInto(r, b.tee_tcb_svn_2, "body.tee_tcb_svn_2"));
    CLLM_RETURN_IF_ERROR(ReadInto(r, b.mr_servicetd, "body.mr_servicetd"));
  }
  return b;
}

// Reads a certification data header (type u16, size u32) and returns a reader
// over its data.
AttestResult<ByteReader> CertData(ByteReader& r, uint16_t& out_type, const char* what) {
  CLLM_ASSIGN_OR_RETURN(out_type, Read(r.U16Le(), what));
  CLLM_ASSIGN_OR_RETURN(uint32_t size, Read(r.U32Le(), what));
  return Read(r.Sub(size), what);
}

}  // namespace

bool LooksLikeTdxQuote(ByteSpan evidence) {
  if (evidence.size() < kHeaderSize) return false;
  ByteReader r(evidence);
  auto h = ParseHeader(r);
  return h.ok() && (h->version == 4 || h->version == 5) && h->att_key_type == kAttKeyTypeEcdsaP256 &&
         h->tee_type == kTeeTypeTdx;
}

AttestResult<SgxReportBody> ParseSgxReportBody(ByteSpan bytes) {
  if (bytes.size() != kSgxReportBodySize) {
    return MakeError(AttestErrc::kMalformed, "SGX report body must be 384 bytes");
  }
  ByteReader r(bytes);
  SgxReportBody q;
  CLLM_RETURN_IF_ERROR(ReadInto(r, q.cpu_svn, "qe_report.cpu_svn"));          // 0x000
  CLLM_ASSIGN_OR_RETURN(q.misc_select, Read(r.U32Le(), "qe_report.misc_select"));  // 0x010
  CLLM_RETURN_IF_ERROR(Read(r.Skip(28), "qe_report.reserved1"));              // 0x014
  CLLM_RETURN_IF_ERROR(ReadInto(r, q.attributes, "qe_report.attributes"));    // 0x030
  CLLM_RETURN_IF_ERROR(ReadInto(r, q.mr_enclave, "qe_report.mr_enclave"));    // 0x040
  CLLM_RETURN_IF_ERROR(Read(r.Skip(32), "qe_report.reserved2"));              // 0x060
  CLLM_RETURN_IF_ERROR(ReadInto(r, q.mr_signer, "qe_report.mr_signer"));      // 0x080
  CLLM_RETURN_IF_ERROR(Read(r.Skip(96), "qe_report.reserved3"));              // 0x0A0
  CLLM_ASSIGN_OR_RETURN(q.isv_prod_id, Read(r.U16Le(), "qe_report.isv_prod_id"));  // 0x100
  CLLM_ASSIGN_OR_RETURN(q.isv_svn, Read(r.U16Le(), "qe_report.isv_svn"));          // 0x102
  CLLM_RETURN_IF_ERROR(Read(r.Skip(60), "qe_report.reserved4"));              // 0x104
  CLLM_RETURN_IF_ERROR(ReadInto(r, q.report_data, "qe_report.report_data"));  // 0x140
  return q;
}

AttestResult<Quote> ParseQuote(ByteSpan quote) {
  ByteReader r(quote);
  Quote q;
  CLLM_ASSIGN_OR_RETURN(q.header, ParseHeader(r));
  const QuoteHeader& h = q.header;
  if (h.version != 4 && h.version != 5) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "quote version " + std::to_string(h.version) +
                         (h.version == 3 ? " (SGX ECDSA quote)" : "") + ", only TDX versions 4 and 5 are accepted");
  }
  if (h.tee_type != kTeeTypeTdx) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "quote tee_type " + std::to_string(h.tee_type) + ", this verifier accepts TDX (0x81) only");
  }
  if (h.att_key_type != kAttKeyTypeEcdsaP256) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "attestation key type " + std::to_string(h.att_key_type) + ", only 2 (ECDSA P-256) is accepted");
  }

  // --- body -------------------------------------------------------------------
  size_t body_size = kTd10BodySize;
  if (h.version == 5) {
    CLLM_ASSIGN_OR_RETURN(q.body_type, Read(r.U16Le(), "body_type"));
    CLLM_ASSIGN_OR_RETURN(uint32_t declared, Read(r.U32Le(), "body_size"));
    if (q.body_type == kBodyTypeTd10) {
      body_size = kTd10BodySize;
    } else if (q.body_type == kBodyTypeTd15) {
      body_size = kTd15BodySize;
    } else {
      return MakeError(AttestErrc::kUnsupportedVersion,
                       "v5 body_type " + std::to_string(q.body_type) + " (2 = TD 1.0 and 3 = TD 1.5 are accepted)");
    }
    if (declared != body_size) {
      return MakeError(AttestErrc::kMalformed, "v5 body_size " + std::to_string(declared) + " for body_type " +
                                                   std::to_string(q.body_type) + ", expected " +
                                                   std::to_string(body_size));
    }
  }
  CLLM_ASSIGN_OR_RETURN(ByteReader body, Read(r.Sub(body_size), "body"));
  CLLM_ASSIGN_OR_RETURN(q.body, ParseBody(body, q.body_type));
  q.signed_bytes = quote.first(r.offset());

  // --- signature data ---------------------------------------------------------
  CLLM_ASSIGN_OR_RETURN(uint32_t sig_len, Read(r.U32Le(), "sig_data_len"));
  CLLM_ASSIGN_OR_RETURN(ByteReader sig, Read(r.Sub(sig_len), "signature data"));
  q.quote_size = r.offset();
  CLLM_RETURN_IF_ERROR(ReadInto(sig, q.signature, "quote_signature"));
  CLLM_RETURN_IF_ERROR(ReadInto(sig, q.attestation_key, "attestation_key"));
  uint16_t outer_type = 0;
  CLLM_ASSIGN_OR_RETURN(ByteReader outer, CertData(sig, outer_type, "certification data"));
  if (outer_type != kCertDataQeReport) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "certification data type " + std::to_string(outer_type) +
                         ", only 6 (QE report certification data) is accepted");
  }
  if (!sig.empty()) {
    return MakeError(AttestErrc::kMalformed,
                     std::to_string(sig.remaining()) + " bytes after the certification data in signature data");
  }

  // --- QE report certification data (type 6) -----------------------------------
  CLLM_ASSIGN_OR_RETURN(q.qe_report_bytes, Read(outer.Bytes(kSgxReportBodySize), "qe_report"));
  CLLM_ASSIGN_OR_RETURN(q.qe_report, ParseSgxReportBody(q.qe_report_bytes));
  CLLM_RETURN_IF_ERROR(ReadInto(outer, q.qe_report_signature, "qe_report_signature"));
  CLLM_ASSIGN_OR_RETURN(uint16_t auth_len, Read(outer.U16Le(), "qe_auth_data_size"));
  CLLM_ASSIGN_OR_RETURN(q.qe_auth_data, Read(outer.Bytes(auth_len), "qe_auth_data"));
  uint16_t inner_type = 0;
  CLLM_ASSIGN_OR_RETURN(ByteReader inner, CertData(outer, inner_type, "nested certification data"));
  if (inner_type != kCertDataPckChain) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "nested certification data type " + std::to_string(inner_type) +
                         ", only 5 (PCK certificate chain) is accepted");
  }
  if (!outer.empty()) {
    return MakeError(AttestErrc::kMalformed,
                     std::to_string(outer.remaining()) + " bytes after the PCK chain in QE certification data");
  }
  q.pck_chain_pem = inner.rest();
  return q;
}

}  // namespace cllm::attestation::tdx
