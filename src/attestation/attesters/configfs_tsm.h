// configfs_tsm.h — evidence through the kernel's configfs-tsm interface.
//
// Linux (6.7+) exposes one report interface for SNP and TDX guests under
// /sys/kernel/config/tsm/report (Documentation/ABI/testing/configfs-tsm):
//   mkdir report/$name            the kernel creates the attributes
//   write $name/inblob            64 bytes of report_data; bumps generation
//   read  $name/outblob           SNP: ATTESTATION_REPORT; TDX: a quote
//   read  $name/auxblob           SNP: the certificate table (VCEK, ...), if the host supplies it
//   read  $name/provider          "sev_guest", "tdx_guest"
//   read  $name/generation        write counter, to detect a concurrent writer
// The entry is shared state: if another process writes inblob between our
// write and our read, generation tells us and we retry.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "attestation/attester.h"

namespace cllm::attestation {

// TsmFs is the file system seen by ConfigfsTsmAttester. The default is the
// real one (PosixTsmFs); tests subclass it to act as the kernel on a
// temporary directory.
class TsmFs {
 public:
  virtual ~TsmFs() = default;
  [[nodiscard]] virtual AttestStatus MakeDir(const std::filesystem::path& dir);
  [[nodiscard]] virtual AttestStatus RemoveDir(const std::filesystem::path& dir);
  [[nodiscard]] virtual AttestStatus Write(const std::filesystem::path& file, ByteSpan data);
  [[nodiscard]] virtual AttestResult<Bytes> Read(const std::filesystem::path& file);
};

struct TsmReport {
  Bytes outblob;
  Bytes auxblob;        // empty when the provider has none
  std::string provider; // "sev_guest", "tdx_guest", ...
  uint64_t generation = 0;
};

// ParseTsmGeneration parses the decimal "generation" attribute ("3\n").
[[nodiscard]] AttestResult<uint64_t> ParseTsmGeneration(ByteSpan text);
// TsmProviderPlatform maps a provider name to its platform (nullopt if unknown).
std::optional<Platform> TsmProviderPlatform(std::string_view provider);

class ConfigfsTsmAttester : public Attester {
 public:
  static constexpr int kMaxAttempts = 3;

  // Open checks that root/sys/kernel/config/tsm/report exists and learns the
  // provider by creating a probe entry; kUnavailable otherwise. `fs` must
  // outlive the attester (nullptr: the real file system).
  [[nodiscard]] static AttestResult<ConfigfsTsmAttester> Open(const std::filesystem::path& root = "/",
                                                              TsmFs* fs = nullptr);

  Platform platform() const override { return platform_; }
  std::string name() const override { return "configfs-tsm"; }
  AttestResult<Bytes> GetEvidence(ByteSpan report_data_64) override;
  // GetReport returns outblob together with auxblob and provider.
  [[nodiscard]] AttestResult<TsmReport> GetReport(ByteSpan report_data_64);

 private:
  ConfigfsTsmAttester(std::filesystem::path report_dir, TsmFs* fs, Platform platform)
      : report_dir_(std::move(report_dir)), fs_(fs), platform_(platform) {}
  AttestResult<TsmReport> TryOnce(const std::filesystem::path& entry, ByteSpan report_data_64);

  std::filesystem::path report_dir_;
  TsmFs* fs_;
  Platform platform_;
};

}  // namespace cllm::attestation
