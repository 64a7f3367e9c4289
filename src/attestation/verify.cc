// verify.cc — format sniffing and dispatch to the platform verifiers.
#include "attestation/verify.h"

#include "attestation/csv/csv_report.h"
#include "attestation/sim/sim_report.h"
#include "attestation/snp/verify.h"
#include "attestation/tdx/quote.h"
#include "attestation/tdx/verify.h"
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

}  // namespace cllm::attestation
