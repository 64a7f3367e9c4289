// release_policy.h — when the key broker may release a model key.
//
// Each registered model key has a release policy, evaluated against the
// claims of a verified cllm-trust token (tokens.h):
//
//   {"model_digests":  ["<hex SHA-256>", …],   required, non-empty
//    "binary_digests": ["<hex>", …],           optional: any binary when absent
//    "measurements":   ["<hex>", …],           optional: any launch measurement when absent
//    "platforms":      ["snp", "tdx", …],      optional: every real platform when absent
//    "tcb_statuses":   ["UpToDate", …],        default ["UpToDate"] (sim: "NotApplicable" is implied)
//    "policies":       ["default", …],         optional: tokens from these attestation policies only
//    "allow_simulated": false}                 the simulated TEE only when true
//
// Unknown members are an error (a typo must not widen a release). Tokens
// minted from replayed evidence (no fresh binding) never get a key.
#pragma once

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

#include "base/result.h"

namespace cllm::trust {

struct ReleasePolicy {
  std::set<std::string> model_digests;  // lower-case hex
  std::set<std::string> binary_digests;
  std::set<std::string> measurements;
  std::set<std::string> platforms;
  std::set<std::string> tcb_statuses = {"UpToDate"};
  std::set<std::string> policies;
  bool allow_simulated = false;

  nlohmann::json ToJson() const;
};

// ParseReleasePolicy validates untrusted JSON (kParse naming the member).
Result<ReleasePolicy> ParseReleasePolicy(const nlohmann::json& j);

// CheckRelease returns ok, or kPermission naming the first claim that does
// not satisfy the policy ("model_digest: expected one of …, token has …").
Status<> CheckRelease(const ReleasePolicy& policy, const nlohmann::json& token_claims);

}  // namespace cllm::trust
