// service.h — cllm-trust: the attestation service, token issuer and key broker.
//
// Routes (JSON; docs/trust.md is the specification):
//   POST /v1/challenge                  single-use nonce with expiry
//   POST /v1/attest                     evidence → verified, appraised → token (JWT, ES256)
//   GET  /.well-known/jwks.json         token verification keys (offline verification)
//   POST /v1/keys/{key_id}              token + proof of possession → model key as JWE (ECDH-ES)
//   GET  /v1/e2e/keys                   the fleet's HPKE key configs with signed statements (e2e_keys.h)
//   GET  /health
//   /v1/admin/…                         reference values, model keys, fleet keys, signing-key
//                                       rotation, audit log (Authorization: Bearer <admin token>)
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
  // Refused attestations and key releases audited in full per minute; the
  // rest are counted in one summary entry per minute
  // (TrustService::AuditRefusal).
  int refusal_audit_per_minute = 60;
  // Tokens issued under a replay policy audited in full per minute, the
  // rest counted per policy in one summary entry per minute: anyone holding
  // one archived evidence file (a server's public certificate carries one)
  // may ask again and again, and such tokens never obtain a key.
  int replay_audit_per_minute = 60;
  // Scheduled fleet-key rotation (TrustService::RunFleetKeySchedule; 0:
  // off), per chain — the fleet keys of one suite and one release policy: the
  // chain's newest key is rotated once it is this old, and the chain's older
  // keys retired once the newest is fleet_key_overlap old. Create checks
  // kMinFleetKeyRotation ≤ rotation, kMinFleetKeyOverlap ≤ overlap <
  // rotation (so a chain never has more than two keys from the schedule).
  std::chrono::seconds fleet_key_rotation{0};
  std::chrono::seconds fleet_key_overlap{3600};
  std::function<TimePoint()> clock = [] { return std::chrono::system_clock::now(); };
};

inline constexpr std::chrono::seconds kMaxTokenLifetime{600};
inline constexpr std::chrono::seconds kLeeway{30};
inline constexpr int64_t kKeyReloadSeconds = 2;
// GET /v1/e2e/keys is answered from memory for this long (other replicas'
// fleet-key changes show within it; this replica's at once).
inline constexpr int64_t kE2eKeysCacheSeconds = 10;
// A fleet key is listed first for its suite (the one clients seal to) only
// once it is this old: replicas polling the list fetch its private part
// before clients use it. Until then the previous key stays first.
inline constexpr int64_t kFleetKeyActivationSeconds = 60;
// Scheduled rotation bounds: a key is retired no sooner than twice the
// activation delay after its successor was made (replicas poll the list every
// 30 s: they hold the successor and clients seal to it by then).
inline constexpr std::chrono::seconds kMinFleetKeyRotation{600};
inline constexpr std::chrono::seconds kMinFleetKeyOverlap{2 * kFleetKeyActivationSeconds};
// FleetKeyScheduleError explains what is wrong with a rotation period and
// overlap (TrustConfig); nullopt when they are valid or rotation is 0 (off).
std::optional<std::string> FleetKeyScheduleError(std::chrono::seconds rotation, std::chrono::seconds overlap);

// A typed API error: HTTP status, stable code, explanation.
struct ApiError {
  int status;
  std::string code;
  std::string message;
};

// What a 500 "audit" after an admin change says: the store made it, the
// audit log has no entry for it (TrustService::Audited).
inline constexpr char kAdminUnaudited[] = "the change was made but is not in the audit log";

class TrustService {
 public:
  static Result<std::unique_ptr<TrustService>> Create(std::unique_ptr<Store> store, SecretBox box,
                                                      TrustConfig config);
  ~TrustService();

  // EnsureAdminToken returns a new admin token when the store has none yet
  // (first start); otherwise nullopt. Only its SHA-256 is stored.
  Result<std::optional<std::string>> EnsureAdminToken();

  void Handle(const net::Request& request, net::ResponseWriter& out);
  // BodyLimit is the most body bytes a request with this head may send
  // (net::ServerOptions::body_limit, decided before a body byte is read):
  // evidence with its collateral (POST /v1/attest) and authenticated admin
  // requests up to kMaxEvidenceBody; every other route, which anyone may
  // call and whose bodies are a few hundred bytes, kMaxSmallBody (parsing
  // JSON costs many times its size in memory).
  static size_t BodyLimit(const net::Request& head);
  static constexpr size_t kMaxEvidenceBody = 8 << 20;
  static constexpr size_t kMaxSmallBody = 64 << 10;

  // Operations behind the routes (tests call them directly). Each returns
  // the response body or an ApiError.
  std::variant<nlohmann::json, ApiError> Challenge();
  std::variant<nlohmann::json, ApiError> Attest(const nlohmann::json& request);
  std::variant<nlohmann::json, ApiError> ReleaseKey(const std::string& key_id, const std::string& bearer_token,
                                                    const nlohmann::json& request);
  nlohmann::json Jwks() const { return keys_->Jwks(); }

  // Fleet HPKE keys (fleet_keys.cc). The private key is a model key with id
  // "fleet-<key_id>-<suite>", released by ReleaseKey under its release
  // policy; E2eKeys is the public GET /v1/e2e/keys.
  std::variant<nlohmann::json, ApiError> E2eKeys();
  // {"suite": "x25519"|"gmt", "release_policy": {…}, "key_id": N (optional)}
  std::variant<nlohmann::json, ApiError> CreateFleetKey(const nlohmann::json& request);
  std::variant<nlohmann::json, ApiError> ListFleetKeys();
  // {"key_id": N (optional when one key is published), "new_key_id": M (optional)}
  std::variant<nlohmann::json, ApiError> RotateFleetKey(const nlohmann::json& request);
  std::variant<nlohmann::json, ApiError> RetireFleetKey(int64_t key_id);
  // SetFleetKeyReleasePolicy (PUT /v1/admin/keys/fleet-N-suite/release-
  // policy) sets the policy of the key's whole chain — every key of its
  // suite with its current release policy — so the schedule goes on with the
  // new policy instead of rotating the old one as a chain of its own.
  std::variant<nlohmann::json, ApiError> SetFleetKeyReleasePolicy(const std::string& model_key_id,
                                                                  const nlohmann::json& release_policy);
  // RunFleetKeySchedule applies the configured rotation once (cllm-trust
  // calls it every 30 s): retires what the overlap has passed, rotates what
  // is due, chain by chain (one chain's failure does not stop the others),
  // and answers {"rotated": [{"key_id", "previous_key_id"}], "retired":
  // [ids], "errors": [{"chain", "code", "message"}]}; an ApiError only when
  // the keys cannot be read at all. Replicas sharing a store may all run it:
  // a successor gets the first free id after its predecessor's, so two
  // replicas rotating one key pick the same id and only one insert succeeds.
  std::variant<nlohmann::json, ApiError> RunFleetKeySchedule();

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
  // Audit appends an entry; a store that refuses it is logged only (refusals,
  // scheduled work). Audited is for what must not happen unrecorded — a key
  // or token handed out, an admin change: the 500 "audit" to answer instead
  // when the entry could not be appended (`what` says what it means).
  void Audit(const std::string& kind, const nlohmann::json& body);
  std::optional<ApiError> Audited(const std::string& kind, const nlohmann::json& body, const std::string& what);
  void AuditRefusal(const std::string& kind, const nlohmann::json& body);
  // AuditReplayToken is Audited("attest", ...) for a token issued in replay
  // mode, within replay_audit_per_minute; past it the token is only counted.
  std::optional<ApiError> AuditReplayToken(const std::string& policy, const nlohmann::json& body);
  struct AuditWindow;
  // AdmitToAudit says whether an entry goes to the log in full in `w`'s
  // current minute (at most `per_minute`) or is only counted under `code`
  // and `kind`; a closing window's summary is written first.
  bool AdmitToAudit(AuditWindow& w, int per_minute, const std::string& kind, const std::string& code);
  std::optional<nlohmann::json> TakeSummaryLocked(AuditWindow& w);
  void FlushAuditSummaries();
  std::variant<nlohmann::json, ApiError> Admin(const net::Request& request, const std::string& path);
  bool AdminAuthorized(const net::Request& request);
  std::variant<nlohmann::json, ApiError> AdminFleetKeys(const net::Request& request, const std::string& path);
  // AddFleetKey generates and stores one fleet key (the create and rotate paths).
  std::variant<nlohmann::json, ApiError> AddFleetKey(const std::string& suite_name, const nlohmann::json& release_policy,
                                                     const nlohmann::json& key_id, const char* action,
                                                     const nlohmann::json& audit_extra);
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
  struct AuditWindow {
    explicit AuditWindow(const char* kind) : summary_kind(kind) {}
    const char* const summary_kind;  // the summary entry's audit kind
    int64_t start = 0;
    int logged = 0;
    int64_t suppressed = 0;
    std::map<std::string, int64_t> by_code;  // refusals: error code; replay tokens: policy
    std::map<std::string, int64_t> by_kind;  // attest_refused, key_refused; attest
  };
  std::mutex refusal_mu_;  // both windows
  AuditWindow refusals_{"attest_refused_summary"};
  AuditWindow replays_{"attest_replay_summary"};
  struct E2eKeysCache {
    int64_t built = 0;
    std::string kid;     // the signing key the statements are by
    uint64_t generation = 0;
    std::optional<nlohmann::json> reply;
  };
  std::mutex fleet_mu_;  // serialises this process's fleet-key changes (choosing a free id, then storing)
  std::mutex e2e_mu_;    // guards e2e_cache_; never held across the store or signing
  E2eKeysCache e2e_cache_;
  std::atomic<uint64_t> fleet_generation_{0};  // bumped by every fleet-key change in this process
};

}  // namespace cllm::trust
