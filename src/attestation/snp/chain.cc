// chain.cc — pinned AMD roots and CRL checks (see chain.h).
#include "attestation/snp/chain.h"

#include <algorithm>

#include "crypto/digest.h"

namespace cllm::attestation::snp {
namespace {

// SHA-256 of the DER ARK certificates. Published by AMD in the KDS
// cert_chain of each product (https://kdsintf.amd.com/vcek/v1/<Product>/cert_chain,
// last certificate); identical in google/go-sev-guest and virtee/sev.
constexpr std::array<PinnedArk, 3> kPinnedArks = {{
    {Product::kMilan, {0x69, 0xd0, 0x63, 0xb4, 0x53, 0x44, 0xd2, 0x6a, 0x2e, 0x94, 0xe1, 0xf4, 0x21, 0x0d, 0xe4, 0x9e,
                       0xf5, 0x55, 0x30, 0x82, 0x87, 0xd4, 0xc1, 0x74, 0x44, 0x5c, 0x95, 0x63, 0x9a, 0x54, 0x0b, 0xcd}},
    {Product::kGenoa, {0x4c, 0x65, 0x98, 0xd1, 0x9c, 0x18, 0x71, 0x9c, 0x5d, 0xfd, 0x4a, 0x7d, 0x33, 0x5f, 0x67, 0x4e,
                       0x5b, 0xfe, 0x1d, 0x8f, 0x80, 0x0c, 0xea, 0x2c, 0xf2, 0x70, 0xc1, 0x0d, 0x10, 0x3d, 0xb2, 0xf1}},
    {Product::kTurin, {0x1f, 0x08, 0x41, 0x61, 0xa4, 0x4b, 0xb6, 0xd9, 0x37, 0x78, 0xa9, 0x04, 0x87, 0x7d, 0x48, 0x19,
                       0xca, 0xfa, 0x5d, 0x05, 0xef, 0x41, 0x93, 0xb2, 0xde, 0xd9, 0xdd, 0x9c, 0x73, 0xdd, 0x3f, 0x6a}},
}};

}  // namespace

const std::array<PinnedArk, 3>& PinnedArks() { return kPinnedArks; }

Anchors SelectAnchors(const std::vector<PooledCert>& pool, const std::vector<crypto::Certificate>& roots_override,
                      Product product) {
  Anchors out;
  auto consider = [&](const crypto::Certificate& c, std::optional<Product> p) {
    if (!p) {
      const std::string cn = c.SubjectCommonName();
      if (cn.rfind("ARK-", 0) == 0) p = ParseProductName(cn.substr(4));
    }
    if (!p || *p == product) {
      out.certs.push_back(c);
    } else {
      out.other_products += (out.other_products.empty() ? "" : ", ") + c.SubjectCommonName();
    }
  };
  if (!roots_override.empty()) {
    for (const auto& r : roots_override) consider(r, std::nullopt);
    return out;
  }
  // A root is trusted only by its digest: the subject name is attacker-chosen.
  for (const auto& p : pool) {
    if (!p.cert.IsSelfIssued()) continue;
    const auto digest = crypto::Sha256(p.cert.Der());
    auto pin = std::find_if(kPinnedArks.begin(), kPinnedArks.end(),
                            [&](const PinnedArk& a) { return a.der_sha256 == digest; });
    if (pin == kPinnedArks.end()) {
      out.unpinned_root = true;
      continue;
    }
    consider(p.cert, pin->product);
  }
  return out;
}

AttestResult<size_t> CheckCrls(const std::vector<crypto::Crl>& crls, const std::vector<crypto::Certificate>& issuers,
                               const std::vector<crypto::Certificate>& subjects, crypto::TimePoint at) {
  size_t used = 0;
  for (const auto& crl : crls) {
    auto issuer = std::find_if(issuers.begin(), issuers.end(),
                               [&](const crypto::Certificate& c) { return c.Subject() == crl.Issuer(); });
    if (issuer == issuers.end()) continue;  // e.g. another product's CRL
    auto key = issuer->GetPublicKey();
    if (!key.ok() || !crl.VerifySignedBy(*key).ok()) {
      return MakeError(AttestErrc::kBadSignature,
                       "CRL of " + crl.Issuer() + " is not signed by that (verified) certificate");
    }
    // RFC 5280 §5.1.2.4/5: a CRL speaks for [thisUpdate, nextUpdate].
    if (crl.ThisUpdate() > at) {
      return MakeError(AttestErrc::kCollateralInvalid, "CRL of " + crl.Issuer() + " is not valid yet (thisUpdate)");
    }
    if (auto next = crl.NextUpdate(); next && *next < at) {
      return MakeError(AttestErrc::kCollateralExpired, "CRL of " + crl.Issuer() + " is past its nextUpdate");
    }
    for (const auto& c : subjects) {
      if (crl.IsRevoked(c)) {
        return MakeError(AttestErrc::kRevoked, c.SubjectCommonName() + " serial " + c.SerialHex() +
                                                   " is revoked by the CRL of " + crl.Issuer());
      }
    }
    ++used;
  }
  return used;
}

}  // namespace cllm::attestation::snp
