// aead_key.h — one AEAD key set up once for a run of messages.
//
// The key schedule (for SM4-CTR-HMAC-SM3 also the HMAC key pads) is computed
// at Create, so a stream of small messages under one key — the frames of an
// encrypted response (channel/e2e_response.h), one per streamed token, and
// the messages of an HPKE context (hpke::Context holds one) — pays
// only each message's own blocks. Output is byte-identical to the one-shot
// functions (crypto/aead.h, crypto/sm4_aead.h, the HPKE AEADs of RFC 9180
// §7.3). Nonce uniqueness is the caller's: never two messages under one
// (key, nonce). Not thread-safe: one user at a time.
#pragma once

#include <memory>

#include "base/bytes.h"
#include "base/secure.h"
#include "crypto/error.h"
#include "crypto/hpke.h"

namespace cllm::crypto {

class AeadKey {
 public:
  // Create: kUnsupported for export-only or an unknown AEAD; kInvalidArgument
  // for a key that is not Nk bytes.
  static CryptoResult<AeadKey> Create(hpke::Aead aead, ByteSpan key);

  // Seal returns ct ‖ tag. kInvalidArgument for a nonce that is not Nn bytes
  // or a plaintext over the AEAD's limit.
  CryptoResult<Bytes> Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext);
  // Open checks the tag of `sealed` (ct ‖ tag) and decrypts: kAuthFailed,
  // and no plaintext, when it does not match (also for input shorter than
  // the tag).
  CryptoResult<SecretBytes> Open(ByteSpan nonce, ByteSpan aad, ByteSpan sealed);

  size_t tag_size() const;

  AeadKey(AeadKey&&) noexcept;
  AeadKey& operator=(AeadKey&&) noexcept;
  ~AeadKey();

 private:
  struct State;
  explicit AeadKey(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace cllm::crypto
