// hpke.h — Hybrid Public Key Encryption (RFC 9180): DHKEM, the key schedule,
// encryption contexts with sequence numbers, and secret export.
//
// Algorithms (any combination of one KEM, one KDF and one AEAD is accepted):
//   KEM  DHKEM(X25519, HKDF-SHA256) 0x0020, DHKEM(P-256, HKDF-SHA256) 0x0010,
//        DHKEM(SM2, HKDF-SM3) 0xCC01 (cllm private id: RFC 9180 §4.1 over the
//        GB/T 32918.5 curve, Npk = Nenc = 65, Nsk = 32, DeriveKeyPair as for
//        P-256 with the SM2 order)
//   KDF  HKDF-SHA256 0x0001, HKDF-SM3 0xCC02 (cllm private id)
//   AEAD AES-128-GCM 0x0001, AES-256-GCM 0x0002, ChaCha20-Poly1305 0x0003,
//        SM4-CTR + HMAC-SM3 0xCC03 (crypto/sm4_aead.h), export-only 0xFFFF
// Named suites: "x25519" (X25519 / HKDF-SHA256 / AES-256-GCM) and "gmt"
// (SM2 / HKDF-SM3 / SM4-CTR-HMAC-SM3).
//
// Keys are serialized as in RFC 9180 §7.1.1/§7.1.2: X25519 raw 32 bytes,
// P-256/SM2 public keys as uncompressed SEC1 points (0x04 ‖ x ‖ y), private
// keys as the 32-byte big-endian scalar.
//
// Errors on untrusted input (public keys, enc, ciphertexts) never abort:
//   kInvalidArgument  a key or enc of the wrong size or form, a private scalar
//                     out of range, an X25519 peer key giving the all-zero
//                     shared secret (RFC 9180 §7.1.4), PSK inputs inconsistent
//                     with the mode (§5.1), a context used in the wrong role,
//                     the sequence number exhausted (§5.2)
//   kParse            a P-256/SM2 point that is not on the curve
//   kAuthFailed       Open: ciphertext, aad, enc, info, psk or a key differ
//   kUnsupported      an unknown algorithm id; Seal/Open on export-only
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "base/bytes.h"
#include "base/secure.h"
#include "crypto/error.h"

namespace cllm::crypto {
class AeadKey;  // crypto/aead_key.h
}  // namespace cllm::crypto

namespace cllm::crypto::hpke {

enum class Kem : uint16_t {
  kX25519HkdfSha256 = 0x0020,
  kP256HkdfSha256 = 0x0010,
  kSm2HkdfSm3 = 0xCC01
};
enum class Kdf : uint16_t { kHkdfSha256 = 0x0001, kHkdfSm3 = 0xCC02 };
enum class Aead : uint16_t {
  kAes128Gcm = 0x0001,
  kAes256Gcm = 0x0002,
  kChaCha20Poly1305 = 0x0003,
  kSm4CtrHmacSm3 = 0xCC03,
  kExportOnly = 0xFFFF,
};
enum class Mode : uint8_t { kBase = 0, kPsk = 1, kAuth = 2, kAuthPsk = 3 };

struct Suite {
  Kem kem;
  Kdf kdf;
  Aead aead;
  friend bool operator==(const Suite&, const Suite&) = default;
};
inline constexpr Suite kSuiteX25519{Kem::kX25519HkdfSha256, Kdf::kHkdfSha256, Aead::kAes256Gcm};
inline constexpr Suite kSuiteGmt{Kem::kSm2HkdfSm3, Kdf::kHkdfSm3, Aead::kSm4CtrHmacSm3};

// Sizes of a suite's parts in bytes (RFC 9180 §7 tables). n_k, n_n and n_t
// are 0 for the export-only AEAD.
struct Sizes {
  size_t n_enc, n_pk, n_sk, n_k, n_n, n_t, n_h;
};
// SuiteSizes returns the sizes of `s`; kUnsupported when an id is unknown.
CryptoResult<Sizes> SuiteSizes(Suite s);
// ParseSuite maps "x25519" / "gmt" to a suite; kUnsupported otherwise.
CryptoResult<Suite> ParseSuite(std::string_view name);
// SuiteName returns "x25519", "gmt" or "custom" (any other combination).
const char* SuiteName(Suite s);

// ---------------------------------------------------------------------------
// KEM keys (RFC 9180 §4, §7.1)
// ---------------------------------------------------------------------------

struct KeyPair {
  SecretBytes sk;  // [Nsk] serialized private key
  Bytes pk;        // [Npk] serialized public key
};
// GenerateKeyPair returns a fresh random key pair (DeriveKeyPair of Nsk random
// bytes). kUnsupported for an unknown KEM.
CryptoResult<KeyPair> GenerateKeyPair(Kem kem);
// DeriveKeyPair derives a key pair deterministically from `ikm` (RFC 9180
// §7.1.3). kInvalidArgument when ikm is shorter than Nsk.
CryptoResult<KeyPair> DeriveKeyPair(Kem kem, ByteSpan ikm);
// PublicKeyFromPrivate returns pk(sk), serialized. kInvalidArgument when sk
// has the wrong size or (P-256/SM2) is 0 or not below the group order.
CryptoResult<Bytes> PublicKeyFromPrivate(Kem kem, ByteSpan sk);
// ValidatePublicKey checks that `pk` is a well-formed public key of `kem`
// (size, SEC1 form, on the curve): kInvalidArgument / kParse otherwise.
CryptoStatus ValidatePublicKey(Kem kem, ByteSpan pk);

// The DHKEM itself (RFC 9180 §4.1), exposed for known-answer tests and for
// callers that run their own key schedule.
struct Encapsulation {
  SecretBytes shared_secret;  // [Nsecret]
  Bytes enc;                  // [Nenc]
};
// Encap / AuthEncap: `ikm_e` fixes the ephemeral key (DeriveKeyPair(ikm_e));
// std::nullopt draws a random one. AuthEncap authenticates with skS.
CryptoResult<Encapsulation> Encap(Kem kem, ByteSpan pkR,
                                  std::optional<ByteSpan> ikm_e = std::nullopt);
CryptoResult<Encapsulation> AuthEncap(Kem kem, ByteSpan pkR, ByteSpan skS,
                                      std::optional<ByteSpan> ikm_e = std::nullopt);
CryptoResult<SecretBytes> Decap(Kem kem, ByteSpan enc, ByteSpan skR);
CryptoResult<SecretBytes> AuthDecap(Kem kem, ByteSpan enc, ByteSpan skR, ByteSpan pkS);

// ---------------------------------------------------------------------------
// Encryption contexts (RFC 9180 §5.2, §5.3)
// ---------------------------------------------------------------------------

class Context {
 public:
  enum class Role : uint8_t { kSender, kRecipient };

  // Seal encrypts `pt` with the next nonce (sender only); returns ct ‖ tag.
  // kInvalidArgument in a recipient context or when the sequence number is
  // exhausted; kUnsupported for the export-only AEAD.
  CryptoResult<Bytes> Seal(ByteSpan aad, ByteSpan pt);
  // Open decrypts `ct` with the next nonce (recipient only). kAuthFailed (and
  // no plaintext) when it does not authenticate; the sequence number advances
  // only on success, so a forged message does not desynchronize the context.
  CryptoResult<SecretBytes> Open(ByteSpan aad, ByteSpan ct);
  // Export derives `len` bytes bound to `exporter_context` (§5.3); either role.
  // kInvalidArgument when len is 0 or above 255 * Nh.
  CryptoResult<SecretBytes> Export(ByteSpan exporter_context, size_t len) const;

  Suite suite() const { return suite_; }
  Role role() const { return role_; }
  uint64_t sequence_number() const { return seq_; }

  // For known-answer tests: the key schedule outputs and a way to jump to a
  // sequence number (vectors list seq 255, 256; overflow tests).
  ByteSpan key_for_testing() const { return key_.span(); }
  ByteSpan base_nonce_for_testing() const { return base_nonce_.span(); }
  ByteSpan exporter_secret_for_testing() const { return exporter_secret_.span(); }
  void set_sequence_number_for_testing(uint64_t seq) { seq_ = seq; }

  Context(Context&&) noexcept;
  Context& operator=(Context&&) noexcept;
  ~Context();

 private:
  friend struct ContextBuilder;
  Context();
  // Nonce computes base_nonce XOR I2OSP(seq, Nn) (§5.2 ComputeNonce).
  Bytes Nonce() const;
  // CheckSeq fails once seq_ has reached 2^(8*Nn) - 1 (§5.2 IncrementSeq);
  // with Nn = 12 the 64-bit counter is the tighter bound.
  CryptoStatus CheckSeq() const;

  Suite suite_{};
  Role role_ = Role::kSender;
  SecretBytes key_;              // [Nk]
  std::unique_ptr<AeadKey> aead_;  // null for the export-only AEAD
  SecretBytes base_nonce_;       // [Nn]
  SecretBytes exporter_secret_;  // [Nh]
  uint64_t seq_ = 0;
};

struct SenderSetup {
  Bytes enc;  // [Nenc] sent to the recipient
  Context ctx;
};

// Setup (RFC 9180 §5.1). `info` binds the application context. A PSK must be
// at least 32 bytes and comes with a non-empty psk_id (§5.1.2, §9.5).
CryptoResult<SenderSetup> SetupBaseS(Suite s, ByteSpan pkR, ByteSpan info);
CryptoResult<Context> SetupBaseR(Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info);
CryptoResult<SenderSetup> SetupPskS(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan psk,
                                    ByteSpan psk_id);
CryptoResult<Context> SetupPskR(Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info, ByteSpan psk,
                                ByteSpan psk_id);
CryptoResult<SenderSetup> SetupAuthS(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan skS);
CryptoResult<Context> SetupAuthR(Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info, ByteSpan pkS);
CryptoResult<SenderSetup> SetupAuthPskS(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan psk,
                                        ByteSpan psk_id, ByteSpan skS);
CryptoResult<Context> SetupAuthPskR(Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info,
                                    ByteSpan psk, ByteSpan psk_id, ByteSpan pkS);

// The general forms behind the above: `psk`/`psk_id` empty unless the mode
// has a PSK, `skS`/`pkS` empty unless it has Auth; `ikm_e` as for Encap.
CryptoResult<SenderSetup> SetupS(Mode mode, Suite s, ByteSpan pkR, ByteSpan info, ByteSpan psk,
                                 ByteSpan psk_id, ByteSpan skS,
                                 std::optional<ByteSpan> ikm_e = std::nullopt);
CryptoResult<Context> SetupR(Mode mode, Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info,
                             ByteSpan psk, ByteSpan psk_id, ByteSpan pkS);

// RecipientKey is a recipient's private key together with its public key,
// for a long-lived key whose pair was checked when it was loaded (the e2e
// KeyRing): Decap then skips recomputing pk(skR), one scalar multiplication
// per request. An empty pk is computed from sk as usual. A pk that is not
// sk's only makes the shared secret differ from the sender's: the request
// fails to decrypt, nothing weaker.
struct RecipientKey {
  ByteSpan sk;
  ByteSpan pk;
};
CryptoResult<Context> SetupBaseR(Suite s, ByteSpan enc, RecipientKey kR, ByteSpan info);
CryptoResult<Context> SetupAuthR(Suite s, ByteSpan enc, RecipientKey kR, ByteSpan info, ByteSpan pkS);

// Test hooks: the sender setups with a fixed ephemeral key (RFC 9180
// Appendix A vectors). Never use outside tests: a fixed ikmE reuses keys.
CryptoResult<SenderSetup> SetupBaseSWithIkmE(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan ikm_e);
CryptoResult<SenderSetup> SetupAuthSWithIkmE(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan skS,
                                             ByteSpan ikm_e);

}  // namespace cllm::crypto::hpke
