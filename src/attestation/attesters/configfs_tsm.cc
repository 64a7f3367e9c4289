// configfs_tsm.cc — the configfs-tsm report protocol with race detection.
#include "attestation/attesters/configfs_tsm.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/random.h"

namespace cllm::attestation {
namespace {

constexpr uint64_t kMaxBlob = 1 << 20;  // quotes and cert tables are a few KiB

TsmFs& DefaultFs() {
  static TsmFs fs;
  return fs;
}

std::string Trim(ByteSpan b) {
  std::string s(AsChars(b));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

AttestStatus TsmFs::MakeDir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::create_directory(dir, ec) || ec) {
    return MakeError(AttestErrc::kIo, "mkdir " + dir.string() + ": " + (ec ? ec.message() : "already exists"));
  }
  return OkStatus();
}

AttestStatus TsmFs::RemoveDir(const std::filesystem::path& dir) {
  // configfs entries are removed with rmdir even though they hold attributes.
  if (::rmdir(dir.c_str()) != 0) {
    return MakeError(AttestErrc::kIo, "rmdir " + dir.string() + ": " + std::strerror(errno));
  }
  return OkStatus();
}

AttestStatus TsmFs::Write(const std::filesystem::path& file, ByteSpan data) {
  // Not WriteFileAtomic: configfs attributes cannot be replaced by rename,
  // and the kernel wants the whole blob in one write.
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) return MakeError(AttestErrc::kIo, "open " + file.string() + " for writing failed");
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  out.flush();
  if (!out) return MakeError(AttestErrc::kIo, "write " + file.string() + " failed");
  return OkStatus();
}

AttestResult<Bytes> TsmFs::Read(const std::filesystem::path& file) {
  auto b = ReadFile(file, kMaxBlob);
  if (!b.ok()) return MakeError(AttestErrc::kIo, b.detail());
  return std::move(b).value();
}

AttestResult<uint64_t> ParseTsmGeneration(ByteSpan text) {
  std::string s = Trim(text);
  if (s.empty() || s.size() > 19) return MakeError(AttestErrc::kMalformed, "generation is not a number: \"" + s + "\"");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return MakeError(AttestErrc::kMalformed, "generation is not a number: \"" + s + "\"");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::optional<Platform> TsmProviderPlatform(std::string_view provider) {
  if (provider == "sev_guest") return Platform::kSnp;
  if (provider == "tdx_guest") return Platform::kTdx;
  return std::nullopt;
}

AttestResult<ConfigfsTsmAttester> ConfigfsTsmAttester::Open(const std::filesystem::path& root, TsmFs* fs) {
  if (fs == nullptr) fs = &DefaultFs();
  auto dir = root / "sys/kernel/config/tsm/report";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return MakeError(AttestErrc::kUnavailable, dir.string() + " does not exist (no configfs-tsm; Linux >= 6.7 guest)");
  }
  // The provider is per entry; a probe entry tells which TEE this is.
  auto probe = dir / ("cllm-probe-" + std::to_string(::getpid()) + "-" + HexEncode(crypto::RandomBytes(4)));
  CLLM_RETURN_IF_ERROR(fs->MakeDir(probe));
  auto provider = fs->Read(probe / "provider");
  (void)fs->RemoveDir(probe);
  if (!provider.ok()) return std::move(provider).error();
  std::string name = Trim(*provider);
  auto platform = TsmProviderPlatform(name);
  if (!platform) return MakeError(AttestErrc::kUnavailable, "configfs-tsm provider \"" + name + "\" is not supported");
  return ConfigfsTsmAttester(dir, fs, *platform);
}

AttestResult<TsmReport> ConfigfsTsmAttester::TryOnce(const std::filesystem::path& entry, ByteSpan report_data_64) {
  TsmReport rep;
  CLLM_RETURN_IF_ERROR(fs_->Write(entry / "inblob", report_data_64));
  CLLM_ASSIGN_OR_RETURN(Bytes gen_text, fs_->Read(entry / "generation"));
  CLLM_ASSIGN_OR_RETURN(uint64_t gen_before, ParseTsmGeneration(gen_text));
  CLLM_ASSIGN_OR_RETURN(rep.outblob, fs_->Read(entry / "outblob"));
  // auxblob is optional: absent or empty when the host supplies no certificates.
  std::error_code ec;
  if (std::filesystem::exists(entry / "auxblob", ec)) {
    auto aux = fs_->Read(entry / "auxblob");
    if (aux.ok()) rep.auxblob = std::move(aux).value();
  }
  CLLM_ASSIGN_OR_RETURN(Bytes provider, fs_->Read(entry / "provider"));
  rep.provider = Trim(provider);
  CLLM_ASSIGN_OR_RETURN(Bytes gen_text2, fs_->Read(entry / "generation"));
  CLLM_ASSIGN_OR_RETURN(rep.generation, ParseTsmGeneration(gen_text2));
  if (rep.generation != gen_before) {
    // Someone wrote inblob after us: outblob may bind their report_data.
    return MakeError(AttestErrc::kBindingMismatch, "generation changed from " + std::to_string(gen_before) +
                                                       " to " + std::to_string(rep.generation) + " while reading");
  }
  if (rep.outblob.empty()) return MakeError(AttestErrc::kIo, "outblob is empty");
  return rep;
}

AttestResult<TsmReport> ConfigfsTsmAttester::GetReport(ByteSpan report_data_64) {
  if (report_data_64.size() != kReportDataSize) {
    return MakeError(AttestErrc::kMalformed, "report_data must be 64 bytes, got " + std::to_string(report_data_64.size()));
  }
  auto entry = report_dir_ / ("cllm-" + std::to_string(::getpid()) + "-" + HexEncode(crypto::RandomBytes(8)));
  CLLM_RETURN_IF_ERROR(fs_->MakeDir(entry));
  Error<AttestErrc> last{AttestErrc::kInternal, "no attempt made"};
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto rep = TryOnce(entry, report_data_64);
    if (rep.ok()) {
      (void)fs_->RemoveDir(entry);
      return rep;
    }
    last = std::move(rep).error();
    if (last.code != AttestErrc::kBindingMismatch) break;  // only a race is worth retrying
  }
  (void)fs_->RemoveDir(entry);
  if (last.code == AttestErrc::kBindingMismatch) {
    last.detail = "configfs-tsm: " + std::to_string(kMaxAttempts) + " attempts raced with another writer: " + last.detail;
  }
  return last;
}

AttestResult<Bytes> ConfigfsTsmAttester::GetEvidence(ByteSpan report_data_64) {
  CLLM_ASSIGN_OR_RETURN(TsmReport rep, GetReport(report_data_64));
  // SNP: the report followed by the host's certificate table (auxblob), the
  // form the SNP verifier accepts without separate certificate files.
  if (platform_ == Platform::kSnp && !rep.auxblob.empty()) {
    rep.outblob.insert(rep.outblob.end(), rep.auxblob.begin(), rep.auxblob.end());
  }
  return std::move(rep.outblob);
}

}  // namespace cllm::attestation
