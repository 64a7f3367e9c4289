// cert_builder.h — issuing X.509 certificates: self-signed RA-TLS leaf
// certificates carrying attestation evidence in an extension, and small test
// hierarchies (CA → leaf, CRLs) for chain and revocation tests.
#pragma once

#include <string>
#include <vector>

#include "crypto/keys.h"
#include "crypto/x509.h"

namespace cllm::crypto {

struct CertExtension {
  std::string oid;   // dotted, e.g. "2.23.133.5.4.9"
  bool critical = false;
  Bytes value;       // the extnValue contents (DER), wrapped in an OCTET STRING by the builder
};

struct CertSpec {
  std::string common_name;
  TimePoint not_before;
  TimePoint not_after;
  Bytes serial;                         // big-endian; empty → 16 random bytes
  bool is_ca = false;                   // basicConstraints CA:TRUE, keyCertSign|cRLSign
  std::vector<std::string> dns_names;   // subjectAltName DNS entries
  std::vector<CertExtension> extensions;
};

// IssueCertificate creates a certificate for `subject_key` per `spec`, signed
// by `issuer_key` (SHA-256 for P-256, SHA-384 for P-384; SM3 for SM2).
// `issuer` is the issuing certificate, or nullptr for a self-signed one
// (then `issuer_key` must be the subject's private key).
CryptoResult<Certificate> IssueCertificate(const CertSpec& spec, const PublicKey& subject_key,
                                           const PrivateKey& issuer_key,
                                           const Certificate* issuer);

// IssueCrl creates a CRL by `issuer` listing `revoked` certificates.
CryptoResult<Crl> IssueCrl(const Certificate& issuer, const PrivateKey& issuer_key,
                           const std::vector<Certificate>& revoked, TimePoint this_update,
                           TimePoint next_update);

}  // namespace cllm::crypto
