#include "trust/service.h"

#include <algorithm>
#include <mutex>

#include "base/encoding.h"
#include "base/json_guard.h"
#include "base/log.h"
#include "crypto/digest.h"
#include "crypto/random.h"
#include "trust/e2e_keys.h"
#include "trust/release_policy.h"

namespace cllm::trust {
namespace {

using Reply = std::variant<nlohmann::json, ApiError>;

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

uint64_t ParseCount(const std::string& s, uint64_t fallback, uint64_t max) {
  if (s.empty() || s.size() > 19) return fallback;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return fallback;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return std::min(v, max);
}

// JsonBody parses a request body (depth-checked); nullopt when it is not JSON.
std::optional<nlohmann::json> JsonBody(const net::Request& r) {
  if (!JsonDepthWithin(r.body)) return std::nullopt;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// Dump serialises a reply or audit body. Invalid UTF-8 from evidence (a
// platform name, a model name) would make nlohmann::json throw — losing the
// audit entry and answering 500 — so it is replaced with U+FFFD instead.
std::string Dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::string Bearer(const net::Request& r) {
  std::string h = r.Header("authorization");
  return StartsWith(h, "Bearer ") ? h.substr(7) : std::string();
}

}  // namespace

std::optional<std::string> FleetKeyScheduleError(std::chrono::seconds rotation, std::chrono::seconds overlap) {
  if (rotation.count() == 0) return std::nullopt;
  if (rotation < kMinFleetKeyRotation) {
    return "fleet-key rotation: 0 (off) or at least " + std::to_string(kMinFleetKeyRotation.count()) + " s, got " +
           std::to_string(rotation.count()) + " s";
  }
  if (overlap < kMinFleetKeyOverlap || overlap >= rotation) {
    return "fleet-key overlap: at least " + std::to_string(kMinFleetKeyOverlap.count()) +
           " s and shorter than the rotation period (" + std::to_string(rotation.count()) + " s), got " +
           std::to_string(overlap.count()) + " s";
  }
  return std::nullopt;
}

Result<std::unique_ptr<TrustService>> TrustService::Create(std::unique_ptr<Store> store, SecretBox box,
                                                           TrustConfig config) {
  if (config.token_lifetime <= std::chrono::seconds(0) || config.token_lifetime > kMaxTokenLifetime) {
    return MakeError(Errc::kInvalidArgument, "token lifetime must be between 1 s and 600 s");
  }
  if (auto e = FleetKeyScheduleError(config.fleet_key_rotation, config.fleet_key_overlap)) {
    return MakeError(Errc::kInvalidArgument, *e);
  }
  std::unique_ptr<TrustService> s(new TrustService(std::move(store), std::move(box), std::move(config)));
  CLLM_ASSIGN_OR_RETURN(s->keys_, SigningKeys::Load(*s->store_, s->box_, s->Now(), kMaxTokenLifetime + kLeeway));
  return s;
}

int64_t TrustService::Now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(config_.clock().time_since_epoch()).count();
}

TrustService::~TrustService() { FlushAuditSummaries(); }

// Every few seconds, before a request is served: a key retired more than its
// overlap ago leaves the JWKS and stops verifying tokens (rotating a key that
// may have leaked must revoke it); on a shared database, another replica's
// rotation is read too (Reload prunes as it reads).
size_t TrustService::BodyLimit(const net::Request& head) {
  const std::string path = head.Path();
  if (head.method == "POST" && path == "/v1/attest") return kMaxEvidenceBody;
  if (StartsWith(path, "/v1/admin/")) return kMaxEvidenceBody;  // authorized before the body is parsed
  return kMaxSmallBody;
}

void TrustService::ReloadKeysIfDue() {
  const int64_t now = Now();
  int64_t last = last_key_reload_.load();
  if (now - last < kKeyReloadSeconds || !last_key_reload_.compare_exchange_strong(last, now)) return;
  if (store_->shared()) {
    auto st = keys_->Reload(now);
    if (!st.ok()) log::error("signing keys: reload from the store failed: {}", st.detail());
    return;
  }
  auto pruned = keys_->Prune(now);  // SQLite: this process is the only writer
  if (!pruned.ok()) log::error("signing keys: dropping retired keys failed: {}", pruned.detail());
}

void TrustService::Audit(const std::string& kind, const nlohmann::json& body) {
  (void)Audited(kind, body, "");  // logged there
}

std::optional<ApiError> TrustService::Audited(const std::string& kind, const nlohmann::json& body,
                                              const std::string& what) {
  auto e = store_->AppendAudit(kind, Dump(body), Now());
  if (e.ok()) return std::nullopt;
  log::error("audit log append failed ({}): {}", kind, e.detail());
  return ApiError{500, "audit", what + ": the audit log refused its entry: " + e.detail()};
}

// Unauthenticated callers (and anyone holding a copy of a server's public
// token, at the key broker) can be refused as fast as they can send requests;
// one audit row each would grow the store without bound. Each minute the
// first `refusal_audit_per_minute` refusals are audited in full, the rest
// are counted by code in one "attest_refused_summary" entry written when the
// window closes (or at shutdown): every refusal is still accounted for.
void TrustService::AuditRefusal(const std::string& kind, const nlohmann::json& body) {
  if (AdmitToAudit(refusals_, config_.refusal_audit_per_minute, kind, body.value("code", std::string("?")))) {
    Audit(kind, body);
  }
}

// Replay tokens are issued to whoever sends evidence that verifies at the
// policy's fixed time — any copy of archived evidence, forever — so they
// are bounded the same way, in their own window ("attest_replay_summary",
// counted per policy). Within it the entry must be written before the token
// leaves, as for every token.
std::optional<ApiError> TrustService::AuditReplayToken(const std::string& policy, const nlohmann::json& body) {
  if (!AdmitToAudit(replays_, config_.replay_audit_per_minute, "attest", policy)) return std::nullopt;
  return Audited("attest", body, "no token was issued");
}

bool TrustService::AdmitToAudit(AuditWindow& w, int per_minute, const std::string& kind, const std::string& code) {
  const int64_t now = Now();
  std::optional<nlohmann::json> summary;
  bool full = false;
  {
    std::lock_guard<std::mutex> lock(refusal_mu_);
    if (now - w.start >= 60 || now < w.start) {
      summary = TakeSummaryLocked(w);
      w.start = now;
      w.logged = 0;
    }
    if (w.logged < per_minute) {
      ++w.logged;
      full = true;
    } else {
      ++w.suppressed;
      ++w.by_code[code];
      ++w.by_kind[kind];
    }
  }
  if (summary) Audit(w.summary_kind, *summary);  // const: safe to read outside the lock
  return full;
}

std::optional<nlohmann::json> TrustService::TakeSummaryLocked(AuditWindow& w) {
  if (w.suppressed == 0) return std::nullopt;
  nlohmann::json s = {{"window_start", w.start}, {"window_seconds", 60},
                      {"audited_in_full", w.logged}, {"counted_only", w.suppressed},
                      {"codes", w.by_code}, {"kinds", w.by_kind}};
  w.suppressed = 0;
  w.by_code.clear();
  w.by_kind.clear();
  return s;
}

void TrustService::FlushAuditSummaries() {
  std::optional<nlohmann::json> refused, replayed;
  {
    std::lock_guard<std::mutex> lock(refusal_mu_);
    refused = TakeSummaryLocked(refusals_);
    replayed = TakeSummaryLocked(replays_);
  }
  if (refused) Audit(refusals_.summary_kind, *refused);
  if (replayed) Audit(replays_.summary_kind, *replayed);
}

Result<std::optional<std::string>> TrustService::EnsureAdminToken() {
  CLLM_ASSIGN_OR_RETURN(auto have, store_->GetMeta("admin_token_sha256"));
  if (have) return std::optional<std::string>();
  std::string token = "cllm-admin-" + HexEncode(crypto::RandomBytes(32));
  auto digest = crypto::Sha256(ByteSpan(reinterpret_cast<const uint8_t*>(token.data()), token.size()));
  CLLM_RETURN_IF_ERROR(store_->PutMeta("admin_token_sha256", HexEncode(digest)));
  return std::optional<std::string>(std::move(token));
}

bool TrustService::AdminAuthorized(const net::Request& r) {
  std::string token = Bearer(r);
  auto want = store_->GetMeta("admin_token_sha256");
  if (!want.ok()) log::error("admin request refused: {}", want.detail());  // e.g. the digest row was altered
  if (token.empty() || !want.ok() || !*want) return false;
  auto digest = crypto::Sha256(ByteSpan(reinterpret_cast<const uint8_t*>(token.data()), token.size()));
  auto want_bytes = HexDecode(**want);
  return want_bytes.ok() && ConstantTimeEqual(digest, *want_bytes);
}

Result<std::shared_ptr<const PolicyDoc>> TrustService::LoadPolicyDoc(const std::string& name) {
  CLLM_ASSIGN_OR_RETURN(auto text, store_->GetPolicy(name));
  if (!text) return MakeError(Errc::kNotFound, "no policy named \"" + name + "\" is registered");
  {
    std::shared_lock lock(policy_mu_);
    auto it = policy_cache_.find(name);
    if (it != policy_cache_.end() && it->second->json == *text) return it->second;
  }
  CLLM_ASSIGN_OR_RETURN(PolicyDoc doc, ParsePolicyDoc(*text));
  doc.json = *text;
  auto shared = std::make_shared<const PolicyDoc>(std::move(doc));
  std::unique_lock lock(policy_mu_);
  policy_cache_[name] = shared;
  return shared;
}

void TrustService::Handle(const net::Request& r, net::ResponseWriter& out) {
  const std::string path = r.Path();
  auto send = [&](const Reply& reply, int ok_status = 200) {
    if (const auto* e = std::get_if<ApiError>(&reply)) {
      out.Send(e->status, "application/json",
               Dump(nlohmann::json{{"error", {{"code", e->code}, {"message", e->message}}}}));
    } else {
      out.Send(ok_status, "application/json", Dump(std::get<nlohmann::json>(reply)));
    }
  };
  const ApiError bad_json{400, "malformed", "the request body is not valid JSON"};

  if (r.method == "GET" && path == "/health") return send(nlohmann::json{{"status", "ok"}});
  ReloadKeysIfDue();
  if (r.method == "GET" && path == "/.well-known/jwks.json") return send(Jwks());
  if (r.method == "POST" && path == "/v1/challenge") return send(Challenge());
  if (r.method == "GET" && path == "/v1/e2e/keys") {
    // Short: a client refetches after a stale-key error, and each statement
    // expires with the token lifetime.
    const int64_t max_age = std::min<int64_t>(60, config_.token_lifetime.count() / 2);
    out.AddHeader("Cache-Control", "public, max-age=" + std::to_string(max_age));
    return send(E2eKeys());
  }
  if (r.method == "POST" && path == "/v1/attest") {
    auto j = JsonBody(r);
    return send(j ? Attest(*j) : Reply(bad_json));
  }
  if (r.method == "POST" && StartsWith(path, "/v1/keys/")) {
    std::string key_id = path.substr(9);
    if (!ValidName(key_id)) return send(ApiError{404, "unknown_key", "not a valid key id"});
    auto j = JsonBody(r);
    return send(j ? ReleaseKey(key_id, Bearer(r), *j) : Reply(bad_json));
  }
  if (StartsWith(path, "/v1/admin/")) {
    if (!AdminAuthorized(r)) {
      return send(ApiError{401, "unauthorized", "admin routes need Authorization: Bearer <admin token>"});
    }
    Reply reply = Admin(r, path);
    const bool created = r.method == "POST" && (path == "/v1/admin/keys" || path == "/v1/admin/fleet-keys" ||
                                                path == "/v1/admin/fleet-keys/rotate");
    return send(reply, created ? 201 : 200);
  }
  send(ApiError{404, "not_found", r.method + " " + path.substr(0, 128) + " is not a route of this service"});
}

Reply TrustService::Admin(const net::Request& r, const std::string& path) {
  const int64_t now = Now();
  const ApiError bad_json{400, "malformed", "the request body is not valid JSON"};

  if (path == "/v1/admin/policies" && r.method == "GET") {
    auto names = store_->ListPolicies();
    if (!names.ok()) return ApiError{500, "store", names.detail()};
    return nlohmann::json{{"policies", *names}};
  }
  if (StartsWith(path, "/v1/admin/policies/")) {
    std::string name = path.substr(19);
    if (!ValidName(name)) return ApiError{400, "malformed", "policy names are 1-64 of [A-Za-z0-9._-]"};
    if (r.method == "GET") {
      auto text = store_->GetPolicy(name);
      if (!text.ok()) return ApiError{500, "store", text.detail()};
      if (!*text) return ApiError{404, "unknown_policy", "no policy named \"" + name + "\""};
      return nlohmann::json::parse(**text);
    }
    if (r.method == "PUT") {
      auto doc = ParsePolicyDoc(r.body);
      if (!doc.ok()) return ApiError{400, "invalid_policy", doc.detail()};
      auto st = store_->PutPolicy(name, doc->json, now);
      if (!st.ok()) return ApiError{500, "store", st.detail()};
      const std::string digest = PolicyDocDigest(*doc);  // what tokens name as "policy_digest"
      if (auto e = Audited("admin", {{"action", "policy_set"}, {"name", name}, {"sha256", digest}}, kAdminUnaudited)) {
        return *e;
      }
      return nlohmann::json{{"name", name}, {"sha256", digest}};
    }
    if (r.method == "DELETE") {
      auto gone = store_->DeletePolicy(name);
      if (!gone.ok()) return ApiError{500, "store", gone.detail()};
      if (!*gone) return ApiError{404, "unknown_policy", "no policy named \"" + name + "\""};
      if (auto e = Audited("admin", {{"action", "policy_delete"}, {"name", name}}, kAdminUnaudited)) return *e;
      return nlohmann::json{{"deleted", name}};
    }
  }
  if (path == "/v1/admin/keys" && r.method == "GET") {
    auto rows = store_->ListModelKeys();
    if (!rows.ok()) return ApiError{500, "store", rows.detail()};
    nlohmann::json keys = nlohmann::json::array();
    for (const auto& k : *rows) {
      keys.push_back({{"key_id", k.key_id}, {"created", k.created},
                      {"release_policy", nlohmann::json::parse(k.release_policy, nullptr, false)}});
    }
    return nlohmann::json{{"keys", keys}};
  }
  if (path == "/v1/admin/keys" && r.method == "POST") {
    auto j = JsonBody(r);
    if (!j || !j->is_object()) return bad_json;
    const std::string key_id = j->value("key_id", "");
    if (!ValidName(key_id)) return ApiError{400, "malformed", "key_id: 1-64 of [A-Za-z0-9._-]"};
    if (IsFleetModelKeyId(key_id)) {
      return ApiError{400, "malformed", "key ids starting with \"fleet-\" are fleet keys (cllm trust fleet-key)"};
    }
    if (!j->contains("key") || !(*j)["key"].is_string()) {
      return ApiError{400, "malformed", "key: 64 hex characters required"};
    }
    std::string& hex = (*j)["key"].get_ref<std::string&>();
    auto key = HexDecode(hex);
    SecureZero(hex.data(), hex.size());
    if (!key.ok() || key->size() != 32) return ApiError{400, "malformed", "key: 64 hex characters required"};
    SecretBytes secret(*key);
    SecureZero(key->data(), key->size());
    auto rp = ParseReleasePolicy(j->value("release_policy", nlohmann::json()));
    if (!rp.ok()) return ApiError{400, "invalid_release_policy", rp.detail()};
    auto st = store_->PutModelKey({key_id, box_.Seal("model-key:" + key_id, secret.span()), rp->ToJson().dump(), now});
    if (!st.ok()) {
      return st.code() == Errc::kInvalidArgument ? ApiError{409, "key_exists", st.detail()}
                                                 : ApiError{500, "store", st.detail()};
    }
    if (auto e = Audited("admin", {{"action", "key_register"}, {"key_id", key_id}, {"release_policy", rp->ToJson()}},
                         kAdminUnaudited)) {
      return *e;
    }
    return nlohmann::json{{"key_id", key_id}, {"release_policy", rp->ToJson()}};
  }
  if (StartsWith(path, "/v1/admin/keys/") && r.method == "PUT" &&
      path.size() > 15 + 15 && path.substr(path.size() - 15) == "/release-policy") {
    std::string key_id = path.substr(15, path.size() - 15 - 15);
    auto j = JsonBody(r);
    if (!j) return bad_json;
    auto rp = ParseReleasePolicy(*j);
    if (!rp.ok()) return ApiError{400, "invalid_release_policy", rp.detail()};
    if (rp->client_audience && IsFleetModelKeyId(key_id)) {
      return ApiError{400, "invalid_release_policy", "audience: a fleet key is for servers only"};
    }
    if (IsFleetModelKeyId(key_id)) return SetFleetKeyReleasePolicy(key_id, rp->ToJson());
    auto st = store_->SetReleasePolicy(key_id, rp->ToJson().dump());
    if (!st.ok()) {
      return st.code() == Errc::kNotFound ? ApiError{404, "unknown_key", st.detail()}
                                          : ApiError{500, "store", st.detail()};
    }
    if (auto e = Audited("admin",
                         {{"action", "release_policy_set"}, {"key_id", key_id}, {"release_policy", rp->ToJson()}},
                         kAdminUnaudited)) {
      return *e;
    }
    return nlohmann::json{{"key_id", key_id}, {"release_policy", rp->ToJson()}};
  }
  if (path == "/v1/admin/fleet-keys" || StartsWith(path, "/v1/admin/fleet-keys/")) return AdminFleetKeys(r, path);
  if (path == "/v1/admin/signing-keys/rotate" && r.method == "POST") {
    const std::string previous = keys_->active_kid();
    auto kid = keys_->Rotate(now);
    if (!kid.ok()) return ApiError{500, "rotate", kid.detail()};
    (void)keys_->Prune(now);
    if (auto e = Audited("admin", {{"action", "signing_key_rotate"}, {"kid", *kid}, {"previous", previous}},
                         kAdminUnaudited)) {
      return *e;
    }
    return nlohmann::json{{"kid", *kid}, {"previous", previous}};
  }
  if (path == "/v1/admin/audit" && r.method == "GET") {
    const uint64_t from = ParseCount(r.Query("from"), 1, UINT64_MAX / 2);
    const uint64_t limit = ParseCount(r.Query("limit"), 1000, 10000);
    auto entries = store_->ReadAudit(from, limit);
    if (!entries.ok()) return ApiError{500, "store", entries.detail()};
    nlohmann::json list = nlohmann::json::array();
    for (const auto& e : *entries) {
      list.push_back({{"seq", e.seq}, {"time", e.time}, {"kind", e.kind}, {"body", e.body},
                      {"prev_hash", HexEncode(e.prev_hash)}, {"hash", HexEncode(e.hash)}, {"sig", HexEncode(e.sig)}});
    }
    // The audit key's public half: its private half is sealed under the
    // master key, so a live service vouches for it; record it (cllm-trust
    // init writes audit-key.pem) and pin it with --audit-key.
    const crypto::PublicKey* key = store_->audit_key();
    return nlohmann::json{{"entries", list}, {"audit_key", key ? key->ToPem() : ""}};
  }
  return ApiError{404, "not_found", r.method + " " + path.substr(0, 128) + " is not an admin route"};
}

}  // namespace cllm::trust
