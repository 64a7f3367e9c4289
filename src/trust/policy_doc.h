// policy_doc.h — reference values as cllm-trust stores them.
//
// A named policy document is
//
//   {"policy": { …attestation policy, docs/attestation.md… },
//    "replay": {"evidence_time": "2025-06-01T00:00:00Z"},     optional
//    "role": "server" | "client"}                              optional, default "server"
//
// "policy" is the same format clients use (platforms, measurements, TCB,
// binary_digests, model_digests, sim platform keys). "replay" switches the
// policy to replayed evidence: no nonce and no key binding, the evidence is
// verified at the fixed time given (archived evidence with its collateral),
// and the resulting tokens say "replay": true, which no key release accepts.
// It exists for benchmarks and audits of recorded evidence.
// "role": "client" makes it a policy for split-inference clients (mutual
// mode): its tokens carry "role": "client", which only keys whose release
// policy has "audience": "client" accept, and no other key does
// (release_policy.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "attestation/policy.h"
#include "base/result.h"
#include "base/time.h"

namespace cllm::trust {

struct PolicyDoc {
  attestation::Policy policy;
  std::optional<TimePoint> replay_evidence_time;
  bool client_role = false;
  std::string json;  // as stored
};

// ParsePolicyDoc validates untrusted JSON text (kParse with the reason).
Result<PolicyDoc> ParsePolicyDoc(std::string_view json_text);

// PolicyDocDigest is the hex SHA-256 of the document as stored: the version
// of the policy a token was appraised under (its "policy_digest" claim).
std::string PolicyDocDigest(const PolicyDoc& doc);

}  // namespace cllm::trust
