// audit.h — cllm-trust's append-only, hash-chained audit log.
//
// Every attestation (accepted or refused), token issue, key release (granted
// or refused) and admin change appends one entry. Entries carry no secrets
// and no user data: digests, measurements, verdicts, key ids, token ids.
//
//   hash(seq) = SHA-256("cllm-audit-v1" ‖ u64be(seq) ‖ u64be(time) ‖
//                       u32be(len kind) ‖ kind ‖ u32be(len body) ‖ body ‖ hash(seq-1))
//
// with hash(0) = 32 zero bytes; seq starts at 1 and has no gaps. Changing,
// removing or reordering any entry breaks every later hash; dropping entries
// at the end is caught by comparing the head (seq, hash) with one recorded
// elsewhere (`cllm trust audit verify --expect-head`). docs/trust.md has the
// format.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace cllm::trust {

using Digest32 = std::array<uint8_t, 32>;

struct AuditEntry {
  uint64_t seq = 0;
  int64_t time = 0;      // Unix seconds
  std::string kind;      // "attest", "attest_refused", "key_release", "key_refused", "admin"
  std::string body;      // compact JSON
  Digest32 prev_hash{};
  Digest32 hash{};
};

Digest32 AuditHash(uint64_t seq, int64_t time, const std::string& kind, const std::string& body,
                   const Digest32& prev_hash);

struct AuditHead {
  uint64_t seq = 0;  // 0: empty log
  Digest32 hash{};
};

// VerifyAuditChain checks entries (in seq order, starting at seq 1) and
// returns the head; kCrypto with the first bad seq and why.
Result<AuditHead> VerifyAuditChain(const std::vector<AuditEntry>& entries);

}  // namespace cllm::trust
