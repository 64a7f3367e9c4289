// attester.h — getting evidence inside a guest.
//
// An Attester asks the local TEE for evidence that binds 64 caller-chosen
// bytes (report_data: a nonce, a key digest). Implementations live in
// attesters/ (configfs-tsm, /dev/sev-guest, /dev/tdx_guest, /dev/csv-guest)
// and sim/ (the simulated TEE). DetectAttesters says which interfaces this
// machine offers; its root directory is injectable so tests run on a fake tree.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "attestation/claims.h"
#include "attestation/errors.h"
#include "base/bytes.h"

namespace cllm::attestation {

inline constexpr size_t kReportDataSize = 64;

class Attester {
 public:
  virtual ~Attester() = default;
  virtual Platform platform() const = 0;
  // name is the interface ("configfs-tsm", "sev-guest", "sim", ...).
  virtual std::string name() const = 0;
  // GetEvidence returns the platform's evidence (SNP report, TDX quote, sim
  // report, ...) binding `report_data_64`, which must be exactly 64 bytes
  // (kMalformed otherwise); kUnavailable / kIo when the TEE interface fails.
  [[nodiscard]] virtual AttestResult<Bytes> GetEvidence(ByteSpan report_data_64) = 0;
};

// DetectedAttester describes one TEE interface found on this machine.
struct DetectedAttester {
  std::string name;             // "configfs-tsm", "sev-guest", "tdx-guest", "csv-guest"
  std::string path;             // the device or configfs directory
  std::string provider;         // configfs-tsm provider ("sev_guest", "tdx_guest") when known
  std::vector<Platform> platforms;  // what it can attest to
};

// DetectAttesters lists the TEE interfaces under `root` ("/" on a real
// machine): /sys/kernel/config/tsm/report, /dev/sev-guest, /dev/tdx_guest,
// /dev/csv-guest. It never fails; an empty list means "not a TEE guest".
std::vector<DetectedAttester> DetectAttesters(const std::filesystem::path& root = "/");

}  // namespace cllm::attestation
