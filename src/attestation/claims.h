// claims.h — what appraisal says about a verified TEE, normalised across
// platforms.
//
// Only appraisal (policy.h, Appraise*) constructs Claims. The common part is
// what a relying party needs regardless of platform (which TEE, whether it is
// simulated, the launch measurement, report_data, debug, TCB status); the
// platform part keeps every verified field under the spec's names
// ("reported_tcb", "mr_td", ...) for display and for platform-specific policy.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/bytes.h"

namespace cllm::attestation {

enum class Platform { kSnp, kTdx, kCsv, kTpm, kSim };
const char* PlatformName(Platform p);  // "snp", "tdx", "csv", "tpm", "sim"

// TcbStatus follows Intel's vocabulary; SNP/CSV map "reported TCB meets the
// floor" to kUpToDate.
enum class TcbStatus {
  kUpToDate,
  kSwHardeningNeeded,
  kConfigurationNeeded,
  kConfigurationAndSwHardeningNeeded,
  kOutOfDate,
  kOutOfDateConfigurationNeeded,
  kRevoked,
  kNotApplicable,  // platforms without a TCB status notion (sim)
};
const char* TcbStatusName(TcbStatus s);

struct Claims {
  Platform platform = Platform::kSim;
  bool simulated = true;          // true only for the simulated TEE; labelled in every message
  Bytes measurement;              // SNP MEASUREMENT, TDX MRTD, CSV digest, sim measurement
  Bytes report_data;              // 64 bytes on every platform we support
  bool debug = false;
  TcbStatus tcb_status = TcbStatus::kNotApplicable;
  std::vector<std::string> advisory_ids;
  // Platform-specific verified fields, spec names → printable value (hex for
  // byte strings, decimal for numbers).
  std::map<std::string, std::string> fields;
};

}  // namespace cllm::attestation
