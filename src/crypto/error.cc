#include "crypto/error.h"

#include <openssl/err.h>

namespace cllm::crypto {

const char* CryptoErrcName(CryptoErrc code) {
  switch (code) {
    case CryptoErrc::kInvalidArgument: return "invalid_argument";
    case CryptoErrc::kParse: return "parse";
    case CryptoErrc::kBadSignature: return "bad_signature";
    case CryptoErrc::kAuthFailed: return "auth_failed";
    case CryptoErrc::kChainInvalid: return "chain_invalid";
    case CryptoErrc::kExpired: return "expired";
    case CryptoErrc::kNotYetValid: return "not_yet_valid";
    case CryptoErrc::kRevoked: return "revoked";
    case CryptoErrc::kUnsupported: return "unsupported";
    case CryptoErrc::kTls: return "tls";
    case CryptoErrc::kInternal: return "internal";
  }
  return "unknown";
}

Error<CryptoErrc> OpenSslError(CryptoErrc code, const std::string& what) {
  std::string detail = what;
  // Report the first queued reason (the root cause) and drain the rest so a
  // stale error never leaks into an unrelated later call.
  unsigned long err = ERR_get_error();
  if (err != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof buf);
    detail += " (";
    detail += buf;
    detail += ")";
  }
  ERR_clear_error();
  return MakeError(code, std::move(detail));
}

}  // namespace cllm::crypto
