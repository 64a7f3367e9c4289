// store_upgrade.cc — Store::Upgrade: schema 1 (rows unauthenticated) to
// schema 2 (store.h, docs/trust.md "Tamper evidence").
#include <sqlite3.h>

#include <ctime>

#include "base/log.h"
#include "trust/row_mac.h"
#include "trust/store.h"
#include "trust/store_sql.h"

namespace cllm::trust {

using internal::DbError;
using internal::Stmt;

namespace {

// Schema 1 → 2: the columns that carry authentication (nonces are dropped:
// they live two minutes and clients simply ask for a new one).
constexpr char kUpgradeV1[] = R"sql(
ALTER TABLE meta ADD COLUMN ver INTEGER NOT NULL DEFAULT 1;
ALTER TABLE meta ADD COLUMN mac BLOB;
ALTER TABLE nonces ADD COLUMN mac BLOB;
ALTER TABLE policies ADD COLUMN ver INTEGER NOT NULL DEFAULT 1;
ALTER TABLE policies ADD COLUMN mac BLOB;
ALTER TABLE model_keys ADD COLUMN ver INTEGER NOT NULL DEFAULT 1;
ALTER TABLE model_keys ADD COLUMN mac BLOB;
ALTER TABLE signing_keys ADD COLUMN ver INTEGER NOT NULL DEFAULT 1;
ALTER TABLE signing_keys ADD COLUMN mac BLOB;
ALTER TABLE audit ADD COLUMN sig BLOB;
DELETE FROM nonces;
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces(expires);
)sql";

}  // namespace

Result<int> Store::Upgrade(const std::filesystem::path& path, const SecretBox& box) {
  CLLM_ASSIGN_OR_RETURN(auto store, OpenRaw(path, /*full_sync=*/true));
  CLLM_ASSIGN_OR_RETURN(std::string schema, internal::RawSchema(store->db_));
  if (schema != "1") {
    return MakeError(Errc::kInvalidArgument, path.string() + ": store schema is " +
                                                 (schema.empty() ? std::string("absent (not a store)") : schema) +
                                                 ", not 1: nothing to upgrade");
  }
  store->mac_key_ = box.DeriveKey(internal::kRowMacLabel);
  sqlite3* db = store->db_;
  const SecretBytes& k = store->mac_key_;
  CLLM_RETURN_IF_ERROR(store->Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Error<Errc> e) {
    (void)store->Exec("ROLLBACK");
    return e;
  };
  if (auto st = store->Exec(kUpgradeV1); !st.ok()) return fail(st.error());
  int rows = 0;
  // Every row is re-read and authenticated as version 1.
  {
    Stmt s(db, "SELECT k, v FROM meta");
    while (s.ok() && s.Step() == SQLITE_ROW) {
      Stmt u(db, "UPDATE meta SET ver = 1, mac = ? WHERE k = ?");
      u.Bind(1, ByteSpan(RowMac(k, "meta", s.Text(0), 1, {s.Text(1)}))).Bind(2, s.Text(0));
      if (!u.ok() || u.Step() != SQLITE_DONE) return fail(DbError(db, "upgrade meta"));
      ++rows;
    }
  }
  {
    Stmt s(db, "SELECT name, json, updated FROM policies");
    while (s.ok() && s.Step() == SQLITE_ROW) {
      Stmt u(db, "UPDATE policies SET ver = 1, mac = ? WHERE name = ?");
      u.Bind(1, ByteSpan(RowMac(k, "policies", s.Text(0), 1, {s.Text(1), s.Int(2)}))).Bind(2, s.Text(0));
      if (!u.ok() || u.Step() != SQLITE_DONE) return fail(DbError(db, "upgrade policies"));
      ++rows;
    }
  }
  {
    Stmt s(db, "SELECT key_id, sealed_key, release_policy, created FROM model_keys");
    while (s.ok() && s.Step() == SQLITE_ROW) {
      Stmt u(db, "UPDATE model_keys SET ver = 1, mac = ? WHERE key_id = ?");
      u.Bind(1, ByteSpan(RowMac(k, "model_keys", s.Text(0), 1, {s.Blob(1), s.Text(2), s.Int(3)}))).Bind(2, s.Text(0));
      if (!u.ok() || u.Step() != SQLITE_DONE) return fail(DbError(db, "upgrade model_keys"));
      ++rows;
    }
  }
  {
    Stmt s(db, "SELECT kid, sealed_pkcs8, created, retired FROM signing_keys");
    while (s.ok() && s.Step() == SQLITE_ROW) {
      std::optional<int64_t> retired;
      if (!s.IsNull(3)) retired = s.Int(3);
      Stmt u(db, "UPDATE signing_keys SET ver = 1, mac = ? WHERE kid = ?");
      u.Bind(1, ByteSpan(RowMac(k, "signing_keys", s.Text(0), 1, {s.Blob(1), s.Int(2), retired}))).Bind(2, s.Text(0));
      if (!u.ok() || u.Step() != SQLITE_DONE) return fail(DbError(db, "upgrade signing_keys"));
      ++rows;
    }
  }
  auto st = store->PutMetaLocked("schema", kStoreSchema);
  if (st.ok()) st = store->LoadOrCreateAuditKey(box, /*create=*/true);
  if (!st.ok()) return fail(st.error());
  // The first signed entry: its signature covers every unsigned one before it.
  auto e = store->AppendAuditLocked("store_upgrade",
                                    "{\"from_schema\":1,\"to_schema\":2,\"rows_authenticated\":" + std::to_string(rows) + "}",
                                    static_cast<int64_t>(std::time(nullptr)));
  if (!e.ok()) return fail(e.error());
  CLLM_RETURN_IF_ERROR(store->Exec("COMMIT"));
  log::warn("store {} upgraded to schema 2: {} rows authenticated as they are now; audit entries up to {} are "
            "covered by the signed store_upgrade entry {}",
            path.string(), rows, e->seq - 1, e->seq);
  return rows;
}

}  // namespace cllm::trust
