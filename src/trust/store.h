// store.h — cllm-trust's embedded store (SQLite, WAL mode).
//
// Tables: nonces (single use, with expiry), policies (reference values by
// name), model_keys (sealed under the master key, with a release policy),
// signing_keys (sealed; active until retired), audit (hash chain, audit.h),
// meta (schema version, admin token digest). Secrets arrive here already
// sealed (secret_box.h); the store never sees a plaintext key.
//
// Concurrency: one connection guarded by a mutex. Every call is one short
// statement or transaction (microseconds); evidence verification and token
// signing happen outside, so many attestations proceed in parallel and only
// their bookkeeping is serialised. Durability: WAL with synchronous=NORMAL
// by default — an acknowledged change survives a crash or restart of the
// service; a power loss may roll back the last transactions (a nonce or an
// audit entry of that instant). `full_sync` (cllm-trust serve --sync-full)
// fsyncs every commit instead, at a few milliseconds each.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "trust/audit.h"

struct sqlite3;

namespace cllm::trust {

struct ModelKeyRow {
  std::string key_id;
  Bytes sealed_key;
  std::string release_policy;  // JSON (release_policy.h)
  int64_t created = 0;
};

struct SigningKeyRow {
  std::string kid;
  Bytes sealed_pkcs8;
  int64_t created = 0;
  std::optional<int64_t> retired;  // set when a newer key took over
};

enum class NonceState { kOk, kUnknown, kExpired };

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& path, bool full_sync = false);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Result<std::optional<std::string>> GetMeta(const std::string& key);
  Status<> PutMeta(const std::string& key, const std::string& value);

  Status<> AddNonce(ByteSpan nonce, int64_t expires);
  // ConsumeNonce removes the nonce whatever its state: a nonce is good for
  // one attempt. kUnknown covers never issued and already used.
  Result<NonceState> ConsumeNonce(ByteSpan nonce, int64_t now);
  // PurgeNonces drops expired nonces; returns how many.
  Result<int> PurgeNonces(int64_t now);

  Status<> PutPolicy(const std::string& name, const std::string& json, int64_t now);
  Result<std::optional<std::string>> GetPolicy(const std::string& name);
  Result<std::vector<std::string>> ListPolicies();
  Result<bool> DeletePolicy(const std::string& name);

  // PutModelKey inserts; kInvalidArgument when key_id exists (keys are never
  // silently replaced: a new model version gets a new key id).
  Status<> PutModelKey(const ModelKeyRow& row);
  Result<std::optional<ModelKeyRow>> GetModelKey(const std::string& key_id);
  Status<> SetReleasePolicy(const std::string& key_id, const std::string& json);
  Result<std::vector<ModelKeyRow>> ListModelKeys();  // sealed_key left empty

  Status<> AddSigningKey(const SigningKeyRow& row);
  Result<std::vector<SigningKeyRow>> SigningKeys();  // oldest first
  Status<> RetireSigningKey(const std::string& kid, int64_t when);
  Status<> DeleteSigningKey(const std::string& kid);

  // AppendAudit chains a new entry to the head and returns it.
  Result<AuditEntry> AppendAudit(const std::string& kind, const std::string& body, int64_t time);
  Result<std::vector<AuditEntry>> ReadAudit(uint64_t from_seq, uint64_t limit);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status<> Exec(const char* sql);
  sqlite3* db_;
  std::mutex mu_;
};

}  // namespace cllm::trust
