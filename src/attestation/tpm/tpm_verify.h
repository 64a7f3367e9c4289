// tpm_verify.h — verifying TPM 2.0 quotes and what vouches for their AK.
//
// A quote proves PCR values only as far as its attestation key (AK) is
// trusted. The one AK anchor supported is Azure's confidential-VM vTPM: the
// HCL report (hcl_report.h) binds the AK to an SEV-SNP report or a TDX
// TDREPORT, which is in turn verified by the SNP verifier, or through the TD
// quote by the TDX verifier (both via VerifyEvidence). A bare AK public key
// (software TPM, or a discrete TPM without its certificate chain) yields
// kChainInvalid after the quote itself has been checked.
//
// Evidence containers accepted (JSON; byte strings as hex, base64 or arrays
// of 0..255):
//   {"message", "signature", "pcrs": [...]}                 (Azure tpm-quote)
//   {"quote": {"message", "signature", "pcrs"}, "report": HCL, "vcek": PEM}
//   {"tpm_quote": {"message", "signature", "pcrs"}, "ak_public": SPKI}
// `pcrs[i]` is PCR i of the quoted bank. Other inputs come from
// EvidenceInput::cert_files (each recognised by content): the HCL report
// ("HCLA"), an AK public key (PEM/DER SPKI), a TD quote (v4/v5, TEE type
// 0x81), X.509 certificates (VCEK, ASK/ARK, PCK…) passed to the hardware
// verifier; EvidenceInput::collateral goes to the hardware verifier too.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attestation/errors.h"
#include "attestation/evidence_input.h"
#include "attestation/verified.h"
#include "base/bytes.h"

namespace cllm::attestation::tpm {

struct TpmEvidence {
  Bytes attest;                    // TPMS_ATTEST as signed
  Bytes signature;                 // TPMT_SIGNATURE or bare RSASSA bytes
  std::vector<Bytes> pcrs;         // PCR i value of the quoted bank
  std::optional<Bytes> hcl_report;
  std::optional<Bytes> ak_spki;    // a bare AK public key (DER SPKI)
  std::optional<Bytes> td_quote;
  std::vector<Bytes> certs;        // X.509 material for the hardware verifier
};

// LooksLikeTpmEvidence sniffs a raw TPMS_ATTEST (magic + quote type) or a
// JSON container with "message"/"signature"/"pcrs" keys.
bool LooksLikeTpmEvidence(ByteSpan evidence);

// DecodeTpmEvidence reads the container and sorts input.cert_files;
// kMalformed on undecodable JSON or missing message/signature/pcrs,
// kCollateralInvalid for a certificate file of unknown kind.
[[nodiscard]] AttestResult<TpmEvidence> DecodeTpmEvidence(const EvidenceInput& input);

// VerifyTpmEvidence runs the checklist (docs/attestation/tpm.md):
//   TPMS_ATTEST structure → HCL report structure → runtime data bound to the
//   hardware REPORT_DATA (kBindingMismatch) → quote signature by the AK
//   (kBadSignature) → pcrDigest over the supplied PCRs (kBindingMismatch) →
//   hardware report verified (the SNP / TDX verifier's code; kUnavailable
//   when this build has none) — or kChainInvalid for a bare AK.
// The result: platform kTpm, measurement = pcrDigest, report_data =
// extraData zero-padded to 64 bytes (fields["extra_data"] is exact),
// tcb_status, tcb and debug from the verified hardware report (the AK is only
// as trustworthy as the TEE that vouches for it).
[[nodiscard]] AttestResult<VerifiedEvidence> VerifyTpmEvidence(const EvidenceInput& input);

// CheckProviderLevel: the verified hardware report (`tee` "snp" or "tdx")
// that vouches for the vTPM's key must come from the paravisor that holds
// the vTPM: on SNP, a report requested at VMPL 0. A report from a less
// privileged level is the guest's own, binding whatever key it chose.
[[nodiscard]] AttestStatus CheckProviderLevel(const std::string& tee, const VerifiedEvidence::Data& hardware);

}  // namespace cllm::attestation::tpm
