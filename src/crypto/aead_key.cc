#include "crypto/aead_key.h"

#include <algorithm>
#include <optional>
#include <string>

#include "crypto/ossl.h"
#include "crypto/sm4_aead.h"

namespace cllm::crypto {
namespace {

// OpenSSL's update calls take int lengths: feed large buffers in pieces.
constexpr size_t kMaxPiece = size_t{1} << 30;
constexpr size_t kEvpNonceSize = 12, kEvpTagSize = 16;
// GCM: at most 2^32 - 2 blocks per (key, nonce) (NIST SP 800-38D).
constexpr uint64_t kGcmMaxPlaintext = ((uint64_t{1} << 32) - 2) * 16;

// The EVP AEADs, fetched from the provider once (an implicit fetch per init
// is a locked table lookup per message).
const EVP_CIPHER* Fetch(const char* name) { return EVP_CIPHER_fetch(nullptr, name, nullptr); }
const EVP_CIPHER* EvpCipher(hpke::Aead aead) {
  static const EVP_CIPHER* const aes128 = Fetch("AES-128-GCM");
  static const EVP_CIPHER* const aes256 = Fetch("AES-256-GCM");
  static const EVP_CIPHER* const chacha = Fetch("ChaCha20-Poly1305");
  switch (aead) {
    case hpke::Aead::kAes128Gcm: return aes128;
    case hpke::Aead::kAes256Gcm: return aes256;
    case hpke::Aead::kChaCha20Poly1305: return chacha;
    default: return nullptr;
  }
}

// Update runs EVP_CipherUpdate over `in` in pieces; `out` null feeds AAD.
bool Update(EVP_CIPHER_CTX* ctx, uint8_t* out, ByteSpan in) {
  for (size_t off = 0; off < in.size(); off += kMaxPiece) {
    const int piece = static_cast<int>(std::min(kMaxPiece, in.size() - off));
    int len = 0;
    if (EVP_CipherUpdate(ctx, out == nullptr ? nullptr : out + off, &len, in.data() + off, piece) != 1) return false;
  }
  return true;
}

}  // namespace

struct AeadKey::State {
  hpke::Aead aead{};
  // EVP AEADs: the cipher and key; one context per direction, keyed on first
  // use (a sealer never opens, an opener never seals).
  const EVP_CIPHER* cipher = nullptr;
  SecretBytes key;
  ossl::CipherCtxPtr seal, open;
  std::optional<Sm4CtrHmacSm3Key> sm4;

  // Keyed returns `ctx` set up for `nonce` in direction `enc`, keying it the
  // first time.
  EVP_CIPHER_CTX* Keyed(ossl::CipherCtxPtr& ctx, ByteSpan nonce, int enc) {
    if (!ctx) {
      ctx.reset(EVP_CIPHER_CTX_new());
      if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.data(), nullptr, enc) != 1) {
        ctx.reset();
        return nullptr;
      }
    }
    // A new nonce restarts the message; the key schedule is kept.
    if (EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, nullptr, nonce.data(), enc) != 1) return nullptr;
    return ctx.get();
  }
};

AeadKey::AeadKey(std::unique_ptr<State> s) : s_(std::move(s)) {}
AeadKey::AeadKey(AeadKey&&) noexcept = default;
AeadKey& AeadKey::operator=(AeadKey&&) noexcept = default;
AeadKey::~AeadKey() = default;

CryptoResult<AeadKey> AeadKey::Create(hpke::Aead aead, ByteSpan key) {
  auto s = std::make_unique<State>();
  s->aead = aead;
  if (aead == hpke::Aead::kSm4CtrHmacSm3) {
    CLLM_ASSIGN_OR_RETURN(auto k, Sm4CtrHmacSm3Key::Create(key));
    s->sm4.emplace(std::move(k));
    return AeadKey(std::move(s));
  }
  s->cipher = EvpCipher(aead);
  if (s->cipher == nullptr) {
    return MakeError(CryptoErrc::kUnsupported,
                     "AEAD id " + std::to_string(static_cast<unsigned>(aead)) + " has no message cipher");
  }
  const size_t n_k = static_cast<size_t>(EVP_CIPHER_get_key_length(s->cipher));
  if (key.size() != n_k) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "AEAD key must be " + std::to_string(n_k) + " bytes, got " + std::to_string(key.size()));
  }
  s->key = SecretBytes(key);
  return AeadKey(std::move(s));
}

size_t AeadKey::tag_size() const { return s_->sm4 ? kSm4CtrHmacSm3TagSize : kEvpTagSize; }

CryptoResult<Bytes> AeadKey::Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) {
  if (s_->sm4) return s_->sm4->Seal(nonce, aad, plaintext);
  if (nonce.size() != kEvpNonceSize) return MakeError(CryptoErrc::kInvalidArgument, "AEAD nonce must be 12 bytes");
  if (s_->aead != hpke::Aead::kChaCha20Poly1305 && plaintext.size() > kGcmMaxPlaintext) {
    return MakeError(CryptoErrc::kInvalidArgument, "AES-GCM message too long");
  }
  EVP_CIPHER_CTX* ctx = s_->Keyed(s_->seal, nonce, 1);
  Bytes out(plaintext.size() + kEvpTagSize);
  int len = 0;
  if (ctx == nullptr || !Update(ctx, nullptr, aad) || !Update(ctx, out.data(), plaintext) ||
      EVP_CipherFinal_ex(ctx, out.data() + plaintext.size(), &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kEvpTagSize), out.data() + plaintext.size()) !=
          1) {
    return OpenSslError(CryptoErrc::kInternal, "AEAD seal");
  }
  return out;
}

CryptoResult<SecretBytes> AeadKey::Open(ByteSpan nonce, ByteSpan aad, ByteSpan sealed) {
  if (s_->sm4) {
    // One error code for every forgery, short ones included.
    if (sealed.size() < kSm4CtrHmacSm3TagSize) return MakeError(CryptoErrc::kAuthFailed, "AEAD input shorter than the tag");
    return s_->sm4->Open(nonce, aad, sealed);
  }
  if (nonce.size() != kEvpNonceSize) return MakeError(CryptoErrc::kInvalidArgument, "AEAD nonce must be 12 bytes");
  if (sealed.size() < kEvpTagSize) return MakeError(CryptoErrc::kAuthFailed, "AEAD input shorter than the tag");
  const ByteSpan ct = sealed.first(sealed.size() - kEvpTagSize);
  const ByteSpan tag = sealed.last(kEvpTagSize);
  EVP_CIPHER_CTX* ctx = s_->Keyed(s_->open, nonce, 0);
  if (ctx == nullptr) return OpenSslError(CryptoErrc::kInternal, "AEAD init");
  SecretBytes pt(ct.size());
  int len = 0;
  if (!Update(ctx, nullptr, aad) || !Update(ctx, pt.data(), ct) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kEvpTagSize), const_cast<uint8_t*>(tag.data())) !=
          1 ||
      EVP_CipherFinal_ex(ctx, pt.data() + ct.size(), &len) != 1) {
    ERR_clear_error();
    return MakeError(CryptoErrc::kAuthFailed, "AEAD authentication failed");  // pt is zeroed on return
  }
  return pt;
}

}  // namespace cllm::crypto
