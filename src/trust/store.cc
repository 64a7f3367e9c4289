// store.cc — opening and checking the store; meta, nonces and the audit log
// (store.h). Policies, model keys and signing keys: store_rows.cc; the
// schema 1 → 2 upgrade: store_upgrade.cc; the engines: store_sqlite.cc and
// store_pg.cc behind store_db.h.
#include "trust/store.h"

#include <algorithm>
#include <cstring>

#include "base/encoding.h"
#include "trust/row_mac.h"
#include "trust/store_db.h"

namespace cllm::trust {

using internal::SqlRow;
using internal::Tampered;
using internal::kAuditKeyLabel;
using internal::kAuditKeyMeta;
using internal::kRowMacLabel;

namespace {

Digest32 ToDigest(const Bytes& b) {
  Digest32 d{};
  if (b.size() == d.size()) std::memcpy(d.data(), b.data(), d.size());
  return d;
}

std::string NonceKey(ByteSpan nonce) { return HexEncode(nonce); }

}  // namespace

bool IsPostgresStore(const std::string& location) { return internal::IsPostgresLocation(location); }

// RawSchema reads meta.schema without authentication ("" when the database
// holds no store): it only decides which code path opens it.
Result<std::string> Store::RawSchema() {
  CLLM_ASSIGN_OR_RETURN(bool has_meta, db_->HasTable("meta"));
  if (!has_meta) return std::string();
  auto rows = db_->Query("SELECT v FROM meta WHERE k = 'schema'");
  if (!rows.ok()) {
    return MakeError(Errc::kUnsupported, db_->where() + " has a table \"meta\" that is not a cllm-trust store's (" +
                                             rows.detail() + ")");
  }
  if (rows->empty()) return std::string("?");
  return (*rows)[0].Text(0);
}

// ---------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------

Result<std::unique_ptr<Store>> Store::Connect(const std::string& location, bool full_sync, bool read_only) {
  std::unique_ptr<internal::StoreDb> db;
  if (internal::IsPostgresLocation(location)) {
    CLLM_ASSIGN_OR_RETURN(db, internal::OpenPostgres(location, full_sync));
  } else {
    CLLM_ASSIGN_OR_RETURN(db, internal::OpenSqlite(location, full_sync, read_only));
  }
  return std::unique_ptr<Store>(new Store(std::move(db)));
}

Result<bool> Store::CreateSchema(const SecretBox& box) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_RETURN_IF_ERROR(db_->Begin(/*exclusive=*/true));
  auto st = [&]() -> Result<bool> {
    // Under the lock: a replica initialising the same database concurrently
    // either finished (its schema row is there) or waits for us.
    CLLM_ASSIGN_OR_RETURN(std::string schema, RawSchema());
    if (!schema.empty()) return false;
    CLLM_RETURN_IF_ERROR(db_->Script(db_->SchemaSql()));
    CLLM_RETURN_IF_ERROR(PutMetaLocked("schema", kStoreSchema));
    CLLM_RETURN_IF_ERROR(LoadOrCreateAuditKey(box, /*create=*/true));
    CLLM_RETURN_IF_ERROR(db_->Commit());
    return true;
  }();
  if (!st.ok() || !*st) db_->Rollback();
  return st;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& location, const SecretBox& box, StoreOptions options) {
  using Mode = StoreOptions::Mode;
  CLLM_ASSIGN_OR_RETURN(auto store, Connect(location, options.full_sync, /*read_only=*/false));
  const std::string& where = store->db_->where();
  store->mac_key_ = box.DeriveKey(kRowMacLabel);
  CLLM_ASSIGN_OR_RETURN(std::string schema, store->RawSchema());
  if (schema.empty()) {
    if (options.mode == Mode::kOpenExisting) {
      return MakeError(Errc::kNotFound, where + " holds no cllm-trust store: run `cllm-trust init` first");
    }
    CLLM_ASSIGN_OR_RETURN(bool created, store->CreateSchema(box));
    if (created) return store;
    CLLM_ASSIGN_OR_RETURN(schema, store->RawSchema());  // another replica created it meanwhile
  }
  if (options.mode == Mode::kCreate) {
    return MakeError(Errc::kInvalidArgument, where + " already holds a cllm-trust store (schema " + schema + ")");
  }
  if (schema == "1") {
    return MakeError(Errc::kUnsupported,
                     where + ": store schema 1 (written before cllm-trust authenticated its rows); run "
                             "`cllm-trust upgrade --state-dir DIR` once, after making sure the file was not "
                             "altered: the upgrade vouches for every row as it is (docs/trust.md)");
  }
  if (schema != kStoreSchema) {
    return MakeError(Errc::kUnsupported,
                     where + ": store schema " + schema + " is not one this version understands (" + kStoreSchema + ")");
  }
  {
    std::lock_guard<std::mutex> lock(store->mu_);
    CLLM_ASSIGN_OR_RETURN(auto checked, store->GetMetaLocked("schema"));  // authenticated this time
    (void)checked;
    CLLM_RETURN_IF_ERROR(store->LoadOrCreateAuditKey(box, /*create=*/false));
  }
  CLLM_ASSIGN_OR_RETURN(auto foreign, store->db_->ForeignObjects());
  if (!foreign.empty()) {
    std::string names;
    for (const auto& f : foreign) names += (names.empty() ? "" : ", ") + f;
    return MakeError(Errc::kCrypto, where + ": the database has objects cllm-trust never creates (" + names +
                                        "): a trigger can drop or rewrite rows as they are written, the audit log's "
                                        "included; remove them after finding out who added them");
  }
  CLLM_RETURN_IF_ERROR(store->VerifyAll());
  CLLM_ASSIGN_OR_RETURN(auto n, store->db_->Query("SELECT count(*) FROM nonces"));
  store->nonce_count_ = n.empty() ? 0 : n[0].Int(0);
  return store;
}

Result<std::unique_ptr<Store>> Store::OpenAuditReader(const std::string& location) {
  CLLM_ASSIGN_OR_RETURN(auto store, Connect(location, /*full_sync=*/false, /*read_only=*/true));
  store->has_sig_column_ = store->db_->Query("SELECT sig FROM audit LIMIT 0").ok();
  return store;
}

// A SQLite store erases once at start what an earlier process deleted but
// could not erase (a reader held the WAL): EraseDeleted's first call.
Store::Store(std::unique_ptr<internal::StoreDb> db) : db_(std::move(db)), erase_pending_(!db_->postgres()) {}

Store::~Store() = default;

const std::string& Store::where() const { return db_->where(); }

bool Store::shared() const { return db_->postgres(); }

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
    CLLM_ASSIGN_OR_RETURN(auto meta, db_->Query("SELECT k, v, ver, mac FROM meta"));
    for (const SqlRow& r : meta) {
      if (!RowMacOk(mac_key_, "meta", r.Text(0), r.Int(2), {r.Text(1)}, r.Blob(3))) return Tampered("meta", r.Text(0));
    }
    CLLM_ASSIGN_OR_RETURN(auto nonces, db_->Query("SELECT nonce, expires, mac FROM nonces"));
    for (const SqlRow& r : nonces) {
      const std::string key = NonceKey(r.Blob(0));
      if (!RowMacOk(mac_key_, "nonces", key, 1, {r.Int(1)}, r.Blob(2))) return Tampered("nonces", key);
    }
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
    std::lock_guard<std::mutex> lock(mu_);
    known_head_ = head;
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------
// meta(k, v, ver, mac)
// ---------------------------------------------------------------------------

Result<std::optional<std::string>> Store::GetMetaLocked(const std::string& key) {
  CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT v, ver, mac FROM meta WHERE k = ?", {key}));
  if (rows.empty()) return std::optional<std::string>();
  const SqlRow& r = rows[0];
  std::string v = r.Text(0);
  if (!RowMacOk(mac_key_, "meta", key, r.Int(1), {v}, r.Blob(2))) return Tampered("meta", key);
  return std::optional<std::string>(std::move(v));
}

Status<> Store::PutMetaLocked(const std::string& key, const std::string& value) {
  for (int attempt = 0; attempt < internal::kUpdateAttempts; ++attempt) {
    CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT v, ver, mac FROM meta WHERE k = ?", {key}));
    // The old row first: a tampered one is refused, not written over.
    if (!rows.empty() && !RowMacOk(mac_key_, "meta", key, rows[0].Int(1), {rows[0].Text(0)}, rows[0].Blob(2))) {
      return Tampered("meta", key);
    }
    const int64_t old = rows.empty() ? 0 : rows[0].Int(1);
    int64_t ver = 0;
    if (!internal::NextVer(old, &ver)) return Tampered("meta", key);
    // Written only over the version just read: a concurrent writer (another
    // replica) makes this change nothing, and the loop reads again.
    CLLM_ASSIGN_OR_RETURN(int64_t changed,
                          db_->Exec("INSERT INTO meta(k, v, ver, mac) VALUES(?, ?, ?, ?) ON CONFLICT(k) DO UPDATE SET "
                                    "v = excluded.v, ver = excluded.ver, mac = excluded.mac WHERE meta.ver = ?",
                                    {key, value, ver, RowMac(mac_key_, "meta", key, ver, {value}), old}));
    if (changed == 1) return OkStatus();
    internal::BackOff(attempt);
  }
  return internal::Contended("meta", key);
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
  const Bytes key(nonce.begin(), nonce.end());
  CLLM_RETURN_IF_ERROR(db_->Exec("INSERT INTO nonces(nonce, expires, mac) VALUES(?, ?, ?)",
                                 {key, expires, RowMac(mac_key_, "nonces", NonceKey(nonce), 1, {expires})}));
  ++nonce_count_;
  return OkStatus();
}

Result<NonceState> Store::ConsumeNonce(ByteSpan nonce, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  // One atomic statement: of two callers (threads or replicas) racing for
  // the same nonce, exactly one gets its row back.
  CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("DELETE FROM nonces WHERE nonce = ? RETURNING expires, mac",
                                              {Bytes(nonce.begin(), nonce.end())}));
  if (rows.empty()) return NonceState::kUnknown;
  if (rows.size() != 1) return MakeError(Errc::kIo, "nonce: " + std::to_string(rows.size()) + " rows deleted");
  if (nonce_count_ > 0) --nonce_count_;
  // A nonce row someone inserted (to replay old evidence) has no valid MAC.
  const int64_t expires = rows[0].Int(0);
  if (!RowMacOk(mac_key_, "nonces", NonceKey(nonce), 1, {expires}, rows[0].Blob(1))) {
    return Tampered("nonces", NonceKey(nonce));
  }
  return expires < now ? NonceState::kExpired : NonceState::kOk;
}

Result<int> Store::PurgeNonces(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_ASSIGN_OR_RETURN(int64_t purged, db_->Exec("DELETE FROM nonces WHERE expires < ?", {now}));
  // Re-read the count: on a shared database other replicas add and consume
  // nonces this process never sees.
  CLLM_ASSIGN_OR_RETURN(auto n, db_->Query("SELECT count(*) FROM nonces"));
  nonce_count_ = n.empty() ? 0 : n[0].Int(0);
  return static_cast<int>(std::min<int64_t>(purged, INT32_MAX));
}

int64_t Store::CountNonces() {
  std::lock_guard<std::mutex> lock(mu_);
  return nonce_count_;
}

// ---------------------------------------------------------------------------
// audit(seq, time, kind, body, prev_hash, hash, sig)
// ---------------------------------------------------------------------------

namespace {

// At most this many appends share one transaction (a bound on how long the
// leader keeps the others waiting).
constexpr size_t kMaxAuditBatch = 256;

// ChainAndSign numbers `entries` after `head`, links and hashes them and
// signs each new head.
Status<> ChainAndSign(const crypto::PrivateKey& key, const AuditHead& head, std::vector<AuditEntry>& entries) {
  uint64_t seq = head.seq;
  Digest32 prev = head.hash;
  for (AuditEntry& e : entries) {
    e.seq = ++seq;
    e.prev_hash = prev;
    e.hash = AuditHash(e.seq, e.time, e.kind, e.body, e.prev_hash);
    CLLM_ASSIGN_OR_RETURN(e.sig, SignAuditHead(key, e.seq, e.hash));
    prev = e.hash;
  }
  return OkStatus();
}

}  // namespace

Status<> Store::CheckKnownHeadLocked(const AuditHead& now) {
  if (!known_head_) return OkStatus();
  const AuditHead& known = *known_head_;
  const std::string was = "entry " + std::to_string(known.seq) + ", which this process wrote or verified";
  if (now.seq < known.seq) {
    return MakeError(Errc::kCrypto, "store table audit: the log ends at entry " + std::to_string(now.seq) +
                                        ", before " + was + ": entries were removed from its end");
  }
  Digest32 hash = now.hash;
  if (now.seq > known.seq) {
    CLLM_ASSIGN_OR_RETURN(auto rows,
                          db_->Query("SELECT hash FROM audit WHERE seq = ?", {static_cast<int64_t>(known.seq)}));
    if (rows.empty()) return MakeError(Errc::kCrypto, "store table audit: " + was + ", is gone");
    hash = ToDigest(rows[0].Blob(0));
  }
  if (!ConstantTimeEqual(hash, known.hash)) {
    return MakeError(Errc::kCrypto, "store table audit: " + was + ", was replaced");
  }
  return OkStatus();
}

Result<AuditHead> Store::ReadAuditHeadLocked() {
  CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
  AuditHead head;
  if (!rows.empty()) {
    head.seq = static_cast<uint64_t>(rows[0].Int(0));
    head.hash = ToDigest(rows[0].Blob(1));
  }
  return head;
}

Status<> Store::InsertAuditLocked(const AuditEntry& e) {
  CLLM_RETURN_IF_ERROR(db_->Exec(
      "INSERT INTO audit(seq, time, kind, body, prev_hash, hash, sig) VALUES(?, ?, ?, ?, ?, ?, ?)",
      {static_cast<int64_t>(e.seq), e.time, e.kind, e.body, Bytes(e.prev_hash.begin(), e.prev_hash.end()),
       Bytes(e.hash.begin(), e.hash.end()), e.sig}));
  return OkStatus();
}

// AppendAuditLocked appends one entry inside the caller's transaction.
Result<AuditEntry> Store::AppendAuditLocked(const std::string& kind, const std::string& body, int64_t time) {
  if (!audit_priv_) return MakeError(Errc::kInternal, "the store was opened without its audit key");
  CLLM_ASSIGN_OR_RETURN(AuditHead head, ReadAuditHeadLocked());
  std::vector<AuditEntry> one(1);
  one[0].time = time;
  one[0].kind = kind;
  one[0].body = body;
  CLLM_RETURN_IF_ERROR(ChainAndSign(*audit_priv_, head, one));
  CLLM_RETURN_IF_ERROR(InsertAuditLocked(one[0]));
  return one[0];
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
  std::vector<AuditEntry> entries(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    entries[i].time = batch[i]->time;
    entries[i].kind = batch[i]->kind;
    entries[i].body = batch[i]->body;
  }
  // 1. Chain every entry to the current head and sign it, with no lock held:
  //    in this process only the leader appends.
  auto head = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return ReadAuditHeadLocked();
  }();
  if (!head.ok()) return fail(head.error());
  if (auto st = ChainAndSign(*audit_priv_, *head, entries); !st.ok()) return fail(st.error());
  // 2. One exclusive transaction for the batch (across processes too).
  auto st = [&]() -> Status<> {
    std::lock_guard<std::mutex> lock(mu_);
    CLLM_RETURN_IF_ERROR(db_->Begin(/*exclusive=*/true));
    auto body = [&]() -> Status<> {
      // 3. The head as read inside the transaction is the one to chain to.
      //    Another replica on the same database may have appended since
      //    step 1: chain and sign again from its head (one chain, no fork).
      CLLM_ASSIGN_OR_RETURN(AuditHead now, ReadAuditHeadLocked());
      CLLM_RETURN_IF_ERROR(CheckKnownHeadLocked(now));
      if (now.seq != head->seq || !ConstantTimeEqual(now.hash, head->hash)) {
        CLLM_RETURN_IF_ERROR(ChainAndSign(*audit_priv_, now, entries));
      }
      for (const AuditEntry& e : entries) CLLM_RETURN_IF_ERROR(InsertAuditLocked(e));
      // What was written is there before it counts as written: nothing may
      // have dropped or replaced it on the way (a trigger, say).
      CLLM_ASSIGN_OR_RETURN(AuditHead written, ReadAuditHeadLocked());
      if (written.seq != entries.back().seq || !ConstantTimeEqual(written.hash, entries.back().hash)) {
        return MakeError(Errc::kCrypto, "store table audit: entry " + std::to_string(entries.back().seq) +
                                            " was not kept as written");
      }
      CLLM_RETURN_IF_ERROR(db_->Commit());
      known_head_ = written;
      return OkStatus();
    }();
    if (!body.ok()) db_->Rollback();
    return body;
  }();
  if (!st.ok()) return fail(st.error());
  for (size_t i = 0; i < batch.size(); ++i) batch[i]->result.emplace(std::move(entries[i]));
}

Result<std::vector<AuditEntry>> Store::ReadAudit(uint64_t from_seq, uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_ASSIGN_OR_RETURN(
      auto rows,
      db_->Query(has_sig_column_
                     ? "SELECT seq, time, kind, body, prev_hash, hash, sig FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?"
                     : "SELECT seq, time, kind, body, prev_hash, hash, NULL FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?",
                 {static_cast<int64_t>(std::min<uint64_t>(from_seq, INT64_MAX)),
                  static_cast<int64_t>(std::min<uint64_t>(limit, INT64_MAX))}));
  std::vector<AuditEntry> out;
  out.reserve(rows.size());
  for (const SqlRow& r : rows) {
    out.push_back({static_cast<uint64_t>(r.Int(0)), r.Int(1), r.Text(2), r.Text(3), ToDigest(r.Blob(4)),
                   ToDigest(r.Blob(5)), r.Blob(6)});
  }
  return out;
}

}  // namespace cllm::trust
