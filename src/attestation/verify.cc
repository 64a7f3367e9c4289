// verify.cc — format sniffing and dispatch to the platform verifiers.
#include "attestation/verify.h"

#include "attestation/csv/csv_report.h"
#include "attestation/sim/sim_report.h"
#include "attestation/snp/json_bundle.h"
#include "attestation/snp/report.h"
#include "attestation/snp/verify.h"
#include "attestation/tdx/quote.h"
#include "attestation/tdx/verify.h"
#include "attestation/tpm/tpm_quote.h"
#include "attestation/tpm/tpm_verify.h"

namespace cllm::attestation {

std::optional<Platform> SniffPlatform(ByteSpan evidence) {
  // The sim magic is checked first: it is an exact 4-byte tag, whereas the
  // hardware formats are recognised by version fields.
  if (sim::LooksLikeSimReport(evidence)) return Platform::kSim;
  // CSV before SNP: SNP's JSON sniff accepts any object with
  // "attestation_report", which trustee's CSV bundle also has; the CSV checks
  // (unmasked sig_usage/sig_algo, or "magic"/"flags"/"data") are narrower.
  if (csv::LooksLikeCsvEvidence(evidence)) return Platform::kCsv;
  // TPM: TPMS_ATTEST magic + quote type, or JSON with message/signature/pcrs.
  if (tpm::LooksLikeTpmEvidence(evidence)) return Platform::kTpm;
  // SNP: u32 VERSION 2/3/5 and SIGNATURE_ALGO 1 at 0x34 (a TDX quote starts
  // with u16 version 4/5 then u16 key type 2, i.e. u32 0x0002000X), or the
  // JSON bundle.
  if (snp::LooksLikeSnpEvidence(evidence)) return Platform::kSnp;
  // TDX: u16 version 4/5, u16 attestation key type 2, u32 TEE type 0x81.
  if (tdx::LooksLikeTdxQuote(evidence)) return Platform::kTdx;
  return std::nullopt;
}

AttestResult<VerifiedEvidence> VerifyEvidence(Platform platform, const EvidenceInput& input) {
  switch (platform) {
    case Platform::kSim: return sim::VerifySimEvidence(input);
    case Platform::kSnp: return snp::VerifySnpEvidence(input);
    case Platform::kTdx: return tdx::VerifyTdxEvidence(input);
    case Platform::kCsv: return csv::VerifyCsvEvidence(input);
    case Platform::kTpm: return tpm::VerifyTpmEvidence(input);
  }
  return MakeError(AttestErrc::kUnavailable,
                   std::string("no verifier for platform ") + PlatformName(platform) + " in this build");
}

AttestResult<Bytes> PeekReportData(Platform platform, ByteSpan evidence) {
  // Each case reads the evidence the way its verifier does, up to the field
  // the verifier copies into VerifiedEvidence::Data::report_data.
  auto bytes = [](const auto& a) { return Bytes(a.begin(), a.end()); };
  switch (platform) {
    case Platform::kSim: {
      CLLM_ASSIGN_OR_RETURN(auto rep, sim::ParseSimReport(evidence));
      return bytes(rep.report_data);
    }
    case Platform::kSnp: {
      Bytes report;
      if (snp::LooksLikeJsonBundle(evidence)) {
        CLLM_ASSIGN_OR_RETURN(auto bundle, snp::ParseJsonBundle(evidence));
        report = std::move(bundle.report);
      } else if (evidence.size() >= snp::kReportSize) {
        report.assign(evidence.begin(), evidence.begin() + snp::kReportSize);  // a certificate table may follow
      } else {
        return MakeError(AttestErrc::kMalformed, "evidence is shorter than an SNP report");
      }
      CLLM_ASSIGN_OR_RETURN(auto rep, snp::ParseReport(report));
      return bytes(rep.report_data);
    }
    case Platform::kTdx: {
      CLLM_ASSIGN_OR_RETURN(auto quote, tdx::ParseQuote(evidence));
      return bytes(quote.body.report_data);
    }
    case Platform::kCsv: return csv::PeekCsvUserData(evidence);
    case Platform::kTpm: {
      EvidenceInput in;
      in.evidence = evidence;
      CLLM_ASSIGN_OR_RETURN(auto ev, tpm::DecodeTpmEvidence(in));
      CLLM_ASSIGN_OR_RETURN(auto attest, tpm::ParseTpmsAttest(ev.attest));
      Bytes out = std::move(attest.extra_data);
      if (out.size() > 64) return MakeError(AttestErrc::kMalformed, "TPM extraData is longer than 64 bytes");
      out.resize(64, 0);
      return out;
    }
  }
  return MakeError(AttestErrc::kUnavailable, std::string("no parser for platform ") + PlatformName(platform));
}

}  // namespace cllm::attestation
