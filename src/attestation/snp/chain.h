// chain.h — trust anchors (pinned AMD ARKs) and CRL checks for SNP chains.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "attestation/errors.h"
#include "attestation/snp/certs.h"
#include "attestation/snp/report.h"
#include "crypto/x509.h"

namespace cllm::attestation::snp {

// The SHA-256 of each product's ARK certificate (DER), as served by AMD KDS
// at https://kdsintf.amd.com/vcek/v1/{Milan,Genoa,Turin}/cert_chain (the
// same ARK ends .../vlek/v1/.../cert_chain).
struct PinnedArk {
  Product product;
  std::array<uint8_t, 32> der_sha256;
};
const std::array<PinnedArk, 3>& PinnedArks();

struct Anchors {
  std::vector<crypto::Certificate> certs;  // roots usable for `product`
  std::string other_products;              // CNs of acceptable roots of other products
  bool unpinned_root = false;              // a self-signed certificate matched no pin
};

// SelectAnchors picks the trust anchors for `product`: the supplied
// self-signed certificates whose digest is a pin of that product, or, when
// `roots_override` is non-empty (tests), those roots (a root whose CN is
// "ARK-<Product>" counts for that product only; any other CN for all).
Anchors SelectAnchors(const std::vector<PooledCert>& pool, const std::vector<crypto::Certificate>& roots_override,
                      Product product);

// CheckCrls applies every CRL issued by one of `issuers` (verified chain
// certificates): signature by that issuer (kBadSignature), thisUpdate <= at
// (kCollateralInvalid), at <= nextUpdate (kCollateralExpired), none of
// `subjects` listed (kRevoked). CRLs of other issuers are skipped. Returns
// how many CRLs applied.
[[nodiscard]] AttestResult<size_t> CheckCrls(const std::vector<crypto::Crl>& crls,
                                             const std::vector<crypto::Certificate>& issuers,
                                             const std::vector<crypto::Certificate>& subjects, crypto::TimePoint at);

}  // namespace cllm::attestation::snp
