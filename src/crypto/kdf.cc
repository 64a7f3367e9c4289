#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include <algorithm>

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

namespace {

using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, ossl::Deleter<EVP_MAC_CTX_free>>;

// HmacCtx returns an HMAC-`alg` context keyed with `key`. OpenSSL failing here
// (no HMAC, out of memory) does not depend on the input: it aborts.
MacCtxPtr HmacCtx(HashAlg alg, ByteSpan key) {
  // Fetched once: an HPKE setup runs a dozen HKDF steps, and a fetch by name
  // per step is a locked lookup each.
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  CLLM_CHECK(mac != nullptr);
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac));
  CLLM_CHECK(ctx != nullptr);
  const char* md_name = EVP_MD_get0_name(ossl::Md(static_cast<int>(alg)));
  OSSL_PARAM params[2] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(md_name), 0),
      OSSL_PARAM_construct_end()};
  // A null key would mean "keep the previous key": pass a valid pointer.
  static const uint8_t kEmpty = 0;
  CLLM_CHECK(EVP_MAC_init(ctx.get(), key.empty() ? &kEmpty : key.data(), key.size(), params) == 1);
  return ctx;
}

void MacUpdate(EVP_MAC_CTX* ctx, ByteSpan data) {
  if (!data.empty()) CLLM_CHECK(EVP_MAC_update(ctx, data.data(), data.size()) == 1);
}

void MacFinal(EVP_MAC_CTX* ctx, std::span<uint8_t> out) {
  size_t len = 0;
  CLLM_CHECK(EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size());
}

}  // namespace

SecretBytes HkdfExtract(HashAlg alg, ByteSpan salt, ByteSpan ikm) {
  MacCtxPtr ctx = HmacCtx(alg, salt);
  MacUpdate(ctx.get(), ikm);
  SecretBytes prk(DigestSize(alg));
  MacFinal(ctx.get(), prk.mutable_span());
  return prk;
}

CryptoResult<SecretBytes> HkdfExpand(HashAlg alg, ByteSpan prk, ByteSpan info, size_t out_len) {
  const size_t hash_len = DigestSize(alg);
  if (out_len == 0 || out_len > 255 * hash_len) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "HKDF-Expand output length " + std::to_string(out_len) + " out of range");
  }
  // T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i), OKM = first out_len bytes of T(1) ‖ T(2) ‖ …
  SecretBytes okm(out_len);
  SecretBytes t(hash_len);
  size_t done = 0;
  for (uint8_t i = 1; done < out_len; ++i) {
    MacCtxPtr ctx = HmacCtx(alg, prk);
    if (i > 1) MacUpdate(ctx.get(), t.span());
    MacUpdate(ctx.get(), info);
    MacUpdate(ctx.get(), ByteSpan(&i, 1));
    MacFinal(ctx.get(), t.mutable_span());
    size_t n = std::min(hash_len, out_len - done);
    std::copy_n(t.data(), n, okm.data() + done);
    done += n;
  }
  return okm;
}

}  // namespace cllm::crypto
