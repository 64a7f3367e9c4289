// error.h — the error codes of the crypto library.
#pragma once

#include <string>

#include "base/result.h"

namespace cllm::crypto {

enum class CryptoErrc {
  kInvalidArgument = 1,  // wrong sizes, unsupported algorithm combination
  kParse,                // malformed DER/PEM, key or certificate encoding
  kBadSignature,         // a signature did not verify
  kAuthFailed,           // AEAD tag mismatch: ciphertext, AAD, key or nonce altered
  kChainInvalid,         // certificate chain does not lead to a pinned root
  kExpired,              // a certificate or CRL is past its validity at the given time
  kNotYetValid,          // a certificate or CRL is not yet valid at the given time
  kRevoked,              // a certificate is listed in a CRL
  kUnsupported,
  kTls,                  // TLS protocol failure: handshake refused by the peer, I/O, version
  kInternal,             // OpenSSL failed unexpectedly (out of memory, ...)
};

const char* CryptoErrcName(CryptoErrc code);

template <typename T>
using CryptoResult = Result<T, CryptoErrc>;
using CryptoStatus = Status<CryptoErrc>;

// OpenSslError builds an error whose detail is `what` followed by the
// reason OpenSSL queued (the queue is drained).
Error<CryptoErrc> OpenSslError(CryptoErrc code, const std::string& what);

}  // namespace cllm::crypto
