#include "trust/audit.h"

#include "base/encoding.h"
#include "base/secure.h"
#include "crypto/digest.h"

namespace cllm::trust {
namespace {

void PutBe(Bytes& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

Digest32 AuditHash(uint64_t seq, int64_t time, const std::string& kind, const std::string& body,
                   const Digest32& prev_hash) {
  static constexpr char kDomain[] = "cllm-audit-v1";
  Bytes m(kDomain, kDomain + sizeof(kDomain) - 1);
  PutBe(m, seq, 8);
  PutBe(m, static_cast<uint64_t>(time), 8);
  PutBe(m, kind.size(), 4);
  m.insert(m.end(), kind.begin(), kind.end());
  PutBe(m, body.size(), 4);
  m.insert(m.end(), body.begin(), body.end());
  m.insert(m.end(), prev_hash.begin(), prev_hash.end());
  return crypto::Sha256(m);
}

Bytes AuditSignedMessage(uint64_t seq, const Digest32& hash) {
  static constexpr char kDomain[] = "cllm-audit-head-v1";
  Bytes m(kDomain, kDomain + sizeof(kDomain) - 1);
  PutBe(m, seq, 8);
  m.insert(m.end(), hash.begin(), hash.end());
  return m;
}

Result<Bytes> SignAuditHead(const crypto::PrivateKey& key, uint64_t seq, const Digest32& hash) {
  auto sig = crypto::EcdsaSign(key, crypto::HashAlg::kSha256, AuditSignedMessage(seq, hash), crypto::SigFormat::kRaw);
  if (!sig.ok()) return MakeError(Errc::kCrypto, "audit signature: " + sig.detail());
  return std::move(sig).value();
}

Result<AuditHead> VerifyAuditChain(const std::vector<AuditEntry>& entries, const crypto::PublicKey* audit_key) {
  AuditHead head;
  for (const AuditEntry& e : entries) {
    const std::string where = "audit entry " + std::to_string(e.seq) + ": ";
    if (e.seq != head.seq + 1) {
      return MakeError(Errc::kCrypto, where + "expected seq " + std::to_string(head.seq + 1) +
                                          " (an entry was removed or reordered)");
    }
    if (!ConstantTimeEqual(e.prev_hash, head.hash)) {
      return MakeError(Errc::kCrypto, where + "prev_hash does not match the previous entry's hash");
    }
    Digest32 want = AuditHash(e.seq, e.time, e.kind, e.body, e.prev_hash);
    if (!ConstantTimeEqual(want, e.hash)) {
      return MakeError(Errc::kCrypto, where + "hash does not match its contents (the entry was altered)");
    }
    if (audit_key != nullptr) {
      // Once the log is signed every entry is: an unsigned entry after a
      // signed one was inserted or stripped by someone without the key.
      if (e.sig.empty() && head.signed_from != 0) {
        return MakeError(Errc::kCrypto, where + "unsigned entry after signed ones (signature stripped)");
      }
      if (!e.sig.empty()) {
        auto ok = crypto::EcdsaVerify(*audit_key, crypto::HashAlg::kSha256, AuditSignedMessage(e.seq, e.hash), e.sig,
                                      crypto::SigFormat::kRaw);
        if (!ok.ok()) {
          return MakeError(Errc::kCrypto, where + "signature does not verify under the audit key (the entry or an "
                                                  "earlier one was altered and the chain recomputed)");
        }
        if (head.signed_from == 0) head.signed_from = e.seq;
      }
    }
    head.seq = e.seq;
    head.hash = e.hash;
  }
  if (audit_key != nullptr && head.seq != 0 && (entries.empty() || entries.back().sig.empty())) {
    return MakeError(Errc::kCrypto, "audit entry " + std::to_string(head.seq) +
                                        ": the head is not signed (signatures stripped or the store never upgraded)");
  }
  return head;
}

}  // namespace cllm::trust
