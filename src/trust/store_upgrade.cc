// store_upgrade.cc — Store::Upgrade: schema 1 (rows unauthenticated) to
// schema 2 (store.h, docs/trust.md "Tamper evidence").
#include <ctime>
#include <utility>

#include "base/log.h"
#include "trust/row_mac.h"
#include "trust/store.h"
#include "trust/store_db.h"

namespace cllm::trust {

using internal::SqlRow;

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

Result<int> Store::Upgrade(const std::string& location, const SecretBox& box) {
  CLLM_ASSIGN_OR_RETURN(auto store, Connect(location, /*full_sync=*/true, /*read_only=*/false));
  internal::StoreDb& db = *store->db_;
  CLLM_ASSIGN_OR_RETURN(std::string schema, store->RawSchema());
  if (schema != "1") {
    return MakeError(Errc::kInvalidArgument, db.where() + ": store schema is " +
                                                 (schema.empty() ? std::string("absent (not a store)") : schema) +
                                                 ", not 1: nothing to upgrade");
  }
  store->mac_key_ = box.DeriveKey(internal::kRowMacLabel);
  const SecretBytes& k = store->mac_key_;
  std::lock_guard<std::mutex> lock(store->mu_);
  CLLM_RETURN_IF_ERROR(db.Begin(/*exclusive=*/true));
  auto upgraded = [&]() -> Result<std::pair<int, uint64_t>> {
    CLLM_RETURN_IF_ERROR(db.Script(kUpgradeV1));
    int rows = 0;
    // Every row is re-read and authenticated as version 1.
    CLLM_ASSIGN_OR_RETURN(auto meta, db.Query("SELECT k, v FROM meta"));
    for (const SqlRow& r : meta) {
      CLLM_RETURN_IF_ERROR(db.Exec("UPDATE meta SET ver = 1, mac = ? WHERE k = ?",
                                   {RowMac(k, "meta", r.Text(0), 1, {r.Text(1)}), r.Text(0)}));
      ++rows;
    }
    CLLM_ASSIGN_OR_RETURN(auto policies, db.Query("SELECT name, json, updated FROM policies"));
    for (const SqlRow& r : policies) {
      CLLM_RETURN_IF_ERROR(db.Exec("UPDATE policies SET ver = 1, mac = ? WHERE name = ?",
                                   {RowMac(k, "policies", r.Text(0), 1, {r.Text(1), r.Int(2)}), r.Text(0)}));
      ++rows;
    }
    CLLM_ASSIGN_OR_RETURN(auto model_keys, db.Query("SELECT key_id, sealed_key, release_policy, created FROM model_keys"));
    for (const SqlRow& r : model_keys) {
      CLLM_RETURN_IF_ERROR(db.Exec("UPDATE model_keys SET ver = 1, mac = ? WHERE key_id = ?",
                                   {RowMac(k, "model_keys", r.Text(0), 1, {r.Blob(1), r.Text(2), r.Int(3)}), r.Text(0)}));
      ++rows;
    }
    CLLM_ASSIGN_OR_RETURN(auto signing, db.Query("SELECT kid, sealed_pkcs8, created, retired FROM signing_keys"));
    for (const SqlRow& r : signing) {
      CLLM_RETURN_IF_ERROR(db.Exec("UPDATE signing_keys SET ver = 1, mac = ? WHERE kid = ?",
                                   {RowMac(k, "signing_keys", r.Text(0), 1, {r.Blob(1), r.Int(2), r.OptInt(3)}),
                                    r.Text(0)}));
      ++rows;
    }
    CLLM_RETURN_IF_ERROR(store->PutMetaLocked("schema", kStoreSchema));
    CLLM_RETURN_IF_ERROR(store->LoadOrCreateAuditKey(box, /*create=*/true));
    // The first signed entry: its signature covers every unsigned one before it.
    CLLM_ASSIGN_OR_RETURN(AuditEntry e, store->AppendAuditLocked("store_upgrade",
                                                                 "{\"from_schema\":1,\"to_schema\":2,\"rows_authenticated\":" +
                                                                     std::to_string(rows) + "}",
                                                                 static_cast<int64_t>(std::time(nullptr))));
    CLLM_RETURN_IF_ERROR(db.Commit());
    return std::make_pair(rows, e.seq);
  }();
  if (!upgraded.ok()) {
    db.Rollback();
    return upgraded.error();
  }
  const auto [rows, seq] = *upgraded;
  log::warn("store {} upgraded to schema 2: {} rows authenticated as they are now; audit entries up to {} are "
            "covered by the signed store_upgrade entry {}",
            db.where(), rows, seq - 1, seq);
  return rows;
}

}  // namespace cllm::trust
