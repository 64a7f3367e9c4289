#include "apps/cllm-server/boot.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include "base/log.h"
#include "crypto/digest.h"
#include "crypto/hashed_file.h"
#include "engine/gguf/gguf.h"

namespace cllm::app {
namespace {

// LockedSource lets the engine read a model that lives in locked memory.
// The model's digest was taken from these bytes before the engine parsed
// them, and nothing reads them afterwards but the engine, so it may repack
// weight matrices in place (WritableBytes; docs/engine.md § Load-time layouts).
class LockedSource : public engine::ByteSource {
 public:
  explicit LockedSource(LockedBuffer buf) : buf_(std::move(buf)) {}
  ByteSpan bytes() const override { return buf_.span(); }
  uint8_t* WritableBytes() const override { return buf_.data(); }

 private:
  mutable LockedBuffer buf_;  // wiped and unlocked when the model is destroyed
};

Error<Errc> ClientError(const char* what, const client::ClientResult<trust::Token>& r) {
  return MakeError(Errc::kPermission, std::string(what) + ": " + client::ClientErrcName(r.code()) + ": " + r.detail());
}

}  // namespace

Result<ModelInput> InspectModel(const std::filesystem::path& path, bool hash_plain) {
  ModelInput in;
  in.default_name = path.stem().string();
  char magic[8] = {};
  {
    std::ifstream f(path, std::ios::binary);
    if (!f) return MakeError(Errc::kNotFound, "cannot open " + path.string());
    f.read(magic, sizeof magic);
  }
  if (std::memcmp(magic, "CLLMSEAL", 8) == 0) {
    std::ifstream f(path, std::ios::binary);
    Bytes head(64 << 10);
    f.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(f.gcount()));
    auto h = crypto::ParseSealedHeader(head);
    if (!h.ok()) return MakeError(Errc::kParse, path.string() + ": " + crypto::SealErrcName(h.code()) + ": " + h.detail());
    in.sealed = true;
    in.header = *h;
    in.digest = h->plaintext_digest;
    if (!h->model_name.empty()) in.default_name = h->model_name;
    return in;
  }
  if (!hash_plain) return in;
  log::info("hashing model {} (by path: --mmap-untrusted-disk)", path.string());
  auto d = crypto::Sha256File(path);
  if (!d.ok()) return MakeError(Errc::kIo, d.detail());
  in.digest = *d;
  return in;
}

ProgressFn StderrProgress(std::string what) {
  constexpr uint64_t kLargeFile = uint64_t{256} << 20;
  const bool tty = isatty(STDERR_FILENO);
  auto last = std::make_shared<int>(-1);
  return [what = std::move(what), tty, last](uint64_t done, uint64_t total) {
    const int pct = total ? static_cast<int>(done * 100 / total) : 100;
    if (tty) {
      if (pct == *last) return;
      std::fprintf(stderr, "\r%s: %3d%%%s", what.c_str(), pct, done == total ? "\n" : "");
    } else {
      if (total < kLargeFile || (pct / 5 == *last / 5 && done != total)) return;
      log::info("{}: {}% of {} MiB", what, pct, total >> 20);
    }
    *last = pct;
  };
}

Result<PlainModel> LoadPlainModel(const std::filesystem::path& path, const ProgressFn& progress) {
  auto read = crypto::ReadFileHashed(path, progress);
  if (!read.ok()) return MakeError(read.code(), "reading the model: " + read.detail());
  PlainModel out;
  out.digest = read->sha256;
  out.locked = read->bytes.locked();
  auto source = std::make_shared<LockedSource>(std::move(read->bytes));
  auto file = engine::GgufFile::FromMemory(source);
  if (!file.ok()) return MakeError(Errc::kParse, path.string() + ": " + file.detail());
  auto model = engine::Model::Load(std::move(file).value());
  if (!model.ok()) return MakeError(Errc::kParse, std::string(engine::ModelErrcName(model.code())) + ": " + model.detail());
  out.model = std::move(model).value();
  return out;
}

Result<std::unique_ptr<engine::Model>> LoadSealedModel(const std::filesystem::path& path, ByteSpan key,
                                                       const std::array<uint8_t, 32>& expect_digest,
                                                       const ProgressFn& progress, bool require_locked) {
  auto plain = crypto::UnsealFile(path, key, progress, &expect_digest);
  if (!plain.ok()) {
    return MakeError(Errc::kCrypto, "unsealing " + path.string() + ": " + crypto::SealErrcName(plain.code()) + ": " +
                                        plain.detail() + " — nothing will be served");
  }
  if (!plain->locked() && require_locked) {
    return MakeError(Errc::kPermission, "the unsealed model could not be locked in memory — nothing will be served");
  }
  if (!plain->locked()) log::warn("the unsealed model is not locked in memory (RLIMIT_MEMLOCK); it may be swapped");
  auto source = std::make_shared<LockedSource>(std::move(plain).value());
  auto file = engine::GgufFile::FromMemory(source);
  if (!file.ok()) return MakeError(Errc::kParse, std::string("sealed model: ") + file.detail());
  auto model = engine::Model::Load(std::move(file).value());
  if (!model.ok()) return MakeError(Errc::kParse, std::string(engine::ModelErrcName(model.code())) + ": " + model.detail());
  return std::move(model).value();
}

Result<std::unique_ptr<TrustBoot>> TrustBoot::Create(const std::string& url, const std::string& ca_file,
                                                     std::string policy) {
  auto ep = trust::LoadTrustEndpoint(url, ca_file);
  if (!ep.ok()) return MakeError(Errc::kInvalidArgument, ep.detail());
  return std::unique_ptr<TrustBoot>(new TrustBoot(std::move(ep).value(), url, std::move(policy)));
}

Result<NodeIdentity> TrustBoot::Attest(channel::RaTlsIssuer& issuer) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  if (!key.ok()) return MakeError(Errc::kCrypto, key.detail());
  auto conn = client::ConnectPinned(ep_.url, ep_.ca);
  if (!conn.ok()) return MakeError(Errc::kIo, "cllm-trust at " + url_ + ": " + conn.detail());
  auto token = trust::ObtainToken(**conn, issuer, *key, policy_);
  if (!token.ok()) return ClientError("attestation to cllm-trust refused", token);
  return NodeIdentity{std::move(key).value(), std::move(token).value()};
}

Result<nlohmann::json> TrustBoot::Jwks() {
  auto j = trust::FetchJwks(ep_);
  if (!j.ok()) return MakeError(Errc::kIo, "cllm-trust JWKS: " + j.detail());
  return std::move(j).value();
}

Result<nlohmann::json> TrustBoot::E2eKeyList() {
  auto r = trust::TrustCallOnce(ep_, "GET", "/v1/e2e/keys");
  if (!r.ok()) return MakeError(Errc::kIo, "cllm-trust GET /v1/e2e/keys: " + r.detail());
  if (r->status != 200) {
    return MakeError(Errc::kIo, "cllm-trust GET /v1/e2e/keys: HTTP " + std::to_string(r->status) + " " +
                                    r->body.dump().substr(0, 200));
  }
  return std::move(r->body);
}

Result<SecretBytes> TrustBoot::ModelKey(const NodeIdentity& node, const std::string& key_id) {
  auto conn = client::ConnectPinned(ep_.url, ep_.ca);
  if (!conn.ok()) return MakeError(Errc::kIo, "cllm-trust at " + url_ + ": " + conn.detail());
  auto key = trust::FetchModelKey(**conn, node.token, node.key, key_id);
  if (!key.ok()) {
    return MakeError(Errc::kPermission, "model key \"" + key_id + "\": " + client::ClientErrcName(key.code()) + ": " +
                                            key.detail());
  }
  return std::move(key).value();
}

}  // namespace cllm::app
