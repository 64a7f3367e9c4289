// evidence_input.h — what every platform verifier is given.
//
// The verification time, the trusted roots and the collateral are inputs:
// tests run offline at the time the collateral was valid; nothing is verified
// by turning a check off.
#pragma once

#include <optional>
#include <vector>

#include "attestation/errors.h"
#include "attestation/verified.h"
#include "base/bytes.h"
#include "crypto/keys.h"
#include "crypto/x509.h"

namespace cllm::attestation {

struct EvidenceInput {
  ByteSpan evidence;                   // report / quote / TPMS_ATTEST / JSON bundle, as given
  std::vector<Bytes> cert_files;       // contents of each --certs file (PEM or DER, any order)
  std::optional<Bytes> collateral;     // contents of --collateral (TDX: TCB info, QE identity, CRLs)
  crypto::TimePoint at;                // the verification time (injected clock)
  // Trust anchors. Empty means the vendor roots pinned in the library
  // (AMD ARKs, Intel SGX Root CA, Hygon HRK); tests may pass others.
  std::vector<crypto::Certificate> roots;
  // Hygon CSV only: SHA-256 digests of acceptable HRK certificates (Hygon's
  // own binary format, which `roots` cannot hold). Empty means the pinned HRK.
  std::vector<Bytes> hygon_root_pins;
  // Simulated TEE only: the sim platform public keys the policy pins. There is
  // no built-in sim key; an empty list makes every sim report fail.
  std::vector<crypto::PublicKey> sim_platform_keys;
  // When non-null, every check appends a step as it passes; a failing check
  // appends its step with the error detail before returning.
  std::vector<CheckStep>* trace = nullptr;
};

}  // namespace cllm::attestation
