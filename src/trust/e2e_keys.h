// e2e_keys.h — the fleet's HPKE key configs as cllm-trust publishes them
// (GET /v1/e2e/keys) and as a client checks them before sealing anything.
//
// A fleet key is a model key (store.h) whose key id is
// "fleet-<key_id decimal>-<suite>" and whose sealed secret is the HPKE
// private key (RFC 9180 §7.1.1 serialization): the key broker releases it
// under its release policy exactly as it releases a model key, to a node
// whose token satisfies that policy. Its public half is published as a key
// config, in the byte format of an RFC 9458 §3 OHTTP key configuration with
// one cipher suite:
//
//   key_id(1) ‖ kem_id(2) ‖ public_key(Npk) ‖ I2OSP(4,2) ‖ kdf_id(2) ‖ aead_id(2)
//
// together with a statement: a compact JWS (ES256, the service's active
// token signing key, "kid" in the header, header "typ":"cllm-e2e-key+jws")
// over
//
//   {"typ":"cllm-e2e-key","key_config_digest":"<hex SHA-256 of the config>",
//    "key_id":N,"suite":"x25519"|"gmt","release_policy":{…},
//    "release_policy_digest":"<hex SHA-256 of release_policy's canonical dump>",
//    "iat":…,"exp":…}
//
// The header typ is not "JWT", so a statement never passes as a token
// (VerifyJwt refuses it) and a token never passes as a statement (no
// "typ":"cllm-e2e-key" claim). docs/trust.md "Fleet keys" is the
// specification.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "channel/e2e.h"
#include "crypto/hpke.h"

namespace cllm::trust {

inline constexpr char kE2eStatementTyp[] = "cllm-e2e-key";            // payload "typ"
inline constexpr char kE2eStatementHeaderTyp[] = "cllm-e2e-key+jws";  // protected header "typ"
inline constexpr char kFleetKeyPrefix[] = "fleet-";                   // reserved model-key ids
inline constexpr int kMaxFleetKeyId = 255;                            // key_id is one byte

enum class E2eKeyErrc {
  kMalformed = 1,  // not the documented JSON / key config shape
  kUnsupported,    // a suite or KEM/KDF/AEAD id this build does not speak
  kBadStatement,   // the statement's signature does not verify under the JWKS (or its kid is unknown)
  kMismatch,       // the statement does not bind this config: digest, key_id, suite or policy digest differ
  kExpired,        // the statement's exp (plus leeway) has passed, or its iat is in the future
  kNoKeys,         // the service publishes no key config this client can use
};
const char* E2eKeyErrcName(E2eKeyErrc code);
template <typename T>
using E2eKeyResult = Result<T, E2eKeyErrc>;

// SameSuite compares the three ids.
bool SameSuite(const crypto::hpke::Suite& a, const crypto::hpke::Suite& b);
// KnownSuite returns the named deployment suite ("x25519" or "gmt") whose ids
// these are; nullopt for any other combination.
std::optional<crypto::hpke::Suite> KnownSuite(uint16_t kem, uint16_t kdf, uint16_t aead);

// ---------------------------------------------------------------------------
// Key config: the bytes and their parser are channel/e2e.h's (RFC 9458 §3,
// one suite); the statement binds their SHA-256.
// ---------------------------------------------------------------------------

// KeyConfigDigestHex is the lower-case hex SHA-256 of the config bytes (SHA-256
// in every suite).
std::string KeyConfigDigestHex(ByteSpan config_bytes);

// ---------------------------------------------------------------------------
// Fleet key ids in the model-key table
// ---------------------------------------------------------------------------

// FleetModelKeyId returns "fleet-<key_id>-<suite name>".
std::string FleetModelKeyId(uint8_t key_id, const crypto::hpke::Suite& suite);
struct FleetKeyName {
  uint8_t key_id = 0;
  crypto::hpke::Suite suite = crypto::hpke::kSuiteX25519;
};
// ParseFleetModelKeyId parses what FleetModelKeyId makes (decimal without
// leading zeros, 0-255, a known suite name); nullopt for anything else.
std::optional<FleetKeyName> ParseFleetModelKeyId(std::string_view model_key_id);
// IsFleetModelKeyId: the id lies in the reserved "fleet-" namespace.
bool IsFleetModelKeyId(std::string_view model_key_id);

// ReleasePolicyDigestHex is the hex SHA-256 of `release_policy.dump()`
// (nlohmann's compact dump: members sorted, no whitespace).
std::string ReleasePolicyDigestHex(const nlohmann::json& release_policy);

// E2eStatementClaims builds the statement's payload for one key config.
nlohmann::json E2eStatementClaims(ByteSpan config_bytes, uint8_t key_id, const crypto::hpke::Suite& suite,
                                  const nlohmann::json& release_policy, int64_t iat, int64_t exp);

// ---------------------------------------------------------------------------
// Client side: verifying GET /v1/e2e/keys
// ---------------------------------------------------------------------------

struct E2eKey {
  channel::e2e::KeyConfig config;
  Bytes config_bytes;
  std::string config_digest;       // hex SHA-256 of config_bytes
  nlohmann::json release_policy;   // as the statement carries it (release_policy.h)
  std::string release_policy_digest;
  int64_t iat = 0;
  int64_t exp = 0;
  std::string kid;                 // the signing key that made the statement
};

struct E2eKeyCheck {
  std::chrono::system_clock::time_point now;  // injected: tests run on a fixed clock
  std::chrono::seconds leeway{30};
};

// VerifyE2eKeyEntry checks one {"key_id","suite","config","statement"} entry:
//   1. the statement verifies under `jwks` (VerifyJwsWithJwks: ES256, by kid)
//      and its header typ is kE2eStatementHeaderTyp;
//   2. its payload typ is "cllm-e2e-key";
//   3. key_config_digest equals SHA-256 of the config bytes;
//   4. the config parses, and its key_id and suite equal the statement's and
//      the entry's;
//   5. release_policy_digest equals the digest of the release policy it
//      carries;
//   6. iat ≤ now + leeway and now < exp + leeway.
E2eKeyResult<E2eKey> VerifyE2eKeyEntry(const nlohmann::json& entry, const nlohmann::json& jwks,
                                       const E2eKeyCheck& check);
// VerifyE2eKeys checks a whole {"keys":[…]} reply. Entries naming a suite this
// build does not know are skipped (they can add nothing it would use); any
// other bad entry fails the whole reply (a tampered list is not partly
// trusted). kNoKeys when nothing usable remains.
E2eKeyResult<std::vector<E2eKey>> VerifyE2eKeys(const nlohmann::json& reply, const nlohmann::json& jwks,
                                                const E2eKeyCheck& check);

// RenewingJwks is cllm-trust's token-signing keys as a long-lived client
// (`cllm proxy --e2e`) last fetched them. After cllm-trust rotates its
// signing key, the key lists it signs carry a kid this copy lacks; Verify
// then fetches the JWKS again — over the caller's pinned connection to
// cllm-trust, at most once per `min_interval` — and verifies the same list
// once more. A list that fails under a fresh JWKS too is refused as before.
class RenewingJwks {
 public:
  using Fetch = std::function<Result<nlohmann::json>()>;
  RenewingJwks(nlohmann::json initial, Fetch fetch, std::chrono::seconds min_interval = std::chrono::seconds(10))
      : jwks_(std::move(initial)), fetch_(std::move(fetch)), min_interval_(min_interval) {}

  E2eKeyResult<std::vector<E2eKey>> Verify(const nlohmann::json& reply, const E2eKeyCheck& check);
  nlohmann::json jwks() const;
  uint64_t renewals() const;  // JWKS fetched again and changed

 private:
  mutable std::mutex mu_;
  nlohmann::json jwks_;
  Fetch fetch_;
  std::chrono::seconds min_interval_;
  std::optional<std::chrono::steady_clock::time_point> last_fetch_;
  uint64_t renewals_ = 0;
};

}  // namespace cllm::trust
