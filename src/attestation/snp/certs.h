// certs.h — gathering the certificates an SNP verification may use.
//
// Certificates arrive as the extended report's certificate table (appended
// to the report, or a --certs file), PEM bundles (AMD KDS cert_chain: ASK or
// ASVK, then ARK), or single DER certificates (a KDS VCEK download). They are
// pooled without trusting any of them; the verifier picks the VCEK/VLEK by
// kind and key type and accepts an ARK only by its pinned digest.
#pragma once

#include <vector>

#include "attestation/errors.h"
#include "attestation/snp/cert_table.h"
#include "base/bytes.h"
#include "crypto/x509.h"

namespace cllm::attestation::snp {

struct PooledCert {
  crypto::Certificate cert;
  // The certificate table's GUID kind, or kOther for files (kind then comes
  // from the subject).
  CertKind table_kind = CertKind::kOther;
};

// AddCertTable adds every certificate of a table; non-certificate entries
// (unknown GUIDs, e.g. a CRL) are skipped. kMalformed if the table or a
// VCEK/VLEK/ASK/ARK entry's DER is malformed.
[[nodiscard]] AttestStatus AddCertTable(ByteSpan table, std::vector<PooledCert>* pool);
// AddCertFile adds the certificates of one --certs file (a PEM bundle, one
// DER certificate or a certificate table) to `pool`, or its CRL (PEM or DER;
// AMD KDS .../crl, signed by the ARK) to `crls`. kCollateralInvalid if it is
// none of these.
[[nodiscard]] AttestStatus AddCertFile(ByteSpan file, std::vector<PooledCert>* pool,
                                       std::vector<crypto::Crl>* crls);

}  // namespace cllm::attestation::snp
