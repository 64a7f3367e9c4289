// store_rows.cc — the store's authenticated rows: policies, model keys and
// signing keys (store.h). Each read checks the row's MAC (row_mac.h) before
// anything from it is returned; each update checks the old row first, so a
// tampered row is never re-authenticated by the service, and writes only
// over the version it checked (another replica's concurrent update makes it
// read again: store_db.h kUpdateAttempts).
#include "trust/row_mac.h"
#include "trust/store.h"
#include "trust/store_db.h"

namespace cllm::trust {

using internal::NextVer;
using internal::SqlRow;
using internal::Tampered;

// ---------------------------------------------------------------------------
// policies(name, json, updated, ver, mac)
// ---------------------------------------------------------------------------

Status<> Store::PutPolicy(const std::string& name, const std::string& json, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int attempt = 0; attempt < internal::kUpdateAttempts; ++attempt) {
    CLLM_ASSIGN_OR_RETURN(auto rows,
                          db_->Query("SELECT json, updated, ver, mac FROM policies WHERE name = ?", {name}));
    // The old row first: a tampered one is refused, not written over (and so
    // re-authenticated).
    if (!rows.empty() && !RowMacOk(mac_key_, "policies", name, rows[0].Int(2), {rows[0].Text(0), rows[0].Int(1)},
                                   rows[0].Blob(3))) {
      return Tampered("policies", name);
    }
    const int64_t old = rows.empty() ? 0 : rows[0].Int(2);
    int64_t ver = 0;
    if (!NextVer(old, &ver)) return Tampered("policies", name);
    CLLM_ASSIGN_OR_RETURN(
        int64_t changed,
        db_->Exec("INSERT INTO policies(name, json, updated, ver, mac) VALUES(?, ?, ?, ?, ?) ON CONFLICT(name) DO "
                  "UPDATE SET json = excluded.json, updated = excluded.updated, ver = excluded.ver, mac = excluded.mac "
                  "WHERE policies.ver = ?",
                  {name, json, now, ver, RowMac(mac_key_, "policies", name, ver, {json, now}), old}));
    if (changed == 1) return OkStatus();
    internal::BackOff(attempt);
  }
  return internal::Contended("policies", name);
}

Result<std::optional<std::string>> Store::GetPolicy(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT json, updated, ver, mac FROM policies WHERE name = ?", {name}));
  if (rows.empty()) return std::optional<std::string>();
  const SqlRow& r = rows[0];
  std::string json = r.Text(0);
  if (!RowMacOk(mac_key_, "policies", name, r.Int(2), {json, r.Int(1)}, r.Blob(3))) return Tampered("policies", name);
  return std::optional<std::string>(std::move(json));
}

Result<std::vector<std::string>> Store::ListPolicies() {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT name, json, updated, ver, mac FROM policies ORDER BY name"));
  std::vector<std::string> out;
  for (const SqlRow& r : rows) {
    std::string name = r.Text(0);
    if (!RowMacOk(mac_key_, "policies", name, r.Int(3), {r.Text(1), r.Int(2)}, r.Blob(4))) {
      return Tampered("policies", name);
    }
    out.push_back(std::move(name));
  }
  return out;
}

Result<bool> Store::DeletePolicy(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_ASSIGN_OR_RETURN(int64_t n, db_->Exec("DELETE FROM policies WHERE name = ?", {name}));
  return n > 0;
}

// ---------------------------------------------------------------------------
// model_keys(key_id, sealed_key, release_policy, created, ver, mac)
// ---------------------------------------------------------------------------

namespace {

Bytes ModelKeyMac(const SecretBytes& k, const ModelKeyRow& r, int64_t ver) {
  return RowMac(k, "model_keys", r.key_id, ver, {r.sealed_key, r.release_policy, r.created});
}

Bytes SigningKeyMac(const SecretBytes& k, const SigningKeyRow& r, int64_t ver) {
  return RowMac(k, "signing_keys", r.kid, ver, {r.sealed_pkcs8, r.created, r.retired});
}

internal::SqlValue Nullable(const std::optional<int64_t>& v) {
  return v ? internal::SqlValue(*v) : internal::SqlValue();
}

}  // namespace

Status<> Store::PutModelKey(const ModelKeyRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_->Exec("INSERT INTO model_keys(key_id, sealed_key, release_policy, created, ver, mac) "
                      "VALUES(?, ?, ?, ?, 1, ?)",
                      {row.key_id, row.sealed_key, row.release_policy, row.created, ModelKeyMac(mac_key_, row, 1)});
  if (!st.ok() && st.code() == Errc::kInvalidArgument) {
    return MakeError(Errc::kInvalidArgument, "key id \"" + row.key_id + "\" is already registered");
  }
  CLLM_RETURN_IF_ERROR(st);
  return OkStatus();
}

Result<std::optional<ModelKeyRow>> Store::GetModelKey(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT sealed_key, release_policy, created, ver, mac FROM model_keys "
                                              "WHERE key_id = ?",
                                              {key_id}));
  if (rows.empty()) return std::optional<ModelKeyRow>();
  const SqlRow& r = rows[0];
  ModelKeyRow row{key_id, r.Blob(0), r.Text(1), r.Int(2)};
  if (!ConstantTimeEqual(ModelKeyMac(mac_key_, row, r.Int(3)), r.Blob(4))) return Tampered("model_keys", key_id);
  return std::optional<ModelKeyRow>(std::move(row));
}

Status<> Store::SetReleasePolicy(const std::string& key_id, const std::string& json) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int attempt = 0; attempt < internal::kUpdateAttempts; ++attempt) {
    CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT sealed_key, release_policy, created, ver, mac FROM model_keys "
                                                "WHERE key_id = ?",
                                                {key_id}));
    if (rows.empty()) return MakeError(Errc::kNotFound, "no key \"" + key_id + "\"");
    const SqlRow& r = rows[0];
    ModelKeyRow row{key_id, r.Blob(0), r.Text(1), r.Int(2)};
    const int64_t old = r.Int(3);
    int64_t ver = 0;
    if (!ConstantTimeEqual(ModelKeyMac(mac_key_, row, old), r.Blob(4)) || !NextVer(old, &ver)) {
      return Tampered("model_keys", key_id);
    }
    row.release_policy = json;
    CLLM_ASSIGN_OR_RETURN(int64_t changed,
                          db_->Exec("UPDATE model_keys SET release_policy = ?, ver = ?, mac = ? WHERE key_id = ? AND "
                                    "ver = ?",
                                    {json, ver, ModelKeyMac(mac_key_, row, ver), key_id, old}));
    if (changed == 1) return OkStatus();
    internal::BackOff(attempt);
  }
  return internal::Contended("model_keys", key_id);
}

Result<std::vector<ModelKeyRow>> Store::ListModelKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT key_id, sealed_key, release_policy, created, ver, mac FROM "
                                              "model_keys ORDER BY key_id"));
  std::vector<ModelKeyRow> out;
  for (const SqlRow& r : rows) {
    ModelKeyRow row{r.Text(0), r.Blob(1), r.Text(2), r.Int(3)};
    if (!ConstantTimeEqual(ModelKeyMac(mac_key_, row, r.Int(4)), r.Blob(5))) return Tampered("model_keys", row.key_id);
    row.sealed_key.clear();  // listings never carry the sealed key
    out.push_back(std::move(row));
  }
  return out;
}

Result<bool> Store::DeleteModelKey(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_ASSIGN_OR_RETURN(int64_t n, db_->Exec("DELETE FROM model_keys WHERE key_id = ?", {key_id}));
  if (n > 0) {
    // The row is gone either way; if its bytes cannot be erased from the
    // files yet, EraseDeleted (the fleet-key schedule, every 30 s) retries.
    erase_pending_ = true;
    (void)EraseDeletedLocked();
  }
  return n > 0;
}

Result<bool> Store::EraseDeleted() {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_RETURN_IF_ERROR(EraseDeletedLocked());
  return !erase_pending_;
}

Status<> Store::EraseDeletedLocked() {
  if (!erase_pending_) return OkStatus();
  CLLM_ASSIGN_OR_RETURN(bool erased, db_->EraseDeleted());
  erase_pending_ = !erased;
  return OkStatus();
}

// ---------------------------------------------------------------------------
// signing_keys(kid, sealed_pkcs8, created, retired, ver, mac)
// ---------------------------------------------------------------------------

Status<> Store::AddSigningKey(const SigningKeyRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_RETURN_IF_ERROR(db_->Exec("INSERT INTO signing_keys(kid, sealed_pkcs8, created, retired, ver, mac) "
                                 "VALUES(?, ?, ?, ?, 1, ?)",
                                 {row.kid, row.sealed_pkcs8, row.created, Nullable(row.retired),
                                  SigningKeyMac(mac_key_, row, 1)}));
  return OkStatus();
}

Result<std::vector<SigningKeyRow>> Store::SigningKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string sql = std::string("SELECT kid, sealed_pkcs8, created, retired, ver, mac FROM signing_keys ORDER BY "
                                      "created, ") +
                          db_->InsertionOrder();
  CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query(sql));
  std::vector<SigningKeyRow> out;
  for (const SqlRow& r : rows) {
    SigningKeyRow k{r.Text(0), r.Blob(1), r.Int(2), r.OptInt(3)};
    if (!ConstantTimeEqual(SigningKeyMac(mac_key_, k, r.Int(4)), r.Blob(5))) return Tampered("signing_keys", k.kid);
    out.push_back(std::move(k));
  }
  return out;
}

Status<> Store::RetireSigningKey(const std::string& kid, int64_t when) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int attempt = 0; attempt < internal::kUpdateAttempts; ++attempt) {
    CLLM_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT sealed_pkcs8, created, retired, ver, mac FROM signing_keys "
                                                "WHERE kid = ?",
                                                {kid}));
    if (rows.empty()) return OkStatus();
    const SqlRow& r = rows[0];
    SigningKeyRow row{kid, r.Blob(0), r.Int(1), r.OptInt(2)};
    const int64_t old = r.Int(3);
    int64_t ver = 0;
    if (!ConstantTimeEqual(SigningKeyMac(mac_key_, row, old), r.Blob(4)) || !NextVer(old, &ver)) {
      return Tampered("signing_keys", kid);
    }
    // A second retire does not move the time: the overlap counts from the first.
    if (row.retired) return OkStatus();
    row.retired = when;
    CLLM_ASSIGN_OR_RETURN(int64_t changed,
                          db_->Exec("UPDATE signing_keys SET retired = ?, ver = ?, mac = ? WHERE kid = ? AND ver = ?",
                                    {when, ver, SigningKeyMac(mac_key_, row, ver), kid, old}));
    if (changed == 1) return OkStatus();
    internal::BackOff(attempt);
  }
  return internal::Contended("signing_keys", kid);
}

Status<> Store::DeleteSigningKey(const std::string& kid) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_RETURN_IF_ERROR(db_->Exec("DELETE FROM signing_keys WHERE kid = ?", {kid}));
  return OkStatus();
}

}  // namespace cllm::trust
