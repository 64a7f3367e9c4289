// token_claims.h — what a cllm-trust token says about the TEE, and the only
// way from a token back to appraisal.
//
// A token (ES256 JWT, docs/trust.md#tokens) carries the claims cllm-trust's
// appraisal produced, in full, so a relying party can appraise them again
// under its own policy with the same code it uses for local evidence
// (attestation::Appraise, "one appraisal, two sources of claims"):
//
//   "ver": 2                            token claims format
//   "tee": "snp" | "tdx" | "csv" | "tpm" | "sim"
//   "simulated": bool
//   "measurement": hex                   launch measurement
//   "report_data": hex (64 bytes)        what the evidence bound
//   "debug": bool
//   "tcb_status": "UpToDate" | … | "NotEvaluated" | "NotApplicable"
//   "tcb": {component: number}           reported TCB components
//   "advisory_ids": [string]
//   "fields": {name: string}             every verified platform field
//   "policy": name                       the cllm-trust policy it was appraised under
//   "policy_digest": hex                 SHA-256 of that policy document as stored
//                                        then; the key broker releases nothing
//                                        once the policy has changed
//
// plus the session members attest.cc adds (iss, sub, iat, nbf, exp, jti,
// cnf, replay, and for fresh tokens binary_digest, model_digest, model_name,
// freshness).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "attestation/appraisal_input.h"
#include "attestation/claims.h"
#include "channel/payload.h"
#include "trust/jose.h"

namespace cllm::trust {

inline constexpr int kTokenClaimsVersion = 2;

// AppraisedClaimsJson renders `claims` as the token members listed above
// (without "policy", which the issuer adds).
nlohmann::json AppraisedClaimsJson(const attestation::Claims& claims);

// MetricsReadersClaim is the token member "metrics_readers" for these
// serving claims: the reader keys' SHA-256 digests as lowercase hex, in the
// evidence's (ascending) order; an empty array when there are none (the
// member is then left out of a token, and its absence reads as empty).
nlohmann::json MetricsReadersClaim(const channel::ServingClaims& serving);

// NumberClaim reads a numeric serving claim ("stream_pad",
// "stream_coalesce_ms") of token claims `c`: `absent` when the member is
// missing (the default is not written), -1 when it is not an integer from 0
// to `max` (never a value a payload or a floor has).
int64_t NumberClaim(const nlohmann::json& c, const char* name, int64_t absent, int64_t max);

// The token members that carry serving claims (attest.cc writes each only
// when not the default; "metrics_keys" is what tokens said before readers
// were named). A client's token has none of them.
inline constexpr const char* kServingClaimMembers[] = {
    "chat_template_digest", "model_from_untrusted_disk", "memory_unlocked", "stream_pad",
    "debug_listener",       "metrics_readers",           "metrics_keys",    "stream_coalesce_ms"};

// DigestListed: `hex` (a token's lower-case digest) is one of `list`, or the
// list is empty (nothing pinned).
bool DigestListed(const std::vector<Bytes>& list, const std::string& hex);

// A token whose signature, issuer and lifetime verified, and whose appraised
// claims decoded into appraisal input.
struct VerifiedToken {
  nlohmann::json claims;               // every member, as signed
  attestation::AppraisalInput input;   // source kTrustToken
};

// VerifyToken runs VerifyJwt and then decodes the appraised claims strictly:
// a missing member, a wrong type, bad hex, an unknown platform or status is
// kClaimMismatch naming the member (a token from an older cllm-trust without
// "ver": 2 is refused the same way). Never throws on untrusted JSON.
JoseResult<VerifiedToken> VerifyToken(std::string_view token, const nlohmann::json& jwks, const JwtCheck& check);

}  // namespace cllm::trust
