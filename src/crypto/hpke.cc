// hpke.cc — RFC 9180 §5 (key schedule, contexts, export), §7.2/§7.3 (KDF and
// AEAD tables) and the named cllm suites. The KEM is in hpke_kem.cc.
#include "crypto/hpke.h"

#include <algorithm>
#include <array>
#include <limits>

#include "crypto/aead_key.h"
#include "crypto/hpke_internal.h"
#include "crypto/sm4_aead.h"

namespace cllm::crypto::hpke {
namespace {

// ---------------------------------------------------------------------------
// AEADs (§7.3)
// ---------------------------------------------------------------------------

struct AeadInfo {
  Aead aead;
  size_t n_k, n_n, n_t;
};

constexpr std::array<AeadInfo, 5> kAeads = {{
    {Aead::kAes128Gcm, 16, 12, 16},
    {Aead::kAes256Gcm, 32, 12, 16},
    {Aead::kChaCha20Poly1305, 32, 12, 16},
    {Aead::kSm4CtrHmacSm3, kSm4CtrHmacSm3KeySize, kSm4CtrHmacSm3NonceSize, kSm4CtrHmacSm3TagSize},
    {Aead::kExportOnly, 0, 0, 0},
}};

CryptoResult<const AeadInfo*> FindAead(Aead aead) {
  for (const AeadInfo& a : kAeads) {
    if (a.aead == aead) return &a;
  }
  return MakeError(
      CryptoErrc::kUnsupported,
      "HPKE AEAD id " + std::to_string(static_cast<unsigned>(aead)) + " not supported");
}

// HpkeSuiteId = "HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖ I2OSP(aead_id, 2) (§5.1).
Bytes HpkeSuiteId(Suite s) {
  Bytes id = ToBytes("HPKE");
  internal::AppendU16(id, static_cast<uint16_t>(s.kem));
  internal::AppendU16(id, static_cast<uint16_t>(s.kdf));
  internal::AppendU16(id, static_cast<uint16_t>(s.aead));
  return id;
}

bool HasPsk(Mode m) { return m == Mode::kPsk || m == Mode::kAuthPsk; }
bool HasAuth(Mode m) { return m == Mode::kAuth || m == Mode::kAuthPsk; }

// VerifyInputs: §5.1 VerifyPSKInputs, plus the Auth key present exactly in
// the Auth modes. psk length: §9.5 asks for 32 bytes of entropy.
CryptoStatus VerifyInputs(Mode mode, ByteSpan psk, ByteSpan psk_id, ByteSpan auth_key) {
  if (mode != Mode::kBase && mode != Mode::kPsk && mode != Mode::kAuth && mode != Mode::kAuthPsk) {
    return MakeError(CryptoErrc::kInvalidArgument, "unknown HPKE mode");
  }
  if (psk.empty() != psk_id.empty()) {
    return MakeError(CryptoErrc::kInvalidArgument, "HPKE psk and psk_id must come together");
  }
  if (HasPsk(mode) == psk.empty()) {
    return MakeError(CryptoErrc::kInvalidArgument, HasPsk(mode)
                                                       ? "HPKE PSK mode without a psk"
                                                       : "HPKE psk given in a non-PSK mode");
  }
  if (!psk.empty() && psk.size() < 32) {
    return MakeError(CryptoErrc::kInvalidArgument, "HPKE psk shorter than 32 bytes");
  }
  if (HasAuth(mode) == auth_key.empty()) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     HasAuth(mode) ? "HPKE Auth mode without the sender key"
                                   : "HPKE sender key given in a non-Auth mode");
  }
  return OkStatus();
}

}  // namespace

namespace internal {
CryptoResult<HashAlg> KdfHash(Kdf kdf) {
  switch (kdf) {
    case Kdf::kHkdfSha256:
      return HashAlg::kSha256;
    case Kdf::kHkdfSm3:
      return HashAlg::kSm3;
  }
  return MakeError(CryptoErrc::kUnsupported,
                   "HPKE KDF id " + std::to_string(static_cast<unsigned>(kdf)) + " not supported");
}
}  // namespace internal

// ---------------------------------------------------------------------------
// Suites
// ---------------------------------------------------------------------------

CryptoResult<Sizes> SuiteSizes(Suite s) {
  CLLM_ASSIGN_OR_RETURN(const internal::KemInfo* k, internal::FindKem(s.kem));
  CLLM_ASSIGN_OR_RETURN(HashAlg hash, internal::KdfHash(s.kdf));
  CLLM_ASSIGN_OR_RETURN(const AeadInfo* a, FindAead(s.aead));
  return Sizes{k->n_enc, k->n_pk, k->n_sk, a->n_k, a->n_n, a->n_t, DigestSize(hash)};
}

CryptoResult<Suite> ParseSuite(std::string_view name) {
  if (name == "x25519") return kSuiteX25519;
  if (name == "gmt") return kSuiteGmt;
  return MakeError(CryptoErrc::kUnsupported, "unknown HPKE suite name (want x25519 or gmt)");
}

const char* SuiteName(Suite s) {
  if (s == kSuiteX25519) return "x25519";
  if (s == kSuiteGmt) return "gmt";
  return "custom";
}

// ---------------------------------------------------------------------------
// Key schedule (§5.1)
// ---------------------------------------------------------------------------

struct ContextBuilder {
  static CryptoResult<Context> KeySchedule(Context::Role role, Mode mode, Suite s,
                                           ByteSpan shared_secret, ByteSpan info, ByteSpan psk,
                                           ByteSpan psk_id) {
    CLLM_ASSIGN_OR_RETURN(Sizes sizes, SuiteSizes(s));
    CLLM_ASSIGN_OR_RETURN(HashAlg hash, internal::KdfHash(s.kdf));
    const Bytes suite_id = HpkeSuiteId(s);

    SecretBytes psk_id_hash = internal::LabeledExtract(hash, suite_id, {}, "psk_id_hash", psk_id);
    SecretBytes info_hash = internal::LabeledExtract(hash, suite_id, {}, "info_hash", info);
    // key_schedule_context = mode ‖ psk_id_hash ‖ info_hash
    Bytes ksc;
    ksc.reserve(1 + psk_id_hash.size() + info_hash.size());
    ksc.push_back(static_cast<uint8_t>(mode));
    ksc.insert(ksc.end(), psk_id_hash.span().begin(), psk_id_hash.span().end());
    ksc.insert(ksc.end(), info_hash.span().begin(), info_hash.span().end());

    SecretBytes secret = internal::LabeledExtract(hash, suite_id, shared_secret, "secret", psk);
    Context ctx;
    ctx.suite_ = s;
    ctx.role_ = role;
    if (sizes.n_k > 0) {  // no key or nonce for the export-only AEAD
      CLLM_ASSIGN_OR_RETURN(
          ctx.key_, internal::LabeledExpand(hash, suite_id, secret.span(), "key", ksc, sizes.n_k));
      CLLM_ASSIGN_OR_RETURN(ctx.base_nonce_, internal::LabeledExpand(hash, suite_id, secret.span(),
                                                                     "base_nonce", ksc, sizes.n_n));
      // The AEAD's key schedule once per context, not per message.
      CLLM_ASSIGN_OR_RETURN(AeadKey aead_key, AeadKey::Create(s.aead, ctx.key_.span()));
      ctx.aead_ = std::make_unique<AeadKey>(std::move(aead_key));
    }
    CLLM_ASSIGN_OR_RETURN(
        ctx.exporter_secret_,
        internal::LabeledExpand(hash, suite_id, secret.span(), "exp", ksc, sizes.n_h));
    return ctx;
  }
};

// ---------------------------------------------------------------------------
// Context (§5.2, §5.3)
// ---------------------------------------------------------------------------

Context::Context() = default;
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;
Context::~Context() = default;

Bytes Context::Nonce() const {
  Bytes nonce(base_nonce_.span().begin(), base_nonce_.span().end());
  // XOR I2OSP(seq, Nn): the sequence number into the last 8 bytes (Nn >= 8).
  for (size_t i = 0; i < 8 && i < nonce.size(); ++i) {
    nonce[nonce.size() - 1 - i] ^= static_cast<uint8_t>(seq_ >> (8 * i));
  }
  return nonce;
}

CryptoStatus Context::CheckSeq() const {
  // §5.2: seq must stay below 2^(8*Nn) - 1; our uint64_t counter is the
  // tighter bound for every Nn >= 8.
  uint64_t limit = std::numeric_limits<uint64_t>::max();
  if (base_nonce_.size() < 8) limit = (uint64_t{1} << (8 * base_nonce_.size())) - 1;
  if (seq_ >= limit) {
    return MakeError(CryptoErrc::kInvalidArgument, "HPKE message limit reached (sequence number)");
  }
  return OkStatus();
}

CryptoResult<Bytes> Context::Seal(ByteSpan aad, ByteSpan pt) {
  if (role_ != Role::kSender) {
    return MakeError(CryptoErrc::kInvalidArgument, "HPKE Seal on a recipient context");
  }
  if (!aead_) return MakeError(CryptoErrc::kUnsupported, "HPKE export-only suite cannot Seal");
  CLLM_RETURN_IF_ERROR(CheckSeq());
  CLLM_ASSIGN_OR_RETURN(Bytes ct, aead_->Seal(Nonce(), aad, pt));
  ++seq_;
  return ct;
}

CryptoResult<SecretBytes> Context::Open(ByteSpan aad, ByteSpan ct) {
  if (role_ != Role::kRecipient) {
    return MakeError(CryptoErrc::kInvalidArgument, "HPKE Open on a sender context");
  }
  if (!aead_) return MakeError(CryptoErrc::kUnsupported, "HPKE export-only suite cannot Open");
  CLLM_RETURN_IF_ERROR(CheckSeq());
  CLLM_ASSIGN_OR_RETURN(SecretBytes pt, aead_->Open(Nonce(), aad, ct));
  ++seq_;
  return pt;
}

CryptoResult<SecretBytes> Context::Export(ByteSpan exporter_context, size_t len) const {
  CLLM_ASSIGN_OR_RETURN(HashAlg hash, internal::KdfHash(suite_.kdf));
  return internal::LabeledExpand(hash, HpkeSuiteId(suite_), exporter_secret_.span(), "sec",
                                 exporter_context, len);
}

// ---------------------------------------------------------------------------
// Setup (§5.1.1 – §5.1.4)
// ---------------------------------------------------------------------------

CryptoResult<SenderSetup> SetupS(Mode mode, Suite s, ByteSpan pkR, ByteSpan info, ByteSpan psk,
                                 ByteSpan psk_id, ByteSpan skS, std::optional<ByteSpan> ikm_e) {
  CLLM_RETURN_IF_ERROR(SuiteSizes(s));
  CLLM_RETURN_IF_ERROR(VerifyInputs(mode, psk, psk_id, skS));
  CLLM_ASSIGN_OR_RETURN(Encapsulation encap, HasAuth(mode) ? AuthEncap(s.kem, pkR, skS, ikm_e)
                                                           : Encap(s.kem, pkR, ikm_e));
  CLLM_ASSIGN_OR_RETURN(Context ctx,
                        ContextBuilder::KeySchedule(Context::Role::kSender, mode, s,
                                                    encap.shared_secret.span(), info, psk, psk_id));
  return SenderSetup{std::move(encap.enc), std::move(ctx)};
}

namespace {
CryptoResult<Context> SetupRWith(Mode mode, Suite s, ByteSpan enc, RecipientKey kR, ByteSpan info, ByteSpan psk,
                                 ByteSpan psk_id, ByteSpan pkS) {
  CLLM_RETURN_IF_ERROR(SuiteSizes(s));
  CLLM_RETURN_IF_ERROR(VerifyInputs(mode, psk, psk_id, pkS));
  CLLM_ASSIGN_OR_RETURN(SecretBytes shared_secret,
                        internal::DecapWith(s.kem, enc, kR.sk, kR.pk, pkS, HasAuth(mode)));
  return ContextBuilder::KeySchedule(Context::Role::kRecipient, mode, s, shared_secret.span(), info,
                                     psk, psk_id);
}
}  // namespace

CryptoResult<Context> SetupR(Mode mode, Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info,
                             ByteSpan psk, ByteSpan psk_id, ByteSpan pkS) {
  return SetupRWith(mode, s, enc, RecipientKey{skR, {}}, info, psk, psk_id, pkS);
}
CryptoResult<Context> SetupBaseR(Suite s, ByteSpan enc, RecipientKey kR, ByteSpan info) {
  return SetupRWith(Mode::kBase, s, enc, kR, info, {}, {}, {});
}
CryptoResult<Context> SetupAuthR(Suite s, ByteSpan enc, RecipientKey kR, ByteSpan info, ByteSpan pkS) {
  return SetupRWith(Mode::kAuth, s, enc, kR, info, {}, {}, pkS);
}

CryptoResult<SenderSetup> SetupBaseS(Suite s, ByteSpan pkR, ByteSpan info) {
  return SetupS(Mode::kBase, s, pkR, info, {}, {}, {});
}
CryptoResult<Context> SetupBaseR(Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info) {
  return SetupR(Mode::kBase, s, enc, skR, info, {}, {}, {});
}
CryptoResult<SenderSetup> SetupPskS(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan psk,
                                    ByteSpan psk_id) {
  return SetupS(Mode::kPsk, s, pkR, info, psk, psk_id, {});
}
CryptoResult<Context> SetupPskR(Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info, ByteSpan psk,
                                ByteSpan psk_id) {
  return SetupR(Mode::kPsk, s, enc, skR, info, psk, psk_id, {});
}
CryptoResult<SenderSetup> SetupAuthS(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan skS) {
  return SetupS(Mode::kAuth, s, pkR, info, {}, {}, skS);
}
CryptoResult<Context> SetupAuthR(Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info, ByteSpan pkS) {
  return SetupR(Mode::kAuth, s, enc, skR, info, {}, {}, pkS);
}
CryptoResult<SenderSetup> SetupAuthPskS(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan psk,
                                        ByteSpan psk_id, ByteSpan skS) {
  return SetupS(Mode::kAuthPsk, s, pkR, info, psk, psk_id, skS);
}
CryptoResult<Context> SetupAuthPskR(Suite s, ByteSpan enc, ByteSpan skR, ByteSpan info,
                                    ByteSpan psk, ByteSpan psk_id, ByteSpan pkS) {
  return SetupR(Mode::kAuthPsk, s, enc, skR, info, psk, psk_id, pkS);
}
CryptoResult<SenderSetup> SetupBaseSWithIkmE(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan ikm_e) {
  return SetupS(Mode::kBase, s, pkR, info, {}, {}, {}, ikm_e);
}
CryptoResult<SenderSetup> SetupAuthSWithIkmE(Suite s, ByteSpan pkR, ByteSpan info, ByteSpan skS,
                                             ByteSpan ikm_e) {
  return SetupS(Mode::kAuth, s, pkR, info, {}, {}, skS, ikm_e);
}

}  // namespace cllm::crypto::hpke
