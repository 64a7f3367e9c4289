// release_cover.h — is a key's release policy at least as strict as a client's policy?
//
// A client sealing a prompt to the fleet's HPKE key (docs/protocol.md,
// "Encrypted bodies") never sees the replica that decrypts it: any node to
// which cllm-trust released the fleet key can. So before sending, the client
// checks the key's release policy — bound to the key config by cllm-trust's
// signed statement — against its own attestation policy: every token the
// release policy accepts must describe a TEE the client policy would accept
// on local evidence. Concretely, with R the release policy and C the client
// policy:
//
//   platforms     R's effective platforms (its list, or every real platform;
//                 sim only with allow_simulated) ⊆ C's platforms
//   allow_debug   R allows debug only if C does
//   tcb_statuses  R's statuses ⊆ C's
//   measurements  R pins at least one, and each is pinned by C for one of
//                 R's platforms (unless C has --insecure-accept-unpinned);
//                 not needed when R accepts only the simulated TEE
//   min_tcb       for each of R's platforms, every floor C sets is met by a
//                 floor in R at least as high
//   fields        C's required field values cannot be expressed by a release
//                 policy: refused (say so rather than drop a check)
//   model_digests R's ⊆ C's, and non-empty (unless unpinned is accepted)
//   binary_digests when C pins binaries, R pins some and each is in C's
//   chat_template_digests  R's ⊆ C's (host-supplied templates, ServingClaims)
//   allow_untrusted_disk_model, allow_unlocked_memory, allow_debug_listener,
//   allow_metrics_keys  R allows it only if C does
//   metrics_readers     R's ⊆ C's, unless C sets allow_metrics_keys
//   policies      when C names token policies (--token-policy), R's ⊆ them
//
// What it cannot see: which sim platform keys cllm-trust trusts (a
// deployment setting of the service, not of the key).
#pragma once

#include <string>
#include <vector>

#include "attestation/policy.h"
#include "base/result.h"
#include "trust/release_policy.h"

namespace cllm::trust {

// CheckReleaseWithinPolicy returns ok, or kPermission whose detail lists
// every way R is weaker than C ("measurements: the release policy pins
// none", …), one per line.
Status<> CheckReleaseWithinPolicy(const ReleasePolicy& release, const attestation::Policy& client);

// ExplainRelease describes a release policy in a few lines for `cllm attest`.
std::vector<std::string> ExplainRelease(const ReleasePolicy& release);

}  // namespace cllm::trust
