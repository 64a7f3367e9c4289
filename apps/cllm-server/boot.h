// boot.h — cllm-server's preparation phase: which model it serves, and, with
// cllm-trust, attestation → token → model key → unsealing in memory.
//
//   plain GGUF    model digest = SHA-256 of the file; mmap'd as usual
//   sealed model  model digest = the sealed header's plaintext digest; the
//                 key comes only from cllm-trust's broker after attestation,
//                 the plaintext only ever exists in locked memory
//                 (base/locked_buffer.h) and is checked against the digest
//                 before the engine sees it (crypto/sealed_model.h).
#pragma once

#include <array>
#include <filesystem>
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

// InspectModel reads a sealed file's header, or hashes a plain GGUF file.
Result<ModelInput> InspectModel(const std::filesystem::path& path);

// LoadSealedModel decrypts `path` with `key` into locked memory (progress on
// a terminal) and loads the engine model from there.
Result<std::unique_ptr<engine::Model>> LoadSealedModel(const std::filesystem::path& path, ByteSpan key);

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
  const std::string& url() const { return url_; }

 private:
  TrustBoot(trust::TrustEndpoint ep, std::string url, std::string policy)
      : ep_(std::move(ep)), url_(std::move(url)), policy_(std::move(policy)) {}
  trust::TrustEndpoint ep_;
  std::string url_;
  std::string policy_;
};

}  // namespace cllm::app
