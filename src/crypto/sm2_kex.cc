#include "crypto/sm2_kex.h"

#include <openssl/bn.h>
#include <openssl/ec.h>

#include <array>
#include <string>

#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/ossl.h"

namespace cllm::crypto::sm2 {
namespace {

using BnCtxPtr = std::unique_ptr<BN_CTX, ossl::Deleter<BN_CTX_free>>;
// Secret scalars are cleared when freed.
using SecretBnPtr = std::unique_ptr<BIGNUM, ossl::Deleter<BN_clear_free>>;

// ---------------------------------------------------------------- curve

// Group owns an OpenSSL group built from explicit parameters.
struct Group {
  ossl::EcGroupPtr group;
  BnCtxPtr ctx;
};

ossl::BnPtr Bn(ByteSpan b) {
  return ossl::BnPtr(BN_bin2bn(b.data(), static_cast<int>(b.size()), nullptr));
}

CryptoResult<Group> MakeGroup(const CurveParams& c) {
  for (const Bytes* f : {&c.p, &c.a, &c.b, &c.gx, &c.gy, &c.n}) {
    if (f->size() != kScalarSize) {
      return MakeError(CryptoErrc::kInvalidArgument, "SM2 curve parameters must be 32 bytes");
    }
  }
  Group g;
  g.ctx.reset(BN_CTX_new());
  auto p = Bn(c.p), a = Bn(c.a), b = Bn(c.b), gx = Bn(c.gx), gy = Bn(c.gy), n = Bn(c.n);
  if (!g.ctx || !p || !a || !b || !gx || !gy || !n) {
    return OpenSslError(CryptoErrc::kInternal, "SM2 curve numbers");
  }
  g.group.reset(EC_GROUP_new_curve_GFp(p.get(), a.get(), b.get(), g.ctx.get()));
  if (!g.group) return OpenSslError(CryptoErrc::kInvalidArgument, "SM2 curve");
  ossl::EcPointPtr gen(EC_POINT_new(g.group.get()));
  if (!gen ||
      EC_POINT_set_affine_coordinates(g.group.get(), gen.get(), gx.get(), gy.get(), g.ctx.get()) !=
          1 ||
      EC_GROUP_set_generator(g.group.get(), gen.get(), n.get(), BN_value_one()) != 1) {
    return OpenSslError(CryptoErrc::kInvalidArgument, "SM2 generator");
  }
  return g;
}

// Scalar parses a 32-byte secret scalar with 1 <= s < n.
CryptoResult<SecretBnPtr> Scalar(const Group& g, ByteSpan s, const char* what) {
  if (s.size() != kScalarSize) {
    return MakeError(CryptoErrc::kInvalidArgument, std::string(what) + " must be 32 bytes");
  }
  SecretBnPtr bn(BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr));
  if (!bn) return OpenSslError(CryptoErrc::kInternal, what);
  BN_set_flags(bn.get(), BN_FLG_CONSTTIME);
  if (BN_is_zero(bn.get()) || BN_cmp(bn.get(), EC_GROUP_get0_order(g.group.get())) >= 0) {
    return MakeError(CryptoErrc::kInvalidArgument, std::string(what) + " out of range [1, n-1]");
  }
  return bn;
}

// Point parses a 65-byte uncompressed point; OpenSSL checks it is on the
// curve, and 04 ‖ x ‖ y can never encode infinity.
CryptoResult<ossl::EcPointPtr> Point(const Group& g, ByteSpan enc, const char* what) {
  if (enc.size() != kPointSize || enc[0] != 0x04) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     std::string(what) + " must be a 65-byte uncompressed point");
  }
  ossl::EcPointPtr pt(EC_POINT_new(g.group.get()));
  if (!pt || EC_POINT_oct2point(g.group.get(), pt.get(), enc.data(), enc.size(), g.ctx.get()) != 1 ||
      EC_POINT_is_on_curve(g.group.get(), pt.get(), g.ctx.get()) != 1) {
    ERR_clear_error();
    return MakeError(CryptoErrc::kInvalidArgument, std::string(what) + " is not on the curve");
  }
  return pt;
}

// Coordinates writes x ‖ y (64 bytes) of a finite point.
CryptoResult<SecretBytes> Coordinates(const Group& g, const EC_POINT* pt) {
  if (EC_POINT_is_at_infinity(g.group.get(), pt)) {
    return MakeError(CryptoErrc::kInvalidArgument, "SM2 result is the point at infinity");
  }
  SecretBnPtr x(BN_new()), y(BN_new());
  SecretBytes out(2 * kScalarSize);
  if (!x || !y ||
      EC_POINT_get_affine_coordinates(g.group.get(), pt, x.get(), y.get(), g.ctx.get()) != 1 ||
      BN_bn2binpad(x.get(), out.data(), kScalarSize) != kScalarSize ||
      BN_bn2binpad(y.get(), out.data() + kScalarSize, kScalarSize) != kScalarSize) {
    return OpenSslError(CryptoErrc::kInternal, "SM2 coordinates");
  }
  return out;
}

// XBar is x̄ = 2^w + (x mod 2^w), w = ceil(ceil(log2 n) / 2) - 1
// (GB/T 32918.3-2016 §6.1 A4/B3); `enc` is a 65-byte point.
CryptoResult<SecretBnPtr> XBar(const Group& g, ByteSpan enc) {
  int n_bits = BN_num_bits(EC_GROUP_get0_order(g.group.get()));
  int w = (n_bits + 1) / 2 - 1;
  SecretBnPtr x(BN_bin2bn(enc.data() + 1, kScalarSize, nullptr));
  if (!x) return OpenSslError(CryptoErrc::kInternal, "SM2 x-bar");
  // BN_mask_bits fails when x is already shorter than w bits (nothing to cut).
  if ((BN_num_bits(x.get()) > w && BN_mask_bits(x.get(), w) != 1) || BN_set_bit(x.get(), w) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SM2 x-bar");
  }
  return x;
}

}  // namespace

// ---------------------------------------------------------------- public API

const CurveParams& RecommendedCurve() {
  // GB/T 32918.5-2017 §3 (GM/T 0003.5-2012): the 256-bit recommended curve.
  static const CurveParams kCurve{
      HexDecode("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF").value(),
      HexDecode("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC").value(),
      HexDecode("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93").value(),
      HexDecode("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7").value(),
      HexDecode("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0").value(),
      HexDecode("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123").value(),
  };
  return kCurve;
}

CryptoResult<SecretBytes> Sm3Kdf(ByteSpan z, size_t out_len) {
  constexpr uint64_t kMaxLen = ((uint64_t{1} << 32) - 1) * 32;
  if (out_len == 0 || static_cast<uint64_t>(out_len) > kMaxLen) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "SM3 KDF length " + std::to_string(out_len) + " out of range");
  }
  SecretBytes out(out_len);
  Hasher h(HashAlg::kSm3);
  size_t written = 0;
  for (uint32_t ct = 1; written < out_len; ++ct) {
    const std::array<uint8_t, 4> ct_be{static_cast<uint8_t>(ct >> 24), static_cast<uint8_t>(ct >> 16),
                                       static_cast<uint8_t>(ct >> 8), static_cast<uint8_t>(ct)};
    h.Update(z);
    h.Update(ct_be);
    Bytes block = h.Finish();
    size_t take = std::min(block.size(), out_len - written);
    std::copy(block.begin(), block.begin() + static_cast<ptrdiff_t>(take), out.data() + written);
    SecureZero(block.data(), block.size());
    written += take;
  }
  return out;
}

CryptoResult<Bytes> PublicKeyFromPrivate(const CurveParams& curve, ByteSpan d) {
  CLLM_ASSIGN_OR_RETURN(Group g, MakeGroup(curve));
  CLLM_ASSIGN_OR_RETURN(SecretBnPtr k, Scalar(g, d, "SM2 private key"));
  ossl::EcPointPtr pt(EC_POINT_new(g.group.get()));
  if (!pt || EC_POINT_mul(g.group.get(), pt.get(), k.get(), nullptr, nullptr, g.ctx.get()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SM2 [d]G");
  }
  CLLM_ASSIGN_OR_RETURN(SecretBytes xy, Coordinates(g, pt.get()));
  Bytes out(kPointSize);
  out[0] = 0x04;
  std::copy(xy.span().begin(), xy.span().end(), out.begin() + 1);
  return out;
}

CryptoResult<SecretBytes> SharedPoint(const CurveParams& curve, ByteSpan d, ByteSpan peer) {
  CLLM_ASSIGN_OR_RETURN(Group g, MakeGroup(curve));
  CLLM_ASSIGN_OR_RETURN(SecretBnPtr k, Scalar(g, d, "SM2 private key"));
  CLLM_ASSIGN_OR_RETURN(ossl::EcPointPtr q, Point(g, peer, "SM2 peer key"));
  ossl::EcPointPtr pt(EC_POINT_new(g.group.get()));
  if (!pt || EC_POINT_mul(g.group.get(), pt.get(), nullptr, q.get(), k.get(), g.ctx.get()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SM2 [d]Q");
  }
  return Coordinates(g, pt.get());
}

CryptoResult<SecretBytes> Ecdh(const CurveParams& curve, ByteSpan d, ByteSpan peer) {
  CLLM_ASSIGN_OR_RETURN(SecretBytes xy, SharedPoint(curve, d, peer));
  return SecretBytes(xy.span().first(kScalarSize));
}

CryptoResult<Bytes> UserHash(const CurveParams& curve, std::string_view id, ByteSpan pub) {
  // ENTL is the ID's length in bits in two bytes: IDs up to 8191 bytes.
  if (id.size() >= 8192) return MakeError(CryptoErrc::kInvalidArgument, "SM2 ID too long");
  CLLM_ASSIGN_OR_RETURN(Group g, MakeGroup(curve));
  CLLM_RETURN_IF_ERROR(Point(g, pub, "SM2 public key"));
  const size_t bits = id.size() * 8;
  const std::array<uint8_t, 2> entl{static_cast<uint8_t>(bits >> 8), static_cast<uint8_t>(bits)};
  Hasher h(HashAlg::kSm3);
  h.Update(entl);
  h.Update(AsBytes(id));
  for (const Bytes* f : {&curve.a, &curve.b, &curve.gx, &curve.gy}) h.Update(*f);
  h.Update(pub.subspan(1));  // xA ‖ yA
  return h.Finish();
}

CryptoResult<KeyExchangeOutput> KeyExchange(const CurveParams& curve, const KeyExchangeInput& in) {
  if (in.z_a.size() != 32 || in.z_b.size() != 32) {
    return MakeError(CryptoErrc::kInvalidArgument, "SM2 ZA/ZB must be 32 bytes");
  }
  CLLM_ASSIGN_OR_RETURN(Group g, MakeGroup(curve));
  const BIGNUM* n = EC_GROUP_get0_order(g.group.get());
  CLLM_ASSIGN_OR_RETURN(SecretBnPtr d, Scalar(g, in.d, "SM2 private key"));
  CLLM_ASSIGN_OR_RETURN(SecretBnPtr r, Scalar(g, in.r, "SM2 ephemeral key"));
  // Own points are checked too: they enter the hashes.
  CLLM_RETURN_IF_ERROR(Point(g, in.pub, "SM2 own public key"));
  CLLM_RETURN_IF_ERROR(Point(g, in.eph_pub, "SM2 own ephemeral key"));
  CLLM_ASSIGN_OR_RETURN(ossl::EcPointPtr peer, Point(g, in.peer_pub, "SM2 peer public key"));
  CLLM_ASSIGN_OR_RETURN(ossl::EcPointPtr peer_eph,
                        Point(g, in.peer_eph_pub, "SM2 peer ephemeral key"));

  // A4–A5 / B3–B4: t = (d + x̄_own · r) mod n.
  CLLM_ASSIGN_OR_RETURN(SecretBnPtr xbar_own, XBar(g, in.eph_pub));
  CLLM_ASSIGN_OR_RETURN(SecretBnPtr xbar_peer, XBar(g, in.peer_eph_pub));
  SecretBnPtr t(BN_new());
  if (!t) return OpenSslError(CryptoErrc::kInternal, "SM2 t");
  BN_set_flags(t.get(), BN_FLG_CONSTTIME);
  if (BN_mod_mul(t.get(), xbar_own.get(), r.get(), n, g.ctx.get()) != 1 ||
      BN_mod_add(t.get(), t.get(), d.get(), n, g.ctx.get()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SM2 t");
  }
  // A6–A7 / B5–B6: U (or V) = [h·t](P_peer + [x̄_peer] R_peer), h = 1.
  ossl::EcPointPtr sum(EC_POINT_new(g.group.get()));
  ossl::EcPointPtr shared(EC_POINT_new(g.group.get()));
  if (!sum || !shared ||
      EC_POINT_mul(g.group.get(), sum.get(), nullptr, peer_eph.get(), xbar_peer.get(),
                   g.ctx.get()) != 1 ||
      EC_POINT_add(g.group.get(), sum.get(), sum.get(), peer.get(), g.ctx.get()) != 1 ||
      EC_POINT_mul(g.group.get(), shared.get(), nullptr, sum.get(), t.get(), g.ctx.get()) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SM2 shared point");
  }
  CLLM_ASSIGN_OR_RETURN(SecretBytes uv, Coordinates(g, shared.get()));  // xU ‖ yU (or xV ‖ yV)
  ByteSpan x = uv.span().first(kScalarSize), y = uv.span().subspan(kScalarSize);

  // A8 / B7: K = KDF(x ‖ y ‖ ZA ‖ ZB, klen).
  Bytes kdf_in;
  kdf_in.reserve(128);
  kdf_in.insert(kdf_in.end(), x.begin(), x.end());
  kdf_in.insert(kdf_in.end(), y.begin(), y.end());
  kdf_in.insert(kdf_in.end(), in.z_a.begin(), in.z_a.end());
  kdf_in.insert(kdf_in.end(), in.z_b.begin(), in.z_b.end());
  auto key = Sm3Kdf(kdf_in, in.key_len);
  SecureZero(kdf_in.data(), kdf_in.size());
  if (!key.ok()) return std::move(key).error();

  // A9–A10 / B8: the confirmation hashes over (x1, y1) = RA and (x2, y2) = RB.
  ByteSpan ra = in.initiator ? in.eph_pub : in.peer_eph_pub;
  ByteSpan rb = in.initiator ? in.peer_eph_pub : in.eph_pub;
  Hasher h(HashAlg::kSm3);
  h.Update(x);
  h.Update(in.z_a);
  h.Update(in.z_b);
  h.Update(ra.subspan(1));
  h.Update(rb.subspan(1));
  Bytes inner = h.Finish();
  KeyExchangeOutput out;
  out.key = std::move(*key);
  for (uint8_t tag : {uint8_t{0x02}, uint8_t{0x03}}) {
    h.Update(ByteSpan(&tag, 1));
    h.Update(y);
    h.Update(inner);
    (tag == 0x02 ? out.s_b : out.s_a) = h.Finish();
  }
  return out;
}

}  // namespace cllm::crypto::sm2
