// store_sqlite.cc — StoreDb on an embedded SQLite file (store_db.h): WAL
// mode, statements prepared once per connection and cached.
#include <sqlite3.h>

#include <string>
#include <unordered_map>

#include "trust/store_db.h"

namespace cllm::trust::internal {
namespace {

constexpr char kSchemaSqlite[] = R"sql(
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

class SqliteDb final : public StoreDb {
 public:
  SqliteDb(sqlite3* db, std::string where) : db_(db), where_(std::move(where)) {}
  ~SqliteDb() override {
    for (auto& [sql, s] : stmts_) sqlite3_finalize(s);  // before the connection closes
    sqlite3_close(db_);
  }

  const std::string& where() const override { return where_; }
  bool postgres() const override { return false; }

  Result<SqlRows> Query(std::string_view sql, SqlParams params) override {
    SqlRows rows;
    CLLM_RETURN_IF_ERROR(Run(sql, params, &rows));
    return rows;
  }
  Result<int64_t> Exec(std::string_view sql, SqlParams params) override {
    CLLM_RETURN_IF_ERROR(Run(sql, params, nullptr));
    return static_cast<int64_t>(sqlite3_changes(db_));
  }
  Status<> Script(const char* sql) override {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string why = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return MakeError(Errc::kIo, "store " + where_ + ": " + why);
    }
    return OkStatus();
  }
  Result<bool> EraseDeleted() override {
    // A short wait: this runs under the store's mutex, and a reader that
    // stays (a backup, `cllm trust audit verify --db`) is retried later.
    sqlite3_busy_timeout(db_, 100);
    int log = 0, done = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    sqlite3_busy_timeout(db_, 5000);
    if (rc == SQLITE_BUSY) return false;
    if (rc != SQLITE_OK) return MakeError(Errc::kIo, "store " + where_ + ": checkpoint: " + sqlite3_errmsg(db_));
    return true;
  }
  // Every SQLite write transaction excludes the others (one writer per file).
  Status<> Begin(bool /*exclusive*/) override { return Run("BEGIN IMMEDIATE", {}, nullptr); }
  Status<> Commit() override { return Run("COMMIT", {}, nullptr); }
  void Rollback() override { (void)Run("ROLLBACK", {}, nullptr); }
  Result<bool> HasTable(const char* name) override {
    CLLM_ASSIGN_OR_RETURN(auto rows, Query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                                           {std::string(name)}));
    return !rows.empty() && rows[0].Int(0) > 0;
  }
  Result<std::vector<std::string>> ForeignObjects() override {
    CLLM_ASSIGN_OR_RETURN(auto rows, Query("SELECT type || ' ' || name FROM sqlite_master WHERE type IN ('trigger', "
                                           "'view') ORDER BY name",
                                           {}));
    std::vector<std::string> out;
    for (const SqlRow& r : rows) out.push_back(r.Text(0));
    return out;
  }
  const char* SchemaSql() const override { return kSchemaSqlite; }
  const char* InsertionOrder() const override { return "rowid"; }

 private:
  // Get returns the cached prepared statement for `sql` (prepared on first
  // use: compiling SQL was ~1% of an attestation), null when it does not compile.
  sqlite3_stmt* Get(std::string_view sql) {
    std::string key(sql);
    auto it = stmts_.find(key);
    if (it != stmts_.end()) return it->second;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, key.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) return nullptr;
    stmts_.emplace(std::move(key), s);
    return s;
  }

  // Run binds, steps to the end (collecting rows when `out`) and resets the
  // statement: one left mid-step would hold a WAL read snapshot open.
  Status<> Run(std::string_view sql, SqlParams params, SqlRows* out) {
    sqlite3_stmt* s = Get(sql);
    if (s == nullptr) return Fail("prepare");
    int i = 1;
    for (const SqlValue& v : params) {
      if (const auto* n = std::get_if<int64_t>(&v)) {
        sqlite3_bind_int64(s, i, *n);
      } else if (const auto* t = std::get_if<std::string>(&v)) {
        sqlite3_bind_text(s, i, t->data(), static_cast<int>(t->size()), SQLITE_TRANSIENT);
      } else if (const auto* b = std::get_if<Bytes>(&v)) {
        sqlite3_bind_blob(s, i, b->data(), static_cast<int>(b->size()), SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_null(s, i);
      }
      ++i;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      if (out == nullptr) continue;
      const int n = sqlite3_column_count(s);
      std::vector<SqlValue> cols;
      cols.reserve(static_cast<size_t>(n));
      for (int c = 0; c < n; ++c) cols.push_back(Column(s, c));
      out->emplace_back(std::move(cols));
    }
    Status<> st = OkStatus();
    if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT) {
      st = MakeError(Errc::kInvalidArgument, "store " + where_ + ": " + sqlite3_errmsg(db_));
    } else if (rc != SQLITE_DONE) {
      st = Fail("statement");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
  }

  static SqlValue Column(sqlite3_stmt* s, int c) {
    switch (sqlite3_column_type(s, c)) {
      case SQLITE_INTEGER:
        return static_cast<int64_t>(sqlite3_column_int64(s, c));
      case SQLITE_TEXT: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
        return std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, c)));
      }
      case SQLITE_BLOB: {
        const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s, c));
        return p ? Bytes(p, p + sqlite3_column_bytes(s, c)) : Bytes();
      }
      case SQLITE_NULL:
        return std::monostate{};
      default:  // REAL: no column of ours holds one
        return std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, c)));
    }
  }

  Error<Errc> Fail(const char* what) {
    return MakeError(Errc::kIo, "store " + where_ + ": " + what + ": " + sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  std::string where_;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;  // keyed by the SQL text
};

}  // namespace

Result<std::unique_ptr<StoreDb>> OpenSqlite(const std::filesystem::path& path, bool full_sync, bool read_only) {
  sqlite3* db = nullptr;
  const int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return MakeError(Errc::kIo, "cannot open the store " + path.string() + ": " + why);
  }
  auto out = std::make_unique<SqliteDb>(db, path.string());
  if (read_only) return std::unique_ptr<StoreDb>(std::move(out));
  sqlite3_busy_timeout(db, 5000);
  // secure_delete: a deleted row's bytes are overwritten with zeros, not left
  // in a free page (Store::DeleteModelKey: a retired key leaves no copy).
  for (const char* pragma : {"PRAGMA journal_mode=WAL", full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                             "PRAGMA foreign_keys=ON", "PRAGMA secure_delete=ON",
                             // no SQL functions with side effects from the schema (a trigger or view the
                             // host wrote into the file; Store::Open refuses those too)
                             "PRAGMA trusted_schema=OFF"}) {
    CLLM_RETURN_IF_ERROR(out->Script(pragma));
  }
  return std::unique_ptr<StoreDb>(std::move(out));
}

}  // namespace cllm::trust::internal
