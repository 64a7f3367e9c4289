// appraise.cc — Appraise: verified claims + policy → Claims.
//
// A checklist in a fixed order; the first failing check is returned with the
// field, the expected and the found value. Evidence from the simulated TEE is
// labelled in every message so it can never pass for hardware evidence.
// The claims come from local evidence or from a verified cllm-trust token
// (appraisal_input.h); the checks do not depend on which.
#include <algorithm>
#include <cctype>

#include "attestation/policy.h"
#include "base/encoding.h"

namespace cllm::attestation {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string JoinHex(const std::vector<Bytes>& list) {
  std::string out;
  for (const auto& b : list) out += (out.empty() ? "" : " | ") + HexEncode(b);
  return out;
}

class Checker {
 public:
  explicit Checker(const VerifiedEvidence::Data& d) : d_(d) {}

  Error<AttestErrc> Fail(AttestErrc code, const std::string& field, const std::string& expected,
                         const std::string& found) const {
    std::string prefix = d_.simulated ? "[SIMULATED TEE] " : "";
    return MakeError(code, prefix + "field " + field + ": expected " + expected + ", found " + found);
  }

 private:
  const VerifiedEvidence::Data& d_;
};

// Components lists the primary TCB components ("snp.microcode=115"), not
// the secondary sets ("snp.committed_tcb.microcode"), for error details.
std::string Components(const std::map<std::string, uint64_t>& tcb) {
  std::string out;
  for (const auto& [k, v] : tcb) {
    if (std::count(k.begin(), k.end(), '.') > 1) continue;
    out += (out.empty() ? "" : ", ") + k + "=" + std::to_string(v);
  }
  return out.empty() ? "(none reported)" : out;
}

}  // namespace

AttestResult<Claims> Appraise(const VerifiedEvidence& evidence, const Policy& policy) {
  return Appraise(AppraisalInput::FromEvidence(evidence), policy);
}

AttestResult<Claims> Appraise(const AppraisalInput& input, const Policy& policy) {
  const auto& d = input.data();
  Checker c(d);
  // A report is simulated if either the verifier says so or it claims the sim
  // platform: both must be explicitly allowed (ARCHITECTURE §6).
  const bool simulated = d.simulated || d.platform == Platform::kSim;

  // --- platform --------------------------------------------------------------
  std::string allowed;
  for (Platform p : policy.platforms) allowed += (allowed.empty() ? "" : ", ") + std::string(PlatformName(p));
  if (simulated && !policy.platforms.count(Platform::kSim)) {
    return c.Fail(AttestErrc::kSimulatedNotAllowed, "platform",
                  "one of [" + allowed + "] (add \"sim\" to \"platforms\" to accept the simulated TEE)",
                  "sim (simulated TEE, not hardware)");
  }
  if (!policy.platforms.count(d.platform)) {
    return c.Fail(AttestErrc::kPolicyViolation, "platform", "one of [" + allowed + "]",
                  PlatformName(d.platform));
  }

  // --- debug -----------------------------------------------------------------
  // Debug mode would let the host read and write guest memory (SNP
  // POLICY.DEBUG, TDX TD_ATTRIBUTES.DEBUG): nothing in the TEE is confidential.
  if (d.debug && !policy.allow_debug) {
    return c.Fail(AttestErrc::kDebugEnabled, "debug", "false (debugging forbidden by policy)", "true");
  }

  static const PlatformPolicy kEmpty;
  auto it = policy.per_platform.find(d.platform);
  const PlatformPolicy& pp = it == policy.per_platform.end() ? kEmpty : it->second;

  // --- TCB status ---------------------------------------------------------------
  // Platforms without a status notion (sim, TPM) report NotApplicable; their
  // floor is expressed with min_tcb and measurements instead.
  const bool status_exempt = d.tcb_status == TcbStatus::kNotApplicable &&
                             (d.platform == Platform::kSim || d.platform == Platform::kTpm);
  // NotEvaluated (SNP, CSV: no TCB status source) means nobody vouched that
  // the reported TCB is current. Fail closed unless the policy makes its own
  // statement: a floor per component (checked next) or an explicit
  // "NotEvaluated" in tcb_statuses.
  const bool own_floor = d.tcb_status == TcbStatus::kNotEvaluated && !pp.min_tcb.empty();
  if (!status_exempt && !own_floor && !policy.tcb_statuses.count(d.tcb_status)) {
    std::string want;
    for (TcbStatus s : policy.tcb_statuses) want += (want.empty() ? "" : ", ") + std::string(TcbStatusName(s));
    if (d.tcb_status == TcbStatus::kNotEvaluated) {
      return c.Fail(AttestErrc::kTcbTooLow, "tcb_status",
                    "one of [" + want + "] or a TCB floor (\"" + std::string(PlatformName(d.platform)) +
                        "\": {\"min_tcb\": {...}}) — " + PlatformName(d.platform) +
                        " has no TCB status source; pin the minimum of each component from your vendor's "
                        "security bulletins (this evidence reports " + Components(d.tcb) + ")",
                    "NotEvaluated");
    }
    return c.Fail(AttestErrc::kTcbTooLow, "tcb_status", "one of [" + want + "]", TcbStatusName(d.tcb_status));
  }

  // --- TCB floor -------------------------------------------------------------
  for (const auto& [component, floor] : pp.min_tcb) {
    auto found = d.tcb.find(component);
    if (found == d.tcb.end()) {
      return c.Fail(AttestErrc::kTcbTooLow, component, ">= " + std::to_string(floor),
                    "(not reported by this evidence)");
    }
    if (found->second < floor) {
      return c.Fail(AttestErrc::kTcbTooLow, component, ">= " + std::to_string(floor),
                    std::to_string(found->second));
    }
  }

  // --- measurement -----------------------------------------------------------
  if (!pp.measurements.empty() &&
      std::find(pp.measurements.begin(), pp.measurements.end(), d.measurement) == pp.measurements.end()) {
    return c.Fail(AttestErrc::kPolicyViolation, "measurement", "one of [" + JoinHex(pp.measurements) + "]",
                  HexEncode(d.measurement));
  }

  // --- required field values -------------------------------------------------
  for (const auto& [field, want] : pp.fields) {
    std::string found;
    if (auto f = d.fields.find(field); f != d.fields.end()) {
      found = f->second;
    } else if (auto t = d.tcb.find(field); t != d.tcb.end()) {
      found = std::to_string(t->second);
    } else {
      return c.Fail(AttestErrc::kPolicyViolation, field, "\"" + want + "\"", "(field not present)");
    }
    if (Lower(found) != Lower(want)) {
      return c.Fail(AttestErrc::kPolicyViolation, field, "\"" + want + "\"", "\"" + found + "\"");
    }
  }

  // --- report_data -----------------------------------------------------------
  // Binds the evidence to a nonce / TLS key; a mismatch means replay or a
  // different channel.
  if (policy.report_data && !ConstantTimeEqual(*policy.report_data, d.report_data)) {
    return c.Fail(AttestErrc::kReportDataMismatch, "report_data", HexEncode(*policy.report_data),
                  HexEncode(d.report_data));
  }

  Claims claims;
  claims.platform_ = d.platform;
  claims.simulated_ = simulated;
  claims.measurement_ = d.measurement;
  claims.report_data_ = d.report_data;
  claims.debug_ = d.debug;
  claims.tcb_status_ = d.tcb_status;
  claims.advisory_ids_ = d.advisory_ids;
  claims.tcb_ = d.tcb;
  claims.fields_ = d.fields;
  claims.source_ = input.source();
  return claims;
}

}  // namespace cllm::attestation
