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

// HkdfExtract returns PRK = HMAC-`alg`(salt, ikm) (RFC 5869 §2.2; an empty
// salt is the same as DigestSize(alg) zero bytes). Never fails.
SecretBytes HkdfExtract(HashAlg alg, ByteSpan salt, ByteSpan ikm);

// HkdfExpand returns `out_len` bytes of OKM from `prk` and `info` (RFC 5869
// §2.3). kInvalidArgument when out_len is 0 or exceeds 255 * DigestSize(alg).
CryptoResult<SecretBytes> HkdfExpand(HashAlg alg, ByteSpan prk, ByteSpan info, size_t out_len);

}  // namespace cllm::crypto
