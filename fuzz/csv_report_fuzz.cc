// Fuzzes the Hygon CSV parsers (report unmasking, CA and CSV certificates)
// and the whole verifier, which also decodes the JSON bundle. The first byte
// selects how the rest is used, so one corpus reaches every parser.
#include <cstddef>
#include <cstdint>

#include "attestation/csv/csv_cert.h"
#include "attestation/csv/csv_report.h"

using namespace cllm;
using namespace cllm::attestation;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ByteSpan in(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      (void)csv::LooksLikeCsvEvidence(in);
      EvidenceInput input;
      input.evidence = in;
      (void)csv::VerifyCsvEvidence(input);
      break;
    }
    case 1:
      if (auto c = csv::ParseCaCert(in); c.ok()) (void)csv::VerifyCaCertIssuedBy(*c, *c);
      break;
    case 2:
      if (auto c = csv::ParseCsvCert(in); c.ok()) {
        (void)csv::VerifyCsvCertIssuedBy(*c, csv::kUsageHsk, c->pubkey);
      }
      break;
  }
  return 0;
}
