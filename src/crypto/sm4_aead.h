// sm4_aead.h — SM4-CTR + HMAC-SM3 encrypt-then-MAC AEAD (the AEAD of the
// `gmt` suite, HPKE aead_id 0xCC03, a cllm private id).
//
// Composition (docs: COMMON contract of issue #15; primitives: SM4 = GB/T
// 32907-2016, SM3 = GB/T 32905-2016, HMAC = RFC 2104, CTR = NIST SP 800-38A):
//
//   key   K  = Ke[16] ‖ Km[32]                     (Nk = 48)
//   nonce N  = 12 bytes                            (Nn = 12)
//   counter block CB_1 = N ‖ 0x00000001, CB_{i+1} = CB_i + 1 as a 128-bit
//         big-endian integer (the low 32 bits never wrap: see the limit below)
//   ct    = pt XOR (SM4(Ke, CB_1) ‖ SM4(Ke, CB_2) ‖ …), truncated to len(pt)
//   tag   = HMAC-SM3(Km, I2OSP(len(aad), 8) ‖ aad ‖ N ‖ ct)     (Nt = 32)
//   Seal  → ct ‖ tag
//   Open  → recomputes the tag over the received ct and compares it in
//           constant time BEFORE any decryption; on mismatch kAuthFailed and
//           no plaintext at all.
//
// The MAC input is unambiguous: the 8-byte length fixes where aad ends, the
// nonce has a fixed size and ct is the rest. Ke and Km are independent parts
// of one HPKE key (the HPKE key schedule derives all 48 bytes).
//
// Plaintext limit: counters 1 … 2^32-1 are usable, so at most 2^32-1 blocks,
// i.e. kSm4CtrHmacSm3MaxPlaintext = (2^32 - 1) * 16 bytes (≈ 64 GiB) per
// (key, nonce). Longer inputs are refused with kInvalidArgument, so the low 32
// bits of the counter never carry into the nonce (the same bound as GCM's
// 2^32-2 blocks, one block more because no block is spent on the tag).
//
// Ke is not under the MAC (as in any split-key encrypt-then-MAC, RFC 7518
// §5.2): a wrong Ke with the right Km opens to different bytes. Like
// AES-GCM, this AEAD is not key-committing; HPKE derives both halves.
//
// A (key, nonce) pair must never be used for two messages (CTR keystream
// reuse); HPKE's nonce sequence guarantees that.
//
// Known-answer tests: gmt_test.cc (SM3, SM4, SM4-CTR, HMAC-SM3, this
// composition recomputed with the openssl CLI), and `cllm selfcheck`.
#pragma once

#include <cstdint>
#include <memory>

#include "base/bytes.h"
#include "base/secure.h"
#include "crypto/error.h"

namespace cllm::crypto {

inline constexpr size_t kSm4CtrHmacSm3KeySize = 48;
inline constexpr size_t kSm4CtrHmacSm3NonceSize = 12;
inline constexpr size_t kSm4CtrHmacSm3TagSize = 32;
// At most 2^32 - 1 SM4 blocks per (key, nonce): see the header comment.
inline constexpr uint64_t kSm4CtrHmacSm3MaxPlaintext = ((uint64_t{1} << 32) - 1) * 16;

// Sm4CtrHmacSm3Key is the same AEAD with the SM4 key schedule and the HMAC
// key pads computed once, for many messages under one key (the frames of an
// e2e response): each Seal/Open then costs only the message's own blocks.
// Output is identical to the one-shot functions below. Not thread-safe.
class Sm4CtrHmacSm3Key {
 public:
  // Create: kInvalidArgument unless `key` is 48 bytes.
  static CryptoResult<Sm4CtrHmacSm3Key> Create(ByteSpan key);
  CryptoResult<Bytes> Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext);
  CryptoResult<SecretBytes> Open(ByteSpan nonce, ByteSpan aad, ByteSpan sealed);

  Sm4CtrHmacSm3Key(Sm4CtrHmacSm3Key&&) noexcept;
  Sm4CtrHmacSm3Key& operator=(Sm4CtrHmacSm3Key&&) noexcept;
  ~Sm4CtrHmacSm3Key();

 private:
  struct State;
  explicit Sm4CtrHmacSm3Key(std::unique_ptr<State> s);
  CryptoStatus Ctr(ByteSpan nonce, ByteSpan in, uint8_t* out);
  CryptoStatus Tag(ByteSpan aad, ByteSpan nonce, ByteSpan ct, uint8_t* out_tag);
  std::unique_ptr<State> s_;
};

// Sm4CtrHmacSm3Seal encrypts `plaintext` and authenticates it with `aad`;
// returns ct ‖ tag (len(plaintext) + 32 bytes). kInvalidArgument on a key
// that is not 48 bytes, a nonce that is not 12 bytes, or a plaintext longer
// than kSm4CtrHmacSm3MaxPlaintext.
CryptoResult<Bytes> Sm4CtrHmacSm3Seal(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                      ByteSpan plaintext);

// Sm4CtrHmacSm3Open verifies the tag of `sealed` (ct ‖ tag) over `aad`,
// `nonce` and ct, then decrypts. kInvalidArgument on wrong key/nonce sizes, a
// `sealed` shorter than the tag or a ct over the plaintext limit;
// kAuthFailed (and no plaintext) when the tag does not match.
CryptoResult<SecretBytes> Sm4CtrHmacSm3Open(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                            ByteSpan sealed);

}  // namespace cllm::crypto
