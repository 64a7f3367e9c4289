// sim_attester.cc — key handling and report creation for the simulated TEE.
#include "attestation/sim/sim_attester.h"

#include <cstring>

#include "base/file.h"
#include "base/secure.h"
#include "crypto/digest.h"

namespace cllm::attestation::sim {

AttestResult<crypto::PrivateKey> GenerateSimPlatformKey() {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP384);
  if (!key.ok()) return MakeError(AttestErrc::kInternal, "generating P-384 key: " + key.detail());
  return std::move(key).value();
}

AttestResult<crypto::PrivateKey> LoadSimPlatformKey(const std::filesystem::path& path) {
  auto pem = ReadTextFile(path, 1 << 16);
  if (!pem.ok()) return MakeError(AttestErrc::kIo, path.string() + ": " + pem.detail());
  auto key = crypto::PrivateKey::FromPem(*pem);
  SecureZero(pem->data(), pem->size());
  if (!key.ok()) return MakeError(AttestErrc::kMalformed, path.string() + ": " + key.detail());
  if (key->type() != crypto::KeyType::kEcP384) {
    return MakeError(AttestErrc::kMalformed, path.string() + ": sim platform key must be ECDSA P-384");
  }
  return std::move(key).value();
}

AttestResult<std::array<uint8_t, 48>> MeasureExecutable(const std::filesystem::path& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return MakeError(AttestErrc::kIo, "measuring " + path.string() + ": " + bytes.detail());
  return crypto::Sha384(*bytes);
}

AttestResult<SimAttester> SimAttester::Create(crypto::PrivateKey platform_key, SimAttesterOptions options) {
  if (platform_key.type() != crypto::KeyType::kEcP384) {
    return MakeError(AttestErrc::kMalformed, "sim platform key must be ECDSA P-384");
  }
  std::array<uint8_t, 48> measurement{};
  if (options.measurement) {
    measurement = *options.measurement;
  } else {
    CLLM_ASSIGN_OR_RETURN(measurement, MeasureExecutable());
  }
  return SimAttester(std::move(platform_key), options, measurement);
}

AttestResult<Bytes> SimAttester::GetEvidence(ByteSpan report_data_64) {
  if (report_data_64.size() != kReportDataSize) {
    return MakeError(AttestErrc::kMalformed, "report_data must be 64 bytes, got " +
                                                 std::to_string(report_data_64.size()));
  }
  SimReport rep;
  rep.policy = options_.debug ? kSimPolicyDebug : 0;
  rep.tcb = options_.tcb;
  rep.measurement = measurement_;
  std::memcpy(rep.report_data.data(), report_data_64.data(), kReportDataSize);
  rep.host_data = options_.host_data;
  return SignSimReport(rep, key_);
}

}  // namespace cllm::attestation::sim
