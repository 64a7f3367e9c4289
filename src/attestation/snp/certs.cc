// certs.cc — pool certificates from tables, PEM bundles and DER files.
#include "attestation/snp/certs.h"

#include <map>
#include <mutex>
#include <string_view>

#include "crypto/digest.h"

namespace cllm::attestation::snp {
namespace {

// ParseCache remembers the certificates parsed from recent certificate
// files, keyed by the SHA-256 of the file's bytes. A service verifying the
// same VCEK and AMD chain on every request (cllm-trust) otherwise spends a
// third of each attestation decoding the same PEM/DER into X509 objects
// (OpenSSL 3's decoders; `perf`, docs/performance.md). Parsing is a pure
// function of the bytes and the certificates are shared read-only
// (Certificate holds a reference-counted X509), so a hit gives exactly what
// a parse would. Verification — signatures, chain, validity, CRLs — still
// runs on every call. Only successful parses of small files are kept, and
// at most kMaxEntries of them (the map is emptied when full).
class ParseCache {
 public:
  static constexpr size_t kMaxFileBytes = 16 << 10;
  static constexpr size_t kMaxEntries = 64;

  template <typename Parse>
  crypto::CryptoResult<std::vector<crypto::Certificate>> Get(ByteSpan file, Parse parse) {
    if (file.size() > kMaxFileBytes) return parse();
    const auto digest = crypto::Sha256(file);
    const std::string key(digest.begin(), digest.end());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    }
    auto parsed = parse();  // outside the lock: parsing is the expensive part
    if (!parsed.ok()) return parsed;
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_.emplace(key, *parsed);
    return parsed;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<crypto::Certificate>> entries_;
};

ParseCache& Cache() {
  static ParseCache* cache = new ParseCache();  // never destroyed: used by detached threads at exit
  return *cache;
}

crypto::CryptoResult<std::vector<crypto::Certificate>> ParseDerOne(ByteSpan der) {
  return Cache().Get(der, [der]() -> crypto::CryptoResult<std::vector<crypto::Certificate>> {
    auto c = crypto::Certificate::FromDer(der);
    if (!c.ok()) return std::move(c).error();
    return std::vector<crypto::Certificate>{std::move(c).value()};
  });
}

void AddUnique(crypto::Certificate cert, CertKind kind, std::vector<PooledCert>* pool) {
  for (auto& p : *pool) {
    if (p.cert == cert) {
      if (p.table_kind == CertKind::kOther) p.table_kind = kind;
      return;
    }
  }
  pool->push_back({std::move(cert), kind});
}

}  // namespace

AttestStatus AddCertTable(ByteSpan table, std::vector<PooledCert>* pool) {
  CLLM_ASSIGN_OR_RETURN(auto entries, ParseCertTable(table));
  for (auto& e : entries) {
    if (e.kind == CertKind::kOther) continue;
    auto cert = ParseDerOne(e.data);
    if (!cert.ok()) {
      return MakeError(AttestErrc::kMalformed, std::string("certificate table ") + CertKindName(e.kind) +
                                                   " entry is not a DER certificate: " + cert.detail());
    }
    AddUnique(cert->front(), e.kind, pool);
  }
  return OkStatus();
}

AttestStatus AddCertFile(ByteSpan file, std::vector<PooledCert>* pool, std::vector<crypto::Crl>* crls) {
  std::string_view text = AsChars(file);
  const bool pem_certs = text.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos;
  const bool pem_crl = text.find("-----BEGIN X509 CRL-----") != std::string_view::npos;
  if (pem_certs || pem_crl) {
    if (pem_certs) {
      auto bundle = Cache().Get(file, [text] { return crypto::Certificate::ParsePemBundle(text); });
      if (!bundle.ok()) {
        return MakeError(AttestErrc::kCollateralInvalid, "PEM certificate file: " + bundle.detail());
      }
      for (auto& c : *bundle) AddUnique(std::move(c), CertKind::kOther, pool);
    }
    if (pem_crl) {
      auto crl = crypto::Crl::FromPem(text);
      if (!crl.ok()) return MakeError(AttestErrc::kCollateralInvalid, "PEM CRL: " + crl.detail());
      crls->push_back(std::move(crl).value());
    }
    return OkStatus();
  }
  if (LooksLikeCertTable(file)) {
    auto st = AddCertTable(file, pool);
    if (!st.ok()) return MakeError(AttestErrc::kCollateralInvalid, st.detail());
    return OkStatus();
  }
  auto der = ParseDerOne(file);
  if (!der.ok()) {
    if (auto crl = crypto::Crl::FromDer(file); crl.ok()) {
      crls->push_back(std::move(crl).value());
      return OkStatus();
    }
    return MakeError(AttestErrc::kCollateralInvalid,
                     "certificate file is neither PEM, DER (certificate or CRL) nor an SNP certificate table: " + der.detail());
  }
  AddUnique(der->front(), CertKind::kOther, pool);
  return OkStatus();
}

}  // namespace cllm::attestation::snp
