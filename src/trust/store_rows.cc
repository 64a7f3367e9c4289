// store_rows.cc — the store's authenticated rows: policies, model keys and
// signing keys (store.h). Each read checks the row's MAC (row_mac.h) before
// anything from it is returned; each update checks the old row first, so a
// tampered row is never re-authenticated by the service.
#include <sqlite3.h>

#include "trust/row_mac.h"
#include "trust/store.h"
#include "trust/store_sql.h"

namespace cllm::trust {

using internal::DbError;
using internal::Done;
using internal::Stmt;
using internal::Tampered;

namespace {

// CurrentVer returns the stored version of a row (0 when there is none).
Result<int64_t> CurrentVer(sqlite3* db, const char* sql, const std::string& key) {
  Stmt s(db, sql);
  if (!s.ok()) return DbError(db, "prepare");
  s.Bind(1, key);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return int64_t{0};
  if (rc != SQLITE_ROW) return DbError(db, "version");
  return s.Int(0);
}

bool NextVer(int64_t ver, int64_t* out) {
  if (ver < 0 || ver == INT64_MAX) return false;
  *out = ver + 1;
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// policies(name, json, updated, ver, mac)
// ---------------------------------------------------------------------------

Status<> Store::PutPolicy(const std::string& name, const std::string& json, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_ASSIGN_OR_RETURN(int64_t old, CurrentVer(db_, "SELECT ver FROM policies WHERE name = ?", name));
  int64_t ver = 0;
  if (!NextVer(old, &ver)) return Tampered("policies", name);
  CLLM_PREPARE(s, "INSERT OR REPLACE INTO policies(name, json, updated, ver, mac) VALUES(?, ?, ?, ?, ?)");
  s.Bind(1, name).Bind(2, json).Bind(3, now).Bind(4, ver);
  s.Bind(5, ByteSpan(RowMac(mac_key_, "policies", name, ver, {json, now})));
  return Done(db_, s, "policy");
}

Result<std::optional<std::string>> Store::GetPolicy(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT json, updated, ver, mac FROM policies WHERE name = ?");
  s.Bind(1, name);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return DbError(db_, "policy");
  std::string json = s.Text(0);
  if (!RowMacOk(mac_key_, "policies", name, s.Int(2), {json, s.Int(1)}, s.Blob(3))) return Tampered("policies", name);
  return std::optional<std::string>(std::move(json));
}

Result<std::vector<std::string>> Store::ListPolicies() {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT name, json, updated, ver, mac FROM policies ORDER BY name");
  std::vector<std::string> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    std::string name = s.Text(0);
    if (!RowMacOk(mac_key_, "policies", name, s.Int(3), {s.Text(1), s.Int(2)}, s.Blob(4))) {
      return Tampered("policies", name);
    }
    out.push_back(std::move(name));
  }
  if (rc != SQLITE_DONE) return DbError(db_, "policies");
  return out;
}

Result<bool> Store::DeletePolicy(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "DELETE FROM policies WHERE name = ?");
  s.Bind(1, name);
  CLLM_RETURN_IF_ERROR(Done(db_, s, "policy"));
  return sqlite3_changes(db_) > 0;
}

// ---------------------------------------------------------------------------
// model_keys(key_id, sealed_key, release_policy, created, ver, mac)
// ---------------------------------------------------------------------------

namespace {

Bytes ModelKeyMac(const SecretBytes& k, const ModelKeyRow& r, int64_t ver) {
  return RowMac(k, "model_keys", r.key_id, ver, {r.sealed_key, r.release_policy, r.created});
}

}  // namespace

Status<> Store::PutModelKey(const ModelKeyRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "INSERT INTO model_keys(key_id, sealed_key, release_policy, created, ver, mac) "
                  "VALUES(?, ?, ?, ?, 1, ?)");
  s.Bind(1, row.key_id).Bind(2, ByteSpan(row.sealed_key)).Bind(3, row.release_policy).Bind(4, row.created);
  s.Bind(5, ByteSpan(ModelKeyMac(mac_key_, row, 1)));
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) {
    return MakeError(Errc::kInvalidArgument, "key id \"" + row.key_id + "\" is already registered");
  }
  if (rc != SQLITE_DONE) return DbError(db_, "model key");
  return OkStatus();
}

Result<std::optional<ModelKeyRow>> Store::GetModelKey(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT sealed_key, release_policy, created, ver, mac FROM model_keys WHERE key_id = ?");
  s.Bind(1, key_id);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<ModelKeyRow>();
  if (rc != SQLITE_ROW) return DbError(db_, "model key");
  ModelKeyRow row{key_id, s.Blob(0), s.Text(1), s.Int(2)};
  if (!ConstantTimeEqual(ModelKeyMac(mac_key_, row, s.Int(3)), s.Blob(4))) return Tampered("model_keys", key_id);
  return std::optional<ModelKeyRow>(std::move(row));
}

Status<> Store::SetReleasePolicy(const std::string& key_id, const std::string& json) {
  std::lock_guard<std::mutex> lock(mu_);
  ModelKeyRow row;
  int64_t ver = 0;
  {
    CLLM_PREPARE(s, "SELECT sealed_key, release_policy, created, ver, mac FROM model_keys WHERE key_id = ?");
    s.Bind(1, key_id);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return MakeError(Errc::kNotFound, "no key \"" + key_id + "\"");
    if (rc != SQLITE_ROW) return DbError(db_, "model key");
    row = {key_id, s.Blob(0), s.Text(1), s.Int(2)};
    if (!ConstantTimeEqual(ModelKeyMac(mac_key_, row, s.Int(3)), s.Blob(4)) || !NextVer(s.Int(3), &ver)) {
      return Tampered("model_keys", key_id);
    }
  }
  row.release_policy = json;
  CLLM_PREPARE(s, "UPDATE model_keys SET release_policy = ?, ver = ?, mac = ? WHERE key_id = ?");
  s.Bind(1, json).Bind(2, ver).Bind(3, ByteSpan(ModelKeyMac(mac_key_, row, ver))).Bind(4, key_id);
  return Done(db_, s, "model key");
}

Result<std::vector<ModelKeyRow>> Store::ListModelKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT key_id, sealed_key, release_policy, created, ver, mac FROM model_keys ORDER BY key_id");
  std::vector<ModelKeyRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    ModelKeyRow row{s.Text(0), s.Blob(1), s.Text(2), s.Int(3)};
    if (!ConstantTimeEqual(ModelKeyMac(mac_key_, row, s.Int(4)), s.Blob(5))) return Tampered("model_keys", row.key_id);
    row.sealed_key.clear();  // listings never carry the sealed key
    out.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return DbError(db_, "model keys");
  return out;
}

// ---------------------------------------------------------------------------
// signing_keys(kid, sealed_pkcs8, created, retired, ver, mac)
// ---------------------------------------------------------------------------

namespace {

Bytes SigningKeyMac(const SecretBytes& k, const SigningKeyRow& r, int64_t ver) {
  return RowMac(k, "signing_keys", r.kid, ver, {r.sealed_pkcs8, r.created, r.retired});
}

}  // namespace

Status<> Store::AddSigningKey(const SigningKeyRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "INSERT INTO signing_keys(kid, sealed_pkcs8, created, retired, ver, mac) VALUES(?, ?, ?, ?, 1, ?)");
  s.Bind(1, row.kid).Bind(2, ByteSpan(row.sealed_pkcs8)).Bind(3, row.created);
  if (row.retired) {
    s.Bind(4, *row.retired);
  } else {
    s.BindNull(4);
  }
  s.Bind(5, ByteSpan(SigningKeyMac(mac_key_, row, 1)));
  return Done(db_, s, "signing key");
}

Result<std::vector<SigningKeyRow>> Store::SigningKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "SELECT kid, sealed_pkcs8, created, retired, ver, mac FROM signing_keys ORDER BY created, rowid");
  std::vector<SigningKeyRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    SigningKeyRow r{s.Text(0), s.Blob(1), s.Int(2), std::nullopt};
    if (!s.IsNull(3)) r.retired = s.Int(3);
    if (!ConstantTimeEqual(SigningKeyMac(mac_key_, r, s.Int(4)), s.Blob(5))) return Tampered("signing_keys", r.kid);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return DbError(db_, "signing keys");
  return out;
}

Status<> Store::RetireSigningKey(const std::string& kid, int64_t when) {
  std::lock_guard<std::mutex> lock(mu_);
  SigningKeyRow row;
  int64_t ver = 0;
  {
    CLLM_PREPARE(s, "SELECT sealed_pkcs8, created, retired, ver, mac FROM signing_keys WHERE kid = ?");
    s.Bind(1, kid);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return OkStatus();
    if (rc != SQLITE_ROW) return DbError(db_, "signing key");
    row = {kid, s.Blob(0), s.Int(1), std::nullopt};
    if (!s.IsNull(2)) row.retired = s.Int(2);
    if (!ConstantTimeEqual(SigningKeyMac(mac_key_, row, s.Int(3)), s.Blob(4)) || !NextVer(s.Int(3), &ver)) {
      return Tampered("signing_keys", kid);
    }
  }
  // A second retire does not move the time: the overlap counts from the first.
  if (row.retired) return OkStatus();
  row.retired = when;
  CLLM_PREPARE(s, "UPDATE signing_keys SET retired = ?, ver = ?, mac = ? WHERE kid = ?");
  s.Bind(1, when).Bind(2, ver).Bind(3, ByteSpan(SigningKeyMac(mac_key_, row, ver))).Bind(4, kid);
  return Done(db_, s, "signing key");
}

Status<> Store::DeleteSigningKey(const std::string& kid) {
  std::lock_guard<std::mutex> lock(mu_);
  CLLM_PREPARE(s, "DELETE FROM signing_keys WHERE kid = ?");
  s.Bind(1, kid);
  return Done(db_, s, "signing key");
}

}  // namespace cllm::trust
