// store.h — cllm-trust's store, tamper-evident, on an embedded SQLite file
// (the default: WAL mode) or on PostgreSQL (several cllm-trust replicas on
// one database), chosen by the location string (store_db.h).
//
// Tables: nonces (single use, with expiry), policies (reference values by
// name), model_keys (sealed under the master key, with a release policy;
// the fleet's HPKE keys too, as "fleet-<N>-<suite>": fleet_keys.cc),
// signing_keys (sealed; active until retired), audit (hash chain signed by
// the audit key, audit.h), meta (schema version, admin token digest, the
// service's sealed TLS and audit keys). Secrets arrive here already sealed
// (secret_box.h); the store never sees a plaintext key.
//
// Tamper evidence (schema 2): every row of meta, policies, model_keys,
// signing_keys and nonces carries a MAC under a key derived from the master
// key, bound to its table, row key and version (row_mac.h). Every read checks
// it and fails with kCrypto naming the row ("store row model_keys[\"k\"] …");
// Open checks every row (and the audit head's signature) first, so a store
// edited while the service was down refuses to open. An update re-MACs a row
// only after its current MAC verified. What this cannot detect — a whole
// older row or file restored, rows deleted — is in docs/trust.md. All of
// this lives here, once, for both engines: a backend only moves typed
// values in and out (store_db.h).
//
// Concurrency within a process: one connection guarded by a mutex. Every
// call is one short statement or transaction (microseconds plus one HMAC;
// a round trip on PostgreSQL); no signature is made and no evidence checked
// under the mutex. Audit appends are group-committed (AppendAudit): callers
// arriving while a batch is being written queue up, and the next leader
// chains and signs all of them outside the mutex, then inserts them in one
// transaction — each entry still hashed and signed on its own.
// Across processes (PostgreSQL replicas): a nonce is consumed by one atomic
// DELETE … RETURNING, so exactly one replica accepts it; an audit batch is
// inserted in an exclusive transaction (an advisory lock) that re-reads the
// head and, when another replica appended since the batch was signed,
// re-chains and re-signs it there — one chain, no gaps, no forks. Updates
// of an existing row are conditional on the version read (a concurrent
// writer makes the update retry on the newer row). The in-memory nonce
// count is per process and re-read from the database by PurgeNonces.
// Durability (SQLite): WAL with synchronous=NORMAL by default — a change is
// durable against a crash or kill of the service once its call returned; a
// power loss or OS crash may roll back the last transactions committed since
// the last checkpoint. `full_sync` (cllm-trust serve --sync-full) fsyncs
// every commit instead. PostgreSQL: the server's own settings (docs/trust.md).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secure.h"
#include "crypto/keys.h"
#include "trust/audit.h"
#include "trust/secret_box.h"

namespace cllm::trust::internal {
class StoreDb;
}  // namespace cllm::trust::internal

namespace cllm::trust {

inline constexpr char kStoreSchema[] = "2";

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

struct StoreOptions {
  enum class Mode {
    kOpenOrCreate,  // create the schema when the database has none
    kCreate,        // the database must have no store yet (cllm-trust init)
    kOpenExisting,  // the store must exist (cllm-trust serve)
  };
  Mode mode = Mode::kOpenOrCreate;
  bool full_sync = false;  // SQLite: fsync every commit
};

// IsPostgresStore says whether `location` names a PostgreSQL database
// ("postgresql://…", "postgres://…" or libpq "key=value …") rather than a
// SQLite file.
bool IsPostgresStore(const std::string& location);

class Store {
 public:
  // Open opens (creating when absent, per options.mode) the schema-2 store
  // at `location` (a SQLite file path or a PostgreSQL connection string)
  // whose rows are authenticated under keys derived from `box`, and checks
  // every row. kUnsupported for a schema-1 store (run Upgrade once) or a
  // database whose tables are not a store; kCrypto naming the first row
  // that fails authentication; kIo when the database cannot be reached;
  // kNotFound / kInvalidArgument when options.mode wants it to exist / not.
  static Result<std::unique_ptr<Store>> Open(const std::string& location, const SecretBox& box,
                                             StoreOptions options = {});
  // OpenAuditReader opens an existing store for ReadAudit only (offline
  // `cllm trust audit verify --db`, no master key; SQLite read-only).
  static Result<std::unique_ptr<Store>> OpenAuditReader(const std::string& location);
  // Upgrade turns a schema-1 store (rows unauthenticated) into schema 2: it
  // MACs every row as it is now, creates the audit key and appends a signed
  // "store_upgrade" entry, in one transaction. Returns the number of rows
  // authenticated. Whatever the rows say at that moment is vouched for, so
  // the operator runs it once, explicitly (cllm-trust upgrade).
  static Result<int> Upgrade(const std::string& location, const SecretBox& box);
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
  // CountNonces is the number of nonce rows, kept in memory (O(1) on the
  // unauthenticated challenge path): exact for SQLite; on PostgreSQL the
  // count read at the last PurgeNonces plus this process's own changes
  // since (other replicas' are not seen until the next purge).
  int64_t CountNonces();
  // where names the database in messages (never a password).
  const std::string& where() const;
  // shared says whether other processes may write this store (PostgreSQL):
  // state cached in memory must then be re-read (SigningKeys::Reload).
  bool shared() const;

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
  // DeleteModelKey removes a key for good (a retired fleet key: its sealed
  // private part is destroyed, so no release can follow); false when absent.
  // The row's bytes are erased from the store's files too where the engine
  // allows (StoreDb::EraseDeleted: SQLite zeroes them and empties its WAL);
  // when a reader keeps that from completing, EraseDeleted retries.
  Result<bool> DeleteModelKey(const std::string& key_id);
  // EraseDeleted retries erasing deleted rows' bytes; true when nothing is
  // left to erase.
  Result<bool> EraseDeleted();

  Status<> AddSigningKey(const SigningKeyRow& row);
  Result<std::vector<SigningKeyRow>> SigningKeys();  // oldest first
  Status<> RetireSigningKey(const std::string& kid, int64_t when);
  Status<> DeleteSigningKey(const std::string& kid);

  // AppendAudit chains a new entry to the head, signs it, stores it and
  // returns it. Concurrent calls are committed together (one transaction
  // for a batch; an error fails the whole batch and leaves the log as it was).
  Result<AuditEntry> AppendAudit(const std::string& kind, const std::string& body, int64_t time);
  Result<std::vector<AuditEntry>> ReadAudit(uint64_t from_seq, uint64_t limit);
  // audit_key is the public half of the key signing audit heads (null for
  // an audit reader).
  const crypto::PublicKey* audit_key() const { return audit_pub_ ? &*audit_pub_ : nullptr; }

 private:
  explicit Store(std::unique_ptr<internal::StoreDb> db);
  static Result<std::unique_ptr<Store>> Connect(const std::string& location, bool full_sync, bool read_only);
  // CreateSchema makes a new store's tables, schema row and audit key in
  // one exclusive transaction; false when another process got there first.
  Result<bool> CreateSchema(const SecretBox& box);
  // RawSchema reads meta.schema without authentication ("" when the
  // database has no store): it only decides which path opens it.
  Result<std::string> RawSchema();
  // VerifyAll checks every authenticated row and the audit head (Open).
  Status<> VerifyAll();
  Status<> LoadOrCreateAuditKey(const SecretBox& box, bool create);
  // Helpers that expect mu_ held.
  Status<> EraseDeletedLocked();
  Result<std::optional<std::string>> GetMetaLocked(const std::string& key);
  Status<> PutMetaLocked(const std::string& key, const std::string& value);
  Result<AuditEntry> AppendAuditLocked(const std::string& kind, const std::string& body, int64_t time);
  Result<AuditHead> ReadAuditHeadLocked();
  Status<> InsertAuditLocked(const AuditEntry& e);

  // Group commit of audit appends (store.cc).
  struct PendingAudit {
    std::string kind, body;
    int64_t time = 0;
    std::optional<Result<AuditEntry>> result;  // set by the leader that wrote it
  };
  void CommitAuditBatch(std::vector<PendingAudit*>& batch);

  std::unique_ptr<internal::StoreDb> db_;  // guarded by mu_
  std::mutex mu_;
  SecretBytes mac_key_;  // K_row (row_mac.h); empty for an audit reader
  std::optional<crypto::PrivateKey> audit_priv_;
  std::optional<crypto::PublicKey> audit_pub_;
  bool has_sig_column_ = true;
  int64_t nonce_count_ = 0;  // rows in nonces; guarded by mu_
  bool erase_pending_ = false;  // deleted rows' bytes may remain in the files; guarded by mu_
  // The newest audit entry this process verified (Open) or wrote; guarded by
  // mu_. Each append checks it is still there: an entry removed from the
  // log's end would otherwise be replaced by the next one, the chain intact.
  std::optional<AuditHead> known_head_;
  Status<> CheckKnownHeadLocked(const AuditHead& now);

  std::mutex audit_mu_;  // guards the three below; never held across SQL or signing
  std::condition_variable audit_cv_;
  std::deque<PendingAudit*> audit_queue_;
  bool audit_leader_ = false;
};

}  // namespace cllm::trust
