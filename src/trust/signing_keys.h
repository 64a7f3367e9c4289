// signing_keys.h — cllm-trust's token signing keys (ES256) and their rotation.
//
// One key is active and signs new tokens. Rotate() makes a new active key
// and retires the old one; a retired key stays in the JWKS for `overlap`
// (the longest token lifetime plus clock leeway), so every token it signed
// can still be verified offline until it expires, and is then dropped.
// Private keys are stored sealed under the master key (secret_box.h); kid
// is the key's RFC 7638 thumbprint.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/keys.h"
#include "trust/secret_box.h"
#include "trust/store.h"

namespace cllm::trust {

class SigningKeys {
 public:
  // Load reads every key from the store (creating the first one when there
  // is none) and drops keys retired more than `overlap` before `now`.
  static Result<std::unique_ptr<SigningKeys>> Load(Store& store, const SecretBox& box, int64_t now,
                                                   std::chrono::seconds overlap);

  // SignJwt signs `claims` with the active key.
  Result<std::string> SignJwt(const nlohmann::json& claims) const;
  // SignJws signs `payload` as a compact JWS with the active key, header
  // {"alg":"ES256","kid":…,"typ":`typ`}: a statement that is not a token
  // (typ other than "JWT", so VerifyJwt refuses it).
  Result<std::string> SignJws(const std::string& typ, std::string_view payload) const;
  // Jwks is {"keys": [...]}: the active key and retired keys still within
  // their overlap.
  nlohmann::json Jwks() const;
  std::string active_kid() const;

  // Rotate makes a new active key (persisted first) and returns its kid.
  Result<std::string> Rotate(int64_t now);
  // Prune drops retired keys past their overlap; returns how many.
  Result<int> Prune(int64_t now);
  // Reload re-reads the keys from the store: with several cllm-trust
  // replicas on one database, another replica's rotation becomes this one's
  // active key and JWKS (TrustService reloads every kKeyReloadSeconds).
  Status<> Reload(int64_t now);

 private:
  struct Key {
    std::string kid;
    std::shared_ptr<const crypto::PrivateKey> key;
    nlohmann::json public_jwk;
    std::optional<int64_t> retired;
  };
  SigningKeys(Store& store, const SecretBox& box, std::chrono::seconds overlap)
      : store_(store), box_(box), overlap_(overlap) {}
  Result<Key> Create(int64_t now);

  Store& store_;
  const SecretBox& box_;
  std::chrono::seconds overlap_;
  mutable std::shared_mutex mu_;
  std::vector<Key> keys_;  // oldest first; the last is active
};

}  // namespace cllm::trust
