// policy.h — reference values and the appraisal of verified evidence.
//
// Verification (snp/, tdx/, csv/, tpm/, sim/) answers "did genuine hardware
// sign this?"; appraisal answers "is this the TEE we are willing to talk
// to?": allowed platforms, measurements, TCB floor, debug, required field
// values, expected report_data. Appraise is the only code that constructs
// Claims. The JSON file format is documented in docs/attestation.md.
//
// Fail closed: the simulated TEE is refused unless the policy lists "sim";
// debug is refused unless "allow_debug" is true; only TCB status UpToDate is
// accepted unless "tcb_statuses" says otherwise. Evidence without a TCB
// status source (SNP, CSV: status NotEvaluated) is accepted only when the
// policy pins a TCB floor for its platform ("min_tcb", then the floor is the
// statement) or lists "NotEvaluated" explicitly.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/appraisal_input.h"
#include "attestation/claims.h"
#include "attestation/errors.h"
#include "attestation/verified.h"
#include "base/bytes.h"
#include "crypto/keys.h"

namespace cllm::attestation {

// PlatformPolicy holds the reference values of one platform ("snp": {...}).
struct PlatformPolicy {
  // Accepted launch measurements; empty means "not pinned": Appraise accepts
  // any measurement, and clients then refuse the evidence (pinning.h).
  std::vector<Bytes> measurements;
  // Minimum value per TCB component, keys as VerifiedEvidence::Data::tcb
  // ("snp.microcode", "tdx.tee_tcb_svn[0]", ...). A component the evidence
  // does not report fails the check.
  std::map<std::string, uint64_t> min_tcb;
  // Required exact values of verified fields, keys as
  // VerifiedEvidence::Data::fields (or ::tcb, compared in decimal); hex
  // values compare case-insensitively.
  std::map<std::string, std::string> fields;
};

struct Policy {
  std::set<Platform> platforms;  // allowed platforms; "sim" only when listed
  std::map<Platform, PlatformPolicy> per_platform;
  std::set<TcbStatus> tcb_statuses = {TcbStatus::kUpToDate};
  bool allow_debug = false;
  std::optional<Bytes> report_data;  // 64 bytes when set
  // Carried for the channel and trust layers (they recompute report_data from
  // these); Appraise itself does not look at them.
  std::vector<Bytes> binary_digests;
  std::vector<Bytes> model_digests;
  // Chat templates a server may render prompts with instead of its model's
  // own (cllm-server --chat-template: text the host supplies), by SHA-256;
  // a server with an override not listed is refused (channel::CheckServing).
  std::vector<Bytes> chat_template_digests;
  // Accept a server that maps its model from a disk the host controls
  // (--mmap-untrusted-disk); refused unless true.
  bool allow_untrusted_disk_model = false;
  // Accept a server whose memory is not locked (--allow-unlocked-memory:
  // prompts may reach host-visible swap); refused unless true.
  bool allow_unlocked_memory = false;
  // The smallest TLS record padding block accepted (a server's --stream-pad,
  // default 512); 0 also accepts padding off. Servers below it are refused.
  uint32_t min_stream_pad = 512;
  // The shortest stream coalescing accepted (a server's
  // --stream-coalesce-ms: streamed text held and sent in timed events, which
  // hides each token's timing); 0 (the default) accepts none. Servers below
  // it are refused.
  uint32_t min_stream_coalesce_ms = 0;
  // Accept a server that also serves plain HTTP (--debug-listen: unattested,
  // unencrypted, /metrics open there without metrics keys); refused unless true.
  bool allow_debug_listener = false;
  // Accept a server that serves /metrics on its attested listener to holders
  // of keys from its --metrics-keys file (every user's token counts, to
  // whoever the file names); refused unless true or metrics_readers is set.
  bool allow_metrics_keys = false;
  // Or accept such a server only when every key it names is one of these
  // (SHA-256 digests of the keys, as keys files store them): the policy
  // decides who reads the counts, not the host. Not with allow_metrics_keys.
  std::vector<Bytes> metrics_readers;
  // Token mode only (a server accepted on its cllm-trust token): the names of
  // the cllm-trust attestation policies whose tokens are accepted; empty means
  // any (the token's claims are appraised against this policy regardless).
  std::vector<std::string> token_policies;
  // The sim platform public keys the verifier trusts ("sim": {"platform_keys"}).
  std::vector<crypto::PublicKey> sim_platform_keys;
  // Clients (client::Connect, trust::ConnectViaToken, `cllm attest verify`)
  // refuse evidence whose launch measurement or model digest this policy does
  // not pin (pinning.h). Only the client flag --insecure-accept-unpinned sets
  // this; it is never read from a policy file, so the choice is made, and
  // warned about, on every run.
  bool insecure_accept_unpinned = false;
  // `cllm attest URL` only: connect whatever the serving claims, to show the
  // whole server before the verdict, which then appraises them (ratls.h
  // CheckServing) with the user's policy. Never read from a policy file;
  // nothing is sent on such a connection but the nonce request.
  bool explain_serving = false;

  // Default is what clients use without --policy: every real platform
  // allowed, sim not, debug forbidden, UpToDate only, nothing pinned — so a
  // client refuses every server with it unless --insecure-accept-unpinned.
  static Policy Default();
};

// ParsePolicy parses the JSON policy format. Unknown keys, bad hex, wrong
// types and out-of-range values fail with kPolicyInvalid naming the key.
[[nodiscard]] AttestResult<Policy> ParsePolicy(std::string_view json_text);
// LoadPolicy reads and parses a policy file (kIo when it cannot be read).
[[nodiscard]] AttestResult<Policy> LoadPolicy(const std::filesystem::path& path);

// ParsePlatformName maps "snp", "tdx", "csv", "tpm", "sim" to a Platform.
std::optional<Platform> ParsePlatformName(std::string_view name);
std::optional<TcbStatus> ParseTcbStatusName(std::string_view name);

// Appraise checks verified claims (from evidence or from a verified
// cllm-trust token, appraisal_input.h) against the policy and returns Claims
// on success. Checks run in a fixed order (platform, debug, TCB status, TCB
// floor, measurement, required fields, report_data) and the first failure is
// returned: kSimulatedNotAllowed, kPolicyViolation, kDebugEnabled,
// kTcbTooLow or kReportDataMismatch, with detail
// "field X: expected ..., found ..." (prefixed "[SIMULATED TEE] " for sim).
[[nodiscard]] AttestResult<Claims> Appraise(const AppraisalInput& input, const Policy& policy);
// Appraise of evidence a platform verifier produced (AppraisalInput::FromEvidence).
[[nodiscard]] AttestResult<Claims> Appraise(const VerifiedEvidence& evidence, const Policy& policy);

}  // namespace cllm::attestation
