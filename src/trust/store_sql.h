// store_sql.h — SQLite helpers shared by store.cc and store_rows.cc (internal).
#pragma once

#include <sqlite3.h>

#include <string>
#include <unordered_map>

#include "base/bytes.h"
#include "base/result.h"

namespace cllm::trust::internal {

inline constexpr char kRowMacLabel[] = "cllm-trust row-mac v1";  // SecretBox::DeriveKey label of K_row
inline constexpr char kAuditKeyMeta[] = "audit_key_sealed";       // meta row of the sealed audit key
inline constexpr char kAuditKeyLabel[] = "audit-key";             // its SecretBox label

// RawSchema reads meta.schema without authentication ("" for a new file).
Result<std::string> RawSchema(sqlite3* db);

inline Error<Errc> DbError(sqlite3* db, const std::string& what) {
  return MakeError(Errc::kIo, what + ": " + sqlite3_errmsg(db));
}

// Tampered is the error for a row whose MAC does not verify: nothing read
// from it is used.
inline Error<Errc> Tampered(const std::string& table, const std::string& row_key) {
  return MakeError(Errc::kCrypto, "store row " + table + "[\"" + row_key.substr(0, 128) +
                                      "\"] fails authentication: it was changed outside cllm-trust (or the "
                                      "master key is not this store's); nothing from it is used");
}

// Stmt is a prepared statement: one it prepared is finalized on scope exit;
// one borrowed from a StmtCache is reset and its bindings cleared instead
// (a statement left mid-step would keep a WAL read snapshot open and block
// checkpoints).
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  explicit Stmt(sqlite3_stmt* cached) : s_(cached), owned_(false) {}
  ~Stmt() {
    if (owned_) {
      sqlite3_finalize(s_);
    } else if (s_ != nullptr) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }
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
  bool owned_ = true;
};

// StmtCache keeps each statement the store runs prepared for the life of
// the connection (compiling SQL was ~1% of an attestation, and a cached
// statement skips the schema lookup). Used only under Store::mu_, like the
// connection itself.
class StmtCache {
 public:
  explicit StmtCache(sqlite3* db) : db_(db) {}
  ~StmtCache() {
    for (auto& [sql, s] : stmts_) sqlite3_finalize(s);
  }
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;
  // Get returns the prepared statement for `sql` (prepared on first use),
  // or null when it does not compile.
  sqlite3_stmt* Get(const char* sql) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return it->second;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) return nullptr;
    stmts_.emplace(sql, s);
    return s;
  }

 private:
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;  // keyed by the SQL text
};

inline Status<> Done(sqlite3* db, Stmt& s, const char* what) {
  int rc = s.Step();
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return DbError(db, what);
  return OkStatus();
}

}  // namespace cllm::trust::internal

// CLLM_PREPARE declares `stmt`, the cached statement for `sql` (the caller
// holds Store::mu_); returns a kIo error from the function when it does not
// compile.
#define CLLM_PREPARE(stmt, sql)                                 \
  ::cllm::trust::internal::Stmt stmt(stmts_->Get(sql));          \
  if (!stmt.ok()) return ::cllm::trust::internal::DbError(db_, "prepare")
