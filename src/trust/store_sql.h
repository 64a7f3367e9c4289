// store_sql.h — SQLite helpers shared by store.cc and store_rows.cc (internal).
#pragma once

#include <sqlite3.h>

#include <string>

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

inline Status<> Done(sqlite3* db, Stmt& s, const char* what) {
  int rc = s.Step();
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return DbError(db, what);
  return OkStatus();
}

}  // namespace cllm::trust::internal

#define CLLM_PREPARE(stmt, sql)      \
  ::cllm::trust::internal::Stmt stmt(db_, sql); \
  if (!stmt.ok()) return ::cllm::trust::internal::DbError(db_, "prepare")
