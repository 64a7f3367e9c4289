// claims.h — what appraisal says about a verified TEE, normalised across
// platforms.
//
// Only appraisal (policy.h, Appraise) constructs Claims. The common part is
// what a relying party needs regardless of platform (which TEE, whether it is
// simulated, the launch measurement, report_data, debug, TCB status); the
// platform part keeps every verified field under the spec's names
// ("reported_tcb", "mr_td", ...) for display and for platform-specific policy.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attestation/errors.h"
#include "base/bytes.h"

namespace cllm::attestation {

enum class Platform { kSnp, kTdx, kCsv, kTpm, kSim };
const char* PlatformName(Platform p);  // "snp", "tdx", "csv", "tpm", "sim"

// TcbStatus follows Intel's vocabulary for platforms with a TCB status
// source (TDX: Intel's signed TCB info). Platforms without one (SNP, CSV)
// report kNotEvaluated: nobody said the TCB is current, only which TCB
// components the hardware reported (Claims::tcb). Nothing claims kUpToDate
// without a source.
enum class TcbStatus {
  kUpToDate,
  kSwHardeningNeeded,
  kConfigurationNeeded,
  kConfigurationAndSwHardeningNeeded,
  kOutOfDate,
  kOutOfDateConfigurationNeeded,
  kRevoked,
  kNotApplicable,  // platforms without a TCB status notion (sim)
  kNotEvaluated,   // reported TCB components only; no status source (SNP, CSV)
};
const char* TcbStatusName(TcbStatus s);

// Where appraised claims came from: evidence verified here against the
// vendor's roots, or a cllm-trust token whose signature was verified (the
// service verified the evidence; appraisal repeats on the token's claims).
enum class ClaimsSource { kEvidence, kTrustToken };
const char* ClaimsSourceName(ClaimsSource s);  // "evidence", "token"

class AppraisalInput;
struct Policy;
class Claims;
AttestResult<Claims> Appraise(const AppraisalInput& input, const Policy& policy);

// Claims are read-only to everyone but Appraise (policy.h), which is their
// only constructor: a Claims value in hand means "verified AND appraised".
class Claims {
 public:
  Platform platform() const { return platform_; }
  // simulated is true only for the simulated TEE; every message that shows
  // these claims labels them "SIMULATED".
  bool simulated() const { return simulated_; }
  const Bytes& measurement() const { return measurement_; }  // SNP MEASUREMENT, TDX MRTD, CSV digest, sim
  const Bytes& report_data() const { return report_data_; }  // 64 bytes on every platform we support
  bool debug() const { return debug_; }
  TcbStatus tcb_status() const { return tcb_status_; }
  const std::vector<std::string>& advisory_ids() const { return advisory_ids_; }
  const std::map<std::string, uint64_t>& tcb() const { return tcb_; }
  // Platform-specific verified fields, spec names → printable value (hex for
  // byte strings, decimal for numbers).
  const std::map<std::string, std::string>& fields() const { return fields_; }
  ClaimsSource source() const { return source_; }

 private:
  friend AttestResult<Claims> Appraise(const AppraisalInput& input, const Policy& policy);
  Claims() = default;

  Platform platform_ = Platform::kSim;
  bool simulated_ = true;
  Bytes measurement_;
  Bytes report_data_;
  bool debug_ = false;
  TcbStatus tcb_status_ = TcbStatus::kNotApplicable;
  std::vector<std::string> advisory_ids_;
  std::map<std::string, uint64_t> tcb_;
  std::map<std::string, std::string> fields_;
  ClaimsSource source_ = ClaimsSource::kEvidence;
};

}  // namespace cllm::attestation
