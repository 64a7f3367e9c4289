#include "apps/common/tee.h"

#include "attestation/attesters/configfs_tsm.h"
#include "attestation/attesters/device_attesters.h"
#include "attestation/sim/sim_attester.h"

namespace cllm::app {

using attestation::AttestErrc;
using attestation::Platform;

namespace {

attestation::AttestResult<std::shared_ptr<attestation::Attester>> Hardware(Platform want) {
  // configfs-tsm first: it yields quotes (TDX) and certificates (SNP).
  auto tsm = attestation::ConfigfsTsmAttester::Open();
  if (tsm.ok() && tsm->platform() == want) {
    return std::shared_ptr<attestation::Attester>(std::make_shared<attestation::ConfigfsTsmAttester>(*tsm));
  }
  for (const auto& d : attestation::DetectAttesters()) {
    if (d.name == "sev-guest" && want == Platform::kSnp) {
      return std::shared_ptr<attestation::Attester>(std::make_shared<attestation::SevGuestAttester>(d.path));
    }
    if (d.name == "csv-guest" && want == Platform::kCsv) {
      return std::shared_ptr<attestation::Attester>(std::make_shared<attestation::CsvGuestAttester>(d.path));
    }
  }
  return MakeError(AttestErrc::kUnavailable, std::string("no ") + attestation::PlatformName(want) +
                                                 " guest interface on this machine (configfs-tsm, /dev/sev-guest, "
                                                 "/dev/csv-guest); use --tee sim for development");
}

}  // namespace

attestation::AttestResult<std::shared_ptr<attestation::Attester>> OpenAttester(const std::string& tee,
                                                                               const std::string& sim_key) {
  if (tee == "sim") {
    if (sim_key.empty()) {
      return MakeError(AttestErrc::kUnavailable,
                       "--tee sim needs --sim-key FILE (create one with `cllm attest sim-keygen -o FILE`)");
    }
    CLLM_ASSIGN_OR_RETURN(auto key, attestation::sim::LoadSimPlatformKey(sim_key));
    CLLM_ASSIGN_OR_RETURN(auto sim, attestation::sim::SimAttester::Create(std::move(key)));
    return std::shared_ptr<attestation::Attester>(std::make_shared<attestation::sim::SimAttester>(std::move(sim)));
  }
  if (tee == "snp") return Hardware(Platform::kSnp);
  if (tee == "tdx") return Hardware(Platform::kTdx);
  if (tee == "csv") return Hardware(Platform::kCsv);
  if (tee == "auto") {
    for (Platform p : {Platform::kSnp, Platform::kTdx, Platform::kCsv}) {
      auto a = Hardware(p);
      if (a.ok()) return a;
    }
    return MakeError(AttestErrc::kUnavailable,
                     "no TEE guest interface found (not a confidential VM); use --tee sim with --sim-key for development");
  }
  return MakeError(AttestErrc::kUnavailable, "unknown --tee \"" + tee + "\" (sim, snp, tdx, csv, auto)");
}

}  // namespace cllm::app
