// kdf.h — HMAC (RFC 2104) and HKDF (RFC 5869).
#pragma once

#include "base/bytes.h"
#include "base/secure.h"
#include "crypto/digest.h"

namespace cllm::crypto {

// Hmac returns HMAC-`alg`(key, data).
Bytes Hmac(HashAlg alg, ByteSpan key, ByteSpan data);

// Hkdf derives `out_len` bytes (extract-then-expand). Fails with
// kInvalidArgument when out_len exceeds 255 * DigestSize(alg).
CryptoResult<SecretBytes> Hkdf(HashAlg alg, ByteSpan ikm, ByteSpan salt, ByteSpan info,
                               size_t out_len);

}  // namespace cllm::crypto
