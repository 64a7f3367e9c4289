// jose.h — the JOSE subset cllm speaks: EC P-256 JWKs (RFC 7517) and their
// thumbprints (RFC 7638), compact JWS with ES256 only (RFC 7515), JWTs on top
// of it (RFC 7519), and compact JWE with ECDH-ES + A256GCM only (RFC 7516,
// RFC 7518 §4.6) to hand a secret such as a model key to an attested peer.
//
// Everything here treats its string input as hostile: tokens longer than
// kMaxCompactLen, bad base64url, duplicate JSON members, unknown algorithms
// and unknown critical headers are refused with a JoseErrc, never an abort.
// libjose (with jansson) does the JOSE cryptography underneath; neither
// appears in this header. See docs/trust/jose.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secure.h"
#include "crypto/keys.h"

namespace cllm::trust {

enum class JoseErrc {
  kMalformed = 1,   // not a compact token / JWK / JSON object of the expected shape
  kBadSignature,    // a JWS signature does not verify under the given key
  kUnknownKey,      // no key in the JWKS matches the token's "kid"
  kExpired,         // JWT "exp" (plus leeway) is not after `now`
  kNotYetValid,     // JWT "nbf" or "iat" (minus leeway) is after `now`
  kClaimMismatch,   // JWT claim missing or different from what the caller expects
  kCrypto,          // JWE decryption failed (wrong key, altered header/ciphertext/tag)
  kUnsupported,     // algorithm, curve or header feature outside the allowed set
};

// JoseErrcName returns a stable lowercase identifier ("bad_signature").
const char* JoseErrcName(JoseErrc code);

template <typename T>
using JoseResult = Result<T, JoseErrc>;

// Compact tokens (JWS, JWT, JWE) longer than this are refused with kMalformed
// before any decoding.
inline constexpr size_t kMaxCompactLen = 64 * 1024;

// ---------------------------------------------------------------------------
// JWK (RFC 7517) — EC P-256 only
// ---------------------------------------------------------------------------

// PublicJwk returns {"kty":"EC","crv":"P-256","x":…,"y":…} for a P-256 key,
// with "kid" when `kid` is not empty; null JSON when `key` is not P-256 (which
// every function below refuses as a JWK).
nlohmann::json PublicJwk(const crypto::PublicKey& key, std::string_view kid = {});

// PublicKeyFromJwk parses a public EC JWK strictly: kty "EC", crv "P-256",
// x and y unpadded base64url of exactly 32 bytes each, the point on the curve,
// and no "d" (a private key is never accepted where a public one is expected).
// kUnsupported for another kty/crv; kMalformed otherwise.
JoseResult<crypto::PublicKey> PublicKeyFromJwk(const nlohmann::json& jwk);

// JwkThumbprint returns the RFC 7638 SHA-256 thumbprint, base64url without
// padding, over the required members only (EC: crv, kty, x, y; RSA: e, kty, n;
// OKP: crv, kty, x; oct: k, kty), so member order, whitespace and optional
// members such as "kid" do not change it. Returns "" when `public_jwk` lacks
// one of those members as a string or has an unknown kty.
std::string JwkThumbprint(const nlohmann::json& public_jwk);

// ---------------------------------------------------------------------------
// JWS compact (RFC 7515) — ES256 only
// ---------------------------------------------------------------------------

// SignJws signs `payload` with a P-256 key. The protected header is
// `protected_header_extra` (an object, or null for none; e.g. kid, typ) plus
// "alg":"ES256". kUnsupported if the key is not P-256 or the extras carry
// another "alg", "crit" or "b64"; kMalformed if the extras are not an object.
JoseResult<std::string> SignJws(const crypto::PrivateKey& key,
                                const nlohmann::json& protected_header_extra,
                                std::string_view payload);

struct VerifiedJws {
  nlohmann::json header;  // the protected header, as signed
  std::string payload;    // the decoded payload bytes
};

// VerifyJws checks a compact JWS against `key`. Only "alg":"ES256" is
// accepted ("none", HS*, RS*, … -> kUnsupported), as are headers with "crit"
// or "b64"; kBadSignature when the signature does not verify; kMalformed for
// anything that is not three base64url parts with a JSON-object header.
JoseResult<VerifiedJws> VerifyJws(std::string_view compact, const crypto::PublicKey& key);

// VerifyJwsWithJwks picks the key from {"keys":[…]} whose "kid" equals the
// header's "kid" and verifies with it. kUnknownKey when the header has no kid,
// no key has it, or the matching key is marked for another "use"/"alg";
// kMalformed when the JWKS is not {"keys":[…]} or lists the kid twice.
JoseResult<VerifiedJws> VerifyJwsWithJwks(std::string_view compact, const nlohmann::json& jwks);

// ---------------------------------------------------------------------------
// JWT (RFC 7519) on top of the JWS above
// ---------------------------------------------------------------------------

// SignJwt signs the `claims` object with header {"alg":"ES256","typ":"JWT"}
// plus "kid" when not empty. kMalformed if `claims` is not an object.
JoseResult<std::string> SignJwt(const crypto::PrivateKey& key, std::string_view kid,
                                const nlohmann::json& claims);

struct JwtCheck {
  std::chrono::system_clock::time_point now;  // passed in: tests run on a fixed clock
  std::string expected_issuer;                // "iss" must equal this when not empty
  std::chrono::seconds leeway{30};            // clock skew allowed on exp/nbf/iat
};

// VerifyJwt verifies `token` with VerifyJwsWithJwks, then (RFC 7519 §4.1):
// "exp" is required and `now` must be before exp + leeway (else kExpired);
// "nbf" and "iat", when present, must not be after now + leeway (else
// kNotYetValid); a non-numeric exp/nbf/iat is kMalformed; a missing exp, a
// "typ" other than JWT or a wrong "iss" is kClaimMismatch. Returns the claims.
JoseResult<nlohmann::json> VerifyJwt(std::string_view token, const nlohmann::json& jwks,
                                     const JwtCheck& check);

// ---------------------------------------------------------------------------
// JWE compact (RFC 7516) — alg ECDH-ES (direct key agreement), enc A256GCM
// ---------------------------------------------------------------------------

// EncryptToJwk encrypts `plaintext` to the P-256 public JWK (checked with
// PublicKeyFromJwk) with a fresh ephemeral key. The protected header is
// `protected_header_extra` (object or null; e.g. kid, cty) plus alg, enc and
// epk; extras naming another alg/enc, or carrying epk, zip or crit, are
// refused (kUnsupported).
JoseResult<std::string> EncryptToJwk(ByteSpan plaintext, const nlohmann::json& recipient_public_jwk,
                                     const nlohmann::json& protected_header_extra = {});

// DecryptJwe decrypts a compact JWE made for `recipient` (a P-256 key). Only
// alg "ECDH-ES" with enc "A256GCM" is accepted (else kUnsupported, also for
// "zip" and "crit"); the ephemeral key must be a valid P-256 public JWK
// (invalid-curve defence) and the encrypted-key part empty (else kMalformed);
// kCrypto when the tag does not verify (wrong key, altered header, iv,
// ciphertext or tag).
JoseResult<SecretBytes> DecryptJwe(std::string_view compact, const crypto::PrivateKey& recipient);

}  // namespace cllm::trust
