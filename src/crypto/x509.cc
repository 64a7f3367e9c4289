#include "crypto/x509.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>

#include "crypto/ossl.h"

namespace cllm::crypto {
namespace {

// The latest and earliest times a TimePoint (int64 nanoseconds) holds with
// years to spare, so callers may add or subtract margins: ±2^33 s (the years
// 1697 to 2242). Certificates say later: RFC 5280's 99991231235959Z means
// "no expiry".
constexpr int64_t kTimeBoundS = int64_t{1} << 33;

// FromAsn1Time converts `t`, clamped to ±kTimeBoundS (a date past 2242 is
// "never" in either direction, not a wrapped one), or returns `unreadable`:
// the caller's fail-closed value (a start that never comes, an end long past).
TimePoint FromAsn1Time(const ASN1_TIME* t, TimePoint unreadable) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return unreadable;
  const int64_t s = std::clamp<int64_t>(timegm(&tm), -kTimeBoundS, kTimeBoundS);  // a 64-bit time_t holds year 9999
  return TimePoint(std::chrono::seconds(s));
}

const TimePoint kNever = TimePoint(std::chrono::seconds(kTimeBoundS));  // a start that never comes
const TimePoint kLongPast = TimePoint(std::chrono::seconds(-kTimeBoundS));  // an end long past

std::string NameToString(const X509_NAME* name) {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::shared_ptr<X509> ShareX509(X509* x) { return std::shared_ptr<X509>(x, X509_free); }

}  // namespace

// ---------------------------------------------------------------------------
// Certificate
// ---------------------------------------------------------------------------

Certificate::Certificate(X509* owned) : x509_(ShareX509(owned)) {}

CryptoResult<Certificate> Certificate::FromDer(ByteSpan der) {
  const uint8_t* p = der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (x == nullptr) return OpenSslError(CryptoErrc::kParse, "invalid DER certificate");
  if (p != der.data() + der.size()) {
    X509_free(x);
    return MakeError(CryptoErrc::kParse, "trailing bytes after DER certificate");
  }
  return Certificate(x);
}

CryptoResult<Certificate> Certificate::FromPem(std::string_view pem) {
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (x == nullptr) return OpenSslError(CryptoErrc::kParse, "invalid PEM certificate");
  return Certificate(x);
}

CryptoResult<std::vector<Certificate>> Certificate::ParsePemBundle(std::string_view pem) {
  std::vector<Certificate> out;
  // Count the BEGIN markers so a malformed certificate in the middle is an
  // error rather than a silently shorter bundle.
  size_t expected = 0;
  for (size_t pos = pem.find("-----BEGIN CERTIFICATE-----"); pos != std::string_view::npos;
       pos = pem.find("-----BEGIN CERTIFICATE-----", pos + 1)) {
    ++expected;
  }
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();
  if (out.empty()) return MakeError(CryptoErrc::kParse, "no certificate in PEM bundle");
  if (out.size() != expected) {
    return MakeError(CryptoErrc::kParse, "PEM bundle has " + std::to_string(expected) +
                                             " certificates but only " + std::to_string(out.size()) +
                                             " parse");
  }
  return out;
}

Bytes Certificate::Der() const {
  int len = i2d_X509(x509_.get(), nullptr);
  CLLM_CHECK(len > 0);
  Bytes out(static_cast<size_t>(len));
  uint8_t* p = out.data();
  CLLM_CHECK(i2d_X509(x509_.get(), &p) == len);
  return out;
}

std::string Certificate::ToPem() const {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  CLLM_CHECK(PEM_write_bio_X509(bio.get(), x509_.get()) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string Certificate::Subject() const { return NameToString(X509_get_subject_name(x509_.get())); }
std::string Certificate::Issuer() const { return NameToString(X509_get_issuer_name(x509_.get())); }

std::string Certificate::SubjectCommonName() const {
  X509_NAME* name = X509_get_subject_name(x509_.get());
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return "";
  ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, s);
  if (len < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

bool Certificate::MatchesHost(std::string_view host) const {
  if (host.empty()) return false;
  const std::string h(host);
  if (X509_check_ip_asc(x509_.get(), h.c_str(), 0) == 1) return true;
  return X509_check_host(x509_.get(), h.data(), h.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
}

std::string Certificate::SerialHex() const {
  ossl::BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x509_.get()), nullptr));
  if (!bn) return "";
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex ? hex : "");
  OPENSSL_free(hex);
  return out;
}

TimePoint Certificate::NotBefore() const { return FromAsn1Time(X509_get0_notBefore(x509_.get()), kNever); }
TimePoint Certificate::NotAfter() const { return FromAsn1Time(X509_get0_notAfter(x509_.get()), kLongPast); }

CryptoResult<PublicKey> Certificate::GetPublicKey() const {
  EVP_PKEY* pkey = X509_get_pubkey(x509_.get());  // takes a reference
  if (pkey == nullptr) return OpenSslError(CryptoErrc::kParse, "undecodable certificate public key");
  return PublicKey::Checked(pkey);
}

Bytes Certificate::TbsDer() const {
  int len = i2d_re_X509_tbs(x509_.get(), nullptr);
  CLLM_CHECK(len > 0);
  Bytes out(static_cast<size_t>(len));
  uint8_t* p = out.data();
  CLLM_CHECK(i2d_re_X509_tbs(x509_.get(), &p) == len);
  return out;
}

Bytes Certificate::SignatureValue() const {
  const ASN1_BIT_STRING* sig = nullptr;
  X509_get0_signature(&sig, nullptr, x509_.get());
  const uint8_t* p = ASN1_STRING_get0_data(sig);
  return Bytes(p, p + ASN1_STRING_length(sig));
}

std::string Certificate::SignatureAlgorithm() const {
  int nid = X509_get_signature_nid(x509_.get());
  const char* name = OBJ_nid2ln(nid);
  return name ? name : "unknown";
}

std::optional<Bytes> Certificate::Extension(std::string_view oid) const {
  std::string oid_str(oid);
  std::unique_ptr<ASN1_OBJECT, ossl::Deleter<ASN1_OBJECT_free>> obj(OBJ_txt2obj(oid_str.c_str(), 1));
  if (!obj) {
    ERR_clear_error();
    return std::nullopt;
  }
  int idx = X509_get_ext_by_OBJ(x509_.get(), obj.get(), -1);
  if (idx < 0) return std::nullopt;
  ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(x509_.get(), idx));
  const uint8_t* p = ASN1_STRING_get0_data(data);
  return Bytes(p, p + ASN1_STRING_length(data));
}

std::vector<std::string> Certificate::ExtensionOids() const {
  std::vector<std::string> out;
  int n = X509_get_ext_count(x509_.get());
  for (int i = 0; i < n; ++i) {
    char buf[128];
    OBJ_obj2txt(buf, sizeof buf, X509_EXTENSION_get_object(X509_get_ext(x509_.get(), i)), 1);
    out.emplace_back(buf);
  }
  return out;
}

CryptoStatus Certificate::VerifySignedBy(const PublicKey& issuer_key) const {
  if (X509_verify(x509_.get(), issuer_key.get()) == 1) return OkStatus();
  ERR_clear_error();
  return MakeError(CryptoErrc::kBadSignature, "certificate '" + Subject() +
                                                  "' is not signed by the given key");
}

bool Certificate::IsSelfIssued() const {
  return X509_NAME_cmp(X509_get_subject_name(x509_.get()), X509_get_issuer_name(x509_.get())) == 0;
}

bool Certificate::operator==(const Certificate& other) const {
  return X509_cmp(x509_.get(), other.x509_.get()) == 0;
}

// ---------------------------------------------------------------------------
// Crl
// ---------------------------------------------------------------------------

Crl::Crl(X509_CRL* owned) : crl_(owned, X509_CRL_free) {}

CryptoResult<Crl> Crl::FromDer(ByteSpan der) {
  const uint8_t* p = der.data();
  X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()));
  if (crl == nullptr) return OpenSslError(CryptoErrc::kParse, "invalid DER CRL");
  if (p != der.data() + der.size()) {
    X509_CRL_free(crl);
    return MakeError(CryptoErrc::kParse, "trailing bytes after DER CRL");
  }
  return Crl(crl);
}

CryptoResult<Crl> Crl::FromPem(std::string_view pem) {
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
  if (crl == nullptr) return OpenSslError(CryptoErrc::kParse, "invalid PEM CRL");
  return Crl(crl);
}

Bytes Crl::Der() const {
  int len = i2d_X509_CRL(crl_.get(), nullptr);
  CLLM_CHECK(len > 0);
  Bytes out(static_cast<size_t>(len));
  uint8_t* p = out.data();
  CLLM_CHECK(i2d_X509_CRL(crl_.get(), &p) == len);
  return out;
}

std::string Crl::Issuer() const { return NameToString(X509_CRL_get_issuer(crl_.get())); }
TimePoint Crl::ThisUpdate() const { return FromAsn1Time(X509_CRL_get0_lastUpdate(crl_.get()), kNever); }
std::optional<TimePoint> Crl::NextUpdate() const {
  const ASN1_TIME* t = X509_CRL_get0_nextUpdate(crl_.get());
  if (t == nullptr) return std::nullopt;
  return FromAsn1Time(t, kLongPast);
}

bool Crl::IsRevoked(const Certificate& cert) const {
  X509_REVOKED* rev = nullptr;
  return X509_CRL_get0_by_cert(crl_.get(), &rev, cert.get()) == 1;
}

CryptoStatus Crl::VerifySignedBy(const PublicKey& issuer_key) const {
  if (X509_CRL_verify(crl_.get(), issuer_key.get()) == 1) return OkStatus();
  ERR_clear_error();
  return MakeError(CryptoErrc::kBadSignature, "CRL of '" + Issuer() + "' is not signed by the given key");
}

// ---------------------------------------------------------------------------
// Chain verification
// ---------------------------------------------------------------------------

namespace {

// Without require_crls, a certificate whose issuer published no CRL is
// accepted; every CRL that was given is still enforced.
int ChainCallback(int ok, X509_STORE_CTX* ctx) {
  if (ok) return ok;
  auto* options = static_cast<const ChainOptions*>(X509_STORE_CTX_get_app_data(ctx));
  int err = X509_STORE_CTX_get_error(ctx);
  if (options && !options->require_crls && err == X509_V_ERR_UNABLE_TO_GET_CRL) {
    X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return 1;
  }
  return ok;
}

CryptoErrc MapVerifyError(int err) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return CryptoErrc::kExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CRL_NOT_YET_VALID:
      return CryptoErrc::kNotYetValid;
    case X509_V_ERR_CERT_REVOKED:
      return CryptoErrc::kRevoked;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
      return CryptoErrc::kBadSignature;
    default:
      return CryptoErrc::kChainInvalid;
  }
}

}  // namespace

CryptoStatus VerifyChain(const Certificate& leaf, const std::vector<Certificate>& intermediates,
                         const std::vector<Certificate>& roots, const ChainOptions& options) {
  if (roots.empty()) return MakeError(CryptoErrc::kChainInvalid, "no trusted roots given");
  ossl::X509StorePtr store(X509_STORE_new());
  ossl::X509StackPtr chain(sk_X509_new_null());
  ossl::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !chain || !ctx) return OpenSslError(CryptoErrc::kInternal, "X509 store");
  for (const auto& root : roots) {
    if (X509_STORE_add_cert(store.get(), root.get()) != 1) ERR_clear_error();  // duplicates
  }
  for (const auto& cert : intermediates) sk_X509_push(chain.get(), cert.get());
  for (const auto& crl : options.crls) X509_STORE_add_crl(store.get(), crl.get());
  X509_STORE_set_verify_cb(store.get(), ChainCallback);

  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), chain.get()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "X509_STORE_CTX_init");
  }
  X509_STORE_CTX_set_app_data(ctx.get(), const_cast<ChainOptions*>(&options));
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(options.at));
  unsigned long flags = X509_V_FLAG_USE_CHECK_TIME;
  if (!options.crls.empty() || options.require_crls) {
    flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
  }
  X509_VERIFY_PARAM_set_flags(param, flags);
  if (options.tls_server && X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "X509_VERIFY_PARAM_set_purpose");
  }

  if (X509_verify_cert(ctx.get()) == 1) {
    ERR_clear_error();
    return OkStatus();
  }
  int err = X509_STORE_CTX_get_error(ctx.get());
  int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  X509* bad = X509_STORE_CTX_get_current_cert(ctx.get());
  std::string who = bad ? NameToString(X509_get_subject_name(bad)) : "?";
  ERR_clear_error();
  return MakeError(MapVerifyError(err), "certificate at depth " + std::to_string(depth) + " (" + who +
                                            "): " + X509_verify_cert_error_string(err));
}

}  // namespace cllm::crypto
