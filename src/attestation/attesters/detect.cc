// detect.cc — which TEE guest interfaces does this machine have?
#include <system_error>

#include "attestation/attester.h"
#include "attestation/attesters/configfs_tsm.h"
#include "base/file.h"

namespace cllm::attestation {

std::vector<DetectedAttester> DetectAttesters(const std::filesystem::path& root) {
  std::vector<DetectedAttester> out;
  std::error_code ec;
  auto tsm = root / "sys/kernel/config/tsm/report";
  if (std::filesystem::is_directory(tsm, ec)) {
    DetectedAttester d{"configfs-tsm", tsm.string(), "", {}};
    // Without creating an entry the provider is unknown; the driver devices
    // below tell which TEE it is.
    out.push_back(d);
  }
  struct Dev {
    const char* name;
    const char* path;
    Platform platform;
    const char* provider;
  };
  for (const Dev& dev : {Dev{"sev-guest", "dev/sev-guest", Platform::kSnp, "sev_guest"},
                         Dev{"tdx-guest", "dev/tdx_guest", Platform::kTdx, "tdx_guest"},
                         Dev{"csv-guest", "dev/csv-guest", Platform::kCsv, ""}}) {
    auto p = root / dev.path;
    if (!std::filesystem::exists(p, ec)) continue;
    out.push_back({dev.name, p.string(), "", {dev.platform}});
    // configfs-tsm reports for the same TEE as the driver that is loaded.
    if (!out.empty() && out.front().name == "configfs-tsm" && dev.provider[0] != '\0') {
      out.front().provider = dev.provider;
      out.front().platforms.push_back(dev.platform);
    }
  }
  return out;
}

}  // namespace cllm::attestation
