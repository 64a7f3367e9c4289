// fields.h — the VerifiedEvidence::Data of a verified SNP report.
#pragma once

#include "attestation/snp/cert_table.h"
#include "attestation/snp/report.h"
#include "attestation/verified.h"

namespace cllm::attestation::snp {

// BuildData fills platform kSnp, measurement, report_data, debug
// (POLICY.DEBUG, bit 19), tcb_status kNotEvaluated (SNP has no TCB status
// collateral; appraisal's min_tcb floors judge the TCB), the tcb map from
// REPORTED_TCB ("snp.bootloader", "snp.tee", "snp.snp", "snp.microcode",
// and "snp.fmc" on Turin), the same components of COMMITTED_TCB and
// LAUNCH_TCB ("snp.committed_tcb.microcode", "snp.launch_tcb.snp", ...)
// and every report field under its spec name
// (docs/attestation/snp.md lists them). Call only after verification passed.
VerifiedEvidence::Data BuildData(const Report& report, Product product, CertKind signing_key);

}  // namespace cllm::attestation::snp
