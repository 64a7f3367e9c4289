// release_policy.h — when the key broker may release a model key.
//
// Each registered model key has a release policy, evaluated against a
// verified cllm-trust token (token_claims.h):
//
//   {"model_digests":  ["<hex SHA-256>", …],   required, non-empty
//    "policies":       ["prod", …],            attestation policies whose tokens count; default ["default"]
//    "binary_digests": ["<hex>", …],           optional: any binary when absent
//    "measurements":   ["<hex>", …],           optional: any launch measurement when absent
//    "platforms":      ["snp", "tdx", …],      optional: every real platform when absent
//    "tcb_statuses":   ["UpToDate", …],        default ["UpToDate"] (sim: "NotApplicable" is implied)
//    "min_tcb":        {"snp.microcode": 115}, optional TCB floor per component
//    "allow_debug":    false,                  a debuggable TEE only when true
//    "allow_simulated": false,                 the simulated TEE only when true
//    "chat_template_digests": ["<hex>", …],    host-supplied chat templates (cllm-server
//                                              --chat-template) a node may serve with; default
//                                              none: only the model's own template
//    "allow_untrusted_disk_model": false,      nodes that map the model from the host's disk
//                                              (--mmap-untrusted-disk) only when true
//    "allow_unlocked_memory": false,           nodes whose memory is not locked
//                                              (--allow-unlocked-memory) only when true
//    "allow_debug_listener": false,            nodes that also serve plain HTTP
//                                              (--debug-listen) only when true
//    "allow_metrics_keys": false,              nodes that give /metrics to key holders
//                                              (--metrics-keys) only when true
//    "metrics_readers": ["<hex>", …],          or only when each key they name is listed
//                                              (SHA-256 of the key); not with allow_metrics_keys
//    "audience":       "server"}               "server" (default) or "client", below
//
// Audience. A "server" key (a model key, a fleet key) goes to nodes; a
// "client" key (a split-inference client's embedding table, `cllm model seal
// --part embeddings`) goes to clients. A token is a client's when the
// attestation policy it was minted under says "role": "client"
// (policy_doc.h); cllm-trust then signs "role": "client" into it. A client
// token never gets a server key, and a client key goes only to client tokens,
// so the full model's key stays with servers even when a release policy names
// a policy both kinds of party can satisfy.
//
// Who chooses the attestation policy: the node names one in POST /v1/attest,
// but a key is released only to tokens minted under a policy its release
// policy lists, so a requester picking a weaker policy ("dev") gets a token
// and no key. Independently of what that policy said, the broker appraises
// the token's claims itself with attestation::Appraise (platforms, debug,
// TCB status, TCB floor, measurements): the same code clients use on local
// evidence. Unknown members are an error (a typo must not widen a release).
// Tokens minted from replayed evidence (no fresh binding) never get a key.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "attestation/appraisal_input.h"
#include "attestation/policy.h"
#include "base/result.h"

namespace cllm::trust {

// The token claim and value that mark a client (attest.cc, CheckRelease).
inline constexpr char kRoleClaim[] = "role";
inline constexpr char kClientRole[] = "client";

struct ReleasePolicy {
  std::set<std::string> model_digests;  // lower-case hex
  std::set<std::string> binary_digests;
  std::set<std::string> measurements;
  std::set<std::string> platforms;
  std::set<std::string> tcb_statuses = {"UpToDate"};
  std::set<std::string> policies = {"default"};
  std::map<std::string, uint64_t> min_tcb;
  bool allow_debug = false;
  bool allow_simulated = false;
  bool client_audience = false;  // "audience": "client"
  std::set<std::string> chat_template_digests;  // lower-case hex; the token's "chat_template_digest"
  bool allow_untrusted_disk_model = false;      // the token's "model_from_untrusted_disk"
  bool allow_unlocked_memory = false;           // the token's "memory_unlocked"
  bool allow_debug_listener = false;            // the token's "debug_listener"
  bool allow_metrics_keys = false;              // any "metrics_readers" in the token
  std::set<std::string> metrics_readers;        // lower-case hex; or each of the token's "metrics_readers" listed
  uint32_t min_stream_pad = 512;                // the token's "stream_pad" (absent: 512) at least this
  uint32_t min_stream_coalesce_ms = 0;          // the token's "stream_coalesce_ms" (absent: 0) at least this

  nlohmann::json ToJson() const;
  // AttestationPolicy is the appraisal part as an attestation policy (every
  // allowed platform gets the same measurements and floor).
  attestation::Policy AttestationPolicy() const;
};

// ParseReleasePolicy validates untrusted JSON (kParse naming the member).
Result<ReleasePolicy> ParseReleasePolicy(const nlohmann::json& j);

// CheckRelease returns ok, or kPermission naming the first claim that does
// not satisfy the policy ("model_digest: expected one of …, token has …").
// `token_claims` and `appraised` are the two views of one verified token
// (VerifyToken, token_claims.h).
Status<> CheckRelease(const ReleasePolicy& policy, const nlohmann::json& token_claims,
                      const attestation::AppraisalInput& appraised);

// CheckReleaseServing is CheckRelease's last part: the token's serving claims
// (chat template, model loading, memory, listeners, metrics readers) against
// the policy's consents. A claim of the wrong type counts as present.
Status<> CheckReleaseServing(const ReleasePolicy& policy, const nlohmann::json& token_claims);

}  // namespace cllm::trust
