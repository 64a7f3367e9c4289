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

Result<AuditHead> VerifyAuditChain(const std::vector<AuditEntry>& entries) {
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
    head.seq = e.seq;
    head.hash = e.hash;
  }
  return head;
}

}  // namespace cllm::trust
