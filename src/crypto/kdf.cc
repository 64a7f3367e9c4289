#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "base/check.h"
#include "crypto/ossl.h"

namespace cllm::crypto {

Bytes Hmac(HashAlg alg, ByteSpan key, ByteSpan data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  // HMAC() with a null key pointer would be rejected; an empty key is valid.
  static const uint8_t kEmpty = 0;
  CLLM_CHECK(HMAC(ossl::Md(static_cast<int>(alg)), key.empty() ? &kEmpty : key.data(),
                  static_cast<int>(key.size()), data.data(), data.size(), out.data(),
                  &len) != nullptr);
  out.resize(len);
  return out;
}

CryptoResult<SecretBytes> Hkdf(HashAlg alg, ByteSpan ikm, ByteSpan salt, ByteSpan info,
                               size_t out_len) {
  if (out_len == 0 || out_len > 255 * DigestSize(alg)) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "HKDF output length " + std::to_string(out_len) + " out of range");
  }
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return OpenSslError(CryptoErrc::kInternal, "HKDF unavailable");
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return OpenSslError(CryptoErrc::kInternal, "HKDF context");
  std::unique_ptr<EVP_KDF_CTX, ossl::Deleter<EVP_KDF_CTX_free>> holder(ctx);

  const char* md_name = EVP_MD_get0_name(ossl::Md(static_cast<int>(alg)));
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(md_name), 0);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.data()), ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();

  SecretBytes out(out_len);
  if (EVP_KDF_derive(ctx, out.data(), out.size(), params) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "HKDF derive failed");
  }
  return out;
}

}  // namespace cllm::crypto
