// x509.h — X.509 certificates and CRLs, extension lookup, and chain
// verification against pinned roots at an injected time.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "crypto/error.h"
#include "crypto/keys.h"

typedef struct x509_st X509;
typedef struct X509_crl_st X509_CRL;

namespace cllm::crypto {

using TimePoint = std::chrono::system_clock::time_point;

class Certificate {
 public:
  static CryptoResult<Certificate> FromDer(ByteSpan der);
  // FromPem parses the first certificate in `pem`.
  static CryptoResult<Certificate> FromPem(std::string_view pem);
  // ParsePemBundle parses every certificate in `pem`, in order; kParse if
  // there is none or one is malformed.
  static CryptoResult<std::vector<Certificate>> ParsePemBundle(std::string_view pem);

  Bytes Der() const;
  std::string ToPem() const;
  // Subject / Issuer in RFC 2253 form ("CN=SEV-Milan,OU=Engineering,...").
  std::string Subject() const;
  std::string Issuer() const;
  // SubjectCommonName returns the CN attribute or "".
  std::string SubjectCommonName() const;
  // MatchesHost says whether the certificate is for `host` (a DNS name
  // matched against the subjectAltName DNS entries, wildcards as RFC 6125
  // allows, or an IP address against the IP entries).
  bool MatchesHost(std::string_view host) const;
  std::string SerialHex() const;
  TimePoint NotBefore() const;
  TimePoint NotAfter() const;
  // GetPublicKey fails with kParse when the SubjectPublicKeyInfo cannot be
  // decoded (an untrusted certificate can carry any bytes there).
  CryptoResult<PublicKey> GetPublicKey() const;
  // TbsDer returns the DER of the TBSCertificate (what the issuer signed);
  // SignatureValue returns the signature BIT STRING contents.
  Bytes TbsDer() const;
  Bytes SignatureValue() const;
  // SignatureAlgorithm names the signature algorithm ("RSASSA-PSS", "ecdsa-with-SHA256").
  std::string SignatureAlgorithm() const;

  // Extension returns the extnValue contents (the DER inside the OCTET
  // STRING) of the extension with dotted `oid`, or nullopt if absent.
  std::optional<Bytes> Extension(std::string_view oid) const;
  // ExtensionOids lists the dotted OIDs of every extension, in order.
  std::vector<std::string> ExtensionOids() const;

  // VerifySignedBy checks this certificate's signature with `issuer_key`
  // (any algorithm OpenSSL supports, RSA-PSS included).
  CryptoStatus VerifySignedBy(const PublicKey& issuer_key) const;
  bool IsSelfIssued() const;
  bool operator==(const Certificate& other) const;

  X509* get() const { return x509_.get(); }
  explicit Certificate(X509* owned);

 private:
  std::shared_ptr<X509> x509_;
};

class Crl {
 public:
  static CryptoResult<Crl> FromDer(ByteSpan der);
  static CryptoResult<Crl> FromPem(std::string_view pem);
  // Der returns the DER encoding (as published, e.g. AMD KDS .../crl).
  Bytes Der() const;
  std::string Issuer() const;
  TimePoint ThisUpdate() const;
  std::optional<TimePoint> NextUpdate() const;
  bool IsRevoked(const Certificate& cert) const;
  CryptoStatus VerifySignedBy(const PublicKey& issuer_key) const;
  X509_CRL* get() const { return crl_.get(); }
  explicit Crl(X509_CRL* owned);

 private:
  std::shared_ptr<X509_CRL> crl_;
};

struct ChainOptions {
  TimePoint at;                  // the time at which validity is checked (injected clock)
  std::vector<Crl> crls;         // CRLs to consult
  bool require_crls = false;     // every certificate's issuer must have a CRL (PCK chains)
  // The chain must be fit to authenticate a TLS server (RFC 5280 extended
  // key usage serverAuth where a certificate restricts it): for ordinary web
  // PKI, not for attestation chains, whose certificates say nothing of TLS.
  bool tls_server = false;
};

// VerifyChain builds and verifies a path leaf → intermediates → one of
// `roots` (trust anchors; pinned, never the system store) at options.at.
// Errors: kExpired / kNotYetValid / kRevoked / kBadSignature / kChainInvalid,
// with a detail naming the certificate (depth and subject) that failed.
CryptoStatus VerifyChain(const Certificate& leaf, const std::vector<Certificate>& intermediates,
                         const std::vector<Certificate>& roots, const ChainOptions& options);

}  // namespace cllm::crypto
