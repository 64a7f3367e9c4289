#include "crypto/cert_builder.h"

#include <openssl/x509v3.h>

#include "crypto/ossl.h"
#include "crypto/random.h"

namespace cllm::crypto {
namespace {

const EVP_MD* SigningDigest(const PrivateKey& key) {
  switch (key.type()) {
    case KeyType::kEcP384: return EVP_sha384();
    case KeyType::kSm2: return EVP_sm3();
    default: return EVP_sha256();
  }
}

bool SetTime(ASN1_TIME* field, TimePoint t) {
  return ASN1_TIME_set(field, std::chrono::system_clock::to_time_t(t)) != nullptr;
}

// AddV3 adds an extension given in OpenSSL's config syntax ("CA:TRUE").
bool AddV3(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool AddRaw(X509* cert, const CertExtension& e) {
  std::unique_ptr<ASN1_OBJECT, ossl::Deleter<ASN1_OBJECT_free>> obj(OBJ_txt2obj(e.oid.c_str(), 1));
  std::unique_ptr<ASN1_OCTET_STRING, ossl::Deleter<ASN1_OCTET_STRING_free>> data(ASN1_OCTET_STRING_new());
  if (!obj || !data ||
      ASN1_OCTET_STRING_set(data.get(), e.value.data(), static_cast<int>(e.value.size())) != 1) {
    return false;
  }
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), e.critical ? 1 : 0, data.get());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

}  // namespace

CryptoResult<Certificate> IssueCertificate(const CertSpec& spec, const PublicKey& subject_key,
                                           const PrivateKey& issuer_key,
                                           const Certificate* issuer) {
  if (spec.not_after <= spec.not_before) {
    return MakeError(CryptoErrc::kInvalidArgument, "certificate validity window is empty");
  }
  ossl::X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return OpenSslError(CryptoErrc::kInternal, "X509_new");

  Bytes serial = spec.serial.empty() ? RandomBytes(16) : spec.serial;
  serial[0] &= 0x7f;  // a positive INTEGER
  ossl::BnPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) {
    return OpenSslError(CryptoErrc::kInternal, "serial");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                                 -1, -1, 0) != 1) {
    return OpenSslError(CryptoErrc::kInvalidArgument, "common name");
  }
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer->get()) : name);
  if (!SetTime(X509_getm_notBefore(cert.get()), spec.not_before) ||
      !SetTime(X509_getm_notAfter(cert.get()), spec.not_after) ||
      X509_set_pubkey(cert.get(), subject_key.get()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "validity or key");
  }

  X509* issuer_x509 = issuer ? issuer->get() : cert.get();
  bool ok = AddV3(cert.get(), issuer_x509, NID_basic_constraints,
                  spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
            AddV3(cert.get(), issuer_x509, NID_key_usage,
                  spec.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") &&
            AddV3(cert.get(), issuer_x509, NID_subject_key_identifier, "hash");
  if (ok && issuer != nullptr) ok = AddV3(cert.get(), issuer_x509, NID_authority_key_identifier, "keyid");
  if (ok && !spec.dns_names.empty()) {
    std::string san;
    for (const auto& dns : spec.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
    ok = AddV3(cert.get(), issuer_x509, NID_subject_alt_name, san.c_str());
  }
  for (const auto& ext : spec.extensions) ok = ok && AddRaw(cert.get(), ext);
  if (!ok) return OpenSslError(CryptoErrc::kInvalidArgument, "certificate extension");

  if (X509_sign(cert.get(), issuer_key.get(), SigningDigest(issuer_key)) <= 0) {
    return OpenSslError(CryptoErrc::kInternal, "certificate signing");
  }
  return Certificate(cert.release());
}

CryptoResult<Crl> IssueCrl(const Certificate& issuer, const PrivateKey& issuer_key,
                           const std::vector<Certificate>& revoked, TimePoint this_update,
                           TimePoint next_update) {
  X509_CRL* raw = X509_CRL_new();
  if (raw == nullptr) return OpenSslError(CryptoErrc::kInternal, "X509_CRL_new");
  Crl crl(raw);
  ASN1_TIME* last = ASN1_TIME_new();
  ASN1_TIME* next = ASN1_TIME_new();
  bool ok = X509_CRL_set_version(raw, 1) == 1 &&
            X509_CRL_set_issuer_name(raw, X509_get_subject_name(issuer.get())) == 1 && last &&
            next && SetTime(last, this_update) && SetTime(next, next_update) &&
            X509_CRL_set1_lastUpdate(raw, last) == 1 && X509_CRL_set1_nextUpdate(raw, next) == 1;
  ASN1_TIME_free(last);
  ASN1_TIME_free(next);
  for (const auto& cert : revoked) {
    if (!ok) break;
    X509_REVOKED* rev = X509_REVOKED_new();
    ASN1_TIME* when = ASN1_TIME_new();
    ok = rev && when && SetTime(when, this_update) &&
         X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(cert.get())) == 1 &&
         X509_REVOKED_set_revocationDate(rev, when) == 1 && X509_CRL_add0_revoked(raw, rev) == 1;
    ASN1_TIME_free(when);
    if (!ok) X509_REVOKED_free(rev);
  }
  if (!ok || X509_CRL_sort(raw) != 1 || X509_CRL_sign(raw, issuer_key.get(), SigningDigest(issuer_key)) <= 0) {
    return OpenSslError(CryptoErrc::kInternal, "CRL creation");
  }
  return crl;
}

}  // namespace cllm::crypto
