// audit.h — cllm-trust's append-only, hash-chained, signed audit log.
//
// Every attestation (accepted or refused), token issue, key release (granted
// or refused) and admin change appends one entry. Entries carry no secrets
// and no user data: digests, measurements, verdicts, key ids, token ids.
//
//   hash(seq) = SHA-256("cllm-audit-v1" ‖ u64be(seq) ‖ u64be(time) ‖
//                       u32be(len kind) ‖ kind ‖ u32be(len body) ‖ body ‖ hash(seq-1))
//   sig(seq)  = ECDSA-P256-SHA256(audit key, "cllm-audit-head-v1" ‖ u64be(seq) ‖ hash(seq)), raw r ‖ s
//
// with hash(0) = 32 zero bytes; seq starts at 1 and has no gaps. The hash
// chain alone is unkeyed: someone who can write the database can edit an
// entry and recompute every later hash. The signature is what stops that:
// every entry signs the head it creates with the service's audit key, whose
// private half is sealed under the master key (store.h), so a recomputed
// chain no longer matches its signatures. Dropping entries at the end (or
// restoring an older copy of the file) is caught only by comparing the head
// with one recorded elsewhere (`cllm trust audit verify --expect-head`).
// Stores upgraded from schema 1 have unsigned entries before the signed
// "store_upgrade" entry; the signatures after it cover them through the chain.
// docs/trust.md has the format.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/keys.h"

namespace cllm::trust {

using Digest32 = std::array<uint8_t, 32>;

struct AuditEntry {
  uint64_t seq = 0;
  int64_t time = 0;      // Unix seconds
  std::string kind;      // "attest", "attest_refused", "key_release", "key_refused", "admin", …
  std::string body;      // compact JSON
  Digest32 prev_hash{};
  Digest32 hash{};
  Bytes sig;             // 64 bytes; empty only for entries written before schema 2
};

Digest32 AuditHash(uint64_t seq, int64_t time, const std::string& kind, const std::string& body,
                   const Digest32& prev_hash);

// AuditSignedMessage is what sig(seq) signs.
Bytes AuditSignedMessage(uint64_t seq, const Digest32& hash);
// SignAuditHead signs (seq, hash) with the audit key (raw r ‖ s).
Result<Bytes> SignAuditHead(const crypto::PrivateKey& key, uint64_t seq, const Digest32& hash);

struct AuditHead {
  uint64_t seq = 0;  // 0: empty log
  Digest32 hash{};
  uint64_t signed_from = 0;  // first signed seq (0: none signed)
};

// VerifyAuditChain checks entries (in seq order, starting at seq 1) and
// returns the head; kCrypto with the first bad seq and why. With
// `audit_key`, every signature must verify, no unsigned entry may follow a
// signed one and the head must be signed; without it only the chain is
// checked (which someone able to write the store can recompute).
Result<AuditHead> VerifyAuditChain(const std::vector<AuditEntry>& entries,
                                   const crypto::PublicKey* audit_key = nullptr);

}  // namespace cllm::trust
