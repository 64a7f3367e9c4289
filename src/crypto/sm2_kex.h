// sm2_kex.h — SM2 elliptic-curve key agreement (GB/T 32918.3-2016) and the
// pieces it is made of: scalar multiplication (ECDH), the user hash Z and the
// SM3 key-derivation function.
//
// The `gmt` suite's DHKEM(SM2, HKDF-SM3) uses only plain ECDH on the
// recommended curve (DH() = x-coordinate of sk·PK, see hpke.h); the full
// two-pass key exchange of GB/T 32918.3 §6.1 is here so the curve arithmetic
// and the KDF are checked against the standard's own worked example (which is
// on the standard's example curve, hence curves given by their parameters).
//
// Encodings: integers and coordinates are 32-byte big-endian; points are
// 65-byte uncompressed SEC1 (04 ‖ x ‖ y). Curves have cofactor 1.
#pragma once

#include <string_view>

#include "base/bytes.h"
#include "base/secure.h"
#include "crypto/error.h"

namespace cllm::crypto::sm2 {

inline constexpr size_t kScalarSize = 32;
inline constexpr size_t kPointSize = 65;

// CurveParams: y^2 = x^3 + a·x + b over F_p, generator (gx, gy) of prime
// order n, cofactor 1. Each field is 32 bytes big-endian.
struct CurveParams {
  Bytes p, a, b, gx, gy, n;
};

// RecommendedCurve returns the SM2 curve of GB/T 32918.5-2017 (GM/T 0003.5).
const CurveParams& RecommendedCurve();

// Sm3Kdf is the key-derivation function of GB/T 32918.3-2016 §5.4.3 (the same
// in 32918.4 §5.4.3): SM3(z ‖ ct) for ct = 1, 2, … as 32-bit big-endian,
// concatenated and cut to out_len bytes. kInvalidArgument when out_len is 0 or
// above (2^32 - 1) · 32.
CryptoResult<SecretBytes> Sm3Kdf(ByteSpan z, size_t out_len);

// PublicKeyFromPrivate returns [d]G (65 bytes). kInvalidArgument unless d is
// 32 bytes with 1 <= d < n.
CryptoResult<Bytes> PublicKeyFromPrivate(const CurveParams& curve, ByteSpan d);

// SharedPoint returns x ‖ y (64 bytes) of [d]peer. kInvalidArgument when d is
// out of range, `peer` is not a 65-byte uncompressed point on the curve, or
// the result is the point at infinity.
CryptoResult<SecretBytes> SharedPoint(const CurveParams& curve, ByteSpan d, ByteSpan peer);

// Ecdh returns the x-coordinate (32 bytes) of [d]peer; errors as SharedPoint.
CryptoResult<SecretBytes> Ecdh(const CurveParams& curve, ByteSpan d, ByteSpan peer);

// UserHash returns Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), GB/T
// 32918.3-2016 §5.5 (ENTL = bit length of ID, 2 bytes). kInvalidArgument when
// the ID is 8192 bytes or longer or `pub` is not a point on the curve.
CryptoResult<Bytes> UserHash(const CurveParams& curve, std::string_view id, ByteSpan pub);

// KeyExchangeInput is one side of GB/T 32918.3-2016 §6.1. A is the initiator
// (sends RA first), B the responder; z_a/z_b are UserHash of A and B.
struct KeyExchangeInput {
  bool initiator = false;
  ByteSpan d;              // own static private key
  ByteSpan pub;            // own static public key, [d]G
  ByteSpan r;              // own ephemeral private key
  ByteSpan eph_pub;        // own ephemeral public key, [r]G
  ByteSpan peer_pub;       // the other side's static public key
  ByteSpan peer_eph_pub;   // the other side's ephemeral public key
  ByteSpan z_a, z_b;       // 32 bytes each
  size_t key_len = 16;     // klen / 8
};

// KeyExchangeOutput: the agreed key and both optional confirmation hashes.
// s_b = SM3(0x02 ‖ y ‖ SM3(x ‖ ZA ‖ ZB ‖ x1 ‖ y1 ‖ x2 ‖ y2)) is what B sends
// (SB) and A checks (S1); s_a = the same with 0x03 is what A sends (SA) and B
// checks (S2). (x, y) is V for B and U for A, (x1, y1) = RA, (x2, y2) = RB.
struct KeyExchangeOutput {
  SecretBytes key;
  Bytes s_b;
  Bytes s_a;
};

// KeyExchange runs steps B1–B9 (responder) or A4–A9 (initiator) without the
// message flow: the caller sends/compares s_b and s_a. kInvalidArgument on
// wrong sizes, scalars out of range, points not on the curve, or a result at
// infinity.
CryptoResult<KeyExchangeOutput> KeyExchange(const CurveParams& curve, const KeyExchangeInput& in);

}  // namespace cllm::crypto::sm2
