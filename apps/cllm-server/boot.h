// boot.h — cllm-server's preparation phase: which model it serves, and, with
// cllm-trust, attestation → token → model key → unsealing in memory.
//
//   plain GGUF    model digest = SHA-256 of the bytes the engine serves: the
//                 file is read once into locked anonymous memory, hashed as
//                 it is read (crypto/hashed_file.h), never re-read from disk.
//                 --mmap-untrusted-disk keeps the old hash-then-mmap for
//                 trusted local disks: then the digest describes the file
//                 at hashing time only, and the ready file says so.
//   sealed model  model digest = the sealed header's plaintext digest; the
//                 key comes only from cllm-trust's broker after attestation,
//                 the plaintext only ever exists in locked memory
//                 (base/locked_buffer.h) and is checked against the digest
//                 before the engine sees it (crypto/sealed_model.h).
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/secure.h"
#include "channel/ratls.h"
#include "crypto/sealed_model.h"
#include "engine/model/model.h"
#include "trust/trust_client.h"

namespace cllm::app {

struct ModelInput {
  bool sealed = false;
  crypto::SealedHeader header;  // when sealed
  std::array<uint8_t, 32> digest{};
  std::string default_name;
};

// InspectModel reads a sealed file's header; for a plain GGUF file it only
// sets the default name (its digest comes from LoadPlainModel), unless
// `hash_plain` (the --mmap-untrusted-disk path) hashes it by path.
Result<ModelInput> InspectModel(const std::filesystem::path& path, bool hash_plain = false);

// ProgressFn reports bytes done of total while a model is read or unsealed.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;
// StderrProgress prints "<what>: N%" on stderr: updated in place on a
// terminal, otherwise a log line every 5 % for files of 256 MiB or more.
ProgressFn StderrProgress(std::string what);

// A plain GGUF model read into memory, and the digest of exactly those bytes.
struct PlainModel {
  std::unique_ptr<engine::Model> model;
  std::array<uint8_t, 32> digest{};
  bool locked = false;  // the weights are locked in RAM
};

// LoadPlainModel reads `path` once into locked anonymous memory (not in core
// dumps), hashing as it reads, and loads the engine model from that memory:
// what the server attests is what it serves, whatever the disk does later.
Result<PlainModel> LoadPlainModel(const std::filesystem::path& path, const ProgressFn& progress = nullptr);

// LoadSealedModel decrypts `path` with `key` into locked memory and loads the
// engine model from there; the header must still name `expect_digest` (the
// one inspected and attested), so a file swapped since is refused. With
// `require_locked` (the process's memory is locked: the evidence says so),
// plaintext that could not be locked is refused, as for a plain model.
Result<std::unique_ptr<engine::Model>> LoadSealedModel(const std::filesystem::path& path, ByteSpan key,
                                                       const std::array<uint8_t, 32>& expect_digest,
                                                       const ProgressFn& progress = nullptr,
                                                       bool require_locked = false);

// A node identity: the key the token's cnf binds, and the token.
struct NodeIdentity {
  crypto::PrivateKey key;
  trust::Token token;
};

class TrustBoot {
 public:
  static Result<std::unique_ptr<TrustBoot>> Create(const std::string& url, const std::string& ca_file,
                                                   std::string policy);
  // Attest makes a fresh node key and obtains a token for it (each call is a
  // new pinned connection: it runs at boot and at every certificate renewal).
  Result<NodeIdentity> Attest(channel::RaTlsIssuer& issuer);
  // ModelKey asks the broker for `key_id` with the node's token.
  Result<SecretBytes> ModelKey(const NodeIdentity& node, const std::string& key_id);
  // Jwks fetches cllm-trust's token verification keys.
  Result<nlohmann::json> Jwks();
  // E2eKeyList fetches GET /v1/e2e/keys as published (verified by the caller).
  Result<nlohmann::json> E2eKeyList();
  const std::string& url() const { return url_; }

 private:
  TrustBoot(trust::TrustEndpoint ep, std::string url, std::string policy)
      : ep_(std::move(ep)), url_(std::move(url)), policy_(std::move(policy)) {}
  trust::TrustEndpoint ep_;
  std::string url_;
  std::string policy_;
};

}  // namespace cllm::app
