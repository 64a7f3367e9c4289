// HPKE round trips, tampering, mode inputs, contexts and bad keys for the
// cllm suites (x25519: X25519/HKDF-SHA256/AES-256-GCM; gmt:
// SM2/HKDF-SM3/SM4-CTR-HMAC-SM3, which has no published vectors:
// determinism, and the DHKEM recomputed from OpenSSL's own SM2-curve ECDH).
// The RFC 9180 Appendix A known answers are in hpke_vectors_test.cc.
#include "crypto/hpke.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "crypto/kdf.h"
#include "crypto/keys.h"

namespace cllm::crypto::hpke {
namespace {

Bytes H(std::string_view hex) { return HexDecode(hex).value(); }
std::string Hex(ByteSpan b) { return HexEncode(b); }

constexpr Suite kP256Aes128{Kem::kP256HkdfSha256, Kdf::kHkdfSha256, Aead::kAes128Gcm};
constexpr Suite kX25519ChaCha{Kem::kX25519HkdfSha256, Kdf::kHkdfSha256, Aead::kChaCha20Poly1305};
constexpr Suite kX25519ExportOnly{Kem::kX25519HkdfSha256, Kdf::kHkdfSha256, Aead::kExportOnly};

// ---------------------------------------------------------------------------
// Suites and sizes
// ---------------------------------------------------------------------------

TEST(HpkeSuiteTest, NamesAndSizes) {
  EXPECT_EQ(ParseSuite("x25519").value(), kSuiteX25519);
  EXPECT_EQ(ParseSuite("gmt").value(), kSuiteGmt);
  EXPECT_EQ(ParseSuite("X25519").code(), CryptoErrc::kUnsupported);
  EXPECT_STREQ(SuiteName(kSuiteX25519), "x25519");
  EXPECT_STREQ(SuiteName(kSuiteGmt), "gmt");
  EXPECT_STREQ(SuiteName(kP256Aes128), "custom");

  Sizes x = SuiteSizes(kSuiteX25519).value();
  EXPECT_EQ(x.n_enc, 32u);
  EXPECT_EQ(x.n_pk, 32u);
  EXPECT_EQ(x.n_sk, 32u);
  EXPECT_EQ(x.n_k, 32u);
  EXPECT_EQ(x.n_n, 12u);
  EXPECT_EQ(x.n_t, 16u);
  EXPECT_EQ(x.n_h, 32u);
  Sizes g = SuiteSizes(kSuiteGmt).value();
  EXPECT_EQ(g.n_enc, 65u);
  EXPECT_EQ(g.n_pk, 65u);
  EXPECT_EQ(g.n_sk, 32u);
  EXPECT_EQ(g.n_k, 48u);
  EXPECT_EQ(g.n_n, 12u);
  EXPECT_EQ(g.n_t, 32u);
  EXPECT_EQ(g.n_h, 32u);

  EXPECT_EQ(SuiteSizes({static_cast<Kem>(0x0011), Kdf::kHkdfSha256, Aead::kAes128Gcm}).code(),
            CryptoErrc::kUnsupported);
  EXPECT_EQ(SuiteSizes({Kem::kX25519HkdfSha256, static_cast<Kdf>(0x0003), Aead::kAes128Gcm}).code(),
            CryptoErrc::kUnsupported);
  EXPECT_EQ(SuiteSizes({Kem::kX25519HkdfSha256, Kdf::kHkdfSha256, static_cast<Aead>(7)}).code(),
            CryptoErrc::kUnsupported);
  EXPECT_EQ(GenerateKeyPair(static_cast<Kem>(0x0012)).code(), CryptoErrc::kUnsupported);
}

// ---------------------------------------------------------------------------
// Round trips, tampering, misuse
// ---------------------------------------------------------------------------

class HpkeSuiteRoundTrip : public ::testing::TestWithParam<Suite> {};

TEST_P(HpkeSuiteRoundTrip, BaseAndAuthRoundTripAndRejectTampering) {
  const Suite s = GetParam();
  const KeyPair r = GenerateKeyPair(s.kem).value();
  const KeyPair sender_key = GenerateKeyPair(s.kem).value();
  const Bytes info = ToBytes("cllm test info");
  const Bytes aad = ToBytes("aad");
  const Bytes msg = ToBytes("the model answer, two messages long");

  for (bool auth : {false, true}) {
    SCOPED_TRACE(auth ? "auth" : "base");
    auto setup = auth ? SetupAuthS(s, r.pk, info, sender_key.sk.span()) : SetupBaseS(s, r.pk, info);
    ASSERT_TRUE(setup.ok()) << setup.detail();
    auto open_ctx = [&](ByteSpan enc, ByteSpan use_info, ByteSpan pk_s) {
      return auth ? SetupAuthR(s, enc, r.sk.span(), use_info, pk_s)
                  : SetupBaseR(s, enc, r.sk.span(), use_info);
    };
    auto recipient = open_ctx(setup->enc, info, sender_key.pk);
    ASSERT_TRUE(recipient.ok()) << recipient.detail();

    auto ct0 = setup->ctx.Seal(aad, msg);
    auto ct1 = setup->ctx.Seal({}, {});
    ASSERT_TRUE(ct0.ok() && ct1.ok());
    EXPECT_EQ(ct0->size(), msg.size() + SuiteSizes(s)->n_t);

    // Tampered ciphertext or aad: kAuthFailed, and the sequence number stays.
    Bytes bad = *ct0;
    bad[3] ^= 1;
    EXPECT_EQ(recipient->Open(aad, bad).code(), CryptoErrc::kAuthFailed);
    bad = *ct0;
    bad.back() ^= 0x80;
    EXPECT_EQ(recipient->Open(aad, bad).code(), CryptoErrc::kAuthFailed);
    EXPECT_EQ(recipient->Open(ToBytes("aaD"), *ct0).code(), CryptoErrc::kAuthFailed);
    EXPECT_EQ(recipient->Open(aad, ByteSpan(ct0->data(), 5)).code(), CryptoErrc::kAuthFailed);
    // Out of order: the second message does not open at seq 0.
    EXPECT_EQ(recipient->Open({}, *ct1).code(), CryptoErrc::kAuthFailed);
    EXPECT_EQ(recipient->sequence_number(), 0u);

    auto pt0 = recipient->Open(aad, *ct0);
    ASSERT_TRUE(pt0.ok()) << pt0.detail();
    EXPECT_EQ(AsChars(pt0->span()), AsChars(msg));
    auto pt1 = recipient->Open({}, *ct1);
    ASSERT_TRUE(pt1.ok()) << pt1.detail();
    EXPECT_TRUE(pt1->empty());
    // Replaying the first message fails at seq 2.
    EXPECT_EQ(recipient->Open(aad, *ct0).code(), CryptoErrc::kAuthFailed);

    // Both sides export the same secret.
    auto e1 = setup->ctx.Export(AsBytes("cllm-e2e response v1"), 48);
    auto e2 = recipient->Export(AsBytes("cllm-e2e response v1"), 48);
    ASSERT_TRUE(e1.ok() && e2.ok());
    EXPECT_EQ(Hex(e1->span()), Hex(e2->span()));

    // A changed enc or info gives another key: the first message fails.
    Bytes enc = setup->enc;
    enc[enc.size() / 2] ^= 0x01;
    auto other = open_ctx(enc, info, sender_key.pk);
    if (other.ok()) {
      EXPECT_EQ(other->Open(aad, *ct0).code(), CryptoErrc::kAuthFailed);
    } else {
      // A flipped bit in an EC point usually leaves the curve.
      EXPECT_EQ(other.code(), CryptoErrc::kParse);
    }
    auto other_info = open_ctx(setup->enc, ToBytes("cllm test infO"), sender_key.pk);
    ASSERT_TRUE(other_info.ok());
    EXPECT_EQ(other_info->Open(aad, *ct0).code(), CryptoErrc::kAuthFailed);

    if (auth) {
      // The wrong sender key: the recipient derives another secret.
      const KeyPair mallory = GenerateKeyPair(s.kem).value();
      auto wrong = open_ctx(setup->enc, info, mallory.pk);
      ASSERT_TRUE(wrong.ok()) << wrong.detail();
      EXPECT_EQ(wrong->Open(aad, *ct0).code(), CryptoErrc::kAuthFailed);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Suites, HpkeSuiteRoundTrip,
    ::testing::Values(kSuiteX25519, kSuiteGmt, kP256Aes128, kX25519ChaCha,
                      Suite{Kem::kSm2HkdfSm3, Kdf::kHkdfSha256, Aead::kAes256Gcm},
                      Suite{Kem::kX25519HkdfSha256, Kdf::kHkdfSm3, Aead::kSm4CtrHmacSm3}));

// A recipient that passes its public key along (RecipientKey) derives the
// same context as one that recomputes it; a wrong one only fails to decrypt.
TEST_P(HpkeSuiteRoundTrip, KnownRecipientPublicKey) {
  const Suite s = GetParam();
  const KeyPair r = GenerateKeyPair(s.kem).value();
  const KeyPair sender_key = GenerateKeyPair(s.kem).value();
  const Bytes info = ToBytes("info"), msg = ToBytes("prompt");
  for (bool auth : {false, true}) {
    SCOPED_TRACE(auth ? "auth" : "base");
    auto setup = auth ? SetupAuthS(s, r.pk, info, sender_key.sk.span()) : SetupBaseS(s, r.pk, info);
    ASSERT_TRUE(setup.ok()) << setup.detail();
    auto ct = setup->ctx.Seal({}, msg);
    ASSERT_TRUE(ct.ok());
    auto open = [&](ByteSpan pk) {
      const RecipientKey k{r.sk.span(), pk};
      return auth ? SetupAuthR(s, setup->enc, k, info, sender_key.pk) : SetupBaseR(s, setup->enc, k, info);
    };
    auto known = open(r.pk);
    ASSERT_TRUE(known.ok()) << known.detail();
    EXPECT_EQ(Hex(known->key_for_testing()), Hex(setup->ctx.key_for_testing()));
    auto pt = known->Open({}, *ct);
    ASSERT_TRUE(pt.ok());
    EXPECT_EQ(Bytes(pt->span().begin(), pt->span().end()), msg);
    auto wrong = open(GenerateKeyPair(s.kem).value().pk);
    ASSERT_TRUE(wrong.ok()) << wrong.detail();
    EXPECT_EQ(wrong->Open({}, *ct).code(), CryptoErrc::kAuthFailed);
    EXPECT_EQ(open(Bytes(3, 1)).code(), CryptoErrc::kInvalidArgument);
  }
}

TEST(HpkeContextTest, PskModesRoundTrip) {
  const Bytes psk(32, 0x42);
  const Bytes psk_id = ToBytes("client-7");
  for (Suite s : {kSuiteX25519, kSuiteGmt}) {
    const KeyPair r = GenerateKeyPair(s.kem).value();
    const KeyPair snd = GenerateKeyPair(s.kem).value();
    auto p = SetupPskS(s, r.pk, {}, psk, psk_id);
    ASSERT_TRUE(p.ok()) << p.detail();
    auto ct = p->ctx.Seal({}, AsBytes("psk"));
    ASSERT_TRUE(ct.ok());
    EXPECT_TRUE(SetupPskR(s, p->enc, r.sk.span(), {}, psk, psk_id)->Open({}, *ct).ok());
    EXPECT_EQ(SetupPskR(s, p->enc, r.sk.span(), {}, Bytes(32, 0x43), psk_id)->Open({}, *ct).code(),
              CryptoErrc::kAuthFailed);
    EXPECT_EQ(SetupPskR(s, p->enc, r.sk.span(), {}, psk, ToBytes("client-8"))->Open({}, *ct).code(),
              CryptoErrc::kAuthFailed);

    auto ap = SetupAuthPskS(s, r.pk, {}, psk, psk_id, snd.sk.span());
    ASSERT_TRUE(ap.ok()) << ap.detail();
    auto ct2 = ap->ctx.Seal({}, AsBytes("authpsk"));
    ASSERT_TRUE(ct2.ok());
    auto rc = SetupAuthPskR(s, ap->enc, r.sk.span(), {}, psk, psk_id, snd.pk);
    ASSERT_TRUE(rc.ok()) << rc.detail();
    EXPECT_TRUE(rc->Open({}, *ct2).ok());
  }
}

TEST(HpkeContextTest, RejectsInconsistentModeInputs) {
  const KeyPair r = GenerateKeyPair(Kem::kX25519HkdfSha256).value();
  const Bytes psk(32, 1), psk_id = ToBytes("id");
  const Suite s = kSuiteX25519;
  auto code = [](const auto& res) { return res.code(); };
  EXPECT_EQ(code(SetupS(Mode::kPsk, s, r.pk, {}, {}, {}, {})), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(code(SetupS(Mode::kPsk, s, r.pk, {}, psk, {}, {})), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(code(SetupS(Mode::kPsk, s, r.pk, {}, Bytes(16, 1), psk_id, {})),
            CryptoErrc::kInvalidArgument);
  EXPECT_EQ(code(SetupS(Mode::kBase, s, r.pk, {}, psk, psk_id, {})), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(code(SetupS(Mode::kAuth, s, r.pk, {}, {}, {}, {})), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(code(SetupS(Mode::kBase, s, r.pk, {}, {}, {}, r.sk.span())),
            CryptoErrc::kInvalidArgument);
  EXPECT_EQ(code(SetupS(static_cast<Mode>(4), s, r.pk, {}, {}, {}, {})),
            CryptoErrc::kInvalidArgument);
  EXPECT_EQ(code(SetupR(Mode::kAuth, s, r.pk, r.sk.span(), {}, {}, {}, {})),
            CryptoErrc::kInvalidArgument);
}

TEST(HpkeContextTest, RolesSequenceLimitAndExportBounds) {
  const KeyPair r = GenerateKeyPair(Kem::kX25519HkdfSha256).value();
  auto s = SetupBaseS(kSuiteX25519, r.pk, {});
  ASSERT_TRUE(s.ok());
  auto rc = SetupBaseR(kSuiteX25519, s->enc, r.sk.span(), {});
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(s->ctx.Open({}, Bytes(16)).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(rc->Seal({}, {}).code(), CryptoErrc::kInvalidArgument);

  // §5.2: the last usable sequence number is 2^64 - 2 here (uint64_t).
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  s->ctx.set_sequence_number_for_testing(kMax - 1);
  auto last = s->ctx.Seal({}, AsBytes("last"));
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(s->ctx.Seal({}, AsBytes("one more")).code(), CryptoErrc::kInvalidArgument);
  rc->set_sequence_number_for_testing(kMax - 1);
  EXPECT_TRUE(rc->Open({}, *last).ok());
  EXPECT_EQ(rc->Open({}, *last).code(), CryptoErrc::kInvalidArgument);

  EXPECT_EQ(rc->Export({}, 0).code(), CryptoErrc::kInvalidArgument);
  EXPECT_TRUE(rc->Export({}, 255 * 32).ok());
  EXPECT_EQ(rc->Export({}, 255 * 32 + 1).code(), CryptoErrc::kInvalidArgument);
}

TEST(HpkeContextTest, ExportOnlySuite) {
  const Suite s{Kem::kX25519HkdfSha256, Kdf::kHkdfSha256, Aead::kExportOnly};
  const KeyPair r = GenerateKeyPair(s.kem).value();
  auto snd = SetupBaseS(s, r.pk, AsBytes("info"));
  ASSERT_TRUE(snd.ok()) << snd.detail();
  auto rc = SetupBaseR(s, snd->enc, r.sk.span(), AsBytes("info"));
  ASSERT_TRUE(rc.ok()) << rc.detail();
  EXPECT_EQ(snd->ctx.Seal({}, AsBytes("x")).code(), CryptoErrc::kUnsupported);
  EXPECT_EQ(rc->Open({}, Bytes(16)).code(), CryptoErrc::kUnsupported);
  EXPECT_EQ(Hex(snd->ctx.Export(AsBytes("c"), 32)->span()),
            Hex(rc->Export(AsBytes("c"), 32)->span()));
}

// ---------------------------------------------------------------------------
// Keys: SM2 derivation, cross-checks with OpenSSL key generation, bad input
// ---------------------------------------------------------------------------

TEST(HpkeKeyTest, Sm2DeriveKeyPairIsDeterministic) {
  const Bytes ikm = H("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  auto a = DeriveKeyPair(Kem::kSm2HkdfSm3, ikm);
  auto b = DeriveKeyPair(Kem::kSm2HkdfSm3, ikm);
  ASSERT_TRUE(a.ok() && b.ok()) << a.detail();
  EXPECT_EQ(Hex(a->sk.span()), Hex(b->sk.span()));
  EXPECT_EQ(Hex(a->pk), Hex(b->pk));
  ASSERT_EQ(a->pk.size(), 65u);
  EXPECT_EQ(a->pk[0], 0x04);
  EXPECT_TRUE(ValidatePublicKey(Kem::kSm2HkdfSm3, a->pk).ok());
  // The same ikm under P-256 gives another key (the KEM id is in the labels).
  auto p = DeriveKeyPair(Kem::kP256HkdfSha256, ikm);
  ASSERT_TRUE(p.ok());
  EXPECT_NE(Hex(p->sk.span()), Hex(a->sk.span()));
  Bytes ikm2 = ikm;
  ikm2[0] ^= 1;
  EXPECT_NE(Hex(DeriveKeyPair(Kem::kSm2HkdfSm3, ikm2)->sk.span()), Hex(a->sk.span()));
  EXPECT_EQ(DeriveKeyPair(Kem::kSm2HkdfSm3, Bytes(31, 1)).code(), CryptoErrc::kInvalidArgument);
}

// pk(sk) matches the public key OpenSSL generated with the private scalar, so
// the SM2 and P-256 point encodings agree with an independent code path.
TEST(HpkeKeyTest, PublicKeyMatchesOpenSslKeyGeneration) {
  const std::pair<KeyType, Kem> cases[] = {{KeyType::kSm2, Kem::kSm2HkdfSm3},
                                           {KeyType::kEcP256, Kem::kP256HkdfSha256}};
  for (const auto& [type, kem] : cases) {
    auto key = PrivateKey::Generate(type);
    ASSERT_TRUE(key.ok());
    auto d = key->PrivateScalar();
    ASSERT_TRUE(d.ok());
    Bytes expected{0x04};
    Bytes xy = key->public_key().EcPoint().value();
    expected.insert(expected.end(), xy.begin(), xy.end());
    auto pk = PublicKeyFromPrivate(kem, d->span());
    ASSERT_TRUE(pk.ok()) << pk.detail();
    EXPECT_EQ(Hex(*pk), Hex(expected));
    // And a message sealed to that key opens with the scalar.
    Suite s{kem, Kdf::kHkdfSha256, Aead::kAes256Gcm};
    auto snd = SetupBaseS(s, *pk, {});
    ASSERT_TRUE(snd.ok());
    auto ct = snd->ctx.Seal({}, AsBytes("hi"));
    EXPECT_TRUE(SetupBaseR(s, snd->enc, d->span(), {})->Open({}, *ct).ok());
  }
}

TEST(HpkeKeyTest, BadX25519KeysAreErrors) {
  const KeyPair r = GenerateKeyPair(Kem::kX25519HkdfSha256).value();
  EXPECT_EQ(SetupBaseS(kSuiteX25519, Bytes(31, 9), {}).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(SetupBaseS(kSuiteX25519, Bytes(33, 9), {}).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(SetupBaseS(kSuiteX25519, {}, {}).code(), CryptoErrc::kInvalidArgument);
  // Low-order points give the all-zero shared secret (§7.1.4): u = 0 and u = 1.
  Bytes zero(32, 0), one(32, 0);
  one[0] = 1;
  EXPECT_EQ(SetupBaseS(kSuiteX25519, zero, {}).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(SetupBaseS(kSuiteX25519, one, {}).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(SetupBaseR(kSuiteX25519, zero, r.sk.span(), {}).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(SetupBaseR(kSuiteX25519, Bytes(31, 1), r.sk.span(), {}).code(),
            CryptoErrc::kInvalidArgument);
  EXPECT_EQ(SetupAuthR(kSuiteX25519, r.pk, r.sk.span(), {}, zero).code(),
            CryptoErrc::kInvalidArgument);
  EXPECT_EQ(SetupBaseR(kSuiteX25519, r.pk, Bytes(16, 1), {}).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(PublicKeyFromPrivate(Kem::kX25519HkdfSha256, Bytes(31, 1)).code(),
            CryptoErrc::kInvalidArgument);
}

TEST(HpkeKeyTest, BadEcKeysAreErrors) {
  for (Suite s : {kSuiteGmt, kP256Aes128}) {
    SCOPED_TRACE(SuiteName(s));
    const KeyPair r = GenerateKeyPair(s.kem).value();
    Bytes off_curve = r.pk;
    off_curve.back() ^= 1;  // y changed: not on the curve
    EXPECT_EQ(SetupBaseS(s, off_curve, {}).code(), CryptoErrc::kParse);
    EXPECT_EQ(ValidatePublicKey(s.kem, off_curve).code(), CryptoErrc::kParse);
    EXPECT_EQ(SetupBaseR(s, off_curve, r.sk.span(), {}).code(), CryptoErrc::kParse);
    EXPECT_EQ(SetupAuthR(s, r.pk, r.sk.span(), {}, off_curve).code(), CryptoErrc::kParse);
    Bytes compressed(r.pk.begin(), r.pk.begin() + 33);
    compressed[0] = 0x02 | (r.pk.back() & 1);
    EXPECT_EQ(SetupBaseS(s, compressed, {}).code(), CryptoErrc::kInvalidArgument);
    Bytes wrong_prefix = r.pk;
    wrong_prefix[0] = 0x06;  // hybrid form is not allowed either
    EXPECT_EQ(SetupBaseS(s, wrong_prefix, {}).code(), CryptoErrc::kInvalidArgument);
    EXPECT_EQ(SetupBaseS(s, Bytes(65, 0), {}).code(), CryptoErrc::kInvalidArgument);
    Bytes zero_point(65, 0);
    zero_point[0] = 0x04;  // (0, 0) is on neither curve
    EXPECT_EQ(SetupBaseS(s, zero_point, {}).code(), CryptoErrc::kParse);
    EXPECT_EQ(SetupBaseR(s, Bytes(64, 4), r.sk.span(), {}).code(), CryptoErrc::kInvalidArgument);
    // Private scalars 0 and >= n are out of range.
    EXPECT_EQ(PublicKeyFromPrivate(s.kem, Bytes(32, 0)).code(), CryptoErrc::kInvalidArgument);
    EXPECT_EQ(PublicKeyFromPrivate(s.kem, Bytes(32, 0xff)).code(), CryptoErrc::kInvalidArgument);
    EXPECT_EQ(SetupBaseR(s, r.pk, Bytes(32, 0xff), {}).code(), CryptoErrc::kInvalidArgument);
  }
  // An SM2 point is not a P-256 point.
  const KeyPair sm2 = GenerateKeyPair(Kem::kSm2HkdfSm3).value();
  EXPECT_EQ(ValidatePublicKey(Kem::kP256HkdfSha256, sm2.pk).code(), CryptoErrc::kParse);
}

// Scalars are checked against each curve's own order n: n - 1 valid, n not.
TEST(HpkeKeyTest, ScalarRangeUsesTheCurveOrder) {
  const Bytes n_minus_1 = H("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54122");
  const Bytes n = H("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");
  EXPECT_TRUE(PublicKeyFromPrivate(Kem::kSm2HkdfSm3, n_minus_1).ok());
  EXPECT_EQ(PublicKeyFromPrivate(Kem::kSm2HkdfSm3, n).code(), CryptoErrc::kInvalidArgument);
  // P-256 (SEC 2): its n - 1 is valid there but above the SM2 order.
  const Bytes p256_n_minus_1 =
      H("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550");
  const Bytes p256_n = H("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
  EXPECT_TRUE(PublicKeyFromPrivate(Kem::kP256HkdfSha256, p256_n_minus_1).ok());
  EXPECT_EQ(PublicKeyFromPrivate(Kem::kP256HkdfSha256, p256_n).code(),
            CryptoErrc::kInvalidArgument);
  EXPECT_EQ(PublicKeyFromPrivate(Kem::kSm2HkdfSm3, p256_n_minus_1).code(),
            CryptoErrc::kInvalidArgument);
}

// DHKEM(SM2, HKDF-SM3) has no published vectors: recompute its shared secret
// independently. The DH comes from OpenSSL's ECDH (EVP_PKEY_derive; in
// OpenSSL 3.0 only "EC" keys generated on group SM2 derive: the "SM2" key type
// has no derive and "EC" fromdata refuses the SM2 group), the labels are
// spelled out here (RFC 9180 §4.1, suite_id "KEM" ‖ 0xCC01, HKDF-SM3), and
// Decap must match.
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;

PkeyPtr GenerateSm2CurveKey() {
  char group[] = "SM2";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                         OSSL_PARAM_construct_end()};
  PkeyCtxPtr gen(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!gen || EVP_PKEY_keygen_init(gen.get()) != 1 ||
      EVP_PKEY_CTX_set_params(gen.get(), params) != 1 || EVP_PKEY_keygen(gen.get(), &raw) != 1) {
    raw = nullptr;
  }
  return PkeyPtr(raw, EVP_PKEY_free);
}

Bytes Sm2PublicKey(EVP_PKEY* key) {
  Bytes pk(65);
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pk.data(), pk.size(), &len) !=
          1 ||
      len != pk.size()) {
    return {};
  }
  return pk;
}

TEST(HpkeKeyTest, Sm2DhkemMatchesOpenSslEcdh) {
  PkeyPtr recipient = GenerateSm2CurveKey();
  PkeyPtr ephemeral = GenerateSm2CurveKey();
  ASSERT_TRUE(recipient && ephemeral);
  const Bytes pk_r = Sm2PublicKey(recipient.get());
  const Bytes enc = Sm2PublicKey(ephemeral.get());  // enc = SerializePublicKey(pkE)
  ASSERT_EQ(pk_r.size(), 65u);
  ASSERT_EQ(enc.size(), 65u);
  BIGNUM* d = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(recipient.get(), OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
  SecretBytes sk_r(32);
  ASSERT_EQ(BN_bn2binpad(d, sk_r.data(), 32), 32);
  BN_clear_free(d);

  // OpenSSL: dh = x(skR · pkE).
  PkeyCtxPtr derive(EVP_PKEY_CTX_new_from_pkey(nullptr, recipient.get(), nullptr),
                    EVP_PKEY_CTX_free);
  SecretBytes dh(32);
  size_t dh_len = dh.size();
  ASSERT_TRUE(derive && EVP_PKEY_derive_init(derive.get()) == 1 &&
              EVP_PKEY_derive_set_peer(derive.get(), ephemeral.get()) == 1 &&
              EVP_PKEY_derive(derive.get(), dh.data(), &dh_len) == 1);
  ASSERT_EQ(dh_len, 32u);

  // ExtractAndExpand(dh, kem_context = enc ‖ pkR) with the labels written out.
  const Bytes suite_id = H("4b454dcc01");  // "KEM" ‖ I2OSP(0xCC01, 2)
  Bytes labeled_ikm = ToBytes("HPKE-v1");
  labeled_ikm.insert(labeled_ikm.end(), suite_id.begin(), suite_id.end());
  for (uint8_t c : std::string_view("eae_prk")) labeled_ikm.push_back(c);
  labeled_ikm.insert(labeled_ikm.end(), dh.span().begin(), dh.span().end());
  SecretBytes eae_prk = HkdfExtract(HashAlg::kSm3, {}, labeled_ikm);
  Bytes labeled_info = {0x00, 0x20};  // I2OSP(Nsecret = 32, 2)
  for (uint8_t c : std::string_view("HPKE-v1")) labeled_info.push_back(c);
  labeled_info.insert(labeled_info.end(), suite_id.begin(), suite_id.end());
  for (uint8_t c : std::string_view("shared_secret")) labeled_info.push_back(c);
  labeled_info.insert(labeled_info.end(), enc.begin(), enc.end());
  labeled_info.insert(labeled_info.end(), pk_r.begin(), pk_r.end());
  auto expected = HkdfExpand(HashAlg::kSm3, eae_prk.span(), labeled_info, 32);
  ASSERT_TRUE(expected.ok());

  auto decap = Decap(Kem::kSm2HkdfSm3, enc, sk_r.span());
  ASSERT_TRUE(decap.ok()) << decap.detail();
  EXPECT_EQ(Hex(decap->span()), Hex(expected->span()));
  auto pk = PublicKeyFromPrivate(Kem::kSm2HkdfSm3, sk_r.span());
  ASSERT_TRUE(pk.ok());
  EXPECT_EQ(Hex(*pk), Hex(pk_r));
}

}  // namespace
}  // namespace cllm::crypto::hpke
