// e2e.h — encrypted request bodies through HTTP proxies ("e2e bodies"):
// key configurations, the server's key ring, and sealing/opening one request.
// The response side (chunked frames) is e2e_response.h.
//
// RA-TLS protects a prompt only when TLS terminates inside the replica. When
// an L7 proxy, API gateway or load balancer terminates TLS, the body is
// sealed instead with HPKE (RFC 9180) to the fleet's key, which cllm-trust
// releases only to attested replicas. The wire format is specified in
// docs/protocol.md "Encrypted bodies"; in short:
//
//   key config (RFC 9458 §3 layout, one suite):
//     key_id(1) ‖ kem_id(2) ‖ pk(Npk) ‖ I2OSP(4,2) ‖ kdf_id(2) ‖ aead_id(2)
//   request body:
//     hdr = key_id(1) ‖ kem_id(2) ‖ kdf_id(2) ‖ aead_id(2) ‖ mode(1)
//     body = hdr ‖ enc ‖ Seal(aad = "", pt)
//     pt = I2OSP(len(auth),2) ‖ auth ‖ I2OSP(len(json),4) ‖ json ‖ zeros; len(pt) = bucket
//     info = "cllm-e2e request v1" ‖ 0x00 ‖ hdr ‖ LV2(path) ‖ LV2(model) ‖ LV2(stream) ‖ LV2(size)
//            [mode auth: ‖ SHA-256(client token) ‖ SHA-256(client key JWS)]
//
// Everything parsed here is untrusted and refused with a typed E2eErrc that
// never carries plaintext; the server turns the codes into the clear JSON
// errors of the spec (e2e_malformed, e2e_key_unknown, …).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secure.h"
#include "crypto/hpke.h"

namespace cllm::channel::e2e {

namespace hpke = crypto::hpke;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

enum class E2eErrc {
  kMalformed = 1,   // bytes or headers not of the specified shape (also: data after the final frame)
  kKeyUnknown,      // no key with this key_id and suite: the client's key config is stale
  kDecryptFailed,   // an AEAD tag did not verify (tampered, reordered, dropped, duplicated, wrong key)
  kTruncated,       // a response ended without its final frame
  kOversized,       // over a size limit (bucket, frame, header field)
  kClientToken,     // mutual mode: client token or client key statement missing or refused
  kUnsupported,     // a suite or mode this build does not speak
  kInternal,        // our own crypto failed (not the peer's fault)
};

// E2eErrcName is the wire code: "e2e_malformed", "e2e_key_unknown", …
const char* E2eErrcName(E2eErrc code);

template <typename T>
using E2eResult = Result<T, E2eErrc>;
using E2eStatus = Status<E2eErrc>;

// ---------------------------------------------------------------------------
// Wire constants
// ---------------------------------------------------------------------------

inline constexpr char kRequestContentType[] = "application/cllm-e2e-request";
inline constexpr char kResponseContentType[] = "application/cllm-e2e-response";
// The clear headers routers may use (lower-case, as net::Request keeps them).
inline constexpr char kModelHeader[] = "cllm-e2e-model";
inline constexpr char kStreamHeader[] = "cllm-e2e-stream";
inline constexpr char kSizeHeader[] = "cllm-e2e-size";
// Mutual mode only.
inline constexpr char kClientTokenHeader[] = "cllm-e2e-client-token";
inline constexpr char kClientKeyHeader[] = "cllm-e2e-client-key";

inline constexpr char kRequestInfoLabel[] = "cllm-e2e request v1";
inline constexpr char kResponseExportLabel[] = "cllm-e2e response v1";

inline constexpr size_t kHdrSize = 8;                 // key_id, kem, kdf, aead, mode
inline constexpr size_t kMinBucket = 1024;            // 1 KiB
inline constexpr size_t kMaxBucket = 4u << 20;        // 4 MiB
inline constexpr size_t kMaxModelNameSize = 256;      // Cllm-E2e-Model
inline constexpr size_t kMaxAuthorizationSize = 4096;  // the inner Authorization value
inline constexpr size_t kMaxPathSize = 1024;
inline constexpr size_t kMaxClientHeaderSize = 16 << 10;  // token, client key JWS

// BucketFor is the smallest power of two in [kMinBucket, kMaxBucket] that
// holds `content` bytes; kOversized above kMaxBucket.
E2eResult<size_t> BucketFor(uint64_t content);

// ---------------------------------------------------------------------------
// Key configuration (RFC 9458 §3 layout with exactly one cipher suite)
// ---------------------------------------------------------------------------

struct KeyConfig {
  uint8_t key_id = 0;
  hpke::Suite suite{};
  Bytes public_key;  // Npk bytes, the KEM's serialization
};

Bytes EncodeKeyConfig(const KeyConfig& config);
// ParseKeyConfig reads exactly one config and nothing after it: a known KEM
// with its Npk, suites length exactly 4, a known (KDF, AEAD) pair that with
// the KEM forms one of the suites this build speaks (x25519, gmt).
// kMalformed on any deviation, kUnsupported for a well-formed unknown suite.
E2eResult<KeyConfig> ParseKeyConfig(ByteSpan bytes);
// KeyConfigDigest = SHA-256 of the encoded config (all suites).
std::array<uint8_t, 32> KeyConfigDigest(ByteSpan config_bytes);

// KeyRing is what a replica holds: key_id → (suite, private key, config).
// Immutable once built; the server swaps a whole ring on rotation.
class KeyRing {
 public:
  struct Entry {
    hpke::Suite suite{};
    SecretBytes sk;
    Bytes config;  // the encoded key config (what clients have)
    KeyConfig parsed;
  };
  // Add checks that `config_bytes` parses and that its public key is the one
  // of `sk`; kMalformed otherwise, or when key_id is taken.
  E2eStatus Add(ByteSpan config_bytes, ByteSpan sk);
  // Find returns the entry for `key_id`, or kKeyUnknown.
  E2eResult<const Entry*> Find(uint8_t key_id) const;
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

 private:
  std::map<uint8_t, Entry> entries_;
};

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

// What routers see (sent as headers, bound into info).
struct RouterFields {
  std::string model;   // Cllm-E2e-Model
  bool stream = false;  // Cllm-E2e-Stream: 0|1
  size_t size = 0;     // Cllm-E2e-Size: the bucket (= plaintext length)
};

// Mutual mode (HPKE auth mode): the client's attested identity.
struct ClientIdentity {
  std::string token;       // the client's cllm-trust JWT (Cllm-E2e-Client-Token)
  std::string key_jws;     // compact JWS by the token's cnf key over {hpke_pk, suite, iat}
  SecretBytes sk;          // skS: the HPKE private key whose public half key_jws names
};

// The secret both sides derive response keys from (e2e_response.h).
struct ResponseSecret {
  hpke::Suite suite{};
  Bytes enc;
  SecretBytes secret;  // ctx.Export("cllm-e2e response v1", Nk)
};

struct SealedRequest {
  Bytes body;
  RouterFields fields;
  // Extra headers to send ("Cllm-E2e-Model", …) in their wire spelling.
  std::vector<std::pair<std::string, std::string>> headers;
  ResponseSecret response;
};

// SealRequest seals `json` and `authorization` (the Authorization header
// value, "" for none) for `path` to `config`. `client` non-null: auth mode.
E2eResult<SealedRequest> SealRequest(const KeyConfig& config, std::string_view path, std::string_view model,
                                     bool stream, std::string_view authorization, std::string_view json,
                                     const ClientIdentity* client = nullptr);

// ClientKeyVerifier checks a mutual-mode request's token and client key
// statement (Cllm-E2e-Client-Token, Cllm-E2e-Client-Key) for `suite` and
// returns pkS. The server calls it BEFORE decrypting; any error becomes
// kClientToken. trust/e2e_client.h has the cllm-trust implementation.
using ClientKeyVerifier =
    std::function<E2eResult<Bytes>(std::string_view token, std::string_view key_jws, hpke::Suite suite)>;

struct OpenOptions {
  const KeyRing* keys = nullptr;
  ClientKeyVerifier client_verifier;  // empty: auth mode is refused (kClientToken)
  bool require_client_token = false;  // refuse base mode (kClientToken)
};

// The clear parts of an encrypted request, as the server received them.
struct EncryptedRequest {
  std::string_view path;
  std::string_view model_header, stream_header, size_header;
  std::string_view client_token, client_key;  // "" in base mode
  ByteSpan body;
};

struct OpenedRequest {
  RouterFields fields;
  std::string authorization;
  std::string json;
  hpke::Mode mode = hpke::Mode::kBase;
  ResponseSecret response;
};

// OpenRequest checks, in order: the clear headers (kMalformed/kOversized),
// the hdr (kMalformed, kUnsupported), the key (kKeyUnknown), the mode
// against the options and, in auth mode, the client token and key
// (kClientToken) — all before any decryption — then decrypts
// (kDecryptFailed) and parses the padded plaintext (kMalformed: lengths,
// non-zero padding, size not the bucket).
E2eResult<OpenedRequest> OpenRequest(const EncryptedRequest& in, const OpenOptions& options);

}  // namespace cllm::channel::e2e
