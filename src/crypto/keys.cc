#include "crypto/keys.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstring>

#include "crypto/ossl.h"

namespace cllm::crypto {
namespace {

// ---------------------------------------------------------------------------
// Key type helpers
// ---------------------------------------------------------------------------

std::string GroupName(EVP_PKEY* pkey) {
  char name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) != 1) {
    ERR_clear_error();
    return "";
  }
  (void)len;
  return std::string(name);
}

KeyType TypeOf(EVP_PKEY* pkey) {
  int id = EVP_PKEY_get_base_id(pkey);
  if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) return KeyType::kRsa;
  if (id == EVP_PKEY_SM2 || EVP_PKEY_is_a(pkey, "SM2")) return KeyType::kSm2;
  if (id == EVP_PKEY_EC) {
    std::string g = GroupName(pkey);
    if (g == "prime256v1" || g == "P-256") return KeyType::kEcP256;
    if (g == "secp384r1" || g == "P-384") return KeyType::kEcP384;
    if (g == "SM2") return KeyType::kSm2;
  }
  return KeyType::kOther;
}

size_t CurveBytes(KeyType t) { return t == KeyType::kEcP384 ? 48 : 32; }

std::shared_ptr<EVP_PKEY> Share(EVP_PKEY* p) { return std::shared_ptr<EVP_PKEY>(p, EVP_PKEY_free); }

// DigestVerifyWith runs EVP_DigestVerify with an optional hook that configures
// the EVP_PKEY_CTX (padding, SM2 id).
template <typename Configure>
CryptoStatus DigestVerifyWith(EVP_PKEY* pkey, const EVP_MD* md, ByteSpan msg, ByteSpan sig,
                              Configure configure, bool pre_ctx) {
  // `owned` is declared first so it outlives mctx, which only borrows it.
  ossl::PkeyCtxPtr owned;
  ossl::MdCtxPtr mctx(EVP_MD_CTX_new());
  if (!mctx) return OpenSslError(CryptoErrc::kInternal, "EVP_MD_CTX_new");
  EVP_PKEY_CTX* pctx = nullptr;
  if (pre_ctx) {
    // SM2 needs its distinguishing id set before DigestVerifyInit computes Z.
    pctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
    if (pctx == nullptr || !configure(pctx)) {
      EVP_PKEY_CTX_free(pctx);
      return OpenSslError(CryptoErrc::kInternal, "signature context setup");
    }
    owned.reset(pctx);
    EVP_MD_CTX_set_pkey_ctx(mctx.get(), pctx);  // mctx does not take ownership
  }
  EVP_PKEY_CTX* init_ctx = nullptr;
  if (EVP_DigestVerifyInit(mctx.get(), pre_ctx ? nullptr : &init_ctx, md, nullptr, pkey) != 1) {
    return OpenSslError(CryptoErrc::kInvalidArgument, "key cannot verify with this algorithm");
  }
  if (!pre_ctx && !configure(init_ctx)) {
    return OpenSslError(CryptoErrc::kInvalidArgument, "signature parameters rejected");
  }
  int rc = EVP_DigestVerify(mctx.get(), sig.data(), sig.size(), msg.data(), msg.size());
  if (rc == 1) return OkStatus();
  ERR_clear_error();
  return MakeError(CryptoErrc::kBadSignature, "signature does not verify");
}

CryptoResult<Bytes> DigestSignWith(EVP_PKEY* pkey, const EVP_MD* md, ByteSpan msg,
                                   std::string_view sm2_id) {
  ossl::PkeyCtxPtr pctx;  // outlives mctx, which only borrows it
  ossl::MdCtxPtr mctx(EVP_MD_CTX_new());
  if (!sm2_id.empty()) {
    pctx.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
    if (!pctx || EVP_PKEY_CTX_set1_id(pctx.get(), sm2_id.data(), sm2_id.size()) != 1) {
      return OpenSslError(CryptoErrc::kInternal, "SM2 id");
    }
    EVP_MD_CTX_set_pkey_ctx(mctx.get(), pctx.get());
  }
  size_t len = 0;
  if (EVP_DigestSignInit(mctx.get(), nullptr, md, nullptr, pkey) != 1 ||
      EVP_DigestSign(mctx.get(), nullptr, &len, msg.data(), msg.size()) != 1) {
    return OpenSslError(CryptoErrc::kInvalidArgument, "key cannot sign with this algorithm");
  }
  Bytes sig(len);
  if (EVP_DigestSign(mctx.get(), sig.data(), &len, msg.data(), msg.size()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "sign");
  }
  sig.resize(len);
  return sig;
}

}  // namespace

const char* KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kEcP256: return "EC P-256";
    case KeyType::kEcP384: return "EC P-384";
    case KeyType::kSm2: return "SM2";
    case KeyType::kRsa: return "RSA";
    case KeyType::kOther: return "other";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// PublicKey
// ---------------------------------------------------------------------------

PublicKey::PublicKey(EVP_PKEY* owned) : pkey_(Share(owned)) {}

CryptoResult<PublicKey> PublicKey::FromSpkiDer(ByteSpan der) {
  const uint8_t* p = der.data();
  EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (pkey == nullptr) return OpenSslError(CryptoErrc::kParse, "invalid SubjectPublicKeyInfo");
  if (p != der.data() + der.size()) {
    EVP_PKEY_free(pkey);
    return MakeError(CryptoErrc::kParse, "trailing bytes after SubjectPublicKeyInfo");
  }
  return Checked(pkey);
}


CryptoResult<PublicKey> PublicKey::FromPem(std::string_view pem) {
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (pkey == nullptr) return OpenSslError(CryptoErrc::kParse, "invalid PEM public key");
  return Checked(pkey);
}

CryptoResult<PublicKey> PublicKey::FromEcPoint(KeyType curve, ByteSpan x, ByteSpan y) {
  const char* group = curve == KeyType::kEcP256   ? "P-256"
                      : curve == KeyType::kEcP384 ? "P-384"
                      : curve == KeyType::kSm2    ? "SM2"
                                                  : nullptr;
  if (group == nullptr) return MakeError(CryptoErrc::kInvalidArgument, "not an EC curve");
  size_t n = CurveBytes(curve);
  if (x.size() != n || y.size() != n) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "EC coordinates must be " + std::to_string(n) + " bytes each");
  }
  Bytes point;
  point.reserve(1 + 2 * n);
  point.push_back(0x04);  // uncompressed point (SEC 1 §2.3.3)
  point.insert(point.end(), x.begin(), x.end());
  point.insert(point.end(), y.begin(), y.end());

  std::unique_ptr<OSSL_PARAM_BLD, ossl::Deleter<OSSL_PARAM_BLD_free>> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "EC params");
  }
  std::unique_ptr<OSSL_PARAM, ossl::Deleter<OSSL_PARAM_free>> params(OSSL_PARAM_BLD_to_param(bld.get()));
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, curve == KeyType::kSm2 ? "SM2" : "EC", nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpenSslError(CryptoErrc::kParse, "EC point not on the curve");
  }
  PublicKey key(pkey);
  // fromdata does not always validate the point; a point off the curve must
  // never be used for verification (invalid-curve attacks).
  ossl::PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return OpenSslError(CryptoErrc::kParse, "EC point not on the curve");
  }
  return key;
}

CryptoResult<PublicKey> PublicKey::FromRsaComponents(ByteSpan n, ByteSpan e) {
  ossl::BnPtr bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  ossl::BnPtr bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  if (!bn_n || !bn_e) return OpenSslError(CryptoErrc::kInternal, "BN_bin2bn");
  // Small moduli are factorable and e = 1 or even is no RSA key at all.
  if (BN_num_bits(bn_n.get()) < 2048) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "RSA modulus has " + std::to_string(BN_num_bits(bn_n.get())) + " bits, need >= 2048");
  }
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get()) || BN_num_bits(bn_e.get()) > 64) {
    return MakeError(CryptoErrc::kInvalidArgument, "RSA public exponent must be odd, >= 3 and at most 64 bits");
  }
  std::unique_ptr<OSSL_PARAM_BLD, ossl::Deleter<OSSL_PARAM_BLD_free>> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "RSA params");
  }
  std::unique_ptr<OSSL_PARAM, ossl::Deleter<OSSL_PARAM_free>> params(OSSL_PARAM_BLD_to_param(bld.get()));
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpenSslError(CryptoErrc::kParse, "RSA public key from components");
  }
  return PublicKey(pkey);
}

KeyType PublicKey::type() const { return TypeOf(pkey_.get()); }
int PublicKey::Bits() const { return EVP_PKEY_get_bits(pkey_.get()); }

namespace {

// The SubjectPublicKeyInfo of a named-curve EC key with an uncompressed
// point is a fixed prefix (RFC 5480 §2: AlgorithmIdentifier id-ecPublicKey +
// the curve's OID, then the BIT STRING header) followed by 04 ‖ x ‖ y.
// Writing it directly avoids OpenSSL 3's encoder lookup, which was a fifth
// of cllm-trust's CPU per attestation (docs/performance.md); keys_test
// checks the bytes equal i2d_PUBKEY's.
constexpr uint8_t kSpkiP256Prefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                                       0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
constexpr uint8_t kSpkiP384Prefix[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
                                       0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00};

// EncodesAsNamedUncompressed: the key is written with its curve's name and
// an uncompressed point (each parameter, when absent, has that default).
bool EncodesAsNamedUncompressed(EVP_PKEY* pkey) {
  char v[32] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, v, sizeof v, &len) == 1 &&
      std::string_view(v, len) != OSSL_PKEY_EC_ENCODING_GROUP) {
    return false;
  }
  len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, v, sizeof v, &len) == 1 &&
      std::string_view(v, len) != OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) {
    return false;
  }
  return true;
}

}  // namespace

CryptoResult<PublicKey> PublicKey::Checked(EVP_PKEY* owned) {
  PublicKey key(owned);
  // Parsed is not the same as encodable (explicit curve parameters OpenSSL
  // reads but cannot write back, say): refuse such a key here, where its
  // bytes come in, rather than abort in ToSpkiDer later. A named P-256 or
  // P-384 point is what ToSpkiDer writes itself: no encoder run for it (the
  // encoder lookup is what made every handshake slow, performance.md).
  const KeyType t = key.type();
  if ((t == KeyType::kEcP256 || t == KeyType::kEcP384) && EncodesAsNamedUncompressed(owned) && key.EcPoint().ok()) {
    return key;
  }
  ERR_clear_error();
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(owned, &der);
  OPENSSL_free(der);
  if (len <= 0) return OpenSslError(CryptoErrc::kParse, "a public key that does not encode back to SPKI");
  return key;
}

Bytes PublicKey::ToSpkiDer() const {
  const KeyType t = type();
  if ((t == KeyType::kEcP256 || t == KeyType::kEcP384) && EncodesAsNamedUncompressed(pkey_.get())) {
    if (auto point = EcPoint(); point.ok()) {
      Bytes out;
      if (t == KeyType::kEcP256) {
        out.assign(std::begin(kSpkiP256Prefix), std::end(kSpkiP256Prefix));
      } else {
        out.assign(std::begin(kSpkiP384Prefix), std::end(kSpkiP384Prefix));
      }
      out.push_back(0x04);
      out.insert(out.end(), point->begin(), point->end());
      return out;
    }
  }
  ERR_clear_error();
  // One call: i2d_PUBKEY allocates (asking for the length first would run
  // the encoder twice). Keys from outside were checked to encode on entry
  // (Checked); ours always do.
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(pkey_.get(), &der);
  CLLM_CHECK(len > 0 && der != nullptr);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

std::string PublicKey::ToPem() const {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  CLLM_CHECK(PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

CryptoResult<Bytes> PublicKey::EcPoint() const {
  KeyType t = type();
  if (t != KeyType::kEcP256 && t != KeyType::kEcP384 && t != KeyType::kSm2) {
    return MakeError(CryptoErrc::kInvalidArgument, "not an EC key");
  }
  uint8_t buf[1 + 2 * 66];
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(pkey_.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf,
                                      sizeof buf, &len) != 1 ||
      len != 1 + 2 * CurveBytes(t) || buf[0] != 0x04) {
    return OpenSslError(CryptoErrc::kInternal, "EC point export");
  }
  return Bytes(buf + 1, buf + len);
}

// ---------------------------------------------------------------------------
// PrivateKey
// ---------------------------------------------------------------------------

PrivateKey::PrivateKey(EVP_PKEY* owned) : pkey_(Share(owned)) {}

CryptoResult<PrivateKey> PrivateKey::Generate(KeyType type) {
  EVP_PKEY* pkey = nullptr;
  switch (type) {
    case KeyType::kEcP256: pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case KeyType::kEcP384: pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"); break;
    case KeyType::kSm2: pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "SM2"); break;
    default: return MakeError(CryptoErrc::kUnsupported, "can only generate EC and SM2 keys");
  }
  if (pkey == nullptr) return OpenSslError(CryptoErrc::kInternal, "key generation");
  return PrivateKey(pkey);
}

CryptoResult<PrivateKey> PrivateKey::FromPkcs8Der(ByteSpan der) {
  const uint8_t* p = der.data();
  PKCS8_PRIV_KEY_INFO* info = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size()));
  if (info == nullptr) return OpenSslError(CryptoErrc::kParse, "invalid PKCS#8 private key");
  EVP_PKEY* pkey = EVP_PKCS82PKEY(info);
  PKCS8_PRIV_KEY_INFO_free(info);
  if (pkey == nullptr) return OpenSslError(CryptoErrc::kParse, "unsupported PKCS#8 key");
  return PrivateKey(pkey);
}

CryptoResult<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (pkey == nullptr) return OpenSslError(CryptoErrc::kParse, "invalid PEM private key");
  return PrivateKey(pkey);
}

SecretBytes PrivateKey::ToPkcs8Der() const {
  PKCS8_PRIV_KEY_INFO* info = EVP_PKEY2PKCS8(pkey_.get());
  CLLM_CHECK(info != nullptr);
  int len = i2d_PKCS8_PRIV_KEY_INFO(info, nullptr);
  SecretBytes out(static_cast<size_t>(len));
  uint8_t* p = out.data();
  CLLM_CHECK(i2d_PKCS8_PRIV_KEY_INFO(info, &p) == len);
  PKCS8_PRIV_KEY_INFO_free(info);
  return out;
}

std::string PrivateKey::ToPem() const {
  ossl::BioPtr bio(BIO_new(BIO_s_secmem()));
  CLLM_CHECK(PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

PublicKey PrivateKey::public_key() const {
  // An object without the private half. For P-256/P-384 from the point
  // (OpenSSL 3's SPKI encoder and decoder, the general path, cost more than
  // an ES256 signature: a quarter of `cllm bench attest`'s client in `perf`).
  const KeyType t = type();
  if (t == KeyType::kEcP256 || t == KeyType::kEcP384) {
    uint8_t buf[1 + 2 * 48];
    size_t len = 0;
    const size_t n = CurveBytes(t);
    if (EVP_PKEY_get_octet_string_param(pkey_.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof buf, &len) == 1 &&
        len == 1 + 2 * n && buf[0] == 0x04) {
      auto pub = PublicKey::FromEcPoint(t, ByteSpan(buf + 1, n), ByteSpan(buf + 1 + n, n));
      if (pub.ok()) return std::move(pub).value();
    }
    ERR_clear_error();
  }
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(pkey_.get(), &der);
  CLLM_CHECK(len > 0 && der != nullptr);
  auto pub = PublicKey::FromSpkiDer(ByteSpan(der, static_cast<size_t>(len)));
  OPENSSL_free(der);
  CLLM_CHECK(pub.ok());
  return std::move(pub).value();
}

KeyType PrivateKey::type() const { return TypeOf(pkey_.get()); }

CryptoResult<SecretBytes> PrivateKey::PrivateScalar() const {
  KeyType t = type();
  if (t != KeyType::kEcP256 && t != KeyType::kEcP384 && t != KeyType::kSm2) {
    return MakeError(CryptoErrc::kInvalidArgument, "not an EC key");
  }
  BIGNUM* d = nullptr;
  if (EVP_PKEY_get_bn_param(pkey_.get(), OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 || d == nullptr) {
    return OpenSslError(CryptoErrc::kInternal, "EC private scalar export");
  }
  // BN_clear_free wipes the BIGNUM's copy of the scalar.
  std::unique_ptr<BIGNUM, ossl::Deleter<BN_clear_free>> owned(d);
  size_t n = CurveBytes(t);
  SecretBytes out(n);
  if (BN_bn2binpad(d, out.data(), static_cast<int>(n)) != static_cast<int>(n)) {
    return MakeError(CryptoErrc::kInternal, "EC private scalar larger than the curve");
  }
  return out;
}

// ---------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------

CryptoResult<Bytes> RawSigToDer(ByteSpan raw) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 132) {
    return MakeError(CryptoErrc::kParse, "raw signature has invalid length " + std::to_string(raw.size()));
  }
  size_t half = raw.size() / 2;
  ossl::EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return OpenSslError(CryptoErrc::kInternal, "ECDSA_SIG");
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return OpenSslError(CryptoErrc::kInternal, "ECDSA_SIG encode");
  Bytes out(static_cast<size_t>(len));
  uint8_t* p = out.data();
  i2d_ECDSA_SIG(sig.get(), &p);
  return out;
}

CryptoResult<Bytes> DerSigToRaw(ByteSpan der, size_t half) {
  const uint8_t* p = der.data();
  ossl::EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig || p != der.data() + der.size()) {
    ERR_clear_error();
    return MakeError(CryptoErrc::kParse, "malformed DER signature");
  }
  const BIGNUM* r = ECDSA_SIG_get0_r(sig.get());
  const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
  Bytes out(2 * half);
  if (BN_bn2binpad(r, out.data(), static_cast<int>(half)) < 0 ||
      BN_bn2binpad(s, out.data() + half, static_cast<int>(half)) < 0) {
    return MakeError(CryptoErrc::kParse, "signature component too large");
  }
  return out;
}

CryptoResult<Bytes> EcdsaSign(const PrivateKey& key, HashAlg alg, ByteSpan msg, SigFormat format) {
  KeyType t = key.type();
  if (t != KeyType::kEcP256 && t != KeyType::kEcP384) {
    return MakeError(CryptoErrc::kInvalidArgument, "ECDSA needs a P-256 or P-384 key");
  }
  CLLM_ASSIGN_OR_RETURN(Bytes der, DigestSignWith(key.get(), ossl::Md(static_cast<int>(alg)), msg, ""));
  if (format == SigFormat::kDer) return der;
  return DerSigToRaw(der, CurveBytes(t));
}

CryptoStatus EcdsaVerify(const PublicKey& key, HashAlg alg, ByteSpan msg, ByteSpan sig,
                         SigFormat format) {
  KeyType t = key.type();
  if (t != KeyType::kEcP256 && t != KeyType::kEcP384) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     std::string("ECDSA needs a P-256 or P-384 key, got ") + KeyTypeName(t));
  }
  Bytes der;
  if (format == SigFormat::kRaw) {
    if (sig.size() != 2 * CurveBytes(t)) {
      return MakeError(CryptoErrc::kParse, "raw signature must be " +
                                               std::to_string(2 * CurveBytes(t)) + " bytes");
    }
    CLLM_ASSIGN_OR_RETURN(der, RawSigToDer(sig));
    sig = der;
  }
  return DigestVerifyWith(key.get(), ossl::Md(static_cast<int>(alg)), msg, sig,
                          [](EVP_PKEY_CTX*) { return true; }, false);
}

CryptoStatus RsaPssVerify(const PublicKey& key, HashAlg alg, ByteSpan msg, ByteSpan sig,
                          int salt_len) {
  if (key.type() != KeyType::kRsa) return MakeError(CryptoErrc::kInvalidArgument, "not an RSA key");
  const EVP_MD* md = ossl::Md(static_cast<int>(alg));
  return DigestVerifyWith(key.get(), md, msg, sig, [&](EVP_PKEY_CTX* ctx) {
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt_len < 0 ? RSA_PSS_SALTLEN_DIGEST : salt_len) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1;
  }, false);
}

CryptoStatus RsaPkcs1Verify(const PublicKey& key, HashAlg alg, ByteSpan msg, ByteSpan sig) {
  if (key.type() != KeyType::kRsa) return MakeError(CryptoErrc::kInvalidArgument, "not an RSA key");
  return DigestVerifyWith(key.get(), ossl::Md(static_cast<int>(alg)), msg, sig,
                          [](EVP_PKEY_CTX* ctx) {
                            return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
                          }, false);
}

CryptoResult<Bytes> Sm2Sign(const PrivateKey& key, ByteSpan msg, SigFormat format, std::string_view id) {
  if (key.type() != KeyType::kSm2) return MakeError(CryptoErrc::kInvalidArgument, "not an SM2 key");
  if (id.empty()) return MakeError(CryptoErrc::kInvalidArgument, "SM2 id must not be empty");
  CLLM_ASSIGN_OR_RETURN(Bytes der, DigestSignWith(key.get(), EVP_sm3(), msg, id));
  if (format == SigFormat::kDer) return der;
  return DerSigToRaw(der, 32);
}

CryptoStatus Sm2Verify(const PublicKey& key, ByteSpan msg, ByteSpan sig, SigFormat format,
                       std::string_view id) {
  if (key.type() != KeyType::kSm2) return MakeError(CryptoErrc::kInvalidArgument, "not an SM2 key");
  if (id.empty()) return MakeError(CryptoErrc::kInvalidArgument, "SM2 id must not be empty");
  Bytes der;
  if (format == SigFormat::kRaw) {
    if (sig.size() != 64) return MakeError(CryptoErrc::kParse, "raw SM2 signature must be 64 bytes");
    CLLM_ASSIGN_OR_RETURN(der, RawSigToDer(sig));
    sig = der;
  }
  return DigestVerifyWith(key.get(), EVP_sm3(), msg, sig, [&](EVP_PKEY_CTX* ctx) {
    return EVP_PKEY_CTX_set1_id(ctx, id.data(), id.size()) == 1;
  }, true);
}

}  // namespace cllm::crypto
