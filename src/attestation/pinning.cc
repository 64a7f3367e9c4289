// pinning.cc — FindUnpinned / CheckPinned (see pinning.h for what must be
// pinned per platform and why).
#include "attestation/pinning.h"

#include "base/encoding.h"

namespace cllm::attestation {
namespace {

constexpr int kTdxRtmrs = 4;  // RTMR0..3 (TDX module spec, TDREPORT)

const PlatformPolicy& SectionOf(const Policy& policy, Platform platform) {
  static const PlatformPolicy kEmpty;
  auto it = policy.per_platform.find(platform);
  return it == policy.per_platform.end() ? kEmpty : it->second;
}

std::string Seen(const Bytes& b) { return b.empty() ? "" : HexEncode(b); }

std::string Seen(const std::map<std::string, std::string>& fields, const std::string& key) {
  auto it = fields.find(key);
  return it == fields.end() ? "" : it->second;
}

// The launch values of one platform: name shown to the user, whether the
// policy pins it, the value seen, and where the reference value comes from.
void LaunchValues(const Policy& policy, const PinningSubject& s, std::vector<UnpinnedValue>* out) {
  const PlatformPolicy& pp = SectionOf(policy, s.platform);
  const bool measurement_pinned = !pp.measurements.empty();
  switch (s.platform) {
    case Platform::kSnp:
      if (!measurement_pinned) {
        out->push_back({"SNP MEASUREMENT", Seen(s.measurement),
                        "pin the expected launch measurement of your published image (its publisher's "
                        "reference value, or compute it from the OVMF/kernel/initrd/cmdline with "
                        "sev-snp-measure) with `cllm policy pin --snp-measurement HEX`"});
      }
      break;
    case Platform::kTdx:
      if (!measurement_pinned) {
        out->push_back({"TDX MRTD", Seen(s.measurement),
                        "pin the expected MRTD of your image's TD firmware (TDVF) with "
                        "`cllm policy pin --tdx-mrtd HEX`"});
      }
      for (int i = 0; i < kTdxRtmrs; ++i) {
        const std::string key = "rtmr" + std::to_string(i);
        if (pp.fields.count(key)) continue;
        // MRTD covers only the firmware; without RTMR0-3 any kernel, cmdline
        // and OS boot on a pinned firmware.
        out->push_back({"TDX RTMR" + std::to_string(i), Seen(s.fields, key),
                        "pin the expected RTMR" + std::to_string(i) +
                            " of your published image (replay its event log) with "
                            "`cllm policy pin --tdx-rtmr" + std::to_string(i) + " HEX`"});
      }
      break;
    case Platform::kCsv:
      if (!measurement_pinned) {
        out->push_back({"CSV launch digest", Seen(s.measurement),
                        "pin the expected launch digest of your published image with "
                        "`cllm policy pin --csv-measurement HEX`"});
      }
      break;
    case Platform::kTpm: {
      if (!measurement_pinned) {
        out->push_back({"TPM PCR digest", Seen(s.measurement),
                        "pin the expected digest of the quoted PCRs of your published image (from its "
                        "measured-boot event log) with `cllm policy pin --tpm-pcr-digest HEX`"});
      }
      // The vTPM's AK is only as good as the hardware report that vouches
      // for it: any guest of that TEE can ask for a report binding an AK of
      // its own, so the provider's launch measurement (the paravisor's)
      // must be pinned too. Evidence names which TEE; an abstract subject
      // (a fleet key's cover check) needs either pinned.
      const std::string hw = Seen(s.fields, "hcl.report_type");
      const bool snp_pinned = pp.fields.count("snp.measurement") > 0;
      const bool tdx_pinned = pp.fields.count("tdx.measurement") > 0;
      const bool pinned = hw == "snp" ? snp_pinned : hw == "tdx" ? tdx_pinned : snp_pinned || tdx_pinned;
      if (!pinned) {
        const std::string which = hw.empty() ? "SNP or TDX" : hw == "snp" ? "SNP" : "TDX";
        out->push_back({"TPM vTPM provider's " + which + " measurement", Seen(s.fields, hw + ".measurement"),
                        "pin the launch measurement of the paravisor that provides the vTPM (your cloud's "
                        "published value for the CVM image) with `cllm policy pin --tpm-hcl-" +
                            (hw == "tdx" ? std::string("tdx") : std::string("snp")) + "-measurement HEX`"});
      }
      break;
    }
    case Platform::kSim:
      // Accepting sim already took an explicit "sim" plus a platform key; a
      // sim measurement is whatever that key's holder signs.
      break;
  }
}

}  // namespace

PinningSubject SubjectOf(const VerifiedEvidence::Data& data) {
  PinningSubject s;
  s.platform = data.platform;
  s.measurement = data.measurement;
  s.fields = data.fields;
  return s;
}

PinningSubject SubjectOf(const Claims& claims, std::optional<Bytes> model_digest) {
  PinningSubject s;
  s.platform = claims.platform();
  s.measurement = claims.measurement();
  s.fields = claims.fields();
  s.model_digest = std::move(model_digest);
  return s;
}

std::vector<UnpinnedValue> FindUnpinned(const Policy& policy, const PinningSubject& seen) {
  std::vector<UnpinnedValue> out;
  LaunchValues(policy, seen, &out);
  // The model comes from host-controlled disk, outside the launch
  // measurement: only a pinned digest says which model answers.
  if (seen.model_digest && policy.model_digests.empty()) {
    out.push_back({"model digest", Seen(*seen.model_digest),
                   "pin the SHA-256 of the model you expect with `cllm policy pin --model FILE` (a .gguf file "
                   "or the sealed .cllm file; computed as the server computes it) or --model-digest HEX"});
  }
  return out;
}

bool NothingPinned(const Policy& policy, const PinningSubject& seen) {
  return FindUnpinned(policy, seen).size() == FindUnpinned(Policy{}, seen).size();
}

AttestStatus CheckPinned(const Policy& policy, const PinningSubject& seen, const std::string& who) {
  const auto open = FindUnpinned(policy, seen);
  if (open.empty()) return OkStatus();
  std::string detail;
  for (const auto& u : open) {
    if (!detail.empty()) detail += "; ";
    detail += u.name + " is not pinned: " + who + " reported " + (u.seen.empty() ? "(no value)" : u.seen) + "; " +
              u.how;
  }
  detail += ". Genuine hardware alone proves nothing about the code and model it runs; pin the reference values "
            "(or pass " + std::string(kUnpinnedOptOutFlag) + " to accept any, insecurely)";
  return MakeError(AttestErrc::kNotPinned, detail);
}

std::string UnpinnedWarning() {
  return std::string("WARNING: ") + kUnpinnedOptOutFlag +
         ": accepting a TEE whose launch measurement and model digest the policy does NOT pin. Any genuine "
         "CVM running ANY code and ANY model is accepted; the digests it reports are computed by that code "
         "itself and prove nothing. Do not send anything confidential.";
}

}  // namespace cllm::attestation
