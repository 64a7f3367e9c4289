// secret_box.h — cllm-trust's secrets at rest (token signing keys, model keys).
//
// Every secret the service stores is sealed with AES-256-GCM under one
// 32-byte master key that never touches the database:
//
//   blob = nonce[12] ‖ ciphertext ‖ tag[16],
//   AAD  = "cllm-trust-secret-v1" ‖ u16be(len label) ‖ label
//
// The label names the row the secret belongs to ("signing-key:<kid>",
// "model-key:<key id>"), so a blob copied into another row fails to open.
// The master key comes from a file (64 hex characters, mode 0600) or the
// CLLM_TRUST_MASTER_KEY environment variable; docs/trust.md says how a
// production deployment replaces it with a KMS/HSM unwrap at start-up.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secure.h"

namespace cllm::trust {

class SecretBox {
 public:
  // FromKey takes a 32-byte master key (kInvalidArgument otherwise).
  static Result<SecretBox> FromKey(ByteSpan master_key);
  // Load reads the key from `file` when non-empty, else from the
  // CLLM_TRUST_MASTER_KEY environment variable (64 hex characters), which
  // is then overwritten in place and unset (read once, valid or not).
  static Result<SecretBox> Load(const std::filesystem::path& file);
  // CreateKeyFile writes a fresh random master key to `file` (mode 0600,
  // never overwriting).
  static Status<Errc> CreateKeyFile(const std::filesystem::path& file);

  Bytes Seal(std::string_view label, ByteSpan secret) const;
  // Open fails (kCrypto) on a wrong master key, a wrong label or any changed byte.
  Result<SecretBytes> Open(std::string_view label, ByteSpan blob) const;
  // DeriveKey returns a 32-byte subkey for one purpose:
  // HKDF-SHA256(master key, salt "cllm-trust-kdf-v1", info `label`). Distinct
  // labels give independent keys (the store's row MAC key is one).
  SecretBytes DeriveKey(std::string_view label) const;

 private:
  SecretBytes key_;
};

}  // namespace cllm::trust
