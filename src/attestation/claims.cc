#include "attestation/claims.h"

namespace cllm::attestation {

const char* PlatformName(Platform p) {
  switch (p) {
    case Platform::kSnp: return "snp";
    case Platform::kTdx: return "tdx";
    case Platform::kCsv: return "csv";
    case Platform::kTpm: return "tpm";
    case Platform::kSim: return "sim";
  }
  return "unknown";
}

const char* TcbStatusName(TcbStatus s) {
  switch (s) {
    case TcbStatus::kUpToDate: return "UpToDate";
    case TcbStatus::kSwHardeningNeeded: return "SWHardeningNeeded";
    case TcbStatus::kConfigurationNeeded: return "ConfigurationNeeded";
    case TcbStatus::kConfigurationAndSwHardeningNeeded: return "ConfigurationAndSWHardeningNeeded";
    case TcbStatus::kOutOfDate: return "OutOfDate";
    case TcbStatus::kOutOfDateConfigurationNeeded: return "OutOfDateConfigurationNeeded";
    case TcbStatus::kRevoked: return "Revoked";
    case TcbStatus::kNotApplicable: return "NotApplicable";
    case TcbStatus::kNotEvaluated: return "NotEvaluated";
  }
  return "unknown";
}

const char* ClaimsSourceName(ClaimsSource s) {
  return s == ClaimsSource::kTrustToken ? "token" : "evidence";
}

}  // namespace cllm::attestation
