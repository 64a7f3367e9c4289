// aead.h — AES-256-GCM authenticated encryption.
//
// Sealed output is ciphertext ‖ 16-byte tag. Keys are 32 bytes, nonces 12
// bytes; a (key, nonce) pair must never be reused — callers derive nonces from
// counters (chunk index) or use RandomBytes.
#pragma once

#include <span>

#include "base/bytes.h"
#include "base/secure.h"
#include "crypto/error.h"

namespace cllm::crypto {

inline constexpr size_t kAes256KeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;

// Aes256GcmSeal encrypts `plaintext` with `aad` authenticated; returns
// ciphertext ‖ tag. kInvalidArgument on wrong key or nonce size.
CryptoResult<Bytes> Aes256GcmSeal(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext);

// Aes256GcmOpen authenticates and decrypts `sealed` (ciphertext ‖ tag) into
// `out_plaintext`, which must be exactly sealed.size() - 16 bytes. On
// kAuthFailed the output buffer is zeroed: no unauthenticated plaintext leaks.
CryptoStatus Aes256GcmOpenInto(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan sealed,
                               std::span<uint8_t> out_plaintext);
// Aes256GcmOpen is the allocating form of Aes256GcmOpenInto.
CryptoResult<SecretBytes> Aes256GcmOpen(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                        ByteSpan sealed);

}  // namespace cllm::crypto
