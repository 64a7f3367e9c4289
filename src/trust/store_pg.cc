// store_pg.cc — StoreDb on PostgreSQL through libpq (store_db.h): several
// cllm-trust replicas share one database.
//
// Every parameter and result travels in binary with an explicit type (int8,
// bytea, text), so nothing is escaped or parsed from text. Statements run
// with autocommit unless Store opened a transaction; the one thing Store
// needs serialised across processes — appending to the audit chain, creating
// the schema — takes a transaction-scoped advisory lock (Begin(true)). A
// session holding it cannot stall the others for long: lock waits give up
// after kLockTimeout, and the server ends a session idle inside a
// transaction after kIdleInTxTimeout (which releases the lock).
#include <libpq-fe.h>

#include <cctype>
#include <cstring>
#include <string>
#include <unordered_map>

#include "base/log.h"
#include "trust/store_db.h"

namespace cllm::trust::internal {
namespace {

constexpr char kSchemaPg[] = R"sql(
CREATE TABLE IF NOT EXISTS meta(k TEXT COLLATE "C" PRIMARY KEY, v TEXT NOT NULL, ver BIGINT NOT NULL DEFAULT 1,
                                mac BYTEA);
CREATE TABLE IF NOT EXISTS nonces(nonce BYTEA PRIMARY KEY, expires BIGINT NOT NULL, mac BYTEA);
CREATE TABLE IF NOT EXISTS policies(name TEXT COLLATE "C" PRIMARY KEY, json TEXT NOT NULL, updated BIGINT NOT NULL,
                                    ver BIGINT NOT NULL DEFAULT 1, mac BYTEA);
CREATE TABLE IF NOT EXISTS model_keys(key_id TEXT COLLATE "C" PRIMARY KEY, sealed_key BYTEA NOT NULL,
                                      release_policy TEXT NOT NULL, created BIGINT NOT NULL,
                                      ver BIGINT NOT NULL DEFAULT 1, mac BYTEA);
CREATE TABLE IF NOT EXISTS signing_keys(kid TEXT COLLATE "C" PRIMARY KEY, sealed_pkcs8 BYTEA NOT NULL,
                                        created BIGINT NOT NULL, retired BIGINT,
                                        ver BIGINT NOT NULL DEFAULT 1, mac BYTEA, ord BIGSERIAL);
CREATE TABLE IF NOT EXISTS audit(seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, kind TEXT NOT NULL,
                                 body TEXT NOT NULL, prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL, sig BYTEA);
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces(expires);
)sql";

// The advisory lock every exclusive transaction takes ("cllmtrst").
constexpr int64_t kExclusiveLock = 0x636c6c6d74727374;
constexpr char kSessionSetup[] = "SET lock_timeout = '10s'; SET idle_in_transaction_session_timeout = '60s'";
// Without --sync-full a commit returns before PostgreSQL flushed its WAL, as SQLite's
// synchronous=NORMAL does: a returned call survives a crash of cllm-trust, while a crash of the
// database server may lose the last ~0.6 s (never a torn row). One WAL flush per nonce and audit
// commit otherwise bounds a replica to ~90 attestations/s on this machine's disk (docs/scaling.md).
constexpr char kAsyncCommit[] = "SET synchronous_commit = off";

// Type OIDs (PostgreSQL's catalog/pg_type.dat; stable across versions).
constexpr Oid kBoolOid = 16, kByteaOid = 17, kNameOid = 19, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23,
              kTextOid = 25, kVarcharOid = 1043, kVoidOid = 2278;

int64_t BigEndian(const char* p, int len) {
  uint64_t v = 0;
  for (int i = 0; i < len; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  // Sign-extend the 2- and 4-byte integers.
  if (len < 8 && len > 0 && (static_cast<uint8_t>(p[0]) & 0x80)) v |= ~uint64_t{0} << (8 * len);
  return static_cast<int64_t>(v);
}

// Numbered rewrites `?` placeholders as $1, $2, … (outside quotes).
std::string Numbered(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?') {
      out += "$" + std::to_string(++n);
      continue;
    }
    out += c;
  }
  return out;
}

std::string Trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class PgDb final : public StoreDb {
 public:
  // A deleted row stays in the table file until vacuum reuses its space (and
  // in the WAL, its archives and standbys): nothing this connection can do.
  Result<bool> EraseDeleted() override { return true; }
  PgDb(PGconn* conn, std::string where, bool full_sync)
      : conn_(conn), where_(std::move(where)), full_sync_(full_sync) {}
  ~PgDb() override { PQfinish(conn_); }

  const std::string& where() const override { return where_; }
  bool postgres() const override { return true; }

  Result<SqlRows> Query(std::string_view sql, SqlParams params) override {
    CLLM_ASSIGN_OR_RETURN(Res r, Run(sql, params));
    SqlRows rows;
    const int nrows = PQntuples(r.get()), ncols = PQnfields(r.get());
    rows.reserve(static_cast<size_t>(nrows));
    for (int i = 0; i < nrows; ++i) {
      std::vector<SqlValue> cols;
      cols.reserve(static_cast<size_t>(ncols));
      for (int c = 0; c < ncols; ++c) {
        CLLM_ASSIGN_OR_RETURN(SqlValue v, Column(r.get(), i, c));
        cols.push_back(std::move(v));
      }
      rows.emplace_back(std::move(cols));
    }
    return rows;
  }
  Result<int64_t> Exec(std::string_view sql, SqlParams params) override {
    CLLM_ASSIGN_OR_RETURN(Res r, Run(sql, params));
    const char* n = PQcmdTuples(r.get());
    return n && *n ? static_cast<int64_t>(std::strtoll(n, nullptr, 10)) : int64_t{0};
  }
  Status<> Script(const char* sql) override {
    CLLM_RETURN_IF_ERROR(EnsureConnected());
    Res r(PQexec(conn_, sql), PQclear);
    return Check(r.get(), "script");
  }
  Status<> Begin(bool exclusive) override {
    CLLM_RETURN_IF_ERROR(Exec("BEGIN", {}));
    if (exclusive) {
      auto locked = Query("SELECT pg_advisory_xact_lock(?)", {kExclusiveLock});
      if (!locked.ok()) {
        Rollback();
        return locked.error();
      }
    }
    return OkStatus();
  }
  Status<> Commit() override {
    CLLM_RETURN_IF_ERROR(Exec("COMMIT", {}));
    return OkStatus();
  }
  void Rollback() override {
    if (PQstatus(conn_) == CONNECTION_OK) Res(PQexec(conn_, "ROLLBACK"), PQclear);
  }
  Result<bool> HasTable(const char* name) override {
    CLLM_ASSIGN_OR_RETURN(auto rows, Query("SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relname = ? AND "
                                           "c.relkind IN ('r', 'p') AND pg_catalog.pg_table_is_visible(c.oid)",
                                           {std::string(name)}));
    return !rows.empty() && rows[0].Int(0) > 0;
  }
  Result<std::vector<std::string>> ForeignObjects() override {
    CLLM_ASSIGN_OR_RETURN(
        auto rows,
        Query("SELECT 'trigger ' || t.tgname FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = "
              "t.tgrelid WHERE NOT t.tgisinternal AND pg_catalog.pg_table_is_visible(c.oid) UNION ALL SELECT 'rule ' "
              "|| r.rulename FROM pg_catalog.pg_rules r WHERE r.schemaname = current_schema() ORDER BY 1",
              {}));
    std::vector<std::string> out;
    for (const SqlRow& r : rows) out.push_back(r.Text(0));
    return out;
  }
  const char* SchemaSql() const override { return kSchemaPg; }
  const char* InsertionOrder() const override { return "ord"; }

 private:
  using Res = std::unique_ptr<PGresult, void (*)(PGresult*)>;

  // EnsureConnected re-establishes a connection the server dropped (a
  // restart, a failover). The failed call itself is not retried: it may
  // have committed (a consumed nonce stays consumed: fail closed).
  Status<> EnsureConnected() {
    if (PQstatus(conn_) == CONNECTION_OK) return OkStatus();
    log::warn("store {}: connection lost; reconnecting", where_);
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      return MakeError(Errc::kIo, "store " + where_ + ": cannot reconnect: " + Trimmed(PQerrorMessage(conn_)));
    }
    Res r(PQexec(conn_, kSessionSetup), PQclear);
    CLLM_RETURN_IF_ERROR(Check(r.get(), "session setup"));
    if (full_sync_) return OkStatus();
    Res a(PQexec(conn_, kAsyncCommit), PQclear);
    return Check(a.get(), "session setup");
  }

  Result<Res> Run(std::string_view sql, SqlParams params) {
    CLLM_RETURN_IF_ERROR(EnsureConnected());
    auto it = numbered_.find(std::string(sql));
    if (it == numbered_.end()) it = numbered_.emplace(std::string(sql), Numbered(sql)).first;
    const size_t n = params.size();
    std::vector<Oid> types(n);
    std::vector<std::string> ints(n);  // big-endian int8 buffers
    std::vector<const char*> values(n);
    std::vector<int> lengths(n), formats(n, 1);
    size_t i = 0;
    for (const SqlValue& v : params) {
      if (const auto* x = std::get_if<int64_t>(&v)) {
        types[i] = kInt8Oid;
        ints[i].resize(8);
        for (int b = 0; b < 8; ++b) ints[i][b] = static_cast<char>(static_cast<uint64_t>(*x) >> (56 - 8 * b));
        values[i] = ints[i].data();
        lengths[i] = 8;
      } else if (const auto* t = std::get_if<std::string>(&v)) {
        types[i] = kTextOid;  // binary text: the bytes as they are (the server checks the encoding)
        values[i] = t->data();
        lengths[i] = static_cast<int>(t->size());
      } else if (const auto* b = std::get_if<Bytes>(&v)) {
        types[i] = kByteaOid;
        values[i] = reinterpret_cast<const char*>(b->data());
        lengths[i] = static_cast<int>(b->size());
      } else {
        types[i] = 0;  // NULL: the server infers the column's type
        values[i] = nullptr;
      }
      ++i;
    }
    Res r(PQexecParams(conn_, it->second.c_str(), static_cast<int>(n), types.data(), values.data(), lengths.data(),
                       formats.data(), /*resultFormat=*/1),
          PQclear);
    CLLM_RETURN_IF_ERROR(Check(r.get(), "statement"));
    return r;
  }

  Status<> Check(PGresult* r, const char* what) {
    const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return OkStatus();
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = Trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
    if (msg.empty()) msg = Trimmed(PQerrorMessage(conn_));
    // 23505 unique_violation: the row exists.
    const Errc code = state && std::strcmp(state, "23505") == 0 ? Errc::kInvalidArgument : Errc::kIo;
    return MakeError(code, "store " + where_ + ": " + what + ": " + msg);
  }

  Result<SqlValue> Column(PGresult* r, int row, int col) {
    if (PQgetisnull(r, row, col)) return SqlValue{};
    const char* p = PQgetvalue(r, row, col);
    const int len = PQgetlength(r, row, col);
    switch (PQftype(r, col)) {
      case kInt8Oid:
      case kInt4Oid:
      case kInt2Oid:
        if (len != 2 && len != 4 && len != 8) break;
        return SqlValue(BigEndian(p, len));
      case kBoolOid:
        return SqlValue(static_cast<int64_t>(len == 1 && p[0] != 0));
      case kByteaOid:
        return SqlValue(Bytes(reinterpret_cast<const uint8_t*>(p), reinterpret_cast<const uint8_t*>(p) + len));
      case kTextOid:
      case kVarcharOid:
      case kNameOid:
        return SqlValue(std::string(p, static_cast<size_t>(len)));
      case kVoidOid:
        return SqlValue{};
      default:
        break;
    }
    return MakeError(Errc::kIo, "store " + where_ + ": column " + std::string(PQfname(r, col)) +
                                    " has an unexpected type (is this database's schema cllm-trust's?)");
  }

  PGconn* conn_;
  std::string where_;
  bool full_sync_ = false;
  std::unordered_map<std::string, std::string> numbered_;  // SQL with ? → with $n
};

}  // namespace

bool IsPostgresLocation(std::string_view s) {
  if (s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0) return true;
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  const size_t start = i;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
  while (i < s.size() && s[i] == ' ') ++i;
  return i > start && i < s.size() && s[i] == '=';
}

Result<std::unique_ptr<StoreDb>> OpenPostgres(const std::string& conninfo, bool full_sync) {
  // Defaults first: the connection string's own settings override them.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "cllm-trust", conninfo.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return MakeError(Errc::kIo, "PostgreSQL: out of memory");
  auto field = [&](const char* v) { return std::string(v && *v ? v : "?"); };
  // Named by host, port, database and user: never the password.
  std::string where = "PostgreSQL host=" + field(PQhost(conn)) + " port=" + field(PQport(conn)) +
                      " dbname=" + field(PQdb(conn)) + " user=" + field(PQuser(conn));
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return MakeError(Errc::kIo, "cannot connect to the store (" + where + "): " + why);
  }
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);  // "relation exists, skipping" and the like
  auto db = std::make_unique<PgDb>(conn, where, full_sync);
  CLLM_RETURN_IF_ERROR(db->Script(kSessionSetup));
  if (!full_sync) CLLM_RETURN_IF_ERROR(db->Script(kAsyncCommit));
  return std::unique_ptr<StoreDb>(std::move(db));
}

}  // namespace cllm::trust::internal
