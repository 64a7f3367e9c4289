#include "channel/e2e_response.h"

#include <nlohmann/json.hpp>

#include "base/byte_reader.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "crypto/sm4_aead.h"

namespace cllm::channel::e2e {
namespace {

constexpr uint32_t kFinalBit = 0x80000000u;

// The suite's primitives, used directly for the response frames (the request
// context only provides the exported secret).
struct Primitives {
  crypto::HashAlg hash;
  hpke::Aead aead;
  size_t n_k, n_n, n_t;
};

E2eResult<Primitives> PrimitivesOf(hpke::Suite s) {
  Primitives p{};
  switch (s.kdf) {
    case hpke::Kdf::kHkdfSha256: p.hash = crypto::HashAlg::kSha256; break;
    case hpke::Kdf::kHkdfSm3: p.hash = crypto::HashAlg::kSm3; break;
    default: return MakeError(E2eErrc::kUnsupported, "response: unknown KDF");
  }
  p.aead = s.aead;
  switch (s.aead) {
    case hpke::Aead::kAes256Gcm:
      p.n_k = crypto::kAes256KeySize, p.n_n = crypto::kGcmNonceSize, p.n_t = crypto::kGcmTagSize;
      break;
    case hpke::Aead::kSm4CtrHmacSm3:
      p.n_k = crypto::kSm4CtrHmacSm3KeySize, p.n_n = crypto::kSm4CtrHmacSm3NonceSize,
      p.n_t = crypto::kSm4CtrHmacSm3TagSize;
      break;
    default: return MakeError(E2eErrc::kUnsupported, "response: unknown AEAD");
  }
  return p;
}

// DeriveKeys: prk = Extract(enc ‖ response_nonce, secret); key = Expand(prk,
// "key", Nk); base = Expand(prk, "nonce", Nn) — crypto::Hkdf is exactly
// Expand(Extract(salt, ikm), info, L).
E2eStatus DeriveKeys(const ResponseSecret& s, const Primitives& p, ByteSpan response_nonce,
                     std::optional<crypto::AeadKey>* out_key, Bytes* out_base) {
  Bytes salt = s.enc;
  salt.insert(salt.end(), response_nonce.begin(), response_nonce.end());
  auto key = crypto::Hkdf(p.hash, s.secret.span(), salt, AsBytes("key"), p.n_k);
  auto base = crypto::Hkdf(p.hash, s.secret.span(), salt, AsBytes("nonce"), p.n_n);
  if (!key.ok() || !base.ok()) return MakeError(E2eErrc::kInternal, "response key derivation failed");
  auto aead_key = crypto::AeadKey::Create(p.aead, key->span());
  if (!aead_key.ok()) return MakeError(E2eErrc::kInternal, "response key: " + aead_key.detail());
  out_key->emplace(std::move(aead_key).value());
  out_base->assign(base->span().begin(), base->span().end());
  return OkStatus();
}

// nonce_i = base XOR I2OSP(i, Nn); aad_i = I2OSP(final, 1) ‖ I2OSP(i, 8).
Bytes FrameNonce(const Bytes& base, uint64_t i) {
  Bytes n = base;
  for (size_t k = 0; k < 8 && k < n.size(); ++k) n[n.size() - 1 - k] ^= static_cast<uint8_t>(i >> (8 * k));
  return n;
}
Bytes FrameAad(bool final, uint64_t i) {
  Bytes aad{static_cast<uint8_t>(final ? 1 : 0)};
  PutU64Be(aad, i);
  return aad;
}

}  // namespace

// ---------------------------------------------------------------------------
// Head
// ---------------------------------------------------------------------------

std::string EncodeResponseHead(const ResponseHead& head) {
  nlohmann::json j = {{"status", head.status}, {"content_type", head.content_type}};
  if (!head.headers.empty()) {
    nlohmann::json h = nlohmann::json::object();
    for (const auto& [k, v] : head.headers) h[k] = v;
    j["headers"] = std::move(h);
  }
  return j.dump();
}

E2eResult<ResponseHead> ParseResponseHead(std::string_view text) {
  auto fail = [] { return MakeError(E2eErrc::kMalformed, "response head is not {status, content_type}"); };
  if (text.size() > kMaxHeadSize) return MakeError(E2eErrc::kOversized, "response head over 16 KiB");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return fail();
  auto status = j.find("status");
  auto ct = j.find("content_type");
  if (status == j.end() || !status->is_number_integer() || ct == j.end() || !ct->is_string()) return fail();
  ResponseHead head;
  const int64_t s = status->get<int64_t>();
  if (s < 100 || s > 599) return fail();
  head.status = static_cast<int>(s);
  head.content_type = ct->get<std::string>();
  if (auto h = j.find("headers"); h != j.end()) {
    if (!h->is_object()) return fail();
    for (const auto& [k, v] : h->items()) {
      if (!v.is_string()) return fail();
      head.headers.emplace_back(k, v.get<std::string>());
    }
  }
  return head;
}

// ---------------------------------------------------------------------------
// Sealer
// ---------------------------------------------------------------------------

E2eResult<ResponseSealer> ResponseSealer::Create(const ResponseSecret& secret) {
  return CreateWithNonce(secret, crypto::RandomBytes(kResponseNonceSize));
}

E2eResult<ResponseSealer> ResponseSealer::CreateWithNonce(const ResponseSecret& secret, ByteSpan response_nonce) {
  if (response_nonce.size() != kResponseNonceSize) return MakeError(E2eErrc::kInternal, "response nonce size");
  CLLM_ASSIGN_OR_RETURN(Primitives p, PrimitivesOf(secret.suite));
  ResponseSealer s;
  s.response_nonce_.assign(response_nonce.begin(), response_nonce.end());
  CLLM_RETURN_IF_ERROR(DeriveKeys(secret, p, response_nonce, &s.key_, &s.base_nonce_));
  return s;
}

E2eResult<Bytes> ResponseSealer::Seal(ByteSpan plaintext, bool final) {
  if (finished_) return MakeError(E2eErrc::kMalformed, "the final frame was sealed already");
  if (plaintext.size() > kMaxFramePlaintext) return MakeError(E2eErrc::kOversized, "frame over 1 MiB");
  const Bytes nonce = FrameNonce(base_nonce_, next_);
  const Bytes aad = FrameAad(final, next_);
  auto ct = key_->Seal(nonce, aad, plaintext);
  if (!ct.ok()) return MakeError(E2eErrc::kInternal, "frame seal: " + ct.detail());
  Bytes out;
  if (!started_) out = response_nonce_;
  PutU32Be(out, static_cast<uint32_t>(ct->size()) | (final ? kFinalBit : 0));
  out.insert(out.end(), ct->begin(), ct->end());
  started_ = true;
  finished_ = final;
  ++next_;
  return out;
}

// ---------------------------------------------------------------------------
// Opener
// ---------------------------------------------------------------------------

E2eResult<ResponseOpener> ResponseOpener::Create(const ResponseSecret& secret) {
  CLLM_ASSIGN_OR_RETURN(Primitives p, PrimitivesOf(secret.suite));
  ResponseOpener o;
  o.secret_.suite = secret.suite;
  o.secret_.enc = secret.enc;
  o.secret_.secret = secret.secret.Clone();
  o.n_t_ = p.n_t;
  return o;
}

E2eStatus ResponseOpener::Fail(E2eErrc code, std::string detail) {
  error_ = Error<E2eErrc>{code, detail};
  pending_.clear();
  return MakeError(code, std::move(detail));
}

E2eResult<std::vector<ResponseFrame>> ResponseOpener::Feed(ByteSpan bytes) {
  if (error_) return *error_;
  std::vector<ResponseFrame> frames;
  if (finished_) {
    if (bytes.empty()) return frames;
    return Fail(E2eErrc::kMalformed, "bytes after the final frame").error();
  }
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  size_t pos = 0;
  if (!have_nonce_) {
    if (pending_.size() < kResponseNonceSize) return frames;
    CLLM_ASSIGN_OR_RETURN(Primitives p, PrimitivesOf(secret_.suite));
    auto derived = DeriveKeys(secret_, p, ByteSpan(pending_.data(), kResponseNonceSize), &key_, &base_nonce_);
    if (!derived.ok()) return Fail(derived.code(), derived.detail()).error();
    secret_.secret.clear();
    have_nonce_ = true;
    pos = kResponseNonceSize;
  }
  while (pending_.size() - pos >= kFrameHeaderSize) {
    if (finished_) return Fail(E2eErrc::kMalformed, "bytes after the final frame").error();
    ByteReader r(ByteSpan(pending_).subspan(pos));
    const uint32_t word = r.U32Be().value();
    const bool final = (word & kFinalBit) != 0;
    const size_t len = word & ~kFinalBit;
    if (len > kMaxFramePlaintext + n_t_) return Fail(E2eErrc::kOversized, "frame over 1 MiB").error();
    if (len < n_t_) return Fail(E2eErrc::kMalformed, "frame shorter than its tag").error();
    if (r.remaining() < len) break;  // wait for the rest of this frame
    if (final && next_ == 0) return Fail(E2eErrc::kMalformed, "the head frame cannot be final").error();
    const ByteSpan ct = r.Bytes(len).value();
    const Bytes nonce = FrameNonce(base_nonce_, next_);
    const Bytes aad = FrameAad(final, next_);
    auto pt = key_->Open(nonce, aad, ct);
    if (!pt.ok()) {
      return Fail(E2eErrc::kDecryptFailed,
                  "frame " + std::to_string(next_) + " does not open (altered, reordered, dropped or duplicated)")
          .error();
    }
    frames.push_back(ResponseFrame{next_, final, std::move(pt).value()});
    ++next_;
    finished_ = final;
    pos += kFrameHeaderSize + len;
  }
  if (finished_ && pos < pending_.size()) return Fail(E2eErrc::kMalformed, "bytes after the final frame").error();
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(pos));
  return frames;
}

E2eStatus ResponseOpener::Finish() {
  if (error_) return *error_;
  if (!finished_) return Fail(E2eErrc::kTruncated, "the response ended without its final frame");
  return OkStatus();
}

}  // namespace cllm::channel::e2e
