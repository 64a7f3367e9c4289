#include "trust/signing_keys.h"

#include <algorithm>
#include <mutex>

#include "trust/jose.h"

namespace cllm::trust {
namespace {

std::string Label(const std::string& kid) { return "signing-key:" + kid; }

}  // namespace

Result<SigningKeys::Key> SigningKeys::Create(int64_t now) {
  auto priv = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  if (!priv.ok()) return MakeError(Errc::kCrypto, "signing key: " + priv.detail());
  Key k;
  k.public_jwk = PublicJwk(priv->public_key());
  k.kid = JwkThumbprint(k.public_jwk);
  k.public_jwk["kid"] = k.kid;
  k.public_jwk["use"] = "sig";
  k.public_jwk["alg"] = "ES256";
  SecretBytes pkcs8 = priv->ToPkcs8Der();
  CLLM_RETURN_IF_ERROR(store_.AddSigningKey({k.kid, box_.Seal(Label(k.kid), pkcs8.span()), now, std::nullopt}));
  k.key = std::make_shared<const crypto::PrivateKey>(std::move(priv).value());
  return k;
}

Result<std::unique_ptr<SigningKeys>> SigningKeys::Load(Store& store, const SecretBox& box, int64_t now,
                                                       std::chrono::seconds overlap) {
  std::unique_ptr<SigningKeys> self(new SigningKeys(store, box, overlap));
  CLLM_RETURN_IF_ERROR(self->Reload(now));
  return self;
}

Status<> SigningKeys::Reload(int64_t now) {
  std::unique_lock lock(mu_);
  CLLM_ASSIGN_OR_RETURN(auto rows, store_.SigningKeys());
  std::vector<Key> keys;
  for (const auto& row : rows) {
    if (row.retired && *row.retired + overlap_.count() < now) {
      CLLM_RETURN_IF_ERROR(store_.DeleteSigningKey(row.kid));
      continue;
    }
    // A key already held is not unsealed again; its retirement may be news.
    auto held = std::find_if(keys_.begin(), keys_.end(), [&](const Key& k) { return k.kid == row.kid; });
    if (held != keys_.end()) {
      Key k = *held;
      k.retired = row.retired;
      keys.push_back(std::move(k));
      continue;
    }
    CLLM_ASSIGN_OR_RETURN(SecretBytes pkcs8, box_.Open(Label(row.kid), row.sealed_pkcs8));
    auto priv = crypto::PrivateKey::FromPkcs8Der(pkcs8.span());
    if (!priv.ok()) return MakeError(Errc::kCrypto, "signing key " + row.kid + ": " + priv.detail());
    Key k;
    k.kid = row.kid;
    k.public_jwk = PublicJwk(priv->public_key());
    k.public_jwk["kid"] = k.kid;
    k.public_jwk["use"] = "sig";
    k.public_jwk["alg"] = "ES256";
    k.retired = row.retired;
    k.key = std::make_shared<const crypto::PrivateKey>(std::move(priv).value());
    keys.push_back(std::move(k));
  }
  // Exactly one active key, the newest not retired: an interrupted rotation
  // (new key stored, old one not yet retired — or another replica's rotation
  // caught half-way) is finished here; retiring twice keeps the first time.
  // A retired key may be newer than the active one by `created` (replicas
  // whose clocks differ: one rotated "later", another retired its key): it
  // stays retired and the active key stays, rather than each reload making
  // a new key.
  auto active = keys.end();
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
    if (!it->retired) {
      active = std::prev(it.base());
      break;
    }
  }
  for (auto it = keys.begin(); it != keys.end(); ++it) {
    if (it->retired || it == active) continue;
    it->retired = now;
    CLLM_RETURN_IF_ERROR(store_.RetireSigningKey(it->kid, now));
  }
  if (active == keys.end()) {
    CLLM_ASSIGN_OR_RETURN(Key k, Create(now));
    keys.push_back(std::move(k));
  } else if (std::next(active) != keys.end()) {
    Key k = std::move(*active);  // the active key is the last (SignJwt)
    keys.erase(active);
    keys.push_back(std::move(k));
  }
  keys_ = std::move(keys);
  return OkStatus();
}

Result<std::string> SigningKeys::SignJwt(const nlohmann::json& claims) const {
  std::shared_ptr<const crypto::PrivateKey> key;
  std::string kid;
  {
    std::shared_lock lock(mu_);
    key = keys_.back().key;
    kid = keys_.back().kid;
  }
  auto jwt = trust::SignJwt(*key, kid, claims);
  if (!jwt.ok()) return MakeError(Errc::kCrypto, std::string("token signing: ") + jwt.detail());
  return std::move(jwt).value();
}

Result<std::string> SigningKeys::SignJws(const std::string& typ, std::string_view payload) const {
  std::shared_ptr<const crypto::PrivateKey> key;
  std::string kid;
  {
    std::shared_lock lock(mu_);
    key = keys_.back().key;
    kid = keys_.back().kid;
  }
  auto jws = trust::SignJws(*key, {{"kid", kid}, {"typ", typ}}, payload);
  if (!jws.ok()) return MakeError(Errc::kCrypto, std::string("statement signing: ") + jws.detail());
  return std::move(jws).value();
}

nlohmann::json SigningKeys::Jwks() const {
  std::shared_lock lock(mu_);
  nlohmann::json keys = nlohmann::json::array();
  for (auto it = keys_.rbegin(); it != keys_.rend(); ++it) keys.push_back(it->public_jwk);
  return {{"keys", keys}};
}

std::string SigningKeys::active_kid() const {
  std::shared_lock lock(mu_);
  return keys_.back().kid;
}

Result<std::string> SigningKeys::Rotate(int64_t now) {
  std::unique_lock lock(mu_);
  CLLM_ASSIGN_OR_RETURN(Key k, Create(now));
  CLLM_RETURN_IF_ERROR(store_.RetireSigningKey(keys_.back().kid, now));
  keys_.back().retired = now;
  keys_.push_back(std::move(k));
  return keys_.back().kid;
}

Result<int> SigningKeys::Prune(int64_t now) {
  std::unique_lock lock(mu_);
  int dropped = 0;
  for (auto it = keys_.begin(); it != keys_.end();) {
    if (it->retired && *it->retired + overlap_.count() < now) {
      CLLM_RETURN_IF_ERROR(store_.DeleteSigningKey(it->kid));
      it = keys_.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  return dropped;
}

}  // namespace cllm::trust
