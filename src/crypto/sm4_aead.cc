#include "crypto/sm4_aead.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <string>

#include "crypto/ossl.h"

namespace cllm::crypto {
namespace {

constexpr size_t kKeSize = 16;  // SM4 key
constexpr size_t kKmSize = kSm4CtrHmacSm3KeySize - kKeSize;  // HMAC-SM3 key
constexpr size_t kSm4BlockSize = 16;
static_assert(kSm4CtrHmacSm3NonceSize + 4 == kSm4BlockSize, "nonce ‖ 32-bit counter = one block");

// OpenSSL's cipher update takes int lengths: feed large buffers in pieces.
// A multiple of the block size, so the pieces continue one keystream.
constexpr size_t kMaxPiece = size_t{1} << 30;

using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, ossl::Deleter<EVP_MAC_CTX_free>>;

CryptoStatus CheckNonce(ByteSpan nonce) {
  if (nonce.size() != kSm4CtrHmacSm3NonceSize) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "SM4-CTR-HMAC-SM3 nonce must be 12 bytes, got " + std::to_string(nonce.size()));
  }
  return OkStatus();
}

CryptoStatus CheckLength(size_t len) {
  if (static_cast<uint64_t>(len) > kSm4CtrHmacSm3MaxPlaintext) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "SM4-CTR-HMAC-SM3 message longer than 2^32-1 blocks");
  }
  return OkStatus();
}

// The algorithms, fetched from the provider once: an implicit fetch on every
// init (EVP_sm4_ctr(), "HMAC" by name) is a locked table lookup per frame.
const EVP_CIPHER* Sm4Ctr() {
  static const EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "SM4-CTR", nullptr);
  return cipher;
}
EVP_MAC* Hmac() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

}  // namespace

struct Sm4CtrHmacSm3Key::State {
  ossl::CipherCtxPtr ctr;  // SM4-CTR keyed with Ke; the IV is set per message
  MacCtxPtr mac;           // HMAC-SM3 keyed with Km; duplicated per message
};

Sm4CtrHmacSm3Key::Sm4CtrHmacSm3Key(std::unique_ptr<State> s) : s_(std::move(s)) {}
Sm4CtrHmacSm3Key::Sm4CtrHmacSm3Key(Sm4CtrHmacSm3Key&&) noexcept = default;
Sm4CtrHmacSm3Key& Sm4CtrHmacSm3Key::operator=(Sm4CtrHmacSm3Key&&) noexcept = default;
Sm4CtrHmacSm3Key::~Sm4CtrHmacSm3Key() = default;

CryptoResult<Sm4CtrHmacSm3Key> Sm4CtrHmacSm3Key::Create(ByteSpan key) {
  if (key.size() != kSm4CtrHmacSm3KeySize) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "SM4-CTR-HMAC-SM3 key must be 48 bytes, got " + std::to_string(key.size()));
  }
  const ByteSpan ke = key.first(kKeSize);
  const ByteSpan km = key.subspan(kKeSize, kKmSize);
  auto s = std::make_unique<State>();
  s->ctr.reset(EVP_CIPHER_CTX_new());
  if (Sm4Ctr() == nullptr || !s->ctr ||
      EVP_EncryptInit_ex(s->ctr.get(), Sm4Ctr(), nullptr, ke.data(), nullptr) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SM4-CTR init");
  }
  if (Hmac() == nullptr) return OpenSslError(CryptoErrc::kInternal, "HMAC unavailable");
  s->mac.reset(EVP_MAC_CTX_new(Hmac()));
  char digest[] = "SM3";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (!s->mac || EVP_MAC_init(s->mac.get(), km.data(), km.size(), params) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "HMAC-SM3 init");
  }
  return Sm4CtrHmacSm3Key(std::move(s));
}

// Ctr XORs the SM4-CTR keystream of (Ke, nonce ‖ 00000001) into `in`,
// writing len(in) bytes to `out`. Encryption and decryption are the same.
CryptoStatus Sm4CtrHmacSm3Key::Ctr(ByteSpan nonce, ByteSpan in, uint8_t* out) {
  std::array<uint8_t, kSm4BlockSize> iv{};
  std::copy(nonce.begin(), nonce.end(), iv.begin());
  iv[kSm4BlockSize - 1] = 1;  // the first counter value is 1 (GCM-like; 0 is unused)
  // A new IV restarts the keystream (the key schedule is kept).
  if (EVP_EncryptInit_ex(s_->ctr.get(), nullptr, nullptr, nullptr, iv.data()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SM4-CTR init");
  }
  size_t written = 0;
  int len = 0;
  for (size_t off = 0; off < in.size(); off += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, in.size() - off));
    if (EVP_EncryptUpdate(s_->ctr.get(), out + written, &len, in.data() + off, piece) != 1) {
      return OpenSslError(CryptoErrc::kInternal, "SM4-CTR update");
    }
    written += static_cast<size_t>(len);
  }
  if (EVP_EncryptFinal_ex(s_->ctr.get(), out + written, &len) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SM4-CTR final");
  }
  written += static_cast<size_t>(len);
  if (written != in.size()) return MakeError(CryptoErrc::kInternal, "SM4-CTR short output");
  return OkStatus();
}

// Tag computes HMAC-SM3(Km, I2OSP(len(aad), 8) ‖ aad ‖ nonce ‖ ct), streamed
// so a large ct is not copied, on a copy of the keyed context.
CryptoStatus Sm4CtrHmacSm3Key::Tag(ByteSpan aad, ByteSpan nonce, ByteSpan ct, uint8_t* out_tag) {
  MacCtxPtr ctx(EVP_MAC_CTX_dup(s_->mac.get()));
  if (!ctx) return OpenSslError(CryptoErrc::kInternal, "HMAC context");
  std::array<uint8_t, 8> aad_len{};
  uint64_t n = aad.size();
  for (size_t i = 0; i < aad_len.size(); ++i) {
    aad_len[aad_len.size() - 1 - i] = static_cast<uint8_t>(n >> (8 * i));
  }
  size_t out_len = 0;
  if (EVP_MAC_update(ctx.get(), aad_len.data(), aad_len.size()) != 1 ||
      EVP_MAC_update(ctx.get(), aad.data(), aad.size()) != 1 ||
      EVP_MAC_update(ctx.get(), nonce.data(), nonce.size()) != 1 ||
      EVP_MAC_update(ctx.get(), ct.data(), ct.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out_tag, &out_len, kSm4CtrHmacSm3TagSize) != 1 ||
      out_len != kSm4CtrHmacSm3TagSize) {
    return OpenSslError(CryptoErrc::kInternal, "HMAC-SM3");
  }
  return OkStatus();
}

CryptoResult<Bytes> Sm4CtrHmacSm3Key::Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) {
  CLLM_RETURN_IF_ERROR(CheckNonce(nonce));
  CLLM_RETURN_IF_ERROR(CheckLength(plaintext.size()));
  Bytes out(plaintext.size() + kSm4CtrHmacSm3TagSize);  // [ct | tag]
  CLLM_RETURN_IF_ERROR(Ctr(nonce, plaintext, out.data()));
  CLLM_RETURN_IF_ERROR(Tag(aad, nonce, ByteSpan(out.data(), plaintext.size()), out.data() + plaintext.size()));
  return out;
}

CryptoResult<SecretBytes> Sm4CtrHmacSm3Key::Open(ByteSpan nonce, ByteSpan aad, ByteSpan sealed) {
  CLLM_RETURN_IF_ERROR(CheckNonce(nonce));
  if (sealed.size() < kSm4CtrHmacSm3TagSize) {
    return MakeError(CryptoErrc::kInvalidArgument, "SM4-CTR-HMAC-SM3 input shorter than the tag");
  }
  size_t ct_len = sealed.size() - kSm4CtrHmacSm3TagSize;
  CLLM_RETURN_IF_ERROR(CheckLength(ct_len));
  ByteSpan ct = sealed.first(ct_len);
  ByteSpan received_tag = sealed.subspan(ct_len);

  // Encrypt-then-MAC: authenticate the ciphertext first, in constant time, and
  // decrypt nothing unless it is authentic.
  std::array<uint8_t, kSm4CtrHmacSm3TagSize> expected{};
  CLLM_RETURN_IF_ERROR(Tag(aad, nonce, ct, expected.data()));
  if (CRYPTO_memcmp(expected.data(), received_tag.data(), expected.size()) != 0) {
    return MakeError(CryptoErrc::kAuthFailed, "SM4-CTR-HMAC-SM3 authentication failed");
  }
  SecretBytes out(ct_len);
  CLLM_RETURN_IF_ERROR(Ctr(nonce, ct, out.data()));
  return out;
}

CryptoResult<Bytes> Sm4CtrHmacSm3Seal(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                      ByteSpan plaintext) {
  CLLM_ASSIGN_OR_RETURN(auto k, Sm4CtrHmacSm3Key::Create(key));
  return k.Seal(nonce, aad, plaintext);
}

CryptoResult<SecretBytes> Sm4CtrHmacSm3Open(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                            ByteSpan sealed) {
  CLLM_ASSIGN_OR_RETURN(auto k, Sm4CtrHmacSm3Key::Create(key));
  return k.Open(nonce, aad, sealed);
}

}  // namespace cllm::crypto
