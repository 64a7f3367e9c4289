// jose.cc — JWK/JWS/JWT/JWE on libjose. Our code decides what is acceptable
// (sizes, encodings, algorithms, headers, keys) before libjose sees a byte;
// libjose does the signature and key-agreement/AEAD arithmetic.
#include "trust/jose.h"

#include <malloc.h>

// libjose's headers have no C++ linkage guards.
extern "C" {
#include <jose/jose.h>
}

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "base/encoding.h"
#include "base/json_guard.h"
#include "crypto/digest.h"

namespace cllm::trust {
namespace {

using json = nlohmann::json;

constexpr size_t kP256Bytes = 32;      // coordinate and scalar size
constexpr size_t kEs256SigBytes = 64;  // raw r ‖ s (RFC 7518 §3.4)
constexpr size_t kGcmIvBytes = 12;     // RFC 7518 §5.3
constexpr size_t kGcmTagBytes = 16;

// ---------------------------------------------------------------------------
// jansson / libjose plumbing
// ---------------------------------------------------------------------------

// jansson frees strings (CEKs, the JWK "d" member, decrypted JSON) without
// wiping them. Route its allocations through a free that zeroes the whole
// block first. Memory jansson allocated before this ran came from malloc too,
// so mixing is safe.
void* JanssonMalloc(size_t n) { return std::malloc(n); }
void JanssonFree(void* p) {
  if (p == nullptr) return;
  SecureZero(p, malloc_usable_size(p));
  std::free(p);
}
struct JanssonZeroingFree {
  JanssonZeroingFree() { json_set_alloc_funcs(JanssonMalloc, JanssonFree); }
};
const JanssonZeroingFree kJanssonZeroingFree;

struct JsonDecref {
  void operator()(json_t* j) const { json_decref(j); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDecref>;

// JoseCfg is a libjose context whose errors are kept for our error detail
// instead of being printed to stderr (libjose's default).
class JoseCfg {
 public:
  JoseCfg() : cfg_(jose_cfg()) {
    if (cfg_ != nullptr) jose_cfg_set_err_func(cfg_, &JoseCfg::OnError, this);
  }
  ~JoseCfg() {
    if (cfg_ != nullptr) jose_cfg_decref(cfg_);
  }
  JoseCfg(const JoseCfg&) = delete;
  JoseCfg& operator=(const JoseCfg&) = delete;

  jose_cfg_t* get() const { return cfg_; }
  std::string Detail(const std::string& what) const {
    return last_error_.empty() ? what : what + " (libjose: " + last_error_ + ")";
  }

 private:
  static void OnError(void* misc, const char* /*file*/, int /*line*/, uint64_t /*err*/,
                      const char* fmt, va_list ap) {
    char buf[256];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    static_cast<JoseCfg*>(misc)->last_error_ = buf;
  }

  jose_cfg_t* cfg_;
  std::string last_error_;
};

Error<JoseErrc> Fail(JoseErrc code, std::string detail) { return MakeError(code, std::move(detail)); }

// ---------------------------------------------------------------------------
// Encodings
// ---------------------------------------------------------------------------

// B64Decode accepts unpadded base64url only (RFC 7515 §2), canonical bits.
JoseResult<Bytes> B64Decode(std::string_view text, const char* what) {
  for (char c : text) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return Fail(JoseErrc::kMalformed, std::string(what) + ": not unpadded base64url");
  }
  auto bytes = Base64UrlDecode(text);
  if (!bytes.ok()) return Fail(JoseErrc::kMalformed, std::string(what) + ": " + bytes.detail());
  return std::move(bytes).value();
}

// Dump serialises JSON the caller gave us; strings with invalid UTF-8 are an
// error, not an exception.
JoseResult<std::string> Dump(const json& j, const char* what) {
  try {
    return j.dump();
  } catch (const json::exception& e) {
    return Fail(JoseErrc::kMalformed, std::string(what) + ": " + e.what());
  }
}

// ParseObject parses untrusted JSON that must be an object. jansson (libjose's
// parser) checks it first with duplicate members rejected, so the header we
// read and the one libjose acts on cannot differ.
JoseResult<json> ParseObject(std::string_view text, const char* what) {
  if (!JsonDepthWithin(text)) return Fail(JoseErrc::kMalformed, std::string(what) + ": nests too deeply");
  json_error_t error;
  JsonPtr strict(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, &error));
  if (!strict || !json_is_object(strict.get())) {
    return Fail(JoseErrc::kMalformed, std::string(what) + ": not a JSON object without duplicate members");
  }
  json parsed = json::parse(text.begin(), text.end(), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Fail(JoseErrc::kMalformed, std::string(what) + ": not a JSON object");
  }
  return parsed;
}

// SplitCompact splits a compact serialisation into exactly `num_parts`.
JoseResult<std::vector<std::string_view>> SplitCompact(std::string_view compact, size_t num_parts,
                                                       const char* what) {
  if (compact.size() > kMaxCompactLen) {
    return Fail(JoseErrc::kMalformed, std::string(what) + " longer than " + std::to_string(kMaxCompactLen) + " bytes");
  }
  if (static_cast<size_t>(std::count(compact.begin(), compact.end(), '.')) != num_parts - 1) {
    return Fail(JoseErrc::kMalformed, std::string(what) + " must have " + std::to_string(num_parts) + " parts");
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i + 1 < num_parts; ++i) {
    size_t dot = compact.find('.', start);
    parts.push_back(compact.substr(start, dot - start));
    start = dot + 1;
  }
  parts.push_back(compact.substr(start));
  return parts;
}

// StringMember returns j[name] when it is a string, nullopt when absent, and
// an error when present with another type.
JoseResult<std::optional<std::string>> StringMember(const json& j, const char* name, const char* what) {
  auto it = j.find(name);
  if (it == j.end()) return std::optional<std::string>();
  if (!it->is_string()) return Fail(JoseErrc::kMalformed, std::string(what) + " \"" + name + "\" is not a string");
  return std::optional<std::string>(it->get<std::string>());
}

// HeaderWith builds a protected header: the caller's extras, then `fixed`
// members (which the extras may repeat with the same value only); `refused`
// members are JOSE features we do not implement.
JoseResult<json> HeaderWith(const json& extra, std::initializer_list<std::pair<const char*, const char*>> fixed,
                            std::initializer_list<const char*> refused) {
  json header = extra.is_null() ? json::object() : extra;
  if (!header.is_object()) return Fail(JoseErrc::kMalformed, "protected header extras must be an object");
  for (const char* name : refused) {
    if (header.contains(name)) return Fail(JoseErrc::kUnsupported, std::string("header \"") + name + "\" is not supported");
  }
  for (const auto& [name, value] : fixed) {
    auto it = header.find(name);
    if (it != header.end() && *it != value) {
      return Fail(JoseErrc::kUnsupported, std::string("header \"") + name + "\" must be " + value);
    }
    header[name] = value;
  }
  return header;
}

// ---------------------------------------------------------------------------
// Keys as libjose JWKs
// ---------------------------------------------------------------------------

JoseResult<Bytes> P256Point(const crypto::PublicKey& key) {
  if (key.type() != crypto::KeyType::kEcP256) {
    return Fail(JoseErrc::kUnsupported, std::string("key must be EC P-256, got ") + crypto::KeyTypeName(key.type()));
  }
  auto point = key.EcPoint();
  if (!point.ok() || point->size() != 2 * kP256Bytes) return Fail(JoseErrc::kCrypto, "EC point export");
  return std::move(point).value();
}

// JanssonJwk builds {"kty":"EC","crv":"P-256","x","y"[,"d"]} for libjose.
// `d` (the private scalar) is encoded on the stack and wiped; jansson's copy
// is wiped by JanssonFree.
JoseResult<JsonPtr> JanssonJwk(const crypto::PublicKey& pub, const SecretBytes* d) {
  CLLM_ASSIGN_OR_RETURN(Bytes point, P256Point(pub));
  JsonPtr jwk(json_pack("{s:s,s:s,s:o,s:o}", "kty", "EC", "crv", "P-256", "x",
                        jose_b64_enc(point.data(), kP256Bytes), "y",
                        jose_b64_enc(point.data() + kP256Bytes, kP256Bytes)));
  if (!jwk) return Fail(JoseErrc::kCrypto, "JWK construction");
  if (d != nullptr) {
    char d64[64];
    size_t len = jose_b64_enc_buf(d->data(), d->size(), d64, sizeof d64);
    bool ok = len != SIZE_MAX && json_object_set_new(jwk.get(), "d", json_stringn(d64, len)) == 0;
    SecureZero(d64, sizeof d64);
    if (!ok) return Fail(JoseErrc::kCrypto, "JWK construction");
  }
  return jwk;
}

JoseResult<JsonPtr> JanssonPrivateJwk(const crypto::PrivateKey& key) {
  if (key.type() != crypto::KeyType::kEcP256) {
    return Fail(JoseErrc::kUnsupported, std::string("key must be EC P-256, got ") + crypto::KeyTypeName(key.type()));
  }
  auto d = key.PrivateScalar();
  if (!d.ok() || d->size() != kP256Bytes) return Fail(JoseErrc::kCrypto, "EC private scalar export");
  return JanssonJwk(key.public_key(), &d.value());
}

// ---------------------------------------------------------------------------
// JWS internals
// ---------------------------------------------------------------------------

struct ParsedJws {
  std::string_view signing_header;  // base64url, as signed
  std::string_view signing_payload;
  std::string_view signature;
  json header;
  std::string payload;
};

// ParseJws checks everything about a compact JWS except the signature itself.
JoseResult<ParsedJws> ParseJws(std::string_view compact) {
  CLLM_ASSIGN_OR_RETURN(auto parts, SplitCompact(compact, 3, "JWS"));
  ParsedJws jws{parts[0], parts[1], parts[2], json(), std::string()};
  CLLM_ASSIGN_OR_RETURN(Bytes header_bytes, B64Decode(parts[0], "JWS header"));
  CLLM_ASSIGN_OR_RETURN(jws.header, ParseObject(AsChars(header_bytes), "JWS header"));
  CLLM_ASSIGN_OR_RETURN(auto alg, StringMember(jws.header, "alg", "JWS header"));
  if (!alg) return Fail(JoseErrc::kMalformed, "JWS header has no \"alg\"");
  // One algorithm, fixed by us, never chosen by the token: this is what shuts
  // out "none" and HS256-with-the-public-key confusion (RFC 8725 §2.1, §3.1).
  if (*alg != "ES256") return Fail(JoseErrc::kUnsupported, "JWS alg \"" + *alg + "\" is not ES256");
  // We understand no extensions; RFC 7515 §4.1.11 requires refusing "crit".
  // "b64" (RFC 7797) changes what is signed, so it is refused even without crit.
  for (const char* name : {"crit", "b64"}) {
    if (jws.header.contains(name)) return Fail(JoseErrc::kUnsupported, std::string("JWS header \"") + name + "\" is not supported");
  }
  CLLM_ASSIGN_OR_RETURN(Bytes sig, B64Decode(parts[2], "JWS signature"));
  if (sig.size() != kEs256SigBytes) {
    return Fail(JoseErrc::kBadSignature, "ES256 signature must be 64 bytes, got " + std::to_string(sig.size()));
  }
  CLLM_ASSIGN_OR_RETURN(Bytes payload, B64Decode(parts[1], "JWS payload"));
  jws.payload.assign(AsChars(payload));
  return jws;
}

JoseResult<VerifiedJws> VerifyParsed(ParsedJws jws, const crypto::PublicKey& key) {
  CLLM_ASSIGN_OR_RETURN(JsonPtr jwk, JanssonJwk(key, nullptr));
  JsonPtr flat(json_pack("{s:s%,s:s%,s:s%}", "protected", jws.signing_header.data(), jws.signing_header.size(),
                         "payload", jws.signing_payload.data(), jws.signing_payload.size(), "signature",
                         jws.signature.data(), jws.signature.size()));
  if (!flat) return Fail(JoseErrc::kMalformed, "JWS is not valid UTF-8");
  JoseCfg cfg;
  if (!jose_jws_ver(cfg.get(), flat.get(), nullptr, jwk.get(), false)) {
    return Fail(JoseErrc::kBadSignature, cfg.Detail("JWS signature does not verify"));
  }
  return VerifiedJws{std::move(jws.header), std::move(jws.payload)};
}

}  // namespace

const char* JoseErrcName(JoseErrc code) {
  switch (code) {
    case JoseErrc::kMalformed: return "malformed";
    case JoseErrc::kBadSignature: return "bad_signature";
    case JoseErrc::kUnknownKey: return "unknown_key";
    case JoseErrc::kExpired: return "expired";
    case JoseErrc::kNotYetValid: return "not_yet_valid";
    case JoseErrc::kClaimMismatch: return "claim_mismatch";
    case JoseErrc::kCrypto: return "crypto";
    case JoseErrc::kUnsupported: return "unsupported";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// JWK
// ---------------------------------------------------------------------------

json PublicJwk(const crypto::PublicKey& key, std::string_view kid) {
  auto point = P256Point(key);
  if (!point.ok()) return json();
  ByteSpan xy(point.value());
  json jwk = {{"kty", "EC"},
              {"crv", "P-256"},
              {"x", Base64UrlEncode(xy.first(kP256Bytes))},
              {"y", Base64UrlEncode(xy.subspan(kP256Bytes))}};
  if (!kid.empty()) jwk["kid"] = std::string(kid);
  return jwk;
}

JoseResult<crypto::PublicKey> PublicKeyFromJwk(const json& jwk) {
  if (!jwk.is_object()) return Fail(JoseErrc::kMalformed, "JWK is not an object");
  // A private key where a public one is expected is a leak upstream; refuse it.
  if (jwk.contains("d")) return Fail(JoseErrc::kMalformed, "JWK carries a private key (\"d\")");
  CLLM_ASSIGN_OR_RETURN(auto kty, StringMember(jwk, "kty", "JWK"));
  CLLM_ASSIGN_OR_RETURN(auto crv, StringMember(jwk, "crv", "JWK"));
  CLLM_ASSIGN_OR_RETURN(auto x, StringMember(jwk, "x", "JWK"));
  CLLM_ASSIGN_OR_RETURN(auto y, StringMember(jwk, "y", "JWK"));
  if (!kty) return Fail(JoseErrc::kMalformed, "JWK has no \"kty\"");
  if (*kty != "EC") return Fail(JoseErrc::kUnsupported, "JWK kty \"" + *kty + "\" is not EC");
  if (!crv || *crv != "P-256") return Fail(JoseErrc::kUnsupported, "JWK crv must be P-256");
  if (!x || !y) return Fail(JoseErrc::kMalformed, "EC JWK needs \"x\" and \"y\"");
  // RFC 7518 §6.2.1.2: the full coordinate size, leading zeros kept.
  CLLM_ASSIGN_OR_RETURN(Bytes xb, B64Decode(*x, "JWK x"));
  CLLM_ASSIGN_OR_RETURN(Bytes yb, B64Decode(*y, "JWK y"));
  if (xb.size() != kP256Bytes || yb.size() != kP256Bytes) {
    return Fail(JoseErrc::kMalformed, "P-256 JWK coordinates must be 32 bytes each");
  }
  // FromEcPoint refuses points off the curve (invalid-curve attacks on ECDH).
  auto key = crypto::PublicKey::FromEcPoint(crypto::KeyType::kEcP256, xb, yb);
  if (!key.ok()) return Fail(JoseErrc::kMalformed, "JWK point is not on P-256: " + key.detail());
  return std::move(key).value();
}

std::string JwkThumbprint(const json& public_jwk) {
  if (!public_jwk.is_object()) return "";
  auto kty = public_jwk.find("kty");
  if (kty == public_jwk.end() || !kty->is_string()) return "";
  // RFC 7638 §3.2: the required members of each key type, nothing else.
  std::vector<const char*> members;
  const std::string& k = kty->get_ref<const std::string&>();
  if (k == "EC") {
    members = {"crv", "kty", "x", "y"};
  } else if (k == "RSA") {
    members = {"e", "kty", "n"};
  } else if (k == "OKP") {
    members = {"crv", "kty", "x"};
  } else if (k == "oct") {
    members = {"k", "kty"};
  } else {
    return "";
  }
  json canonical = json::object();
  for (const char* name : members) {
    auto it = public_jwk.find(name);
    if (it == public_jwk.end() || !it->is_string()) return "";
    canonical[name] = *it;
  }
  // nlohmann objects keep members sorted and dump() writes no whitespace:
  // exactly the RFC 7638 §3.3 form for these ASCII members.
  auto text = Dump(canonical, "JWK");
  if (!text.ok()) return "";
  return Base64UrlEncode(crypto::Sha256(AsBytes(*text)));
}

// ---------------------------------------------------------------------------
// JWS
// ---------------------------------------------------------------------------

JoseResult<std::string> SignJws(const crypto::PrivateKey& key, const json& protected_header_extra,
                                std::string_view payload) {
  CLLM_ASSIGN_OR_RETURN(json header, HeaderWith(protected_header_extra, {{"alg", "ES256"}}, {"crit", "b64"}));
  CLLM_ASSIGN_OR_RETURN(std::string header_text, Dump(header, "JWS header"));
  std::string h64 = Base64UrlEncode(AsBytes(header_text));
  std::string p64 = Base64UrlEncode(AsBytes(payload));
  // Never produce a token our own verifier would refuse for its size.
  if (h64.size() + p64.size() + 2 + 86 > kMaxCompactLen) {
    return Fail(JoseErrc::kMalformed, "JWS would exceed " + std::to_string(kMaxCompactLen) + " bytes");
  }
  if (key.type() != crypto::KeyType::kEcP256) {
    return Fail(JoseErrc::kUnsupported, std::string("key must be EC P-256, got ") + crypto::KeyTypeName(key.type()));
  }
  // ES256 (RFC 7518 §3.4): ECDSA P-256 over SHA-256 of "h64.p64", the
  // signature as raw r ‖ s (32 bytes each). Signed here rather than through
  // libjose, which would export the private key to a JWK and import it
  // again for every token (12% of an attestation in `perf`); the verifier
  // (VerifyParsed) is unchanged and the tests check libjose accepts ours.
  const std::string signing_input = h64 + "." + p64;
  auto sig = crypto::EcdsaSign(key, crypto::HashAlg::kSha256, AsBytes(signing_input), crypto::SigFormat::kRaw);
  if (!sig.ok() || sig->size() != kEs256SigBytes) return Fail(JoseErrc::kCrypto, "JWS signing failed");
  return signing_input + "." + Base64UrlEncode(*sig);
}

JoseResult<VerifiedJws> VerifyJws(std::string_view compact, const crypto::PublicKey& key) {
  CLLM_ASSIGN_OR_RETURN(ParsedJws jws, ParseJws(compact));
  return VerifyParsed(std::move(jws), key);
}

JoseResult<VerifiedJws> VerifyJwsWithJwks(std::string_view compact, const json& jwks) {
  CLLM_ASSIGN_OR_RETURN(ParsedJws jws, ParseJws(compact));
  CLLM_ASSIGN_OR_RETURN(auto kid, StringMember(jws.header, "kid", "JWS header"));
  if (!kid) return Fail(JoseErrc::kUnknownKey, "JWS header has no \"kid\"");
  if (!jwks.is_object() || !jwks.contains("keys") || !jwks["keys"].is_array()) {
    return Fail(JoseErrc::kMalformed, "JWKS must be {\"keys\":[...]}");
  }
  const json* match = nullptr;
  for (const json& candidate : jwks["keys"]) {
    if (!candidate.is_object()) continue;
    auto it = candidate.find("kid");
    if (it == candidate.end() || !it->is_string() || it->get_ref<const std::string&>() != *kid) continue;
    // Two keys under one kid would make the choice of key ambiguous.
    if (match != nullptr) return Fail(JoseErrc::kMalformed, "JWKS lists kid \"" + *kid + "\" twice");
    match = &candidate;
  }
  if (match == nullptr) return Fail(JoseErrc::kUnknownKey, "no key with kid \"" + *kid + "\" in the JWKS");
  // A key published for encryption, or for another algorithm, does not sign.
  auto use = match->find("use");
  if (use != match->end() && *use != "sig") return Fail(JoseErrc::kUnknownKey, "key \"" + *kid + "\" is not for signing");
  auto alg = match->find("alg");
  if (alg != match->end() && *alg != "ES256") return Fail(JoseErrc::kUnknownKey, "key \"" + *kid + "\" is not for ES256");
  CLLM_ASSIGN_OR_RETURN(crypto::PublicKey key, PublicKeyFromJwk(*match));
  return VerifyParsed(std::move(jws), key);
}

// ---------------------------------------------------------------------------
// JWT
// ---------------------------------------------------------------------------

JoseResult<std::string> SignJwt(const crypto::PrivateKey& key, std::string_view kid, const json& claims) {
  if (!claims.is_object()) return Fail(JoseErrc::kMalformed, "JWT claims must be an object");
  json header = {{"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = std::string(kid);
  CLLM_ASSIGN_OR_RETURN(std::string payload, Dump(claims, "JWT claims"));
  return SignJws(key, header, payload);
}

namespace {

// NumericDate reads an optional RFC 7519 §2 NumericDate claim.
JoseResult<std::optional<double>> NumericDate(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::optional<double>();
  if (!it->is_number()) return Fail(JoseErrc::kMalformed, std::string("JWT \"") + name + "\" is not a number");
  return std::optional<double>(it->get<double>());
}

}  // namespace

JoseResult<json> VerifyJwt(std::string_view token, const json& jwks, const JwtCheck& check) {
  CLLM_ASSIGN_OR_RETURN(VerifiedJws jws, VerifyJwsWithJwks(token, jwks));
  // RFC 7519 §5.1: typ, when present, says "JWT" (case-insensitively). Any
  // other type is a different kind of signed object that must not pass as one.
  CLLM_ASSIGN_OR_RETURN(auto typ, StringMember(jws.header, "typ", "JWT header"));
  if (typ) {
    std::string upper = *typ;
    for (char& c : upper) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    if (upper != "JWT") return Fail(JoseErrc::kClaimMismatch, "JWT typ is \"" + *typ + "\"");
  }
  // Nested JWTs (RFC 7519 §5.2 cty "JWT") are not supported.
  if (jws.header.contains("cty")) return Fail(JoseErrc::kUnsupported, "JWT header \"cty\" is not supported");
  CLLM_ASSIGN_OR_RETURN(json claims, ParseObject(jws.payload, "JWT claims"));

  // The clock is the caller's; whole seconds, as NumericDate comparisons are.
  const double now = static_cast<double>(
      std::chrono::floor<std::chrono::seconds>(check.now.time_since_epoch()).count());
  const double leeway = static_cast<double>(std::max<std::chrono::seconds::rep>(0, check.leeway.count()));
  CLLM_ASSIGN_OR_RETURN(auto exp, NumericDate(claims, "exp"));
  CLLM_ASSIGN_OR_RETURN(auto nbf, NumericDate(claims, "nbf"));
  CLLM_ASSIGN_OR_RETURN(auto iat, NumericDate(claims, "iat"));
  // A token without an expiry would be valid forever.
  if (!exp) return Fail(JoseErrc::kClaimMismatch, "JWT has no \"exp\"");
  // RFC 7519 §4.1.4: the current time must be before exp.
  if (now >= *exp + leeway) return Fail(JoseErrc::kExpired, "JWT expired");
  // RFC 7519 §4.1.5: the current time must be at or after nbf.
  if (nbf && now + leeway < *nbf) return Fail(JoseErrc::kNotYetValid, "JWT not valid yet (nbf)");
  // A token issued in the future comes from a skewed or lying issuer.
  if (iat && *iat > now + leeway) return Fail(JoseErrc::kNotYetValid, "JWT issued in the future (iat)");

  if (!check.expected_issuer.empty()) {
    CLLM_ASSIGN_OR_RETURN(auto iss, StringMember(claims, "iss", "JWT claims"));
    if (!iss || *iss != check.expected_issuer) {
      return Fail(JoseErrc::kClaimMismatch, "JWT iss is not \"" + check.expected_issuer + "\"");
    }
  }
  return claims;
}

// ---------------------------------------------------------------------------
// JWE
// ---------------------------------------------------------------------------

JoseResult<std::string> EncryptToJwk(ByteSpan plaintext, const json& recipient_public_jwk,
                                     const json& protected_header_extra) {
  CLLM_ASSIGN_OR_RETURN(crypto::PublicKey recipient, PublicKeyFromJwk(recipient_public_jwk));
  if (plaintext.empty()) return Fail(JoseErrc::kMalformed, "JWE plaintext is empty");
  if (plaintext.size() > kMaxCompactLen) {
    return Fail(JoseErrc::kMalformed, "JWE plaintext longer than " + std::to_string(kMaxCompactLen) + " bytes");
  }
  // "zip" compresses before encrypting (a length side channel); "epk" is ours
  // to make; "crit" names extensions we do not implement.
  CLLM_ASSIGN_OR_RETURN(json header, HeaderWith(protected_header_extra, {{"alg", "ECDH-ES"}, {"enc", "A256GCM"}},
                                                {"epk", "zip", "crit"}));
  CLLM_ASSIGN_OR_RETURN(std::string header_text, Dump(header, "JWE header"));
  json_error_t error;
  JsonPtr prot(json_loadb(header_text.data(), header_text.size(), 0, &error));
  // A clean JWK (no kid/alg/use) so libjose infers nothing from the caller's.
  CLLM_ASSIGN_OR_RETURN(JsonPtr jwk, JanssonJwk(recipient, nullptr));
  JsonPtr jwe(json_object());
  JsonPtr cek(json_object());
  if (!prot || !jwe || !cek || json_object_set(jwe.get(), "protected", prot.get()) != 0) {
    return Fail(JoseErrc::kCrypto, "JWE construction");
  }
  JoseCfg cfg;
  // Step 1: ECDH with a fresh ephemeral key; the Concat KDF output is the CEK.
  if (!jose_jwe_enc_jwk(cfg.get(), jwe.get(), nullptr, jwk.get(), cek.get())) {
    return Fail(JoseErrc::kCrypto, cfg.Detail("JWE key agreement failed"));
  }
  // libjose puts "epk" in the per-recipient unprotected header; the compact
  // form has only the protected header (RFC 7516 §7.1), so move it there
  // before step 2 encodes that header as the AEAD's associated data.
  json_t* unprotected = json_object_get(jwe.get(), "header");
  if (unprotected != nullptr) {
    const char* name;
    json_t* value;
    json_object_foreach(unprotected, name, value) {
      if (json_object_set(prot.get(), name, value) != 0) return Fail(JoseErrc::kCrypto, "JWE construction");
    }
    json_object_del(jwe.get(), "header");
  }
  if (json_object_get(prot.get(), "epk") == nullptr) return Fail(JoseErrc::kCrypto, "libjose made no \"epk\"");
  // Step 2: AES-256-GCM under the CEK with a fresh IV.
  if (!jose_jwe_enc_cek(cfg.get(), jwe.get(), cek.get(), plaintext.data(), plaintext.size())) {
    return Fail(JoseErrc::kCrypto, cfg.Detail("JWE encryption failed"));
  }
  // header.encrypted_key.iv.ciphertext.tag (RFC 7516 §7.1); direct key
  // agreement has no encrypted key.
  std::string out;
  bool first = true;
  for (const char* part : {"protected", "encrypted_key", "iv", "ciphertext", "tag"}) {
    json_t* value = json_object_get(jwe.get(), part);
    const char* text = value != nullptr ? json_string_value(value) : "";
    if (text == nullptr) return Fail(JoseErrc::kCrypto, std::string("libjose made a non-string \"") + part + "\"");
    if (!first) out += '.';
    first = false;
    out += text;
  }
  if (out.size() > kMaxCompactLen) return Fail(JoseErrc::kMalformed, "JWE would exceed " + std::to_string(kMaxCompactLen) + " bytes");
  return out;
}

JoseResult<SecretBytes> DecryptJwe(std::string_view compact, const crypto::PrivateKey& recipient) {
  CLLM_ASSIGN_OR_RETURN(auto parts, SplitCompact(compact, 5, "JWE"));
  CLLM_ASSIGN_OR_RETURN(Bytes header_bytes, B64Decode(parts[0], "JWE header"));
  CLLM_ASSIGN_OR_RETURN(json header, ParseObject(AsChars(header_bytes), "JWE header"));
  // The allowed pair is fixed here, never taken from the token (RFC 8725 §3.1).
  CLLM_ASSIGN_OR_RETURN(auto alg, StringMember(header, "alg", "JWE header"));
  CLLM_ASSIGN_OR_RETURN(auto enc, StringMember(header, "enc", "JWE header"));
  if (!alg || !enc) return Fail(JoseErrc::kMalformed, "JWE header needs \"alg\" and \"enc\"");
  if (*alg != "ECDH-ES") return Fail(JoseErrc::kUnsupported, "JWE alg \"" + *alg + "\" is not ECDH-ES");
  if (*enc != "A256GCM") return Fail(JoseErrc::kUnsupported, "JWE enc \"" + *enc + "\" is not A256GCM");
  for (const char* name : {"zip", "crit"}) {
    if (header.contains(name)) return Fail(JoseErrc::kUnsupported, std::string("JWE header \"") + name + "\" is not supported");
  }
  // The ephemeral key must be a valid P-256 point: an off-curve point would
  // let a sender learn the recipient's scalar (invalid-curve attack).
  auto epk = header.find("epk");
  if (epk == header.end()) return Fail(JoseErrc::kMalformed, "JWE header has no \"epk\"");
  auto epk_key = PublicKeyFromJwk(*epk);
  if (!epk_key.ok()) return Fail(JoseErrc::kMalformed, "JWE epk: " + epk_key.detail());
  // Direct key agreement: no wrapped key (RFC 7518 §4.6).
  if (!parts[1].empty()) return Fail(JoseErrc::kMalformed, "JWE encrypted key must be empty for ECDH-ES");
  CLLM_ASSIGN_OR_RETURN(Bytes iv, B64Decode(parts[2], "JWE iv"));
  CLLM_ASSIGN_OR_RETURN(Bytes ciphertext, B64Decode(parts[3], "JWE ciphertext"));
  CLLM_ASSIGN_OR_RETURN(Bytes tag, B64Decode(parts[4], "JWE tag"));
  if (iv.size() != kGcmIvBytes || tag.size() != kGcmTagBytes) {
    return Fail(JoseErrc::kMalformed, "JWE A256GCM needs a 12-byte iv and a 16-byte tag");
  }
  CLLM_ASSIGN_OR_RETURN(JsonPtr jwk, JanssonPrivateJwk(recipient));
  // "protected" stays the encoded string: it is the AAD, byte for byte.
  JsonPtr jwe(json_pack("{s:s%,s:s%,s:s%,s:s%}", "protected", parts[0].data(), parts[0].size(), "iv",
                        parts[2].data(), parts[2].size(), "ciphertext", parts[3].data(), parts[3].size(), "tag",
                        parts[4].data(), parts[4].size()));
  if (!jwe) return Fail(JoseErrc::kMalformed, "JWE construction");
  JoseCfg cfg;
  size_t len = 0;  // libjose appends at *len: it must start at zero
  void* plain = jose_jwe_dec(cfg.get(), jwe.get(), nullptr, jwk.get(), &len);
  if (plain == nullptr) return Fail(JoseErrc::kCrypto, cfg.Detail("JWE does not decrypt"));
  SecretBytes out(ByteSpan(static_cast<const uint8_t*>(plain), len));
  SecureZero(plain, len);
  std::free(plain);
  return out;
}

}  // namespace cllm::trust
