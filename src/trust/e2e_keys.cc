#include "trust/e2e_keys.h"

#include "base/byte_reader.h"
#include "base/encoding.h"
#include "base/json_guard.h"
#include "crypto/digest.h"
#include "trust/jose.h"

namespace cllm::trust {

namespace hpke = crypto::hpke;

const char* E2eKeyErrcName(E2eKeyErrc code) {
  switch (code) {
    case E2eKeyErrc::kMalformed: return "malformed";
    case E2eKeyErrc::kUnsupported: return "unsupported";
    case E2eKeyErrc::kBadStatement: return "bad_statement";
    case E2eKeyErrc::kMismatch: return "mismatch";
    case E2eKeyErrc::kExpired: return "expired";
    case E2eKeyErrc::kNoKeys: return "no_keys";
  }
  return "unknown";
}

bool SameSuite(const hpke::Suite& a, const hpke::Suite& b) {
  return a.kem == b.kem && a.kdf == b.kdf && a.aead == b.aead;
}

std::optional<hpke::Suite> KnownSuite(uint16_t kem, uint16_t kdf, uint16_t aead) {
  for (const hpke::Suite& s : {hpke::kSuiteX25519, hpke::kSuiteGmt}) {
    if (static_cast<uint16_t>(s.kem) == kem && static_cast<uint16_t>(s.kdf) == kdf &&
        static_cast<uint16_t>(s.aead) == aead) {
      return s;
    }
  }
  return std::nullopt;
}

namespace {

std::optional<hpke::Suite> SuiteByName(std::string_view name) {
  if (name == "x25519") return hpke::kSuiteX25519;
  if (name == "gmt") return hpke::kSuiteGmt;
  return std::nullopt;
}

std::string HexSha256(std::string_view s) {
  return HexEncode(crypto::Sha256(ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size())));
}

}  // namespace

// ---------------------------------------------------------------------------
// Key config
// ---------------------------------------------------------------------------

std::string KeyConfigDigestHex(ByteSpan config_bytes) { return HexEncode(crypto::Sha256(config_bytes)); }

// ---------------------------------------------------------------------------
// Fleet key ids
// ---------------------------------------------------------------------------

std::string FleetModelKeyId(uint8_t key_id, const hpke::Suite& suite) {
  return std::string(kFleetKeyPrefix) + std::to_string(key_id) + "-" + hpke::SuiteName(suite);
}

bool IsFleetModelKeyId(std::string_view id) { return id.rfind(kFleetKeyPrefix, 0) == 0; }

std::optional<FleetKeyName> ParseFleetModelKeyId(std::string_view id) {
  if (!IsFleetModelKeyId(id)) return std::nullopt;
  id.remove_prefix(sizeof(kFleetKeyPrefix) - 1);
  const size_t dash = id.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 3) return std::nullopt;
  const std::string_view num = id.substr(0, dash);
  if (num.size() > 1 && num[0] == '0') return std::nullopt;  // one spelling per id
  int n = 0;
  for (char c : num) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n > kMaxFleetKeyId) return std::nullopt;
  auto suite = SuiteByName(id.substr(dash + 1));
  if (!suite) return std::nullopt;
  return FleetKeyName{static_cast<uint8_t>(n), *suite};
}

std::string ReleasePolicyDigestHex(const nlohmann::json& rp) { return HexSha256(rp.dump()); }

nlohmann::json E2eStatementClaims(ByteSpan config_bytes, uint8_t key_id, const hpke::Suite& suite,
                                  const nlohmann::json& release_policy, int64_t iat, int64_t exp) {
  return {{"typ", kE2eStatementTyp},
          {"key_config_digest", KeyConfigDigestHex(config_bytes)},
          {"key_id", key_id},
          {"suite", hpke::SuiteName(suite)},
          {"release_policy", release_policy},
          {"release_policy_digest", ReleasePolicyDigestHex(release_policy)},
          {"iat", iat},
          {"exp", exp}};
}

// ---------------------------------------------------------------------------
// Verification (client side)
// ---------------------------------------------------------------------------

namespace {

bool IsString(const nlohmann::json& o, const char* k) { return o.contains(k) && o[k].is_string(); }
bool IsInt(const nlohmann::json& o, const char* k) { return o.contains(k) && o[k].is_number_integer(); }

}  // namespace

E2eKeyResult<E2eKey> VerifyE2eKeyEntry(const nlohmann::json& entry, const nlohmann::json& jwks,
                                       const E2eKeyCheck& check) {
  auto malformed = [](const std::string& what) { return MakeError(E2eKeyErrc::kMalformed, what); };
  auto mismatch = [](const std::string& what) { return MakeError(E2eKeyErrc::kMismatch, what); };
  if (!entry.is_object() || !IsString(entry, "config") || !IsString(entry, "statement") ||
      !IsString(entry, "suite") || !IsInt(entry, "key_id")) {
    return malformed("an e2e key entry needs key_id, suite, config and statement");
  }
  const std::string suite_name = entry["suite"].get<std::string>();
  if (!SuiteByName(suite_name)) return MakeError(E2eKeyErrc::kUnsupported, "suite \"" + suite_name.substr(0, 32) + "\"");

  // 1. The statement is the service's: ES256 under a key of its JWKS.
  auto jws = VerifyJwsWithJwks(entry["statement"].get<std::string>(), jwks);
  if (!jws.ok()) {
    return MakeError(E2eKeyErrc::kBadStatement,
                     std::string("statement: ") + JoseErrcName(jws.code()) + ": " + jws.detail());
  }
  // A token (typ JWT) signed by the same key must not pass as a statement.
  if (jws->header.value("typ", "") != kE2eStatementHeaderTyp) {
    return MakeError(E2eKeyErrc::kBadStatement, std::string("statement: header typ is not ") + kE2eStatementHeaderTyp);
  }
  auto claims = JsonDepthWithin(jws->payload) ? nlohmann::json::parse(jws->payload, nullptr, false)
                                              : nlohmann::json(nlohmann::json::value_t::discarded);
  // 2. What it is.
  if (claims.is_discarded() || !claims.is_object() || claims.value("typ", "") != kE2eStatementTyp) {
    return malformed(std::string("statement: payload is not a \"") + kE2eStatementTyp + "\" object");
  }
  if (!IsString(claims, "key_config_digest") || !IsInt(claims, "key_id") || !IsString(claims, "suite") ||
      !claims.contains("release_policy") || !claims["release_policy"].is_object() ||
      !IsString(claims, "release_policy_digest") || !IsInt(claims, "iat") || !IsInt(claims, "exp")) {
    return malformed("statement: a member is missing or of the wrong type");
  }

  // 3. It binds exactly these config bytes.
  auto config_bytes = Base64UrlDecode(entry["config"].get<std::string>());
  if (!config_bytes.ok()) return malformed("config: not base64url");
  E2eKey out;
  out.config_bytes = std::move(config_bytes).value();
  out.config_digest = KeyConfigDigestHex(out.config_bytes);
  if (claims["key_config_digest"].get<std::string>() != out.config_digest) {
    return mismatch("the statement's key_config_digest is not the SHA-256 of this key config");
  }
  // 4. The config, the statement and the entry agree on key_id and suite.
  auto config = channel::e2e::ParseKeyConfig(out.config_bytes);
  if (!config.ok()) {
    return MakeError(config.code() == channel::e2e::E2eErrc::kUnsupported ? E2eKeyErrc::kUnsupported
                                                                           : E2eKeyErrc::kMalformed,
                     "key config: " + config.detail());
  }
  out.config = std::move(config).value();
  const int64_t stmt_key_id = claims["key_id"].get<int64_t>();
  if (stmt_key_id != out.config.key_id || entry["key_id"].get<int64_t>() != out.config.key_id) {
    return mismatch("key_id differs between the key config (" + std::to_string(out.config.key_id) +
                    "), the statement and the entry");
  }
  if (claims["suite"].get<std::string>() != hpke::SuiteName(out.config.suite) ||
      suite_name != hpke::SuiteName(out.config.suite)) {
    return mismatch(std::string("suite differs between the key config (") + hpke::SuiteName(out.config.suite) +
                    "), the statement and the entry");
  }
  // 5. The release policy it shows is the one whose digest it signed.
  out.release_policy = claims["release_policy"];
  out.release_policy_digest = claims["release_policy_digest"].get<std::string>();
  if (ReleasePolicyDigestHex(out.release_policy) != out.release_policy_digest) {
    return mismatch("release_policy_digest is not the SHA-256 of the release policy shown");
  }
  // 6. Fresh. iat/exp are the signer's numbers; compare without overflow.
  out.iat = claims["iat"].get<int64_t>();
  out.exp = claims["exp"].get<int64_t>();
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(check.now.time_since_epoch()).count();
  const int64_t leeway = check.leeway.count();
  if (out.iat > now + leeway) return MakeError(E2eKeyErrc::kExpired, "statement: iat is in the future");
  if (out.exp < now - leeway) return MakeError(E2eKeyErrc::kExpired, "statement: expired");
  out.kid = jws->header.value("kid", "");
  return out;
}

E2eKeyResult<std::vector<E2eKey>> VerifyE2eKeys(const nlohmann::json& reply, const nlohmann::json& jwks,
                                                const E2eKeyCheck& check) {
  if (!reply.is_object() || !reply.contains("keys") || !reply["keys"].is_array()) {
    return MakeError(E2eKeyErrc::kMalformed, "the reply is not {\"keys\": [...]}");
  }
  std::vector<E2eKey> out;
  for (const auto& entry : reply["keys"]) {
    auto k = VerifyE2eKeyEntry(entry, jwks, check);
    if (!k.ok() && k.code() == E2eKeyErrc::kUnsupported && entry.is_object() && IsString(entry, "suite") &&
        !SuiteByName(entry["suite"].get<std::string>())) {
      continue;  // a suite this build does not speak
    }
    if (!k.ok()) {
      const std::string which = entry.is_object() && IsInt(entry, "key_id")
                                    ? "key " + std::to_string(entry["key_id"].get<int64_t>())
                                    : std::string("an entry");
      return MakeError(k.code(), which + ": " + k.detail());
    }
    for (const auto& have : out) {
      if (have.config.key_id == k->config.key_id) {
        return MakeError(E2eKeyErrc::kMalformed, "key " + std::to_string(k->config.key_id) + " is listed twice");
      }
    }
    out.push_back(std::move(k).value());
  }
  if (out.empty()) return MakeError(E2eKeyErrc::kNoKeys, "the service publishes no e2e key config of a known suite");
  return out;
}

E2eKeyResult<std::vector<E2eKey>> RenewingJwks::Verify(const nlohmann::json& reply, const E2eKeyCheck& check) {
  auto keys = VerifyE2eKeys(reply, jwks(), check);
  if (keys.ok() || keys.code() != E2eKeyErrc::kBadStatement) return keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (last_fetch_ && now - *last_fetch_ < min_interval_) return keys;
    last_fetch_ = now;
  }
  auto fresh = fetch_();  // outside mu_: a network call
  if (!fresh.ok() || !fresh->is_object() || !fresh->contains("keys")) return keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (*fresh == jwks_) return keys;  // nothing new: the statement is bad, not unknown
    jwks_ = *fresh;
    ++renewals_;
  }
  return VerifyE2eKeys(reply, *fresh, check);
}

nlohmann::json RenewingJwks::jwks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jwks_;
}

uint64_t RenewingJwks::renewals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return renewals_;
}

}  // namespace cllm::trust
