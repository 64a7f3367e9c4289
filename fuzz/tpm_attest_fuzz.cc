// Fuzzes the TPM quote parsers (TPMS_ATTEST, TPMT_SIGNATURE), the Azure HCL
// report parser and the evidence container decoder. The first byte selects
// the target so one corpus reaches each.
#include <cstddef>
#include <cstdint>

#include "attestation/tpm/hcl_report.h"
#include "attestation/tpm/tpm_quote.h"
#include "attestation/tpm/tpm_verify.h"

using namespace cllm;
using namespace cllm::attestation;

namespace {

// A fixed P-256 key so the signature decoder runs to the verify call.
const crypto::PublicKey& FuzzKey() {
  static const crypto::PublicKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value().public_key();
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ByteSpan in(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      if (auto a = tpm::ParseTpmsAttest(in); a.ok()) {
        (void)tpm::SelectedPcrs(*a);
        std::vector<Bytes> pcrs(24, Bytes(32, 0));
        (void)tpm::CheckPcrDigest(*a, pcrs, crypto::HashAlg::kSha256);
      }
      break;
    case 1: {
      // Split: first half message, second half TPMT_SIGNATURE.
      const size_t half = in.size() / 2;
      (void)tpm::VerifyQuoteSignature(in.first(half), in.subspan(half), FuzzKey(), nullptr);
      break;
    }
    case 2:
      if (auto h = tpm::ParseHclReport(in); h.ok()) (void)tpm::CheckRuntimeDataBinding(*h);
      break;
    case 3: {
      (void)tpm::LooksLikeTpmEvidence(in);
      EvidenceInput input;
      input.evidence = in;
      (void)tpm::VerifyTpmEvidence(input);
      break;
    }
  }
  return 0;
}
