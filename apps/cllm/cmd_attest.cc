// `cllm attest verify --evidence FILE ...`: verify attestation evidence from
// files and explain every step, then appraise it against a policy.
//
// Exit codes (docs/attestation.md): 0 verified AND appraised; 1 verification
// failed (signature, chain, collateral, format); 2 usage or input error
// (bad option value, unreadable file, invalid policy); 3 verified but the
// policy is not satisfied — including "not satisfied: nothing pinned" when
// the policy pins no launch measurement for the evidence's platform
// (attestation/pinning.h; --insecure-accept-unpinned skips that check).
// `cllm attest https://HOST:PORT` (servers) is added to the same `attest`
// group by another file.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "apps/cllm/command.h"
#include "apps/cllm/remote_common.h"
#include "attestation/pinning.h"
#include "attestation/policy.h"
#include "attestation/verify.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/time.h"

namespace cllm::app {
namespace {

using attestation::AttestErrc;
using attestation::AttestErrcName;
using attestation::Platform;
using nlohmann::json;

constexpr int kExitVerifyFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitAppraisalFailed = 3;

struct VerifyArgs {
  std::string evidence;
  std::vector<std::string> certs;
  std::string collateral;
  std::string policy;
  std::string at;
  std::string platform = "auto";
  bool json = false;
  bool accept_unpinned = false;  // --insecure-accept-unpinned
};


// Shown is what verification established, printed whether or not the policy
// is satisfied: from the verified evidence, or from the claims appraisal made.
struct Shown {
  Platform platform;
  bool simulated;
  const Bytes& measurement;
  const Bytes& report_data;
  bool debug;
  attestation::TcbStatus tcb_status;
  const std::vector<std::string>& advisory_ids;
  const std::map<std::string, uint64_t>& tcb;
  const std::map<std::string, std::string>& fields;

  static Shown Of(const attestation::Claims& c) {
    return {c.platform(), c.simulated(), c.measurement(), c.report_data(), c.debug(),
            c.tcb_status(), c.advisory_ids(), c.tcb(), c.fields()};
  }
  static Shown Of(const attestation::VerifiedEvidence::Data& d) {
    return {d.platform, d.simulated, d.measurement, d.report_data, d.debug, d.tcb_status, d.advisory_ids, d.tcb, d.fields};
  }
};

json ShownJson(const Shown& c) {
  json j = {{"platform", attestation::PlatformName(c.platform)},
            {"simulated", c.simulated},
            {"measurement", HexEncode(c.measurement)},
            {"report_data", HexEncode(c.report_data)},
            {"debug", c.debug},
            {"tcb_status", attestation::TcbStatusName(c.tcb_status)},
            {"advisory_ids", c.advisory_ids},
            {"tcb", c.tcb},
            {"fields", c.fields}};
  return j;
}

// PrintShown prints every verified field; `title` says whether they were
// appraised ("claims") or only verified ("verified fields").
void PrintShown(const char* title, const Shown& c) {
  std::printf("\n%s%s:\n", title, c.simulated ? " (SIMULATED TEE — not hardware evidence)" : "");
  std::printf("  platform     %s%s\n", attestation::PlatformName(c.platform), c.simulated ? " (simulated)" : "");
  std::printf("  measurement  %s\n", HexEncode(c.measurement).c_str());
  std::printf("  report_data  %s\n", HexEncode(c.report_data).c_str());
  std::printf("  debug        %s\n", c.debug ? "true" : "false");
  std::printf("  tcb_status   %s\n", attestation::TcbStatusName(c.tcb_status));
  for (const auto& id : c.advisory_ids) std::printf("  advisory     %s\n", id.c_str());
  for (const auto& [k, v] : c.tcb) std::printf("  tcb %-24s %llu\n", k.c_str(), static_cast<unsigned long long>(v));
  for (const auto& [k, v] : c.fields) std::printf("  %-28s %s\n", k.c_str(), v.c_str());
}

// Report collects what is printed at the end, as text or as one JSON object.
struct Report {
  bool as_json = false;
  json out = json::object();

  int Finish(int exit_code) {
    if (as_json) std::printf("%s\n", out.dump(2).c_str());
    return exit_code;
  }
};

int Verify(const VerifyArgs& args) {
  Report rep{args.json};
  auto usage = [&](const std::string& msg) {
    if (!args.json) return Fail(msg, kExitUsage);
    rep.out["verdict"] = "usage_error";
    rep.out["error"] = {{"code", "usage"}, {"detail", msg}};
    return rep.Finish(kExitUsage);
  };

  // --- inputs ----------------------------------------------------------------
  auto evidence = ReadFile(args.evidence, 1 << 24);
  if (!evidence.ok()) return usage(args.evidence + ": " + evidence.detail());
  attestation::EvidenceInput input;
  input.evidence = *evidence;
  for (const auto& path : args.certs) {
    auto c = ReadFile(path, 1 << 24);
    if (!c.ok()) return usage(path + ": " + c.detail());
    input.cert_files.push_back(std::move(c).value());
  }
  if (!args.collateral.empty()) {
    auto c = ReadFile(args.collateral, 1 << 26);
    if (!c.ok()) return usage(args.collateral + ": " + c.detail());
    input.collateral = std::move(c).value();
  }
  input.at = std::chrono::system_clock::now();
  if (!args.at.empty()) {
    auto at = ParseRfc3339(args.at);
    if (!at) return usage("--at: not an RFC 3339 time (e.g. 2025-06-01T00:00:00Z): " + args.at);
    input.at = *at;
  }
  attestation::Policy policy = attestation::Policy::Default();
  if (!args.policy.empty()) {
    auto p = attestation::LoadPolicy(args.policy);
    if (!p.ok()) return usage(std::string(AttestErrcName(p.code())) + ": " + p.detail());
    policy = std::move(p).value();
  }
  input.sim_platform_keys = policy.sim_platform_keys;
  if (args.accept_unpinned) {
    policy.insecure_accept_unpinned = true;
    std::fprintf(stderr, "cllm: %s\n", attestation::UnpinnedWarning().c_str());
  }

  std::optional<Platform> platform;
  if (args.platform == "auto") {
    platform = attestation::SniffPlatform(input.evidence);
    if (!platform) return usage(args.evidence + ": unrecognised evidence format; pass --platform");
  } else {
    platform = attestation::ParsePlatformName(args.platform);
    if (!platform) return usage("--platform: expected auto, snp, tdx, csv, tpm or sim");
  }
  const bool sim = *platform == Platform::kSim;
  rep.out["evidence"] = args.evidence;
  rep.out["platform"] = attestation::PlatformName(*platform);
  rep.out["simulated"] = sim;
  rep.out["at"] = FormatUtcTime(input.at);
  rep.out["policy"] = args.policy.empty() ? "default" : args.policy;
  if (!args.json) {
    std::printf("evidence: %s (%zu bytes), platform %s%s\nverification time: %s\n", args.evidence.c_str(),
                evidence->size(), attestation::PlatformName(*platform),
                sim ? " — SIMULATED TEE, not hardware evidence" : "", FormatUtcTime(input.at).c_str());
    std::printf("\nverification:\n");
  }

  // --- verification ------------------------------------------------------------
  std::vector<attestation::CheckStep> trace;
  input.trace = &trace;
  auto verified = attestation::VerifyEvidence(*platform, input);
  json steps = json::array();
  for (size_t i = 0; i < trace.size(); ++i) {
    // The verifier appends the failing check last, with the error as detail.
    bool failed = !trace[i].ok;
    steps.push_back({{"name", trace[i].name}, {"detail", trace[i].detail}, {"ok", !failed}});
    if (!args.json) {
      std::printf("  %s %s: %s\n", failed ? "✗" : "✓", trace[i].name.c_str(), trace[i].detail.c_str());
    }
  }
  rep.out["steps"] = steps;
  if (!verified.ok()) {
    rep.out["verdict"] = "verification_failed";
    rep.out["error"] = {{"code", AttestErrcName(verified.code())}, {"detail", verified.detail()}};
    if (!args.json) {
      // The failing check is normally the last traced step; say so only when
      // the verifier failed before tracing anything.
      if (trace.empty() || trace.back().ok) {
        std::printf("  ✗ %s\n", verified.detail().c_str());
      }
      std::printf("\nverdict: NOT VERIFIED (%s)\n", AttestErrcName(verified.code()));
    }
    return rep.Finish(kExitVerifyFailed);
  }

  // --- appraisal ---------------------------------------------------------------
  json warnings = json::array();
  if (!policy.report_data) warnings.push_back("report_data not checked (no expected value in the policy): freshness and key binding are not established");
  rep.out["warnings"] = warnings;
  if (!args.json) {
    std::printf("\nappraisal (policy: %s):\n", args.policy.empty() ? "default" : args.policy.c_str());
    for (const auto& w : warnings) std::printf("  ! %s\n", w.get<std::string>().c_str());
  }
  // Every check of appraisal passes for a genuine TEE running anything; only
  // pinned reference values say which code it runs. So pinning decides the
  // verdict first, and every verified field is explained either way for the
  // reader to compare with the published values.
  const auto subject = attestation::SubjectOf(verified->data());
  const auto unpinned = policy.insecure_accept_unpinned ? std::vector<attestation::UnpinnedValue>{}
                                                        : attestation::FindUnpinned(policy, subject);
  auto claims = attestation::Appraise(*verified, policy);
  const Shown shown = claims.ok() ? Shown::Of(*claims) : Shown::Of(verified->data());
  rep.out[claims.ok() ? "claims" : "verified_fields"] = ShownJson(shown);
  if (!claims.ok()) {
    rep.out["appraisal_error"] = {{"code", AttestErrcName(claims.code())}, {"detail", claims.detail()}};
    if (!args.json) std::printf("  ✗ %s: %s\n", AttestErrcName(claims.code()), claims.detail().c_str());
  }

  // --- pinning -----------------------------------------------------------------
  if (!unpinned.empty()) {
    const bool nothing = attestation::NothingPinned(policy, subject);
    const std::string why = nothing ? "nothing pinned" : "not pinned";
    auto detail = attestation::CheckPinned(policy, subject, "the evidence");
    rep.out["verdict"] = "not_pinned";
    rep.out["error"] = {{"code", AttestErrcName(AttestErrc::kNotPinned)}, {"detail", detail.detail()}};
    if (!args.json) {
      for (const auto& u : unpinned) {
        std::printf("  ✗ %s is not pinned: the evidence reports %s\n      %s\n", u.name.c_str(),
                    u.seen.empty() ? "(no value)" : u.seen.c_str(), u.how.c_str());
      }
      PrintShown(claims.ok() ? "claims" : "verified fields (not appraised)", shown);
      std::printf("\nverdict: VERIFIED, policy not satisfied: %s (genuine %s hardware, unknown code)\n",
                  why.c_str(), attestation::PlatformName(shown.platform));
    }
    return rep.Finish(kExitAppraisalFailed);
  }
  if (!claims.ok()) {
    rep.out["verdict"] = "appraisal_failed";
    rep.out["error"] = rep.out["appraisal_error"];
    if (!args.json) {
      PrintShown("verified fields (not appraised)", shown);
      std::printf("\nverdict: VERIFIED, POLICY NOT SATISFIED (%s)\n", AttestErrcName(claims.code()));
    }
    return rep.Finish(kExitAppraisalFailed);
  }
  rep.out["verdict"] = policy.insecure_accept_unpinned ? "ok_unpinned" : "ok";
  rep.out["error"] = nullptr;
  if (!args.json) {
    std::printf(policy.insecure_accept_unpinned ? "  ! policy satisfied, pinning NOT checked (%s)\n"
                                                : "  ✓ policy satisfied (launch measurement pinned)%s\n",
                policy.insecure_accept_unpinned ? attestation::kUnpinnedOptOutFlag : "");
    PrintShown("claims", shown);
    std::printf("\nverdict: OK%s%s\n", claims->simulated() ? " (SIMULATED TEE — not hardware evidence)" : "",
                policy.insecure_accept_unpinned ? " — UNPINNED (INSECURE)" : "");
  }
  return rep.Finish(0);
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* attest = SubcommandGroup(app, "attest", "Verify and explain TEE attestation evidence");
  auto* cmd = attest->add_subcommand("verify", "Verify an evidence file, appraise it against a policy, explain each step");
  static VerifyArgs args;
  cmd->add_option("--evidence", args.evidence, "Evidence file (SNP report, TDX quote, CSV report, TPM quote, sim report)")
      ->required();
  cmd->add_option("--certs", args.certs, "Certificate file (PEM or DER); repeatable");
  cmd->add_option("--collateral", args.collateral, "Collateral file (TDX TCB info / QE identity / CRLs)");
  cmd->add_option("--policy", args.policy,
                  "Policy JSON (default: real platforms, no sim, no debug, UpToDate, nothing pinned: the verdict is "
                  "then \"not satisfied: nothing pinned\", exit 3)");
  cmd->add_option("--at", args.at, "Verification time, RFC 3339 (default: now)");
  cmd->add_option("--platform", args.platform, "auto, snp, tdx, csv, tpm or sim")->capture_default_str();
  cmd->add_flag("--json", args.json, "Print one JSON object");
  AddUnpinnedFlag(cmd, &args.accept_unpinned);
  cmd->callback([&ctx] { ctx.exit_code = Verify(args); });
}

CommandRegistration reg{"attest", 40, Setup};

}  // namespace
}  // namespace cllm::app
