// service.h — cllm-trust: the attestation service, token issuer and key broker.
//
// Routes (JSON; docs/trust.md is the specification):
//   POST /v1/challenge                  single-use nonce with expiry
//   POST /v1/attest                     evidence → verified, appraised → token (JWT, ES256)
//   GET  /.well-known/jwks.json         token verification keys (offline verification)
//   POST /v1/keys/{key_id}              token + proof of possession → model key as JWE (ECDH-ES)
//   GET  /health
//   /v1/admin/…                         reference values, model keys, signing-key rotation,
//                                       audit log (Authorization: Bearer <admin token>)
//
// The service is transport-neutral (Handle); apps/cllm-trust serves it over
// HTTPS with net::Server. Verification runs without any lock; the
// store serialises only its short bookkeeping statements.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <variant>

#include "base/result.h"
#include "base/time.h"
#include "net/server.h"
#include "trust/policy_doc.h"
#include "trust/secret_box.h"
#include "trust/signing_keys.h"
#include "trust/store.h"

namespace cllm::trust {

struct TrustConfig {
  std::string issuer = "cllm-trust";
  std::chrono::seconds token_lifetime{300};  // at most kMaxTokenLifetime
  std::chrono::seconds nonce_lifetime{120};
  // Unauthenticated POST /v1/challenge may not hold more than this many
  // unexpired nonces (each one row): beyond it, 429 until some expire.
  int64_t max_outstanding_nonces = 10000;
  // Refused attestations audited in full per minute; the rest are counted
  // in one summary entry per minute (TrustService::AuditRefusal).
  int refusal_audit_per_minute = 60;
  std::function<TimePoint()> clock = [] { return std::chrono::system_clock::now(); };
};

inline constexpr std::chrono::seconds kMaxTokenLifetime{600};
inline constexpr std::chrono::seconds kLeeway{30};
inline constexpr int64_t kKeyReloadSeconds = 2;

// A typed API error: HTTP status, stable code, explanation.
struct ApiError {
  int status;
  std::string code;
  std::string message;
};

class TrustService {
 public:
  static Result<std::unique_ptr<TrustService>> Create(std::unique_ptr<Store> store, SecretBox box,
                                                      TrustConfig config);
  ~TrustService();

  // EnsureAdminToken returns a new admin token when the store has none yet
  // (first start); otherwise nullopt. Only its SHA-256 is stored.
  Result<std::optional<std::string>> EnsureAdminToken();

  void Handle(const net::Request& request, net::ResponseWriter& out);

  // Operations behind the routes (tests call them directly). Each returns
  // the response body or an ApiError.
  std::variant<nlohmann::json, ApiError> Challenge();
  std::variant<nlohmann::json, ApiError> Attest(const nlohmann::json& request);
  std::variant<nlohmann::json, ApiError> ReleaseKey(const std::string& key_id, const std::string& bearer_token,
                                                    const nlohmann::json& request);
  nlohmann::json Jwks() const { return keys_->Jwks(); }

  Store& store() { return *store_; }
  SigningKeys& signing_keys() { return *keys_; }
  const TrustConfig& config() const { return config_; }

 private:
  TrustService(std::unique_ptr<Store> store, SecretBox box, TrustConfig config)
      : store_(std::move(store)), box_(std::move(box)), config_(std::move(config)) {}
  int64_t Now() const;
  // ReloadKeysIfDue re-reads the signing keys at most every
  // kKeyReloadSeconds when other replicas share the store (their rotation
  // becomes ours: signing, JWKS, token checks at key release).
  void ReloadKeysIfDue();
  void Audit(const std::string& kind, const nlohmann::json& body);
  void AuditRefusal(const std::string& kind, const nlohmann::json& body);
  std::optional<nlohmann::json> TakeRefusalSummaryLocked();
  void FlushRefusalSummary();
  std::variant<nlohmann::json, ApiError> Admin(const net::Request& request, const std::string& path);
  bool AdminAuthorized(const net::Request& request);
  // LoadPolicyDoc returns the named policy, parsed (cached until it changes).
  Result<std::shared_ptr<const PolicyDoc>> LoadPolicyDoc(const std::string& name);

  std::unique_ptr<Store> store_;
  SecretBox box_;
  TrustConfig config_;
  std::unique_ptr<SigningKeys> keys_;
  std::atomic<int64_t> last_purge_{0};
  std::atomic<int64_t> last_key_reload_{0};
  std::shared_mutex policy_mu_;
  std::map<std::string, std::shared_ptr<const PolicyDoc>> policy_cache_;
  struct RefusalWindow {
    int64_t start = 0;
    int logged = 0;
    int64_t suppressed = 0;
    std::map<std::string, int64_t> by_code;
  };
  std::mutex refusal_mu_;
  RefusalWindow refusals_;
};

}  // namespace cllm::trust
