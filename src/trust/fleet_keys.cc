// fleet_keys.cc — the fleet's HPKE keys (service.h, e2e_keys.h).
//
// A fleet key is stored as a model key: key id "fleet-<N>-<suite>", the HPKE
// private key sealed under the master key with the model-key label, and a
// release policy. So the key broker (broker.cc) releases it — JWE to the
// node's ephemeral key, after the token, the proof of possession and the
// release policy — with no path of its own, and the store's row MACs,
// upgrade and both backends cover it unchanged. What this file adds:
//   - admin create / list / rotate / retire (retire deletes the row: the
//     sealed private key is destroyed, nothing can release it afterwards);
//   - GET /v1/e2e/keys: each key's config (RFC 9458 §3, one suite) and a
//     statement signed with the active token signing key binding the config
//     digest to the key's release policy.
// The public key is derived from the private one when listed, never stored
// apart from it, so a config cannot name a key the broker does not hold.
// Key ids are handed out round-robin after the last one used (meta row
// "fleet_key_last_id"), so a retired id comes back as late as possible, and
// each suite from its own half: x25519 even ids, gmt odd ones. A key id names
// one config whatever the suite (clients and replicas refuse a list with an
// id twice), and two cllm-trust replicas creating keys of the two suites at
// once each pick an id from a list that does not yet show the other's: with
// halves they cannot pick the same one. Two of the same suite can: the
// second insert fails on the model-key id, and a default id is then picked
// again from the list that now shows the other's key (a few times, then 409
// key_exists). An id named by the admin must be in its suite's half too, and
// is never changed.
//
// Scheduled rotation (RunFleetKeySchedule, TrustConfig::fleet_key_rotation)
// is the admin's rotate and retire on a clock, per chain (the keys of one
// suite and one release policy: one fleet's): the newest key is rotated once
// it is `rotation` old, the older ones retired once the newest is `overlap`
// old. Keys with other release policies (other fleets) are other chains. A
// successor's id is the first free one after its predecessor's, not the
// round-robin one, so replicas that decide from the same list choose the
// same id and only the first insert succeeds (409 key_exists for the others:
// done already).

#include <algorithm>
#include <map>
#include <tuple>

#include "base/encoding.h"
#include "base/json_guard.h"
#include "crypto/hpke.h"
#include "trust/e2e_keys.h"
#include "trust/release_policy.h"
#include "trust/service.h"

namespace cllm::trust {
namespace {

namespace hpke = crypto::hpke;
using Reply = std::variant<nlohmann::json, ApiError>;

constexpr char kLastIdMeta[] = "fleet_key_last_id";

// The half of the key ids a suite's keys get by default (0: even, 1: odd).
int64_t FleetKeyIdHalf(const hpke::Suite& suite) { return suite == hpke::kSuiteX25519 ? 0 : 1; }

struct FleetKey {
  FleetKeyName name;
  std::string model_key_id;
  int64_t created = 0;
  nlohmann::json release_policy;
  Bytes config;  // the key config bytes
};

ApiError StoreError(const std::string& detail) { return ApiError{500, "store", detail}; }

// LoadFleetKeys reads every fleet key and derives its config from the sealed
// private key.
std::variant<std::vector<FleetKey>, ApiError> LoadFleetKeys(Store& store, const SecretBox& box) {
  auto rows = store.ListModelKeys();
  if (!rows.ok()) return StoreError(rows.detail());
  std::vector<FleetKey> out;
  for (const ModelKeyRow& listed : *rows) {
    auto name = ParseFleetModelKeyId(listed.key_id);
    if (!name) continue;
    auto row = store.GetModelKey(listed.key_id);
    if (!row.ok()) return StoreError(row.detail());
    if (!*row) continue;  // retired between the two reads
    auto sk = box.Open("model-key:" + listed.key_id, (*row)->sealed_key);
    if (!sk.ok()) return ApiError{500, "secret", sk.detail()};
    auto pk = hpke::PublicKeyFromPrivate(name->suite.kem, sk->span());
    if (!pk.ok()) return ApiError{500, "crypto", listed.key_id + ": " + pk.detail()};
    Bytes config = channel::e2e::EncodeKeyConfig({name->key_id, name->suite, std::move(pk).value()});
    auto rp = nlohmann::json::parse((*row)->release_policy, nullptr, false);
    if (rp.is_discarded()) return ApiError{500, "release_policy", listed.key_id + ": stored release policy is not JSON"};
    out.push_back({*name, listed.key_id, (*row)->created, std::move(rp), std::move(config)});
  }
  return out;
}

// OrderForClients puts, per suite, the key clients should seal to first: the
// newest one older than kFleetKeyActivationSeconds (replicas have had time to
// fetch it), then the rest newest first.
void OrderForClients(std::vector<FleetKey>& keys, int64_t now) {
  auto active = [now](const FleetKey& k) { return k.created <= now - kFleetKeyActivationSeconds; };
  std::sort(keys.begin(), keys.end(), [&](const FleetKey& a, const FleetKey& b) {
    if (active(a) != active(b)) return active(a);
    if (a.created != b.created) return a.created > b.created;
    return a.name.key_id < b.name.key_id;
  });
}

nlohmann::json Describe(const FleetKey& k) {
  return {{"key_id", k.name.key_id},
          {"suite", hpke::SuiteName(k.name.suite)},
          {"model_key_id", k.model_key_id},
          {"created", k.created},
          {"config", Base64UrlEncode(k.config)},
          {"key_config_digest", KeyConfigDigestHex(k.config)},
          {"release_policy", k.release_policy},
          {"release_policy_digest", ReleasePolicyDigestHex(k.release_policy)}};
}

const FleetKey* FindById(const std::vector<FleetKey>& keys, int64_t key_id) {
  for (const auto& k : keys) {
    if (k.name.key_id == key_id) return &k;
  }
  return nullptr;
}

// KeyIdMember reads an optional "key_id" member: nullopt when absent,
// -1 when present but not an integer in 0-255.
std::optional<int64_t> KeyIdMember(const nlohmann::json& v) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_number_integer()) return -1;
  const int64_t n = v.get<int64_t>();
  return n >= 0 && n <= kMaxFleetKeyId ? n : -1;
}

// SuccessorId is the first id of the suite's half after `after`
// (round-robin) that no published key has; -1 when the half is full.
int64_t SuccessorId(const std::vector<FleetKey>& keys, int64_t after, int64_t half) {
  for (int64_t i = 1; i <= kMaxFleetKeyId + 1; ++i) {
    const int64_t candidate = (after + i) % (kMaxFleetKeyId + 1);
    if (candidate % 2 == half && !FindById(keys, candidate)) return candidate;
  }
  return -1;
}

// PickFleetKeyId is the id a new key of `suite` gets: `wanted` if free (the
// caller checked its half), else the first free id of the suite's half
// round-robin after the last one used.
std::variant<int64_t, ApiError> PickFleetKeyId(Store& store, const std::vector<FleetKey>& keys,
                                               std::optional<int64_t> wanted, int64_t half, const hpke::Suite& suite) {
  if (wanted) {
    if (FindById(keys, *wanted)) {
      return ApiError{409, "key_exists", "fleet key " + std::to_string(*wanted) + " is published; retire it first"};
    }
    return *wanted;
  }
  auto last = store.GetMeta(kLastIdMeta);
  if (!last.ok()) return StoreError(last.detail());
  int64_t after = -1;  // the first key gets id 0
  if (*last) {
    const std::string& t = **last;
    if (t.empty() || t.size() > 3 || !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return StoreError("meta fleet_key_last_id is not a number");
    }
    after = std::stoll(t);
  }
  if (const int64_t id = SuccessorId(keys, after, half); id >= 0) return id;
  return ApiError{409, "no_free_key_id", std::string("no free ") + (half == 0 ? "even" : "odd") +
                                             " fleet key id (the half of suite " + hpke::SuiteName(suite) +
                                             "): retire one first"};
}

}  // namespace

// ---------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------

Reply TrustService::AddFleetKey(const std::string& suite_name, const nlohmann::json& release_policy,
                                const nlohmann::json& key_id, const char* action, const nlohmann::json& audit_extra) {
  const int64_t now = Now();
  auto suite = hpke::ParseSuite(suite_name);
  if (!suite.ok()) return ApiError{400, "malformed", "suite: \"x25519\" or \"gmt\""};
  auto rp = ParseReleasePolicy(release_policy);
  if (!rp.ok()) return ApiError{400, "invalid_release_policy", rp.detail()};
  if (rp->client_audience) {
    return ApiError{400, "invalid_release_policy", "audience: a fleet key is for servers only (a client holding it "
                                                   "could open every other client's requests)"};
  }
  const auto wanted = KeyIdMember(key_id);
  if (wanted && *wanted < 0) return ApiError{400, "malformed", "key_id: an integer 0-255"};

  // One change at a time in this process: the id chosen is still free when
  // stored. Other replicas: the suite's half of the ids, and a default id
  // picked again when one of them stored it first (above).
  std::lock_guard<std::mutex> lock(fleet_mu_);
  const int64_t half = FleetKeyIdHalf(*suite);
  if (wanted && *wanted % 2 != half) {
    return ApiError{400, "malformed", std::string("key_id: ") + hpke::SuiteName(*suite) + " keys take " +
                                          (half == 0 ? "even" : "odd") +
                                          " ids (each suite its own half, so replicas never publish an id twice)"};
  }
  // Another replica of the same suite may store the id picked here first:
  // a default id is then picked again (kMaxAttempts in all).
  constexpr int kMaxAttempts = 8;
  const nlohmann::json rp_json = rp->ToJson();
  int64_t id = -1;
  Bytes config;
  std::string model_key_id;
  for (int attempt = 1;; ++attempt) {
    auto existing = LoadFleetKeys(*store_, box_);
    if (auto* e = std::get_if<ApiError>(&existing)) return *e;
    auto picked = PickFleetKeyId(*store_, std::get<std::vector<FleetKey>>(existing), wanted, half, *suite);
    if (auto* e = std::get_if<ApiError>(&picked)) return *e;
    id = std::get<int64_t>(picked);
    auto pair = hpke::GenerateKeyPair(suite->kem);
    if (!pair.ok()) return ApiError{500, "crypto", std::string("fleet key: ") + pair.detail()};
    const uint8_t id8 = static_cast<uint8_t>(id);
    config = channel::e2e::EncodeKeyConfig({id8, *suite, pair->pk});
    model_key_id = FleetModelKeyId(id8, *suite);
    auto st = store_->PutModelKey({model_key_id, box_.Seal("model-key:" + model_key_id, pair->sk.span()),
                                   rp_json.dump(), now});
    if (st.ok()) break;
    if (st.code() != Errc::kInvalidArgument) return StoreError(st.detail());
    if (wanted || attempt == kMaxAttempts) return ApiError{409, "key_exists", st.detail()};
  }
  auto meta = store_->PutMeta(kLastIdMeta, std::to_string(id));
  ++fleet_generation_;

  FleetKey k{{static_cast<uint8_t>(id), *suite}, model_key_id, now, rp_json, config};
  nlohmann::json audit = {{"action", action},
                          {"key_id", id},
                          {"suite", hpke::SuiteName(*suite)},
                          {"model_key_id", model_key_id},
                          {"key_config_digest", KeyConfigDigestHex(k.config)},
                          {"release_policy", rp_json}};
  audit.update(audit_extra);
  // The key is stored: it is recorded even when the id hint below failed.
  if (auto e = Audited("admin", audit, kAdminUnaudited)) return *e;
  if (!meta.ok()) return StoreError(meta.detail());
  return Describe(k);
}

Reply TrustService::CreateFleetKey(const nlohmann::json& req) {
  if (!req.is_object() || !req.contains("suite") || !req["suite"].is_string()) {
    return ApiError{400, "malformed", "{\"suite\": \"x25519\"|\"gmt\", \"release_policy\": {…}, \"key_id\": N?}"};
  }
  return AddFleetKey(req["suite"].get<std::string>(), req.value("release_policy", nlohmann::json()),
                     req.value("key_id", nlohmann::json()), "fleet_key_create", nlohmann::json::object());
}

Reply TrustService::ListFleetKeys() {
  auto loaded = LoadFleetKeys(*store_, box_);
  if (auto* e = std::get_if<ApiError>(&loaded)) return *e;
  auto& keys = std::get<std::vector<FleetKey>>(loaded);
  OrderForClients(keys, Now());
  nlohmann::json list = nlohmann::json::array();
  for (const auto& k : keys) list.push_back(Describe(k));
  return nlohmann::json{{"fleet_keys", list}};
}

Reply TrustService::RotateFleetKey(const nlohmann::json& req) {
  if (!req.is_object()) return ApiError{400, "malformed", "{\"key_id\": N?, \"new_key_id\": M?}"};
  const auto from = KeyIdMember(req.value("key_id", nlohmann::json()));
  if (from && *from < 0) return ApiError{400, "malformed", "key_id: an integer 0-255"};
  auto loaded = LoadFleetKeys(*store_, box_);
  if (auto* e = std::get_if<ApiError>(&loaded)) return *e;
  const auto& keys = std::get<std::vector<FleetKey>>(loaded);
  const FleetKey* old = nullptr;
  if (from) {
    old = FindById(keys, *from);
    if (!old) return ApiError{404, "unknown_key", "no fleet key " + std::to_string(*from) + " is published"};
  } else if (keys.size() == 1) {
    old = &keys[0];
  } else {
    return ApiError{400, "malformed",
                    keys.empty() ? "no fleet key is published: create one" : "several fleet keys are published: name "
                                                                               "the one to rotate (key_id)"};
  }
  // The new key has the old one's suite and release policy; the old one
  // stays published and releasable until it is retired.
  return AddFleetKey(hpke::SuiteName(old->name.suite), old->release_policy, req.value("new_key_id", nlohmann::json()),
                     "fleet_key_rotate", {{"previous_key_id", old->name.key_id}});
}

Reply TrustService::RetireFleetKey(int64_t key_id) {
  if (key_id < 0 || key_id > kMaxFleetKeyId) return ApiError{400, "malformed", "key_id: an integer 0-255"};
  std::lock_guard<std::mutex> lock(fleet_mu_);
  auto rows = store_->ListModelKeys();
  if (!rows.ok()) return StoreError(rows.detail());
  for (const ModelKeyRow& row : *rows) {
    auto name = ParseFleetModelKeyId(row.key_id);
    if (!name || name->key_id != key_id) continue;
    auto gone = store_->DeleteModelKey(row.key_id);
    if (!gone.ok()) return StoreError(gone.detail());
    ++fleet_generation_;
    if (auto e = Audited("admin", {{"action", "fleet_key_retire"}, {"key_id", key_id}, {"model_key_id", row.key_id}},
                         kAdminUnaudited)) {
      return *e;
    }
    return nlohmann::json{{"retired", key_id}, {"model_key_id", row.key_id}};
  }
  return ApiError{404, "unknown_key", "no fleet key " + std::to_string(key_id) + " is published"};
}

namespace {

// A chain: the keys of one suite with one release policy (one fleet's keys
// for that suite). The schedule rotates and retires within a chain only.
struct Chain {
  hpke::Suite suite;
  std::string policy_digest;
  bool operator<(const Chain& o) const {
    return std::tie(suite.kem, suite.kdf, suite.aead, policy_digest) <
           std::tie(o.suite.kem, o.suite.kdf, o.suite.aead, o.policy_digest);
  }
};

// ChainPolicy is the digest a chain is keyed by: the release policy as the
// service writes it (parsed and written again), so a stored spelling that
// differs from today's ToJson cannot split a chain.
std::string ChainPolicy(const nlohmann::json& release_policy) {
  auto rp = ParseReleasePolicy(release_policy);
  return ReleasePolicyDigestHex(rp.ok() ? rp->ToJson() : release_policy);
}

// NewestOf maps each chain to its newest key (latest `created`; on a tie the
// lower id, as OrderForClients lists them).
std::map<Chain, const FleetKey*> NewestOf(const std::vector<FleetKey>& keys) {
  std::map<Chain, const FleetKey*> newest;
  for (const auto& k : keys) {
    const FleetKey*& n = newest[Chain{k.name.suite, ChainPolicy(k.release_policy)}];
    if (!n || k.created > n->created || (k.created == n->created && k.name.key_id < n->name.key_id)) n = &k;
  }
  return newest;
}

}  // namespace

Reply TrustService::RunFleetKeySchedule() {
  nlohmann::json done = {
      {"rotated", nlohmann::json::array()}, {"retired", nlohmann::json::array()}, {"errors", nlohmann::json::array()}};
  const int64_t rotation = config_.fleet_key_rotation.count(), overlap = config_.fleet_key_overlap.count();
  const int64_t now = Now();
  auto error = [&done](const std::string& chain, const ApiError& e) {
    done["errors"].push_back({{"chain", chain}, {"code", e.code}, {"message", e.message}});
  };
  // Deleted keys' bytes whose erasure a reader held up (Store::EraseDeleted),
  // whoever deleted them (this schedule, the admin, an earlier process).
  auto erase = [&] {
    if (auto erased = store_->EraseDeleted(); !erased.ok() || !*erased) {
      error("store", erased.ok() ? ApiError{503, "erase_pending",
                                            "a reader of the store kept deleted keys' bytes from being erased "
                                            "from its files; retrying"}
                                 : StoreError(erased.detail()));
    }
  };
  if (rotation <= 0) {
    erase();
    return done;
  }
  // Retire: decided and done under the lock from a fresh list, so a key the
  // admin retires or adds meanwhile in this process is seen.
  {
    std::lock_guard<std::mutex> lock(fleet_mu_);
    auto loaded = LoadFleetKeys(*store_, box_);
    if (auto* e = std::get_if<ApiError>(&loaded)) return *e;
    const auto& keys = std::get<std::vector<FleetKey>>(loaded);
    const auto newest = NewestOf(keys);
    for (const auto& k : keys) {
      const FleetKey* n = newest.at(Chain{k.name.suite, ChainPolicy(k.release_policy)});
      if (n == &k || now - n->created < overlap) continue;
      auto gone = store_->DeleteModelKey(k.model_key_id);
      if (!gone.ok()) {
        error(k.model_key_id, StoreError(gone.detail()));
        continue;
      }
      if (!*gone) continue;  // another replica retired it first
      ++fleet_generation_;
      Audit("admin", {{"action", "fleet_key_retire"},
                      {"key_id", k.name.key_id},
                      {"model_key_id", k.model_key_id},
                      {"successor_key_id", n->name.key_id},
                      {"scheduled", true}});
      done["retired"].push_back(k.name.key_id);
    }
  }
  erase();
  // Rotate: each chain whose newest key is due gets a successor with the
  // same suite and release policy.
  auto loaded = LoadFleetKeys(*store_, box_);
  if (auto* e = std::get_if<ApiError>(&loaded)) {
    error("fleet keys", *e);  // what was retired above is still reported
    return done;
  }
  const auto& keys = std::get<std::vector<FleetKey>>(loaded);
  for (const auto& [chain, n] : NewestOf(keys)) {
    if (now - n->created < rotation) continue;
    const int64_t successor = SuccessorId(keys, n->name.key_id, FleetKeyIdHalf(chain.suite));
    if (successor < 0) {
      error(n->model_key_id, ApiError{409, "no_free_key_id",
                                      std::string("no free fleet key id for suite ") + hpke::SuiteName(chain.suite)});
      continue;
    }
    Reply r = AddFleetKey(hpke::SuiteName(chain.suite), n->release_policy, successor, "fleet_key_rotate",
                          {{"previous_key_id", n->name.key_id}, {"scheduled", true}});
    if (auto* e = std::get_if<ApiError>(&r)) {
      if (e->code != "key_exists") error(n->model_key_id, *e);  // key_exists: another replica rotated it first
      continue;
    }
    done["rotated"].push_back({{"key_id", successor}, {"previous_key_id", n->name.key_id}});
  }
  return done;
}

// A fleet key keeps the release policy it was released under: replicas that
// satisfied it may hold the key, so a statement naming any other policy
// would let clients trust a key that was never limited to it (found by
// review: tightening a policy in place re-labelled keys already in the
// hands of nodes it now refuses). A new policy therefore replaces the chain:
// a new key under the new policy, then every key of the old chain retired.
Reply TrustService::SetFleetKeyReleasePolicy(const std::string& model_key_id, const nlohmann::json& release_policy) {
  std::vector<int64_t> old_chain;
  std::string suite;
  int64_t last_id = -1;
  {
    std::lock_guard<std::mutex> lock(fleet_mu_);
    auto loaded = LoadFleetKeys(*store_, box_);
    if (auto* e = std::get_if<ApiError>(&loaded)) return *e;
    const auto& keys = std::get<std::vector<FleetKey>>(loaded);
    const FleetKey* target = nullptr;
    for (const auto& k : keys) {
      if (k.model_key_id == model_key_id) target = &k;
    }
    if (!target) return ApiError{404, "unknown_key", "no fleet key " + model_key_id + " is published"};
    const std::string chain = ChainPolicy(target->release_policy);
    if (ChainPolicy(release_policy) == chain) {
      return nlohmann::json{{"key_id", model_key_id}, {"release_policy", target->release_policy},
                            {"unchanged", true}};
    }
    for (const auto& k : keys) {
      if (k.name.suite == target->name.suite && ChainPolicy(k.release_policy) == chain) {
        old_chain.push_back(k.name.key_id);
      }
    }
    suite = hpke::SuiteName(target->name.suite);
    last_id = target->name.key_id;
  }
  Reply added = AddFleetKey(suite, release_policy, nlohmann::json(), "fleet_key_release_policy",
                            {{"replaces_model_key_id", model_key_id}, {"previous_key_id", last_id}});
  if (std::holds_alternative<ApiError>(added)) return added;  // nothing retired: the old chain stays as it was
  nlohmann::json retired = nlohmann::json::array();
  for (int64_t id : old_chain) {
    Reply r = RetireFleetKey(id);
    if (auto* e = std::get_if<ApiError>(&r); e && e->code != "unknown_key") return *e;  // unknown: retired meanwhile
    retired.push_back(id);
  }
  return nlohmann::json{{"key_id", model_key_id}, {"release_policy", std::get<nlohmann::json>(added)["release_policy"]},
                        {"new_key", std::get<nlohmann::json>(added)}, {"retired", retired}};
}

// Admin routes under /v1/admin/fleet-keys (Admin in service.cc dispatches here).
Reply TrustService::AdminFleetKeys(const net::Request& r, const std::string& path) {
  const ApiError bad_json{400, "malformed", "the request body is not valid JSON"};
  auto body = [&]() -> std::optional<nlohmann::json> {
    if (r.body.empty()) return nlohmann::json::object();
    if (!JsonDepthWithin(r.body)) return std::nullopt;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
  };
  const std::string base = "/v1/admin/fleet-keys";
  if (path == base && r.method == "GET") return ListFleetKeys();
  if (path == base && r.method == "POST") {
    auto j = body();
    return j ? CreateFleetKey(*j) : Reply(bad_json);
  }
  if (path == base + "/rotate" && r.method == "POST") {
    auto j = body();
    return j ? RotateFleetKey(*j) : Reply(bad_json);
  }
  if (path.size() > base.size() + 1 && path.compare(0, base.size() + 1, base + "/") == 0 && r.method == "DELETE") {
    const std::string id = path.substr(base.size() + 1);
    if (id.empty() || id.size() > 3 || !std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return ApiError{400, "malformed", "fleet key ids are integers 0-255"};
    }
    return RetireFleetKey(std::stoll(id));
  }
  return ApiError{404, "not_found", r.method + " " + path.substr(0, 128) + " is not an admin route"};
}

// ---------------------------------------------------------------------------
// GET /v1/e2e/keys
// ---------------------------------------------------------------------------

Reply TrustService::E2eKeys() {
  const int64_t now = Now();
  const std::string kid = keys_->active_kid();
  const uint64_t generation = fleet_generation_.load();
  {
    std::lock_guard<std::mutex> lock(e2e_mu_);
    const E2eKeysCache& c = e2e_cache_;
    if (c.reply && c.kid == kid && c.generation == generation && now >= c.built &&
        now - c.built < kE2eKeysCacheSeconds) {
      return *c.reply;
    }
  }
  auto loaded = LoadFleetKeys(*store_, box_);
  if (auto* e = std::get_if<ApiError>(&loaded)) return *e;
  auto& keys = std::get<std::vector<FleetKey>>(loaded);
  OrderForClients(keys, now);
  // The statement lives as long as a token: the key that signed it stays in
  // the JWKS at least that long after a rotation (signing_keys.h overlap).
  const int64_t exp = now + config_.token_lifetime.count();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& k : keys) {
    const nlohmann::json claims = E2eStatementClaims(k.config, k.name.key_id, k.name.suite, k.release_policy, now, exp);
    auto jws = keys_->SignJws(kE2eStatementHeaderTyp, claims.dump());
    if (!jws.ok()) return ApiError{500, "crypto", jws.detail()};
    list.push_back({{"key_id", k.name.key_id},
                    {"suite", hpke::SuiteName(k.name.suite)},
                    {"config", Base64UrlEncode(k.config)},
                    {"statement", *jws}});
  }
  nlohmann::json reply = {{"keys", list}};
  std::lock_guard<std::mutex> lock(e2e_mu_);
  e2e_cache_ = {now, kid, generation, reply};
  return reply;
}

}  // namespace cllm::trust
