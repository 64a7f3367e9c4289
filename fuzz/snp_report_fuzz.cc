// Fuzzes the SEV-SNP evidence parsers: the 1184-byte ATTESTATION_REPORT, the
// extended-report certificate table, the JSON bundle, and the verifier's
// whole front end (which must fail cleanly without certificates).
#include <cstddef>
#include <cstdint>
#include <algorithm>

#include "attestation/snp/cert_table.h"
#include "attestation/snp/json_bundle.h"
#include "attestation/snp/report.h"
#include "attestation/snp/verify.h"

using namespace cllm;
using namespace cllm::attestation;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan in(data, size);
  if (size >= snp::kReportSize) {
    if (auto rep = snp::ParseReport(in.first(snp::kReportSize)); rep.ok()) {
      // Serialising a parsed report reproduces the input exactly.
      Bytes again = snp::SerializeReport(*rep);
      if (!std::equal(again.begin(), again.end(), in.begin())) __builtin_trap();
      (void)snp::DecodeTcb(rep->reported_tcb, snp::Product::kTurin);
      (void)snp::ProductFromCpuid(rep->cpuid_fam_id, rep->cpuid_mod_id);
    }
    (void)snp::ParseCertTable(in.subspan(snp::kReportSize));
  }
  (void)snp::ParseCertTable(in);
  if (snp::LooksLikeJsonBundle(in)) (void)snp::ParseJsonBundle(in);
  (void)snp::LooksLikeSnpEvidence(in);

  EvidenceInput input;
  input.evidence = in;
  (void)snp::VerifySnpEvidence(input);
  return 0;
}
