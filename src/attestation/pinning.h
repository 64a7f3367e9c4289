// pinning.h — does a client policy pin what makes evidence mean something?
//
// Verification proves "genuine hardware signed this"; it does not say WHICH
// code runs. A genuine CVM booted from the attacker's own image passes every
// signature check, and the binary and model digests it binds into
// report_data are computed by that (possibly patched) server itself. They
// prove something only once the launch measurement of the image is pinned —
// and the model, loaded from host-controlled disk and not part of the
// launch measurement, only once its digest is pinned as well.
//
// What a client policy must pin, per platform of the evidence:
//   snp  snp.measurements                       (MEASUREMENT: firmware, kernel, initrd, cmdline)
//   tdx  tdx.measurements (MRTD) AND tdx.fields rtmr0..rtmr3
//        (MRTD covers only the TD firmware; RTMR0-3 the boot config, kernel, cmdline, OS)
//   csv  csv.measurements                       (the launch digest)
//   tpm  tpm.measurements                       (the quoted PCR digest: the measured boot chain)
//   sim  nothing: "sim" is already an explicit opt-in together with the platform key, and a sim
//        "measurement" is whatever the holder of that key signs
//   and on every platform: model_digests        (when the evidence carries a model digest)
// Binary digests are not required: on a measured image the launch
// measurement already covers the binary; a pinned binary digest only narrows
// which build of that image is accepted. Comparing the pinned values with
// the evidence is Appraise's (and the channel's) job; this unit only decides
// whether there is anything to compare with.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attestation/claims.h"
#include "attestation/errors.h"
#include "attestation/policy.h"
#include "attestation/verified.h"
#include "base/bytes.h"

namespace cllm::attestation {

// What the relying party saw, so a refusal can quote it.
struct PinningSubject {
  Platform platform = Platform::kSim;
  Bytes measurement;                          // the launch measurement as reported
  std::map<std::string, std::string> fields;  // verified fields (tdx: "rtmr0".."rtmr3")
  // nullopt when the evidence carries no model digest (an offline evidence
  // file); then the model digest is not asked for.
  std::optional<Bytes> model_digest;
};

PinningSubject SubjectOf(const VerifiedEvidence::Data& data);
PinningSubject SubjectOf(const Claims& claims, std::optional<Bytes> model_digest);

// One reference value the policy leaves open.
struct UnpinnedValue {
  std::string name;     // "SNP MEASUREMENT", "TDX RTMR2", "model digest"
  std::string seen;     // the value the evidence reported (hex), "" when absent
  std::string how;      // where the right value comes from and how to pin it
};

// FindUnpinned lists, in a fixed order, every value `policy` must pin for
// evidence like `seen` and does not. Empty means fully pinned.
std::vector<UnpinnedValue> FindUnpinned(const Policy& policy, const PinningSubject& seen);

// NothingPinned is true when every value FindUnpinned could ask for is open
// (the verdict "nothing pinned"), false when at least one is pinned.
bool NothingPinned(const Policy& policy, const PinningSubject& seen);

// CheckPinned returns OK when nothing is open, else kNotPinned with a detail
// naming every open value, the value seen and where to get the right one:
//   "SNP MEASUREMENT is not pinned: the server reported ab12…; pin the
//    expected measurement of your published image with `cllm policy pin
//    --snp-measurement HEX` …; model digest is not pinned: …"
// `who` names the party ("the server", "the evidence").
[[nodiscard]] AttestStatus CheckPinned(const Policy& policy, const PinningSubject& seen,
                                       const std::string& who = "the server");

// kUnpinnedOptOutFlag is the client flag that skips CheckPinned; every use
// prints UnpinnedWarning().
inline constexpr char kUnpinnedOptOutFlag[] = "--insecure-accept-unpinned";
std::string UnpinnedWarning();

}  // namespace cllm::attestation
