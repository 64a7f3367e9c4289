// store_db.h — the SQL database under Store (internal): one connection to
// an embedded SQLite file (store_sqlite.cc) or to a PostgreSQL database
// (store_pg.cc, libpq) behind one small interface.
//
// Store (store.h) keeps everything that matters for security on its side of
// this interface — row MACs, the audit chain and its signatures, the nonce
// rules — and speaks one SQL dialect both engines understand: `?`
// placeholders (PostgreSQL's backend numbers them), INSERT … ON CONFLICT
// upserts, DELETE … RETURNING. What differs per engine is only the DDL, how
// a transaction excludes other writers, and the engine's own error text.
//
// A StoreDb is one connection and not thread-safe: Store calls it under its
// mutex. Values are typed (SqlValue); a backend converts them exactly (no
// text round trip for integers or bytes).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace cllm::trust::internal {

inline constexpr char kRowMacLabel[] = "cllm-trust row-mac v1";  // SecretBox::DeriveKey label of K_row
inline constexpr char kAuditKeyMeta[] = "audit_key_sealed";       // meta row of the sealed audit key
inline constexpr char kAuditKeyLabel[] = "audit-key";             // its SecretBox label

// SqlValue is one parameter or column: NULL, a 64-bit integer, text or bytes.
using SqlValue = std::variant<std::monostate, int64_t, std::string, Bytes>;

// SqlRow is one result row. Accessors of the wrong type or past the end give
// an empty value (a MAC check then fails on it), never an abort: a column's
// type is whatever someone with write access to the database made it.
class SqlRow {
 public:
  explicit SqlRow(std::vector<SqlValue> cols) : cols_(std::move(cols)) {}
  std::string Text(size_t i) const {
    const auto* v = i < cols_.size() ? std::get_if<std::string>(&cols_[i]) : nullptr;
    return v ? *v : std::string();
  }
  Bytes Blob(size_t i) const {
    if (i >= cols_.size()) return {};
    if (const auto* b = std::get_if<Bytes>(&cols_[i])) return *b;
    if (const auto* t = std::get_if<std::string>(&cols_[i])) return Bytes(t->begin(), t->end());
    return {};
  }
  int64_t Int(size_t i) const {
    const auto* v = i < cols_.size() ? std::get_if<int64_t>(&cols_[i]) : nullptr;
    return v ? *v : 0;
  }
  bool IsNull(size_t i) const { return i >= cols_.size() || std::holds_alternative<std::monostate>(cols_[i]); }
  std::optional<int64_t> OptInt(size_t i) const {
    return IsNull(i) ? std::nullopt : std::optional<int64_t>(Int(i));
  }

 private:
  std::vector<SqlValue> cols_;
};
using SqlRows = std::vector<SqlRow>;
using SqlParams = std::initializer_list<SqlValue>;

// Errors: kIo for the engine's failures (its message appended); a
// unique-key violation is kInvalidArgument.
class StoreDb {
 public:
  virtual ~StoreDb() = default;
  // where names the database in messages: the file path, or
  // "PostgreSQL host=… port=… dbname=… user=…" (never a password).
  virtual const std::string& where() const = 0;
  virtual bool postgres() const = 0;
  // Query runs one statement and returns every row it produced.
  virtual Result<SqlRows> Query(std::string_view sql, SqlParams params = {}) = 0;
  // Exec runs one statement and returns how many rows it changed.
  virtual Result<int64_t> Exec(std::string_view sql, SqlParams params = {}) = 0;
  // Script runs several statements without parameters (DDL).
  virtual Status<> Script(const char* sql) = 0;
  // Begin opens a write transaction. With `exclusive`, no other
  // exclusive transaction on this database — from any process — runs until
  // Commit or Rollback: SQLite's BEGIN IMMEDIATE already excludes every
  // other writer; PostgreSQL takes a transaction-scoped advisory lock.
  virtual Status<> Begin(bool exclusive) = 0;
  virtual Status<> Commit() = 0;
  virtual void Rollback() = 0;
  // HasTable says whether the table exists (visible to this connection).
  virtual Result<bool> HasTable(const char* name) = 0;
  // ForeignObjects names what runs or answers in the tables' place and that
  // cllm-trust never creates ("trigger hide", "view x", "rule r"): a trigger
  // can drop or rewrite a row as it is written, with every MAC intact.
  virtual Result<std::vector<std::string>> ForeignObjects() = 0;
  // SchemaSql is the schema-2 DDL in this engine's types (idempotent).
  virtual const char* SchemaSql() const = 0;
  // InsertionOrder is a column that orders a table's rows by insertion
  // ("rowid" in SQLite, a bigserial column in PostgreSQL): signing keys
  // created in the same second keep their order.
  virtual const char* InsertionOrder() const = 0;
  // EraseDeleted makes rows deleted so far unreadable from the database's
  // files where the engine allows it: SQLite (secure_delete zeroes them in
  // place) checkpoints the WAL into the file and truncates the WAL, waiting
  // at most a moment for readers; false when a reader kept it from
  // completing (try again later). PostgreSQL: nothing to do here (true).
  virtual Result<bool> EraseDeleted() = 0;
};

// OpenSqlite opens (creating unless read_only) a SQLite file in WAL mode.
Result<std::unique_ptr<StoreDb>> OpenSqlite(const std::filesystem::path& path, bool full_sync, bool read_only);
// OpenPostgres connects with a libpq connection string (URI or key=value).
// Without full_sync its commits are asynchronous (synchronous_commit=off).
Result<std::unique_ptr<StoreDb>> OpenPostgres(const std::string& conninfo, bool full_sync = false);

// IsPostgresLocation: "postgresql://…", "postgres://…" or a libpq
// "key=value …" string; anything else is a SQLite file path.
bool IsPostgresLocation(std::string_view location);

// Tampered is the error for a row whose MAC does not verify: nothing read
// from it is used.
inline Error<Errc> Tampered(const std::string& table, const std::string& row_key) {
  return MakeError(Errc::kCrypto, "store row " + table + "[\"" + row_key.substr(0, 128) +
                                      "\"] fails authentication: it was changed outside cllm-trust (or the "
                                      "master key is not this store's); nothing from it is used");
}

// NextVer is the version an update of a row at `ver` writes; false when
// `ver` cannot be one cllm-trust wrote.
inline bool NextVer(int64_t ver, int64_t* out) {
  if (ver < 0 || ver == INT64_MAX) return false;
  *out = ver + 1;
  return true;
}

// An update is written only over the version it read; when another writer
// (a replica) got in between, it reads again, at most this many times.
inline constexpr int kUpdateAttempts = 8;

// BackOff waits before the next attempt of a contended update: a random time
// below 2^attempt ms (at most 128 ms), so two writers updating one row in
// step fall out of step instead of one starving the other.
inline void BackOff(int attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const int cap_us = 1000 << std::min(attempt, 7);
  std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, cap_us - 1)(rng)));
}

inline Error<Errc> Contended(const std::string& table, const std::string& row_key) {
  return MakeError(Errc::kIo, "store row " + table + "[\"" + row_key.substr(0, 128) +
                                  "\"] changed concurrently " + std::to_string(kUpdateAttempts) +
                                  " times while this update was written; try again");
}

}  // namespace cllm::trust::internal
