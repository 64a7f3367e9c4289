#include "trust/store.h"

#include <sqlite3.h>

#include <cstring>

namespace cllm::trust {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces(nonce BLOB PRIMARY KEY, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS policies(name TEXT PRIMARY KEY, json TEXT NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS model_keys(key_id TEXT PRIMARY KEY, sealed_key BLOB NOT NULL,
                                      release_policy TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS signing_keys(kid TEXT PRIMARY KEY, sealed_pkcs8 BLOB NOT NULL,
                                        created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, kind TEXT NOT NULL,
                                 body TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
INSERT OR IGNORE INTO meta(k, v) VALUES('schema', '1');
)sql";

Error<Errc> DbError(sqlite3* db, const std::string& what) {
  return MakeError(Errc::kIo, what + ": " + sqlite3_errmsg(db));
}

// Stmt is a prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return s_ != nullptr; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, ByteSpan v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  // Step returns SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(s_); }
  std::string Text(int col) {
    const auto* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }
  Bytes Blob(int col) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, col));
    return p ? Bytes(p, p + sqlite3_column_bytes(s_, col)) : Bytes();
  }
  int64_t Int(int col) { return sqlite3_column_int64(s_, col); }
  bool IsNull(int col) { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

Digest32 ToDigest(const Bytes& b) {
  Digest32 d{};
  if (b.size() == d.size()) std::memcpy(d.data(), b.data(), d.size());
  return d;
}

#define CLLM_PREPARE(stmt, sql)      \
  Stmt stmt(db_, sql);               \
  if (!stmt.ok()) return DbError(db_, "prepare")

Status<> Done(sqlite3* db, Stmt& s, const char* what) {
  int rc = s.Step();
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return DbError(db, what);
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& path, bool full_sync) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return MakeError(Errc::kIo, "cannot open the store " + path.string() + ": " + why);
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                             "PRAGMA foreign_keys=ON"}) {
    CLLM_RETURN_IF_ERROR(store->Exec(pragma));
  }
  CLLM_RETURN_IF_ERROR(store->Exec(kSchema));
  auto schema = store->GetMeta("schema");
  if (!schema.ok()) return schema.error();
  if (!*schema || **schema != "1") {
    return MakeError(Errc::kUnsupported, path.string() + ": store schema " + (*schema ? **schema : "?") +
                                             " is not one this version understands (1)");
  }
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status<> Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return MakeError(Errc::kIo, std::string("store: ") + why);
  }
  return OkStatus();
}

Result<std::optional<std::string>> Store::GetMeta(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT v FROM meta WHERE k = ?");
  s.Bind(1, key);
  int rc = s.Step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(s.Text(0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return DbError(db_, "meta");
}

Status<> Store::PutMeta(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "INSERT INTO meta(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v");
  s.Bind(1, key).Bind(2, value);
  return Done(db_, s, "meta");
}

Status<> Store::AddNonce(ByteSpan nonce, int64_t expires) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "INSERT INTO nonces(nonce, expires) VALUES(?, ?)");
  s.Bind(1, nonce).Bind(2, expires);
  return Done(db_, s, "nonce");
}

Result<NonceState> Store::ConsumeNonce(ByteSpan nonce, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "DELETE FROM nonces WHERE nonce = ? RETURNING expires");
  s.Bind(1, nonce);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return NonceState::kUnknown;
  if (rc != SQLITE_ROW) return DbError(db_, "nonce");
  int64_t expires = s.Int(0);
  if (s.Step() != SQLITE_DONE) return DbError(db_, "nonce");
  return expires < now ? NonceState::kExpired : NonceState::kOk;
}

Result<int> Store::PurgeNonces(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "DELETE FROM nonces WHERE expires < ?");
  s.Bind(1, now);
  CLLM_RETURN_IF_ERROR(Done(db_, s, "nonce purge"));
  return sqlite3_changes(db_);
}

Status<> Store::PutPolicy(const std::string& name, const std::string& json, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s,
               "INSERT INTO policies(name, json, updated) VALUES(?, ?, ?) "
               "ON CONFLICT(name) DO UPDATE SET json = excluded.json, updated = excluded.updated");
  s.Bind(1, name).Bind(2, json).Bind(3, now);
  return Done(db_, s, "policy");
}

Result<std::optional<std::string>> Store::GetPolicy(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT json FROM policies WHERE name = ?");
  s.Bind(1, name);
  int rc = s.Step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(s.Text(0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return DbError(db_, "policy");
}

Result<std::vector<std::string>> Store::ListPolicies() {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT name FROM policies ORDER BY name");
  std::vector<std::string> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(s.Text(0));
  if (rc != SQLITE_DONE) return DbError(db_, "policies");
  return out;
}

Result<bool> Store::DeletePolicy(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "DELETE FROM policies WHERE name = ?");
  s.Bind(1, name);
  CLLM_RETURN_IF_ERROR(Done(db_, s, "policy"));
  return sqlite3_changes(db_) > 0;
}

Status<> Store::PutModelKey(const ModelKeyRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "INSERT INTO model_keys(key_id, sealed_key, release_policy, created) VALUES(?, ?, ?, ?)");
  s.Bind(1, row.key_id).Bind(2, ByteSpan(row.sealed_key)).Bind(3, row.release_policy).Bind(4, row.created);
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) {
    return MakeError(Errc::kInvalidArgument, "key id \"" + row.key_id + "\" is already registered");
  }
  if (rc != SQLITE_DONE) return DbError(db_, "model key");
  return OkStatus();
}

Result<std::optional<ModelKeyRow>> Store::GetModelKey(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT sealed_key, release_policy, created FROM model_keys WHERE key_id = ?");
  s.Bind(1, key_id);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<ModelKeyRow>();
  if (rc != SQLITE_ROW) return DbError(db_, "model key");
  return std::optional<ModelKeyRow>(ModelKeyRow{key_id, s.Blob(0), s.Text(1), s.Int(2)});
}

Status<> Store::SetReleasePolicy(const std::string& key_id, const std::string& json) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "UPDATE model_keys SET release_policy = ? WHERE key_id = ?");
  s.Bind(1, json).Bind(2, key_id);
  CLLM_RETURN_IF_ERROR(Done(db_, s, "model key"));
  if (sqlite3_changes(db_) == 0) return MakeError(Errc::kNotFound, "no key \"" + key_id + "\"");
  return OkStatus();
}

Result<std::vector<ModelKeyRow>> Store::ListModelKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT key_id, release_policy, created FROM model_keys ORDER BY key_id");
  std::vector<ModelKeyRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), {}, s.Text(1), s.Int(2)});
  if (rc != SQLITE_DONE) return DbError(db_, "model keys");
  return out;
}

Status<> Store::AddSigningKey(const SigningKeyRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "INSERT INTO signing_keys(kid, sealed_pkcs8, created, retired) VALUES(?, ?, ?, ?)");
  s.Bind(1, row.kid).Bind(2, ByteSpan(row.sealed_pkcs8)).Bind(3, row.created);
  if (row.retired) {
    s.Bind(4, *row.retired);
  } else {
    s.BindNull(4);
  }
  return Done(db_, s, "signing key");
}

Result<std::vector<SigningKeyRow>> Store::SigningKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT kid, sealed_pkcs8, created, retired FROM signing_keys ORDER BY created, rowid");
  std::vector<SigningKeyRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    SigningKeyRow r{s.Text(0), s.Blob(1), s.Int(2), std::nullopt};
    if (!s.IsNull(3)) r.retired = s.Int(3);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return DbError(db_, "signing keys");
  return out;
}

Status<> Store::RetireSigningKey(const std::string& kid, int64_t when) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "UPDATE signing_keys SET retired = ? WHERE kid = ? AND retired IS NULL");
  s.Bind(1, when).Bind(2, kid);
  return Done(db_, s, "signing key");
}

Status<> Store::DeleteSigningKey(const std::string& kid) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "DELETE FROM signing_keys WHERE kid = ?");
  s.Bind(1, kid);
  return Done(db_, s, "signing key");
}

Result<AuditEntry> Store::AppendAudit(const std::string& kind, const std::string& body, int64_t time) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto rollback = [this](Error<Errc> e) {
    (void)Exec("ROLLBACK");
    return e;
  };
  AuditEntry e;
  {
    Stmt head(db_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (!head.ok()) return rollback(DbError(db_, "audit"));
    int rc = head.Step();
    if (rc == SQLITE_ROW) {
      e.seq = static_cast<uint64_t>(head.Int(0)) + 1;
      e.prev_hash = ToDigest(head.Blob(1));
    } else if (rc == SQLITE_DONE) {
      e.seq = 1;
    } else {
      return rollback(DbError(db_, "audit"));
    }
  }
  e.time = time;
  e.kind = kind;
  e.body = body;
  e.hash = AuditHash(e.seq, e.time, e.kind, e.body, e.prev_hash);
  {
    Stmt ins(db_, "INSERT INTO audit(seq, time, kind, body, prev_hash, hash) VALUES(?, ?, ?, ?, ?, ?)");
    if (!ins.ok()) return rollback(DbError(db_, "audit"));
    ins.Bind(1, static_cast<int64_t>(e.seq)).Bind(2, e.time).Bind(3, e.kind).Bind(4, e.body);
    ins.Bind(5, ByteSpan(e.prev_hash)).Bind(6, ByteSpan(e.hash));
    if (ins.Step() != SQLITE_DONE) return rollback(DbError(db_, "audit"));
  }
  CLLM_RETURN_IF_ERROR(Exec("COMMIT"));
  return e;
}

Result<std::vector<AuditEntry>> Store::ReadAudit(uint64_t from_seq, uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT seq, time, kind, body, prev_hash, hash FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?");
  s.Bind(1, static_cast<int64_t>(from_seq)).Bind(2, static_cast<int64_t>(std::min<uint64_t>(limit, INT64_MAX)));
  std::vector<AuditEntry> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({static_cast<uint64_t>(s.Int(0)), s.Int(1), s.Text(2), s.Text(3), ToDigest(s.Blob(4)),
                   ToDigest(s.Blob(5))});
  }
  if (rc != SQLITE_DONE) return DbError(db_, "audit");
  return out;
}

}  // namespace cllm::trust
