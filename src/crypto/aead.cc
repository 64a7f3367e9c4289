#include "crypto/aead.h"

#include "crypto/ossl.h"

namespace cllm::crypto {
namespace {

CryptoStatus CheckSizes(ByteSpan key, ByteSpan nonce) {
  if (key.size() != kAes256KeySize) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "AES-256-GCM key must be 32 bytes, got " + std::to_string(key.size()));
  }
  if (nonce.size() != kGcmNonceSize) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "AES-GCM nonce must be 12 bytes, got " + std::to_string(nonce.size()));
  }
  return OkStatus();
}

// OpenSSL's update/final take int lengths: feed large buffers in pieces.
constexpr size_t kMaxPiece = size_t{1} << 30;

// FeedAad passes the associated data (no output) to an initialised context.
bool FeedAad(EVP_CIPHER_CTX* ctx, ByteSpan aad, bool encrypt) {
  int len = 0;
  for (size_t off = 0; off < aad.size(); off += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, aad.size() - off));
    int rc = encrypt ? EVP_EncryptUpdate(ctx, nullptr, &len, aad.data() + off, piece)
                     : EVP_DecryptUpdate(ctx, nullptr, &len, aad.data() + off, piece);
    if (rc != 1) return false;
  }
  return true;
}

}  // namespace

CryptoResult<Bytes> Aes256GcmSeal(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) {
  CLLM_RETURN_IF_ERROR(CheckSizes(key, nonce));
  ossl::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce.data()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "AES-GCM init");
  }
  if (!FeedAad(ctx.get(), aad, true)) return OpenSslError(CryptoErrc::kInternal, "AES-GCM aad");
  int len = 0;
  Bytes out(plaintext.size() + kGcmTagSize);
  size_t written = 0;
  for (size_t off = 0; off < plaintext.size(); off += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, plaintext.size() - off));
    if (EVP_EncryptUpdate(ctx.get(), out.data() + written, &len, plaintext.data() + off, piece) != 1) {
      return OpenSslError(CryptoErrc::kInternal, "AES-GCM encrypt");
    }
    written += static_cast<size_t>(len);
  }
  if (EVP_EncryptFinal_ex(ctx.get(), out.data() + written, &len) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "AES-GCM final");
  }
  written += static_cast<size_t>(len);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize, out.data() + written) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "AES-GCM tag");
  }
  return out;
}

CryptoStatus Aes256GcmOpenInto(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan sealed,
                               std::span<uint8_t> out_plaintext) {
  CLLM_RETURN_IF_ERROR(CheckSizes(key, nonce));
  if (sealed.size() < kGcmTagSize || out_plaintext.size() != sealed.size() - kGcmTagSize) {
    return MakeError(CryptoErrc::kInvalidArgument, "AES-GCM sealed/plaintext size mismatch");
  }
  size_t ct_len = sealed.size() - kGcmTagSize;
  ossl::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce.data()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "AES-GCM init");
  }
  if (!FeedAad(ctx.get(), aad, false)) return OpenSslError(CryptoErrc::kInternal, "AES-GCM aad");
  int len = 0;
  size_t written = 0;
  for (size_t off = 0; off < ct_len; off += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, ct_len - off));
    if (EVP_DecryptUpdate(ctx.get(), out_plaintext.data() + written, &len, sealed.data() + off,
                          piece) != 1) {
      SecureZero(out_plaintext.data(), out_plaintext.size());
      return OpenSslError(CryptoErrc::kInternal, "AES-GCM decrypt");
    }
    written += static_cast<size_t>(len);
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize,
                          const_cast<uint8_t*>(sealed.data() + ct_len)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out_plaintext.data() + written, &len) != 1) {
    // Never hand out plaintext that failed authentication.
    SecureZero(out_plaintext.data(), out_plaintext.size());
    ERR_clear_error();
    return MakeError(CryptoErrc::kAuthFailed, "AES-GCM authentication failed");
  }
  return OkStatus();
}

CryptoResult<SecretBytes> Aes256GcmOpen(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                        ByteSpan sealed) {
  if (sealed.size() < kGcmTagSize) {
    return MakeError(CryptoErrc::kInvalidArgument, "AES-GCM input shorter than the tag");
  }
  SecretBytes out(sealed.size() - kGcmTagSize);
  CLLM_RETURN_IF_ERROR(Aes256GcmOpenInto(key, nonce, aad, sealed, out.mutable_span()));
  return out;
}

}  // namespace cllm::crypto
