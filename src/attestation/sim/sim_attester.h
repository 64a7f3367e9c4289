// sim_attester.h — the guest side of the simulated TEE.
//
// SimAttester plays the role of the SNP firmware: it holds the platform key
// and signs reports binding caller-chosen report_data. The measurement is a
// configured value or SHA-384 of the running executable (what a real launch
// measurement would cover). For development and CI only: verifiers accept its
// evidence only when their policy lists "sim" and pins this platform key.
#pragma once

#include <filesystem>
#include <optional>

#include "attestation/attester.h"
#include "attestation/sim/sim_report.h"
#include "crypto/keys.h"

namespace cllm::attestation::sim {

struct SimAttesterOptions {
  std::optional<std::array<uint8_t, 48>> measurement;  // unset: SHA-384 of /proc/self/exe
  bool debug = false;
  SimTcb tcb;
  std::array<uint8_t, 32> host_data{};
};

// GenerateSimPlatformKey makes a fresh P-384 platform key.
[[nodiscard]] AttestResult<crypto::PrivateKey> GenerateSimPlatformKey();
// LoadSimPlatformKey reads a PEM (PKCS#8) platform key file; kIo / kMalformed.
[[nodiscard]] AttestResult<crypto::PrivateKey> LoadSimPlatformKey(const std::filesystem::path& path);
// MeasureExecutable returns SHA-384 of the file (kIo when unreadable).
[[nodiscard]] AttestResult<std::array<uint8_t, 48>> MeasureExecutable(
    const std::filesystem::path& path = "/proc/self/exe");

class SimAttester : public Attester {
 public:
  // Create resolves the measurement (hashing the executable when not given).
  [[nodiscard]] static AttestResult<SimAttester> Create(crypto::PrivateKey platform_key,
                                                        SimAttesterOptions options = {});

  Platform platform() const override { return Platform::kSim; }
  std::string name() const override { return "sim"; }
  AttestResult<Bytes> GetEvidence(ByteSpan report_data_64) override;

  const std::array<uint8_t, 48>& measurement() const { return measurement_; }

 private:
  SimAttester(crypto::PrivateKey key, SimAttesterOptions options, std::array<uint8_t, 48> measurement)
      : key_(std::move(key)), options_(options), measurement_(measurement) {}

  crypto::PrivateKey key_;
  SimAttesterOptions options_;
  std::array<uint8_t, 48> measurement_;
};

}  // namespace cllm::attestation::sim
