// `cllm trust …`: administer cllm-trust (reference values, model keys,
// signing keys) and check its audit log.
//
//   cllm trust policy set NAME POLICY.json [--replay-at TIME] [--client-role]
//   cllm trust policy list | show NAME | delete NAME
//   cllm trust key register KEY_ID --key-file K --release-policy RP.json
//   cllm trust key list
//   cllm trust fleet-key create --suite x25519|gmt --release-policy-file RP.json [--key-id N]
//   cllm trust fleet-key list
//   cllm trust fleet-key rotate [--key-id N] [--new-key-id M]
//   cllm trust fleet-key retire --key-id N
//   cllm trust signing-key rotate
//   cllm trust audit verify [--expect-head SEQ:HASH] [--audit-key PEM] [--json]   (over the admin API)
//   cllm trust audit verify --db STATE_DIR/trust.db --audit-key PEM               (offline, on the file)
//
// Connection options: --trust URL --trust-ca FILE --admin-token-file FILE
// (or CLLM_TRUST_URL, CLLM_TRUST_CA, CLLM_TRUST_ADMIN_TOKEN_FILE).
#include <cstdio>
#include <optional>

#include "apps/cllm/command.h"
#include "apps/cllm/trust_common.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/json_guard.h"
#include "base/time.h"
#include "crypto/keys.h"
#include "trust/audit.h"
#include "trust/store.h"

namespace cllm::app {
namespace {

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  CLLM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, 1 << 20));
  if (!JsonDepthWithin(text)) return MakeError(Errc::kParse, path + ": nested too deeply");
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return MakeError(Errc::kParse, path + ": not valid JSON");
  return j;
}

int Print(const Result<nlohmann::json>& r) {
  if (!r.ok()) return Fail(r.detail(), r.code() == Errc::kInvalidArgument || r.code() == Errc::kParse ? 2 : 1);
  std::printf("%s\n", r->dump(2).c_str());
  return 0;
}

#define CLLM_TRUST_ADMIN(admin, args)                                   \
  auto admin##_r = TrustAdmin::Open(args);                              \
  if (!admin##_r.ok()) return Fail(admin##_r.detail(), 2);              \
  TrustAdmin& admin = *admin##_r

int PolicySet(const TrustAdminArgs& a, const std::string& name, const std::string& file, const std::string& replay_at,
              bool client_role) {
  auto policy = ReadJsonFile(file);
  if (!policy.ok()) return Fail(policy.detail(), 2);
  nlohmann::json doc = {{"policy", *policy}};
  if (!replay_at.empty()) {
    if (!ParseRfc3339(replay_at)) return Fail("--replay-at: not an RFC 3339 time: " + replay_at, 2);
    doc["replay"] = {{"evidence_time", replay_at}};
  }
  // Tokens under it say "role": "client": only keys with "audience": "client" (the embedding table) accept them.
  if (client_role) doc["role"] = "client";
  CLLM_TRUST_ADMIN(admin, a);
  return Print(admin.Call("PUT", "/v1/admin/policies/" + name, doc));
}

int KeyRegister(const TrustAdminArgs& a, const std::string& key_id, const std::string& key_file,
                const std::string& rp_file) {
  auto key = ReadHexSecretFile(key_file, 32);
  if (!key.ok()) return Fail(key.detail(), 2);
  auto rp = ReadJsonFile(rp_file);
  if (!rp.ok()) return Fail(rp.detail(), 2);
  CLLM_TRUST_ADMIN(admin, a);
  nlohmann::json body = {{"key_id", key_id}, {"key", HexEncode(key->span())}, {"release_policy", *rp}};
  auto r = admin.Call("POST", "/v1/admin/keys", body);
  std::string& hex = body["key"].get_ref<std::string&>();
  SecureZero(hex.data(), hex.size());
  return Print(r);
}

// KeySetPolicy replaces a key's release policy (a model key or a fleet key):
// the broker applies it to the next release, GET /v1/e2e/keys shows it at once.
int KeySetPolicy(const TrustAdminArgs& a, const std::string& key_id, const std::string& rp_file) {
  auto rp = ReadJsonFile(rp_file);
  if (!rp.ok()) return Fail(rp.detail(), 2);
  CLLM_TRUST_ADMIN(admin, a);
  return Print(admin.Call("PUT", "/v1/admin/keys/" + key_id + "/release-policy", *rp));
}

int FleetKeyCreate(const TrustAdminArgs& a, const std::string& suite, const std::string& rp_file, int key_id) {
  auto rp = ReadJsonFile(rp_file);
  if (!rp.ok()) return Fail(rp.detail(), 2);
  nlohmann::json body = {{"suite", suite}, {"release_policy", *rp}};
  if (key_id >= 0) body["key_id"] = key_id;
  CLLM_TRUST_ADMIN(admin, a);
  return Print(admin.Call("POST", "/v1/admin/fleet-keys", body));
}

int FleetKeyRotate(const TrustAdminArgs& a, int key_id, int new_key_id) {
  nlohmann::json body = nlohmann::json::object();
  if (key_id >= 0) body["key_id"] = key_id;
  if (new_key_id >= 0) body["new_key_id"] = new_key_id;
  CLLM_TRUST_ADMIN(admin, a);
  return Print(admin.Call("POST", "/v1/admin/fleet-keys/rotate", body));
}

// AuditKey reads a PEM public key file (--audit-key), or parses the PEM the
// service reported; nullopt with a message on failure.
std::optional<crypto::PublicKey> ParseAuditKey(const std::string& pem, const std::string& what, std::string* err) {
  auto key = crypto::PublicKey::FromPem(pem);
  if (!key.ok()) {
    *err = what + ": not a PEM public key: " + key.detail();
    return std::nullopt;
  }
  return std::move(key).value();
}

int AuditVerify(const TrustAdminArgs& a, const std::string& db, const std::string& expect_head,
                const std::string& audit_key_file, bool json) {
  std::vector<trust::AuditEntry> entries;
  std::optional<crypto::PublicKey> pinned, reported;
  std::string err;
  if (!audit_key_file.empty()) {
    auto pem = ReadTextFile(audit_key_file, 1 << 16);
    if (!pem.ok()) return Fail(pem.detail(), 2);
    pinned = ParseAuditKey(*pem, audit_key_file, &err);
    if (!pinned) return Fail(err, 2);
  }
  if (!db.empty()) {
    auto store = trust::Store::OpenAuditReader(db);
    if (!store.ok()) return Fail(store.detail(), 2);
    auto all = (*store)->ReadAudit(1, UINT64_MAX / 2);
    if (!all.ok()) return Fail(all.detail());
    entries = std::move(all).value();
  } else {
    CLLM_TRUST_ADMIN(admin, a);
    uint64_t from = 1;
    for (;;) {
      auto page = admin.Call("GET", "/v1/admin/audit?from=" + std::to_string(from) + "&limit=10000");
      if (!page.ok()) return Fail(page.detail());
      const auto& list = (*page)["entries"];
      if (!list.is_array()) return Fail("malformed audit page");
      if (!reported && page->contains("audit_key") && (*page)["audit_key"].is_string()) {
        reported = ParseAuditKey((*page)["audit_key"].get<std::string>(), "the service's audit_key", &err);
        if (!reported) return Fail(err);
      }
      for (const auto& e : list) {
        if (!e.is_object()) return Fail("malformed audit page");
        trust::AuditEntry x;
        x.seq = e.value("seq", uint64_t{0});
        x.time = e.value("time", int64_t{0});
        x.kind = e.value("kind", "");
        x.body = e.value("body", "");
        auto prev = HexDecode(e.value("prev_hash", "")), hash = HexDecode(e.value("hash", ""));
        auto sig = HexDecode(e.value("sig", ""));
        if (!prev.ok() || !hash.ok() || !sig.ok() || prev->size() != 32 || hash->size() != 32) {
          return Fail("audit entry " + std::to_string(x.seq) + ": malformed hashes");
        }
        std::copy(prev->begin(), prev->end(), x.prev_hash.begin());
        std::copy(hash->begin(), hash->end(), x.hash.begin());
        x.sig = std::move(sig).value();
        entries.push_back(std::move(x));
      }
      if (list.size() < 10000) break;
      from = entries.back().seq + 1;
    }
    if (!reported) return Fail("the service reported no audit key (an older cllm-trust?)");
    if (pinned && pinned->ToSpkiDer() != reported->ToSpkiDer()) {
      return Fail("the service's audit key is not the one in " + audit_key_file +
                  " (a different store or master key answered)");
    }
  }
  // Online, the live service vouches for its audit key (its private half is
  // sealed under the master key, never in the database); offline, only a key
  // the operator kept (--audit-key) does.
  const crypto::PublicKey* key = pinned ? &*pinned : (reported ? &*reported : nullptr);
  const bool sigs_checked = key != nullptr;
  auto head = trust::VerifyAuditChain(entries, key);
  const std::string head_text = head.ok() ? std::to_string(head->seq) + ":" + HexEncode(head->hash) : "";
  bool head_ok = true;
  if (head.ok() && !expect_head.empty()) {
    // The expected head must be this one, or an earlier entry of this chain
    // (the log only grows).
    auto colon = expect_head.find(':');
    uint64_t seq = colon == std::string::npos ? 0 : std::strtoull(expect_head.c_str(), nullptr, 10);
    std::string hash = colon == std::string::npos ? "" : expect_head.substr(colon + 1);
    head_ok = seq >= 1 && seq <= entries.size() && HexEncode(entries[seq - 1].hash) == hash;
  }
  std::map<std::string, int> kinds;
  for (const auto& e : entries) ++kinds[e.kind];
  if (json) {
    nlohmann::json j = {{"ok", head.ok() && head_ok}, {"entries", entries.size()}, {"kinds", kinds},
                        {"signatures_checked", sigs_checked}};
    if (head.ok()) j["head"] = head_text;
    if (!head.ok()) j["error"] = head.detail();
    if (!head_ok) j["error"] = "the expected head " + expect_head + " is not in this chain (entries were dropped)";
    std::printf("%s\n", j.dump(2).c_str());
  } else if (head.ok() && head_ok) {
    std::printf("audit log OK: %zu entries, chain intact, %s\nhead %s\n", entries.size(),
                sigs_checked ? "every signature verified under the audit key"
                             : "signatures NOT checked (give --audit-key STATE_DIR/audit-key.pem: without it a "
                               "recomputed chain passes)",
                head_text.c_str());
    for (const auto& [k, n] : kinds) std::printf("  %-16s %d\n", k.c_str(), n);
    std::printf("(record this head elsewhere: a later `--expect-head %s` detects any entry up to it dropped or changed)\n",
                head_text.c_str());
  } else {
    std::printf("audit log BROKEN: %s\n",
                head.ok() ? ("expected head " + expect_head + " is not in this chain (entries were dropped)").c_str()
                          : head.detail().c_str());
  }
  return head.ok() && head_ok ? 0 : 1;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* trust = SubcommandGroup(app, "trust", "Administer cllm-trust (policies, model keys, fleet keys, audit log)");
  static TrustAdminArgs a;

  CLI::App* policy = trust->add_subcommand("policy", "Reference values (attestation policies) by name");
  policy->require_subcommand(1);
  auto* pset = policy->add_subcommand("set", "Create or replace a named policy from a policy file");
  static std::string pname, pfile, replay_at;
  pset->add_option("name", pname, "Policy name")->required();
  pset->add_option("file", pfile, "Attestation policy JSON (docs/attestation.md)")->required()->check(CLI::ExistingFile);
  pset->add_option("--replay-at", replay_at,
                   "Replay policy: accept archived evidence verified at this RFC 3339 time (tokens never get keys)");
  static bool client_role = false;
  pset->add_flag("--client-role", client_role,
                 "A policy for split-inference clients: its tokens get only keys registered for clients "
                 "(cllm model seal --part embeddings), never a model or fleet key");
  AddTrustAdminOptions(pset, a);
  pset->callback([&ctx] { ctx.exit_code = PolicySet(a, pname, pfile, replay_at, client_role); });
  auto* plist = policy->add_subcommand("list", "List policy names");
  AddTrustAdminOptions(plist, a);
  plist->callback([&ctx] {
    auto admin = TrustAdmin::Open(a);
    ctx.exit_code = admin.ok() ? Print(admin->Call("GET", "/v1/admin/policies")) : Fail(admin.detail(), 2);
  });
  auto* pshow = policy->add_subcommand("show", "Print a policy document");
  pshow->add_option("name", pname, "Policy name")->required();
  AddTrustAdminOptions(pshow, a);
  pshow->callback([&ctx] {
    auto admin = TrustAdmin::Open(a);
    ctx.exit_code = admin.ok() ? Print(admin->Call("GET", "/v1/admin/policies/" + pname)) : Fail(admin.detail(), 2);
  });
  auto* pdel = policy->add_subcommand("delete", "Delete a policy");
  pdel->add_option("name", pname, "Policy name")->required();
  AddTrustAdminOptions(pdel, a);
  pdel->callback([&ctx] {
    auto admin = TrustAdmin::Open(a);
    ctx.exit_code = admin.ok() ? Print(admin->Call("DELETE", "/v1/admin/policies/" + pname)) : Fail(admin.detail(), 2);
  });

  CLI::App* key = trust->add_subcommand("key", "Model keys held by the key broker");
  key->require_subcommand(1);
  auto* kreg = key->add_subcommand("register", "Register a model key with its release policy");
  static std::string key_id, key_file, rp_file;
  kreg->add_option("key_id", key_id, "Key id (the sealed header's key id)")->required();
  kreg->add_option("--key-file", key_file, "Model key file (64 hex characters)")->required()->check(CLI::ExistingFile);
  kreg->add_option("--release-policy", rp_file, "Release policy JSON (docs/trust.md)")->required()->check(CLI::ExistingFile);
  AddTrustAdminOptions(kreg, a);
  kreg->callback([&ctx] { ctx.exit_code = KeyRegister(a, key_id, key_file, rp_file); });
  auto* kpol = key->add_subcommand("set-policy", "Replace a key's release policy (model or fleet key)");
  static std::string pol_key_id, pol_file;
  kpol->add_option("key_id", pol_key_id, "Key id (a model key's, or a fleet key's model_key_id: fleet-N-SUITE)")
      ->required();
  kpol->add_option("--release-policy", pol_file, "Release policy JSON (docs/trust.md)")
      ->required()
      ->check(CLI::ExistingFile);
  AddTrustAdminOptions(kpol, a);
  kpol->callback([&ctx] { ctx.exit_code = KeySetPolicy(a, pol_key_id, pol_file); });
  auto* klist = key->add_subcommand("list", "List key ids and release policies (never the keys)");
  AddTrustAdminOptions(klist, a);
  klist->callback([&ctx] {
    auto admin = TrustAdmin::Open(a);
    ctx.exit_code = admin.ok() ? Print(admin->Call("GET", "/v1/admin/keys")) : Fail(admin.detail(), 2);
  });

  CLI::App* fleet = trust->add_subcommand(
      "fleet-key", "The fleet's HPKE keys for encrypted bodies (published at GET /v1/e2e/keys, released like model keys)");
  fleet->require_subcommand(1);
  static std::string fleet_suite = "x25519", fleet_rp;
  static int fleet_id = -1, fleet_new_id = -1;
  auto* fcreate = fleet->add_subcommand("create", "Generate a fleet key with its release policy");
  fcreate->add_option("--suite", fleet_suite, "HPKE suite")->check(CLI::IsMember({"x25519", "gmt"}))->capture_default_str();
  fcreate->add_option("--release-policy-file", fleet_rp, "Release policy JSON (docs/trust.md)")
      ->required()
      ->check(CLI::ExistingFile);
  fcreate->add_option("--key-id", fleet_id, "Key config id 0-255 (default: the next free one)")->check(CLI::Range(0, 255));
  AddTrustAdminOptions(fcreate, a);
  fcreate->callback([&ctx] { ctx.exit_code = FleetKeyCreate(a, fleet_suite, fleet_rp, fleet_id); });
  auto* flist = fleet->add_subcommand("list", "List fleet keys: configs, digests, release policies (never a private key)");
  AddTrustAdminOptions(flist, a);
  flist->callback([&ctx] {
    auto admin = TrustAdmin::Open(a);
    ctx.exit_code = admin.ok() ? Print(admin->Call("GET", "/v1/admin/fleet-keys")) : Fail(admin.detail(), 2);
  });
  auto* frot = fleet->add_subcommand(
      "rotate", "New fleet key with the same suite and release policy; the old one stays published until retired");
  frot->add_option("--key-id", fleet_id, "The key to rotate (default: the only published one)")->check(CLI::Range(0, 255));
  frot->add_option("--new-key-id", fleet_new_id, "The new key's id (default: the next free one)")
      ->check(CLI::Range(0, 255));
  AddTrustAdminOptions(frot, a);
  frot->callback([&ctx] { ctx.exit_code = FleetKeyRotate(a, fleet_id, fleet_new_id); });
  auto* fret = fleet->add_subcommand("retire", "Stop publishing and releasing a fleet key (its private key is deleted)");
  fret->add_option("--key-id", fleet_id, "The key to retire")->required()->check(CLI::Range(0, 255));
  AddTrustAdminOptions(fret, a);
  fret->callback([&ctx] {
    auto admin = TrustAdmin::Open(a);
    ctx.exit_code = admin.ok() ? Print(admin->Call("DELETE", "/v1/admin/fleet-keys/" + std::to_string(fleet_id)))
                               : Fail(admin.detail(), 2);
  });

  CLI::App* sk = trust->add_subcommand("signing-key", "Token signing keys");
  sk->require_subcommand(1);
  auto* rot = sk->add_subcommand("rotate", "Make a new signing key; the old one stays in the JWKS until its tokens expire");
  AddTrustAdminOptions(rot, a);
  rot->callback([&ctx] {
    auto admin = TrustAdmin::Open(a);
    ctx.exit_code = admin.ok() ? Print(admin->Call("POST", "/v1/admin/signing-keys/rotate", nlohmann::json::object()))
                               : Fail(admin.detail(), 2);
  });

  CLI::App* audit = trust->add_subcommand("audit", "The signed, hash-chained audit log");
  audit->require_subcommand(1);
  auto* av = audit->add_subcommand("verify", "Check every entry's hash chain and signature; print the head");
  static std::string db, expect_head, audit_key;
  static bool json = false;
  av->add_option("--db", db,
                 "Verify the store directly (its SQLite file or PostgreSQL connection string) instead of the admin API");
  av->add_option("--audit-key", audit_key,
                 "The audit key (PEM, cllm-trust init's audit-key.pem): every entry's signature must verify")
      ->check(CLI::ExistingFile);
  av->add_option("--expect-head", expect_head, "SEQ:HASH recorded earlier; fails if that entry is gone or changed");
  av->add_flag("--json", json, "Print one JSON object");
  AddTrustAdminOptions(av, a);
  av->callback([&ctx] { ctx.exit_code = AuditVerify(a, db, expect_head, audit_key, json); });
}

CommandRegistration reg{"trust", 40, Setup};

}  // namespace
}  // namespace cllm::app
