// e2e_boot.cc — FleetKeys and the e2e listener (e2e_boot.h).

#include "apps/cllm-server/e2e_boot.h"

#include "base/encoding.h"
#include "base/log.h"
#include "trust/e2e_keys.h"

namespace cllm::app {
namespace {

namespace e2e = channel::e2e;

// How long a refused key is not asked for again (its release policy may be
// changed to admit this node).
constexpr std::chrono::minutes kRefusalMemory{10};

void SendJson(net::ResponseWriter& w, int status, const std::string& code, const std::string& message) {
  w.Send(status, "application/json",
         nlohmann::json{{"error", {{"message", message}, {"type", "e2e_error"}, {"code", code}}}}.dump());
}

}  // namespace

Result<std::unique_ptr<FleetKeys>> FleetKeys::Load(TrustBoot& trust, const NodeIdentity& node) {
  std::unique_ptr<FleetKeys> k(new FleetKeys());
  CLLM_ASSIGN_OR_RETURN(int added, k->Fetch(trust, node, /*first=*/true));
  if (added == 0) {
    std::string refused;
    for (const auto& [digest, r] : k->refused_) refused += (refused.empty() ? "" : ", ") + r.id;
    return MakeError(Errc::kPermission, "--e2e: cllm-trust released no fleet key to this node" +
                                            (refused.empty() ? std::string(" (it publishes none)")
                                                             : " (refused: " + refused + ")"));
  }
  return k;
}

Result<int> FleetKeys::Refresh(TrustBoot& trust, const NodeIdentity& node) { return Fetch(trust, node, false); }

Result<int> FleetKeys::Fetch(TrustBoot& trust, const NodeIdentity& node, bool first) {
  CLLM_ASSIGN_OR_RETURN(nlohmann::json jwks, trust.Jwks());
  CLLM_ASSIGN_OR_RETURN(nlohmann::json list, trust.E2eKeyList());
  if (!list.is_object() || !list.contains("keys") || !list["keys"].is_array()) {
    return MakeError(Errc::kParse, "GET /v1/e2e/keys: no \"keys\" array");
  }
  trust::E2eKeyCheck check;
  check.now = std::chrono::system_clock::now();
  std::vector<nlohmann::json> entries;
  std::vector<Held> held;
  int added = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& h : held_) held.push_back(Held{h.config, h.sk.Clone()});
  }
  auto holds = [&](const Bytes& config) {
    for (const auto& h : held) {
      if (h.config == config) return true;
    }
    return false;
  };
  for (const auto& entry : list["keys"]) {
    auto key = trust::VerifyE2eKeyEntry(entry, jwks, check);
    if (!key.ok()) {
      if (key.code() == trust::E2eKeyErrc::kUnsupported) continue;
      return MakeError(Errc::kPermission, std::string("GET /v1/e2e/keys refused: ") +
                                              trust::E2eKeyErrcName(key.code()) + ": " + key.detail());
    }
    const std::string id = trust::FleetModelKeyId(key->config.key_id, key->config.suite);
    if (!holds(key->config_bytes)) {
      const auto now = std::chrono::steady_clock::now();
      bool skip = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto r = refused_.find(key->config_digest);
        skip = r != refused_.end() && now - r->second.when < kRefusalMemory;
      }
      if (skip) continue;
      auto sk = trust.ModelKey(node, id);
      if (!sk.ok()) {
        // Only the broker's refusal is remembered; anything else is retried.
        const bool refused = sk.detail().find("release_refused") != std::string::npos;
        log::warn("fleet key {} {}: {}", id, refused ? "not released to this node" : "not fetched (retrying)",
                  sk.detail());
        if (refused) {
          std::lock_guard<std::mutex> lock(mu_);
          refused_[key->config_digest] = Refusal{id, now};
        }
        continue;
      }
      auto pk = crypto::hpke::PublicKeyFromPrivate(key->config.suite.kem, sk->span());
      if (!pk.ok() || !ConstantTimeEqual(*pk, key->config.public_key)) {
        return MakeError(Errc::kCrypto, "fleet key " + id + ": the released private key does not match its published "
                                                             "config");
      }
      held.push_back(Held{key->config_bytes, std::move(sk).value()});
      ++added;
      if (!first) log::info("fleet key {} fetched (config {})", id, key->config_digest.substr(0, 16));
    }
    entries.push_back(entry);
  }
  // Keys no longer published (retired) are dropped with this list.
  auto ring = std::make_shared<e2e::KeyRing>();
  std::vector<Held> kept;
  for (auto& h : held) {
    bool listed = false;
    for (const auto& e : entries) {
      auto b = Base64UrlDecode(e.value("config", ""));
      listed |= b.ok() && *b == h.config;
    }
    if (!listed) continue;
    if (auto st = ring->Add(h.config, h.sk.span()); !st.ok()) {
      return MakeError(Errc::kCrypto, std::string("fleet key ring: ") + st.detail());
    }
    kept.push_back(std::move(h));
  }
  if (kept.size() > channel::kMaxE2eKeys) return MakeError(Errc::kInvalidArgument, "more than 8 fleet keys held");
  std::lock_guard<std::mutex> lock(mu_);
  held_ = std::move(kept);
  entries_ = std::move(entries);
  ring_ = std::move(ring);
  return added;
}

std::shared_ptr<const channel::e2e::KeyRing> FleetKeys::ring() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ring_;
}

std::vector<std::array<uint8_t, 32>> FleetKeys::digests() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::array<uint8_t, 32>> out;
  for (const auto& h : held_) out.push_back(e2e::KeyConfigDigest(h.config));
  return out;
}

std::string FleetKeys::Published() const {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& e : entries_) {
    auto b = Base64UrlDecode(e.value("config", ""));
    for (const auto& h : held_) {
      if (b.ok() && *b == h.config) {
        keys.push_back(e);
        break;
      }
    }
  }
  return nlohmann::json{{"keys", keys}}.dump();
}

std::string FleetKeys::Summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& h : held_) {
    auto parsed = e2e::ParseKeyConfig(h.config);
    if (!parsed.ok()) continue;
    out += (out.empty() ? "" : ", ") + std::string("key ") + std::to_string(parsed->key_id) + " (" +
           crypto::hpke::SuiteName(parsed->suite) + ", " + HexEncode(e2e::KeyConfigDigest(h.config)).substr(0, 16) +
           "…)";
  }
  return out;
}

net::Handler WithE2eKeys(net::Handler inner, const FleetKeys& keys) {
  return [inner = std::move(inner), &keys](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) {
    if (r.method == "GET" && r.Path() == "/v1/e2e/keys") {
      w->AddHeader("Cache-Control", "max-age=10");
      w->Send(200, "application/json", keys.Published());
      return;
    }
    inner(r, std::move(w));
  };
}

net::Handler E2eListenerHandler(server::Service& service, const FleetKeys& keys) {
  net::Handler api = service.Handler();
  return WithE2eKeys(
      [api](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) {
        const std::string path = r.Path();
        if (r.method == "GET" && (path == "/health" || path == "/ready")) return api(r, std::move(w));
        std::string ct = r.Header("content-type");
        ct = ct.substr(0, ct.find(';'));
        if (r.method == "POST" && ct == e2e::kRequestContentType) return api(r, std::move(w));
        SendJson(*w, 403, "e2e_required",
                 "this listener takes only encrypted bodies (Content-Type application/cllm-e2e-request); the "
                 "clear-text API is on the attested listener");
      },
      keys);
}

}  // namespace cllm::app
