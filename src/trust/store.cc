// store.cc — opening and checking the store; meta, nonces and the audit log
// (store.h). Policies, model keys and signing keys: store_rows.cc; the
// schema 1 → 2 upgrade: store_upgrade.cc.
#include "trust/store.h"

#include <sqlite3.h>

#include <cstring>

#include "base/encoding.h"
#include "trust/row_mac.h"
#include "trust/store_sql.h"

namespace cllm::trust {

using internal::DbError;
using internal::Done;
using internal::Stmt;
using internal::Tampered;
using internal::kAuditKeyLabel;
using internal::kAuditKeyMeta;
using internal::kRowMacLabel;

namespace {

constexpr char kSchemaV2[] = R"sql(
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL, ver INTEGER NOT NULL DEFAULT 1, mac BLOB);
CREATE TABLE IF NOT EXISTS nonces(nonce BLOB PRIMARY KEY, expires INTEGER NOT NULL, mac BLOB);
CREATE TABLE IF NOT EXISTS policies(name TEXT PRIMARY KEY, json TEXT NOT NULL, updated INTEGER NOT NULL,
                                    ver INTEGER NOT NULL DEFAULT 1, mac BLOB);
CREATE TABLE IF NOT EXISTS model_keys(key_id TEXT PRIMARY KEY, sealed_key BLOB NOT NULL,
                                      release_policy TEXT NOT NULL, created INTEGER NOT NULL,
                                      ver INTEGER NOT NULL DEFAULT 1, mac BLOB);
CREATE TABLE IF NOT EXISTS signing_keys(kid TEXT PRIMARY KEY, sealed_pkcs8 BLOB NOT NULL,
                                        created INTEGER NOT NULL, retired INTEGER,
                                        ver INTEGER NOT NULL DEFAULT 1, mac BLOB);
CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, kind TEXT NOT NULL,
                                 body TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL, sig BLOB);
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces(expires);
)sql";

Digest32 ToDigest(const Bytes& b) {
  Digest32 d{};
  if (b.size() == d.size()) std::memcpy(d.data(), b.data(), d.size());
  return d;
}

std::string NonceKey(ByteSpan nonce) { return HexEncode(nonce); }

}  // namespace

// RawSchema reads meta.schema without authentication ("" when the store is
// new): it only decides which code path opens the file.
Result<std::string> internal::RawSchema(sqlite3* db) {
  Stmt t(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
  if (!t.ok() || t.Step() != SQLITE_ROW) return DbError(db, "schema");
  if (t.Int(0) == 0) return std::string();
  Stmt s(db, "SELECT v FROM meta WHERE k = 'schema'");
  if (!s.ok()) return DbError(db, "schema");
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::string("?");
  if (rc != SQLITE_ROW) return DbError(db, "schema");
  return s.Text(0);
}

// ---------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------

Result<std::unique_ptr<Store>> Store::OpenRaw(const std::filesystem::path& path, bool full_sync) {
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
  return store;
}

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& path, const SecretBox& box, bool full_sync) {
  CLLM_ASSIGN_OR_RETURN(auto store, OpenRaw(path, full_sync));
  CLLM_ASSIGN_OR_RETURN(std::string schema, internal::RawSchema(store->db_));
  store->mac_key_ = box.DeriveKey(kRowMacLabel);
  if (schema.empty()) {
    // A new store: tables, the schema row and the audit key in one transaction.
    CLLM_RETURN_IF_ERROR(store->Exec("BEGIN IMMEDIATE"));
    auto st = store->Exec(kSchemaV2);
    if (st.ok()) st = store->PutMetaLocked("schema", kStoreSchema);
    if (st.ok()) st = store->LoadOrCreateAuditKey(box, /*create=*/true);
    if (!st.ok()) {
      (void)store->Exec("ROLLBACK");
      return st.error();
    }
    CLLM_RETURN_IF_ERROR(store->Exec("COMMIT"));
    return store;
  }
  if (schema == "1") {
    return MakeError(Errc::kUnsupported,
                     path.string() + ": store schema 1 (written before cllm-trust authenticated its rows); run "
                                     "`cllm-trust upgrade --state-dir DIR` once, after making sure the file was not "
                                     "altered: the upgrade vouches for every row as it is (docs/trust.md)");
  }
  if (schema != kStoreSchema) {
    return MakeError(Errc::kUnsupported, path.string() + ": store schema " + schema +
                                             " is not one this version understands (" + kStoreSchema + ")");
  }
  CLLM_ASSIGN_OR_RETURN(auto checked, store->GetMetaLocked("schema"));  // authenticated this time
  (void)checked;
  CLLM_RETURN_IF_ERROR(store->LoadOrCreateAuditKey(box, /*create=*/false));
  CLLM_RETURN_IF_ERROR(store->VerifyAll());
  {
    Stmt n(store->db_, "SELECT count(*) FROM nonces");
    if (!n.ok() || n.Step() != SQLITE_ROW) return DbError(store->db_, "nonces");
    store->nonce_count_ = n.Int(0);
  }
  return store;
}

Result<std::unique_ptr<Store>> Store::OpenAuditReader(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return MakeError(Errc::kIo, "cannot open the store " + path.string() + ": " + why);
  }
  std::unique_ptr<Store> store(new Store(db));
  Stmt probe(db, "SELECT sig FROM audit LIMIT 0");
  store->has_sig_column_ = probe.ok();
  return store;
}

Store::Store(sqlite3* db) : db_(db), stmts_(std::make_unique<internal::StmtCache>(db)) {}

Store::~Store() {
  stmts_.reset();  // statements are finalized before their connection closes
  sqlite3_close(db_);
}

Status<> Store::Run(const char* sql) {
  CLLM_PREPARE(s, sql);
  if (s.Step() != SQLITE_DONE) return MakeError(Errc::kIo, std::string("store: ") + sqlite3_errmsg(db_));
  return OkStatus();
}

Status<> Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return MakeError(Errc::kIo, std::string("store: ") + why);
  }
  return OkStatus();
}

Status<> Store::LoadOrCreateAuditKey(const SecretBox& box, bool create) {
  CLLM_ASSIGN_OR_RETURN(auto sealed_hex, GetMetaLocked(kAuditKeyMeta));
  if (!sealed_hex) {
    if (!create) {
      return MakeError(Errc::kCrypto, std::string("store row meta[\"") + kAuditKeyMeta +
                                          "\"] is missing: the audit key was deleted, so the audit log can no "
                                          "longer be signed or checked");
    }
    auto priv = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
    if (!priv.ok()) return MakeError(Errc::kCrypto, "audit key: " + priv.detail());
    SecretBytes pkcs8 = priv->ToPkcs8Der();
    CLLM_RETURN_IF_ERROR(PutMetaLocked(kAuditKeyMeta, HexEncode(box.Seal(kAuditKeyLabel, pkcs8.span()))));
    audit_pub_ = priv->public_key();
    audit_priv_ = std::move(priv).value();
    return OkStatus();
  }
  auto blob = HexDecode(*sealed_hex);
  if (!blob.ok()) return Tampered("meta", kAuditKeyMeta);
  CLLM_ASSIGN_OR_RETURN(SecretBytes pkcs8, box.Open(kAuditKeyLabel, *blob));
  auto priv = crypto::PrivateKey::FromPkcs8Der(pkcs8.span());
  if (!priv.ok()) return MakeError(Errc::kCrypto, "audit key: " + priv.detail());
  audit_pub_ = priv->public_key();
  audit_priv_ = std::move(priv).value();
  return OkStatus();
}

Status<> Store::VerifyAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    CLLM_PREPARE(s, "SELECT k, v, ver, mac FROM meta");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      if (!RowMacOk(mac_key_, "meta", s.Text(0), s.Int(2), {s.Text(1)}, s.Blob(3))) return Tampered("meta", s.Text(0));
    }
    if (rc != SQLITE_DONE) return DbError(db_, "meta");
    CLLM_PREPARE(n, "SELECT nonce, expires, mac FROM nonces");
    while ((rc = n.Step()) == SQLITE_ROW) {
      const std::string key = NonceKey(n.Blob(0));
      if (!RowMacOk(mac_key_, "nonces", key, 1, {n.Int(1)}, n.Blob(2))) return Tampered("nonces", key);
    }
    if (rc != SQLITE_DONE) return DbError(db_, "nonces");
  }
  CLLM_RETURN_IF_ERROR(ListPolicies());
  CLLM_RETURN_IF_ERROR(ListModelKeys());
  CLLM_RETURN_IF_ERROR(SigningKeys());
  // The audit log: the whole hash chain (cheap) and the head's signature,
  // which covers every entry through the chain. Each entry's own signature
  // is checked by `cllm trust audit verify`.
  std::vector<AuditEntry> tail;
  AuditHead head;
  for (uint64_t from = 1;;) {
    CLLM_ASSIGN_OR_RETURN(auto page, ReadAudit(from, 10000));
    if (page.empty()) break;
    // VerifyAuditChain starts at seq 1; continue from the previous page by
    // checking links here and hashes there.
    for (const AuditEntry& e : page) {
      const std::string where = "audit entry " + std::to_string(e.seq) + ": ";
      if (e.seq != head.seq + 1 || !ConstantTimeEqual(e.prev_hash, head.hash) ||
          !ConstantTimeEqual(AuditHash(e.seq, e.time, e.kind, e.body, e.prev_hash), e.hash)) {
        return MakeError(Errc::kCrypto, "store table audit: " + where +
                                            "the hash chain is broken (run `cllm trust audit verify` for details)");
      }
      head.seq = e.seq;
      head.hash = e.hash;
    }
    from = page.back().seq + 1;
    tail.assign(page.end() - 1, page.end());
    if (page.size() < 10000) break;
  }
  if (!tail.empty()) {
    const AuditEntry& e = tail.back();
    const bool signed_ok = !e.sig.empty() && crypto::EcdsaVerify(*audit_pub_, crypto::HashAlg::kSha256,
                                                                 AuditSignedMessage(e.seq, e.hash), e.sig,
                                                                 crypto::SigFormat::kRaw)
                                                 .ok();
    if (!signed_ok) {
      return MakeError(Errc::kCrypto, "store table audit: the head (entry " + std::to_string(e.seq) +
                                          ") is not signed by this store's audit key: the log was altered and "
                                          "its chain recomputed");
    }
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------
// meta(k, v, ver, mac)
// ---------------------------------------------------------------------------

Result<std::optional<std::string>> Store::GetMetaLocked(const std::string& key) {
  CLLM_PREPARE(s, "SELECT v, ver, mac FROM meta WHERE k = ?");
  s.Bind(1, key);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return DbError(db_, "meta");
  std::string v = s.Text(0);
  if (!RowMacOk(mac_key_, "meta", key, s.Int(1), {v}, s.Blob(2))) return Tampered("meta", key);
  return std::optional<std::string>(std::move(v));
}

Status<> Store::PutMetaLocked(const std::string& key, const std::string& value) {
  int64_t ver = 1;
  {
    CLLM_PREPARE(s, "SELECT ver FROM meta WHERE k = ?");
    s.Bind(1, key);
    int rc = s.Step();
    if (rc == SQLITE_ROW) {
      if (s.Int(0) < 0 || s.Int(0) == INT64_MAX) return Tampered("meta", key);
      ver = s.Int(0) + 1;
    } else if (rc != SQLITE_DONE) {
      return DbError(db_, "meta");
    }
  }
  CLLM_PREPARE(s, "INSERT OR REPLACE INTO meta(k, v, ver, mac) VALUES(?, ?, ?, ?)");
  s.Bind(1, key).Bind(2, value).Bind(3, ver).Bind(4, ByteSpan(RowMac(mac_key_, "meta", key, ver, {value})));
  return Done(db_, s, "meta");
}

Result<std::optional<std::string>> Store::GetMeta(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetMetaLocked(key);
}

Status<> Store::PutMeta(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutMetaLocked(key, value);
}

// ---------------------------------------------------------------------------
// nonces(nonce, expires, mac)
// ---------------------------------------------------------------------------

Status<> Store::AddNonce(ByteSpan nonce, int64_t expires) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "INSERT INTO nonces(nonce, expires, mac) VALUES(?, ?, ?)");
  s.Bind(1, nonce).Bind(2, expires).Bind(3, ByteSpan(RowMac(mac_key_, "nonces", NonceKey(nonce), 1, {expires})));
  CLLM_RETURN_IF_ERROR(Done(db_, s, "nonce"));
  ++nonce_count_;
  return OkStatus();
}

Result<NonceState> Store::ConsumeNonce(ByteSpan nonce, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "DELETE FROM nonces WHERE nonce = ? RETURNING expires, mac");
  s.Bind(1, nonce);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return NonceState::kUnknown;
  if (rc != SQLITE_ROW) return DbError(db_, "nonce");
  const int64_t expires = s.Int(0);
  const Bytes mac = s.Blob(1);
  if (s.Step() != SQLITE_DONE) return DbError(db_, "nonce");
  --nonce_count_;
  // A nonce row someone inserted (to replay old evidence) has no valid MAC.
  if (!RowMacOk(mac_key_, "nonces", NonceKey(nonce), 1, {expires}, mac)) return Tampered("nonces", NonceKey(nonce));
  return expires < now ? NonceState::kExpired : NonceState::kOk;
}

Result<int> Store::PurgeNonces(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "DELETE FROM nonces WHERE expires < ?");
  s.Bind(1, now);
  CLLM_RETURN_IF_ERROR(Done(db_, s, "nonce purge"));
  const int purged = sqlite3_changes(db_);
  nonce_count_ -= purged;
  return purged;
}

int64_t Store::CountNonces() {
  std::lock_guard<std::mutex> lock(mu_);
  return nonce_count_;
}

// ---------------------------------------------------------------------------
// audit(seq, time, kind, body, prev_hash, hash, sig)
// ---------------------------------------------------------------------------

namespace {

constexpr char kAuditHeadSql[] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
constexpr char kAuditInsertSql[] =
    "INSERT INTO audit(seq, time, kind, body, prev_hash, hash, sig) VALUES(?, ?, ?, ?, ?, ?, ?)";
// At most this many appends share one transaction (a bound on how long the
// leader keeps the others waiting).
constexpr size_t kMaxAuditBatch = 256;

}  // namespace

// CLLM_READ_AUDIT_HEAD sets (seq, hash) of the newest entry, (0, zeros) for an
// empty log; mu_ held. Returns a kIo error from the function on failure.
#define CLLM_READ_AUDIT_HEAD(out_seq, out_hash)          \
  do {                                                   \
    CLLM_PREPARE(head, kAuditHeadSql);                   \
    int rc = head.Step();                                \
    if (rc == SQLITE_ROW) {                              \
      out_seq = static_cast<uint64_t>(head.Int(0));      \
      out_hash = ToDigest(head.Blob(1));                 \
    } else if (rc == SQLITE_DONE) {                      \
      out_seq = 0;                                       \
      out_hash = Digest32{};                             \
    } else {                                             \
      return DbError(db_, "audit");                      \
    }                                                    \
  } while (0)

Result<AuditEntry> Store::AppendAuditLocked(const std::string& kind, const std::string& body, int64_t time) {
  if (!audit_priv_) return MakeError(Errc::kInternal, "the store was opened without its audit key");
  AuditEntry e;
  CLLM_READ_AUDIT_HEAD(e.seq, e.prev_hash);
  e.seq += 1;
  e.time = time;
  e.kind = kind;
  e.body = body;
  e.hash = AuditHash(e.seq, e.time, e.kind, e.body, e.prev_hash);
  CLLM_ASSIGN_OR_RETURN(e.sig, SignAuditHead(*audit_priv_, e.seq, e.hash));
  CLLM_PREPARE(ins, kAuditInsertSql);
  ins.Bind(1, static_cast<int64_t>(e.seq)).Bind(2, e.time).Bind(3, e.kind).Bind(4, e.body);
  ins.Bind(5, ByteSpan(e.prev_hash)).Bind(6, ByteSpan(e.hash)).Bind(7, ByteSpan(e.sig));
  if (ins.Step() != SQLITE_DONE) return DbError(db_, "audit");
  return e;
}

// Group commit: the first caller to find no leader becomes one, takes every
// queued append (its own included) and writes them; the others wait for
// their result. While one batch is written the next one queues up, so under
// load each transaction carries many appends and under no load one.
Result<AuditEntry> Store::AppendAudit(const std::string& kind, const std::string& body, int64_t time) {
  PendingAudit mine{kind, body, time, std::nullopt};
  std::unique_lock<std::mutex> lock(audit_mu_);
  audit_queue_.push_back(&mine);
  while (!mine.result) {
    if (audit_leader_) {
      audit_cv_.wait(lock);
      continue;
    }
    audit_leader_ = true;
    std::vector<PendingAudit*> batch;
    while (!audit_queue_.empty() && batch.size() < kMaxAuditBatch) {
      batch.push_back(audit_queue_.front());
      audit_queue_.pop_front();
    }
    lock.unlock();
    CommitAuditBatch(batch);
    lock.lock();
    audit_leader_ = false;
    audit_cv_.notify_all();
  }
  return std::move(*mine.result);
}

void Store::CommitAuditBatch(std::vector<PendingAudit*>& batch) {
  auto fail = [&](const Error<Errc>& e) {
    for (PendingAudit* p : batch) p->result.emplace(e);
  };
  if (!audit_priv_) return fail(MakeError(Errc::kInternal, "the store was opened without its audit key"));
  // 1. Chain every entry to the current head and sign it: no lock held
  //    (only the leader appends, so the head cannot move meanwhile; step 3
  //    checks that anyway).
  uint64_t head_seq = 0;
  Digest32 head_hash{};
  auto head_st = [&]() -> Status<> {
    std::lock_guard<std::mutex> lock(mu_);
    CLLM_READ_AUDIT_HEAD(head_seq, head_hash);
    return OkStatus();
  }();
  if (!head_st.ok()) return fail(head_st.error());
  std::vector<AuditEntry> entries;
  entries.reserve(batch.size());
  uint64_t seq = head_seq;
  Digest32 prev = head_hash;
  for (const PendingAudit* p : batch) {
    AuditEntry e;
    e.seq = ++seq;
    e.time = p->time;
    e.kind = p->kind;
    e.body = p->body;
    e.prev_hash = prev;
    e.hash = AuditHash(e.seq, e.time, e.kind, e.body, e.prev_hash);
    auto sig = SignAuditHead(*audit_priv_, e.seq, e.hash);
    if (!sig.ok()) return fail(sig.error());
    e.sig = std::move(sig).value();
    prev = e.hash;
    entries.push_back(std::move(e));
  }
  // 2. One transaction for the batch.
  auto st = [&]() -> Status<> {
    std::lock_guard<std::mutex> lock(mu_);
    CLLM_RETURN_IF_ERROR(Run("BEGIN IMMEDIATE"));
    auto body = [&]() -> Status<> {
      // 3. The head we chained to must still be the head: another process
      //    writing the same file (unsupported) would otherwise fork the chain.
      uint64_t now_seq = 0;
      Digest32 now_hash{};
      CLLM_READ_AUDIT_HEAD(now_seq, now_hash);
      if (now_seq != head_seq || !ConstantTimeEqual(now_hash, head_hash)) {
        return MakeError(Errc::kIo, "audit: the log's head moved while a batch was signed (is a second "
                                    "cllm-trust writing this store?)");
      }
      for (const AuditEntry& e : entries) {
        CLLM_PREPARE(ins, kAuditInsertSql);
        ins.Bind(1, static_cast<int64_t>(e.seq)).Bind(2, e.time).Bind(3, e.kind).Bind(4, e.body);
        ins.Bind(5, ByteSpan(e.prev_hash)).Bind(6, ByteSpan(e.hash)).Bind(7, ByteSpan(e.sig));
        if (ins.Step() != SQLITE_DONE) return DbError(db_, "audit");
      }
      return Run("COMMIT");
    }();
    if (!body.ok()) (void)Run("ROLLBACK");
    return body;
  }();
  if (!st.ok()) return fail(st.error());
  for (size_t i = 0; i < batch.size(); ++i) batch[i]->result.emplace(std::move(entries[i]));
}

Result<std::vector<AuditEntry>> Store::ReadAudit(uint64_t from_seq, uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, has_sig_column_
                     ? "SELECT seq, time, kind, body, prev_hash, hash, sig FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?"
                     : "SELECT seq, time, kind, body, prev_hash, hash, NULL FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?");
  s.Bind(1, static_cast<int64_t>(std::min<uint64_t>(from_seq, INT64_MAX)));
  s.Bind(2, static_cast<int64_t>(std::min<uint64_t>(limit, INT64_MAX)));
  std::vector<AuditEntry> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({static_cast<uint64_t>(s.Int(0)), s.Int(1), s.Text(2), s.Text(3), ToDigest(s.Blob(4)),
                   ToDigest(s.Blob(5)), s.Blob(6)});
  }
  if (rc != SQLITE_DONE) return DbError(db_, "audit");
  return out;
}

}  // namespace cllm::trust
