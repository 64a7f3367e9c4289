// certs.cc — pool certificates from tables, PEM bundles and DER files.
#include "attestation/snp/certs.h"

#include <string_view>

namespace cllm::attestation::snp {
namespace {

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
    auto cert = crypto::Certificate::FromDer(e.data);
    if (!cert.ok()) {
      return MakeError(AttestErrc::kMalformed, std::string("certificate table ") + CertKindName(e.kind) +
                                                   " entry is not a DER certificate: " + cert.detail());
    }
    AddUnique(std::move(cert).value(), e.kind, pool);
  }
  return OkStatus();
}

AttestStatus AddCertFile(ByteSpan file, std::vector<PooledCert>* pool, std::vector<crypto::Crl>* crls) {
  std::string_view text = AsChars(file);
  const bool pem_certs = text.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos;
  const bool pem_crl = text.find("-----BEGIN X509 CRL-----") != std::string_view::npos;
  if (pem_certs || pem_crl) {
    if (pem_certs) {
      auto bundle = crypto::Certificate::ParsePemBundle(text);
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
  auto der = crypto::Certificate::FromDer(file);
  if (!der.ok()) {
    if (auto crl = crypto::Crl::FromDer(file); crl.ok()) {
      crls->push_back(std::move(crl).value());
      return OkStatus();
    }
    return MakeError(AttestErrc::kCollateralInvalid,
                     "certificate file is neither PEM, DER (certificate or CRL) nor an SNP certificate table: " + der.detail());
  }
  AddUnique(std::move(der).value(), CertKind::kOther, pool);
  return OkStatus();
}

}  // namespace cllm::attestation::snp
