// verify.cc — format sniffing and dispatch to the platform verifiers.
#include "attestation/verify.h"

#include "attestation/csv/csv_report.h"
#include "attestation/sim/sim_report.h"
#include "attestation/tpm/tpm_verify.h"

namespace cllm::attestation {

std::optional<Platform> SniffPlatform(ByteSpan evidence) {
  // The sim magic is checked first: it is an exact 4-byte tag, whereas the
  // hardware formats are recognised by version fields.
  if (sim::LooksLikeSimReport(evidence)) return Platform::kSim;
  if (csv::LooksLikeCsvEvidence(evidence)) return Platform::kCsv;
  if (tpm::LooksLikeTpmEvidence(evidence)) return Platform::kTpm;
  return std::nullopt;
}

AttestResult<VerifiedEvidence> VerifyEvidence(Platform platform, const EvidenceInput& input) {
  switch (platform) {
    case Platform::kSim: return sim::VerifySimEvidence(input);
    case Platform::kCsv: return csv::VerifyCsvEvidence(input);
    case Platform::kTpm: return tpm::VerifyTpmEvidence(input);
    case Platform::kSnp:
    case Platform::kTdx: break;
  }
  return MakeError(AttestErrc::kUnavailable,
                   std::string("no verifier for platform ") + PlatformName(platform) + " in this build");
}

}  // namespace cllm::attestation
