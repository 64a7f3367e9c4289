// Tests for the JOSE subset: round trips, every refusal with its error code,
// mutation of each token part, and vectors made by independent code (Python
// `cryptography`, see testdata/make_vectors.py; the `jose` CLI when present).
#include "trust/jose.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "base/encoding.h"

namespace cllm::trust {
namespace {

using json = nlohmann::json;
using std::chrono::seconds;
using std::chrono::system_clock;

// The RFC 6979 A.2.5 P-256 key (d = C9AFA9D8…6721) as PKCS#8.
constexpr std::string_view kRfc6979P256Pem = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgya+p2EW6dRZrXCFX
Z7HWk05Qw9s26JsSe4piKxIPZyGhRANCAARg/tS6JVqdMclh63TGNW1owEm4kjth
+mzmaWIuYPKftnkD/hAIuLyZpBrp6VYovGTy8bIMLX6fUXejwpTURiKZ
-----END PRIVATE KEY-----
)";
constexpr std::string_view kRfc6979X = "YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y";
constexpr std::string_view kRfc6979Y = "eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpk";

crypto::PrivateKey NewKey() { return crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value(); }

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = s.find('.', start)) != std::string::npos; start = dot + 1) parts.push_back(s.substr(start, dot - start));
  parts.push_back(s.substr(start));
  return parts;
}
std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "." : "") + parts[i];
  return out;
}
std::string B64(std::string_view s) { return Base64UrlEncode(AsBytes(s)); }
json HeaderOf(const std::string& token) {
  return json::parse(AsChars(Base64UrlDecode(Split(token)[0]).value()));
}
// WithHeader replaces a token's header by `header` (re-encoded), keeping the
// other parts: what an attacker who edits a header would send.
std::string WithHeader(const std::string& token, const json& header) {
  auto parts = Split(token);
  parts[0] = B64(header.dump());
  return Join(parts);
}
// FlipChar changes one base64url character in the middle of a part, keeping
// the encoding valid (the tail's canonical bits are untouched).
std::string FlipChar(const std::string& token, size_t part) {
  auto parts = Split(token);
  char& c = parts[part][parts[part].size() / 2];
  c = c == 'A' ? 'B' : 'A';
  return Join(parts);
}

// ---------------------------------------------------------------------------
// JWK
// ---------------------------------------------------------------------------

TEST(JwkTest, PublicJwkRoundTripsAndNamesKid) {
  auto key = NewKey();
  json jwk = PublicJwk(key.public_key(), "k1");
  EXPECT_EQ(jwk["kty"], "EC");
  EXPECT_EQ(jwk["crv"], "P-256");
  EXPECT_EQ(jwk["kid"], "k1");
  EXPECT_EQ(jwk["x"].get<std::string>().size(), 43u);  // 32 bytes, unpadded
  EXPECT_FALSE(PublicJwk(key.public_key()).contains("kid"));
  auto back = PublicKeyFromJwk(jwk);
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->ToSpkiDer(), key.public_key().ToSpkiDer());
  // Not P-256: no JWK, and nothing downstream accepts the null.
  auto p384 = crypto::PrivateKey::Generate(crypto::KeyType::kEcP384).value();
  EXPECT_TRUE(PublicJwk(p384.public_key()).is_null());
  EXPECT_EQ(PublicKeyFromJwk(PublicJwk(p384.public_key())).code(), JoseErrc::kMalformed);
}

// Expected value computed independently with Python (testdata/make_vectors.py):
//   hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True)
//                  .encode()).digest(), base64url without padding,
// for the RFC 6979 P-256 public key below.
TEST(JwkTest, ThumbprintMatchesIndependentComputationAndIgnoresFormatting) {
  constexpr std::string_view kThumbprint = "DOvxvJiAdIqVWIkFt5hDtCunXLF0BV4-JGv4f-ALSm0";
  auto key = crypto::PrivateKey::FromPem(kRfc6979P256Pem).value();
  json jwk = PublicJwk(key.public_key());
  EXPECT_EQ(jwk["x"], kRfc6979X);
  EXPECT_EQ(jwk["y"], kRfc6979Y);
  EXPECT_EQ(JwkThumbprint(jwk), kThumbprint);
  // Member order, whitespace and optional members do not matter.
  std::string text = "{ \"y\" : \"" + std::string(kRfc6979Y) + "\",\n \"kid\": \"other\", \"use\":\"sig\",\n"
                     "  \"x\":\"" + std::string(kRfc6979X) + "\", \"kty\":\"EC\", \"crv\": \"P-256\" }";
  EXPECT_EQ(JwkThumbprint(json::parse(text)), kThumbprint);
  // Missing or non-string required members, unknown kty: no thumbprint.
  json no_y = jwk;
  no_y.erase("y");
  EXPECT_EQ(JwkThumbprint(no_y), "");
  json bad = jwk;
  bad["x"] = 5;
  EXPECT_EQ(JwkThumbprint(bad), "");
  EXPECT_EQ(JwkThumbprint(json{{"kty", "XYZ"}}), "");
  EXPECT_EQ(JwkThumbprint(json::array()), "");
}

// RFC 7638 §3.1's example key is RSA: the generic member selection must give
// the RFC's thumbprint for it too.
TEST(JwkTest, ThumbprintOfRfc7638Example) {
  json rsa = {{"kty", "RSA"},
              {"n", "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
                    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q"
                    "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQF"
                    "h6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
              {"e", "AQAB"},
              {"alg", "RS256"},
              {"kid", "2011-04-29"}};
  EXPECT_EQ(JwkThumbprint(rsa), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST(JwkTest, PublicKeyFromJwkIsStrict) {
  json good = {{"kty", "EC"}, {"crv", "P-256"}, {"x", kRfc6979X}, {"y", kRfc6979Y}};
  ASSERT_TRUE(PublicKeyFromJwk(good).ok());

  json off_curve = good;  // y's last byte changed: no longer on the curve
  Bytes y = Base64UrlDecode(kRfc6979Y).value();
  y[31] ^= 1;
  off_curve["y"] = Base64UrlEncode(y);
  EXPECT_EQ(PublicKeyFromJwk(off_curve).code(), JoseErrc::kMalformed);

  json short_x = good;  // 31 bytes (a leading zero stripped, RFC 7518 forbids it)
  short_x["x"] = Base64UrlEncode(ByteSpan(Base64UrlDecode(kRfc6979X).value()).subspan(1));
  EXPECT_EQ(PublicKeyFromJwk(short_x).code(), JoseErrc::kMalformed);
  json long_y = good;  // 33 bytes
  Bytes y33 = Base64UrlDecode(kRfc6979Y).value();
  y33.insert(y33.begin(), 0);
  long_y["y"] = Base64UrlEncode(y33);
  EXPECT_EQ(PublicKeyFromJwk(long_y).code(), JoseErrc::kMalformed);

  json with_d = good;
  with_d["d"] = "ya-p2EW6dRZrXCFXZ7HWk05Qw9s26JsSe4piKxIPZyE";
  EXPECT_EQ(PublicKeyFromJwk(with_d).code(), JoseErrc::kMalformed);

  json padded = good;
  padded["x"] = std::string(kRfc6979X) + "=";
  EXPECT_EQ(PublicKeyFromJwk(padded).code(), JoseErrc::kMalformed);
  json std_alphabet = good;  // '-' replaced by '+': standard base64, not base64url
  std::string y_std(kRfc6979Y);
  y_std[y_std.find('-')] = '+';
  std_alphabet["y"] = y_std;
  EXPECT_EQ(PublicKeyFromJwk(std_alphabet).code(), JoseErrc::kMalformed);

  json p384 = good;
  p384["crv"] = "P-384";
  EXPECT_EQ(PublicKeyFromJwk(p384).code(), JoseErrc::kUnsupported);
  json rsa = {{"kty", "RSA"}, {"n", "AQAB"}, {"e", "AQAB"}};
  EXPECT_EQ(PublicKeyFromJwk(rsa).code(), JoseErrc::kUnsupported);
  json x_number = good;
  x_number["x"] = 1;
  EXPECT_EQ(PublicKeyFromJwk(x_number).code(), JoseErrc::kMalformed);
  EXPECT_EQ(PublicKeyFromJwk(json("EC")).code(), JoseErrc::kMalformed);
  EXPECT_EQ(PublicKeyFromJwk(json::object()).code(), JoseErrc::kMalformed);
}

// ---------------------------------------------------------------------------
// JWS
// ---------------------------------------------------------------------------

TEST(JwsTest, RoundTrip) {
  auto key = NewKey();
  std::string payload("binary\0payload\xff", 15);
  auto jws = SignJws(key, {{"kid", "k1"}, {"typ", "cllm+evidence"}}, payload);
  ASSERT_TRUE(jws.ok()) << jws.detail();
  EXPECT_EQ(Split(*jws).size(), 3u);
  auto verified = VerifyJws(*jws, key.public_key());
  ASSERT_TRUE(verified.ok()) << verified.detail();
  EXPECT_EQ(verified->payload, payload);
  EXPECT_EQ(verified->header, (json{{"alg", "ES256"}, {"kid", "k1"}, {"typ", "cllm+evidence"}}));
  // No extras (null) and an empty payload work too; "alg":"ES256" may be repeated.
  auto bare = SignJws(key, nullptr, "");
  ASSERT_TRUE(bare.ok()) << bare.detail();
  EXPECT_EQ(VerifyJws(*bare, key.public_key())->payload, "");
  EXPECT_TRUE(SignJws(key, {{"alg", "ES256"}}, "x").ok());
}

TEST(JwsTest, TamperedPayloadHeaderOrSignatureIsBadSignature) {
  auto key = NewKey();
  std::string jws = SignJws(key, {{"kid", "k1"}}, "pay me 10").value();
  auto parts = Split(jws);

  auto other_payload = parts;
  other_payload[1] = B64("pay me 99");
  EXPECT_EQ(VerifyJws(Join(other_payload), key.public_key()).code(), JoseErrc::kBadSignature);
  EXPECT_EQ(VerifyJws(FlipChar(jws, 1), key.public_key()).code(), JoseErrc::kBadSignature);
  EXPECT_EQ(VerifyJws(WithHeader(jws, {{"alg", "ES256"}, {"kid", "k2"}}), key.public_key()).code(),
            JoseErrc::kBadSignature);
  EXPECT_EQ(VerifyJws(FlipChar(jws, 2), key.public_key()).code(), JoseErrc::kBadSignature);
  // An ES256 signature is exactly 64 bytes.
  auto short_sig = parts;
  short_sig[2] = Base64UrlEncode(ByteSpan(Base64UrlDecode(parts[2]).value()).first(63));
  EXPECT_EQ(VerifyJws(Join(short_sig), key.public_key()).code(), JoseErrc::kBadSignature);
  auto no_sig = parts;
  no_sig[2] = "";
  EXPECT_EQ(VerifyJws(Join(no_sig), key.public_key()).code(), JoseErrc::kBadSignature);
}

TEST(JwsTest, WrongKeyIsBadSignature) {
  std::string jws = SignJws(NewKey(), {}, "hello").value();
  EXPECT_EQ(VerifyJws(jws, NewKey().public_key()).code(), JoseErrc::kBadSignature);
}

TEST(JwsTest, RefusesEveryAlgButEs256) {
  auto key = NewKey();
  std::string jws = SignJws(key, {}, "hello").value();
  auto parts = Split(jws);
  // alg "none" with an empty signature (RFC 7515 appendix A.5 form).
  std::string none = B64(R"({"alg":"none"})") + "." + parts[1] + ".";
  EXPECT_EQ(VerifyJws(none, key.public_key()).code(), JoseErrc::kUnsupported);
  // HS256 "signed" with the public key as the HMAC secret: refused by name.
  for (const char* alg : {"HS256", "RS256", "ES384", "PS256", "es256", "ES256 ", "None"}) {
    EXPECT_EQ(VerifyJws(WithHeader(jws, {{"alg", alg}}), key.public_key()).code(), JoseErrc::kUnsupported) << alg;
  }
  EXPECT_EQ(VerifyJws(WithHeader(jws, {{"kid", "k"}}), key.public_key()).code(), JoseErrc::kMalformed);
  EXPECT_EQ(VerifyJws(WithHeader(jws, {{"alg", 7}}), key.public_key()).code(), JoseErrc::kMalformed);
  EXPECT_EQ(VerifyJws(WithHeader(jws, {{"alg", "ES256"}, {"crit", {"exp"}}, {"exp", 1}}), key.public_key()).code(),
            JoseErrc::kUnsupported);
  EXPECT_EQ(VerifyJws(WithHeader(jws, {{"alg", "ES256"}, {"b64", false}}), key.public_key()).code(),
            JoseErrc::kUnsupported);
  // Signing refuses the same things.
  EXPECT_EQ(SignJws(key, {{"alg", "HS256"}}, "x").code(), JoseErrc::kUnsupported);
  EXPECT_EQ(SignJws(key, {{"alg", "none"}}, "x").code(), JoseErrc::kUnsupported);
  EXPECT_EQ(SignJws(key, {{"crit", {"b64"}}, {"b64", false}}, "x").code(), JoseErrc::kUnsupported);
  EXPECT_EQ(SignJws(key, json::array(), "x").code(), JoseErrc::kMalformed);
  // Keys other than P-256.
  auto p384 = crypto::PrivateKey::Generate(crypto::KeyType::kEcP384).value();
  EXPECT_EQ(SignJws(p384, {}, "x").code(), JoseErrc::kUnsupported);
  EXPECT_EQ(VerifyJws(jws, p384.public_key()).code(), JoseErrc::kUnsupported);
}

TEST(JwsTest, MalformedInputIsRefusedWithoutAborting) {
  auto key = NewKey();
  std::string jws = SignJws(key, {}, "hello").value();
  auto parts = Split(jws);
  const std::string header = parts[0];
  std::vector<std::string> bad = {
      "", ".", "..", "...", "a.b.c", jws + ".", "." + jws, jws + "." + parts[2],
      parts[0] + "." + parts[1],                              // two parts
      parts[0] + "=." + parts[1] + "." + parts[2],            // padding
      parts[0] + "." + parts[1] + "." + parts[2] + "==",
      "ey!J." + parts[1] + "." + parts[2],                    // not base64url
      B64("not json") + "." + parts[1] + "." + parts[2],
      B64("[\"alg\",\"ES256\"]") + "." + parts[1] + "." + parts[2],
      B64("\"ES256\"") + "." + parts[1] + "." + parts[2],
      // Duplicate members: libjose and we must not read different headers.
      B64(R"({"alg":"ES256","alg":"none"})") + "." + parts[1] + "." + parts[2],
      B64(std::string(100000, '[')) + "." + parts[1] + "." + parts[2],
      B64(R"({"alg":"ES256","x":)" + std::string(70, '[') + std::string(70, ']') + "}") + "." + parts[1] + "." + parts[2],
      B64(std::string("{\"alg\":\"ES256\",\"k\":\"\xff\"}")) + "." + parts[1] + "." + parts[2],  // invalid UTF-8
      parts[0] + ".a." + parts[2],                             // 6 leftover bits
      std::string(kMaxCompactLen + 1, 'A'),
      parts[0] + "." + std::string(kMaxCompactLen, 'A') + "." + parts[2],
  };
  for (const auto& token : bad) {
    auto r = VerifyJws(token, key.public_key());
    ASSERT_FALSE(r.ok()) << token.substr(0, 80);
    EXPECT_TRUE(r.code() == JoseErrc::kMalformed || r.code() == JoseErrc::kUnsupported) << token.substr(0, 80);
  }
  // Embedded NUL in the payload is fine (binary payloads); in the token it is not base64url.
  EXPECT_EQ(VerifyJws(std::string_view("a\0b.c.d", 7), key.public_key()).code(), JoseErrc::kMalformed);
  // Signing refuses to make a token the verifier would refuse for its size.
  EXPECT_EQ(SignJws(key, {}, std::string(kMaxCompactLen, 'x')).code(), JoseErrc::kMalformed);
}

TEST(JwsTest, VerifiesTokenMadeByPython) {
  // testdata/make_vectors.py: ES256 over {"iss":"py","exp":2000000000} with
  // the RFC 6979 key, signed by Python `cryptography`.
  constexpr std::string_view kJws =
      "eyJhbGciOiJFUzI1NiIsImtpZCI6InB5IiwidHlwIjoiSldUIn0."
      "eyJpc3MiOiJweSIsImV4cCI6MjAwMDAwMDAwMH0."
      "jpWX3QobpzVLlsTV1CiE7kq0rdJTWevSbBRN-1rf3Rzvyt0uau35W-XakCATASELuNSwPd-A-x5HlIeEQpfFmg";
  auto key = crypto::PrivateKey::FromPem(kRfc6979P256Pem).value();
  auto verified = VerifyJws(kJws, key.public_key());
  ASSERT_TRUE(verified.ok()) << verified.detail();
  EXPECT_EQ(verified->payload, R"({"iss":"py","exp":2000000000})");
  json jwks = {{"keys", {PublicJwk(key.public_key(), "py")}}};
  JwtCheck check{system_clock::time_point(seconds(1900000000)), "py"};
  auto claims = VerifyJwt(kJws, jwks, check);
  ASSERT_TRUE(claims.ok()) << claims.detail();
  EXPECT_EQ((*claims)["iss"], "py");
}

// ---------------------------------------------------------------------------
// JWKS
// ---------------------------------------------------------------------------

TEST(JwksTest, PicksKeyByKid) {
  auto k1 = NewKey();
  auto k2 = NewKey();
  json jwks = {{"keys",
                {json{{"kty", "RSA"}, {"kid", "rsa"}, {"n", "AQAB"}, {"e", "AQAB"}},  // other keys are skipped
                 PublicJwk(k1.public_key(), "one"), PublicJwk(k2.public_key(), "two"), "junk"}}};
  auto by_two = VerifyJwsWithJwks(SignJws(k2, {{"kid", "two"}}, "p").value(), jwks);
  ASSERT_TRUE(by_two.ok()) << by_two.detail();
  EXPECT_EQ(by_two->payload, "p");
  EXPECT_TRUE(VerifyJwsWithJwks(SignJws(k1, {{"kid", "one"}}, "p").value(), jwks).ok());
  // Signed by k1 but claiming k2's kid: the kid picks k2, which does not verify.
  EXPECT_EQ(VerifyJwsWithJwks(SignJws(k1, {{"kid", "two"}}, "p").value(), jwks).code(), JoseErrc::kBadSignature);
}

TEST(JwksTest, UnknownMissingOrAmbiguousKid) {
  auto k1 = NewKey();
  json jwks = {{"keys", {PublicJwk(k1.public_key(), "one")}}};
  EXPECT_EQ(VerifyJwsWithJwks(SignJws(k1, {{"kid", "nine"}}, "p").value(), jwks).code(), JoseErrc::kUnknownKey);
  EXPECT_EQ(VerifyJwsWithJwks(SignJws(k1, {}, "p").value(), jwks).code(), JoseErrc::kUnknownKey);
  EXPECT_EQ(VerifyJwsWithJwks(SignJws(k1, {{"kid", 1}}, "p").value(), jwks).code(), JoseErrc::kMalformed);
  std::string token = SignJws(k1, {{"kid", "one"}}, "p").value();
  json twice = {{"keys", {PublicJwk(k1.public_key(), "one"), PublicJwk(NewKey().public_key(), "one")}}};
  EXPECT_EQ(VerifyJwsWithJwks(token, twice).code(), JoseErrc::kMalformed);
  json for_enc = jwks;
  for_enc["keys"][0]["use"] = "enc";
  EXPECT_EQ(VerifyJwsWithJwks(token, for_enc).code(), JoseErrc::kUnknownKey);
  json for_rs = jwks;
  for_rs["keys"][0]["alg"] = "RS256";
  EXPECT_EQ(VerifyJwsWithJwks(token, for_rs).code(), JoseErrc::kUnknownKey);
  json sig_es = jwks;
  sig_es["keys"][0]["use"] = "sig";
  sig_es["keys"][0]["alg"] = "ES256";
  EXPECT_TRUE(VerifyJwsWithJwks(token, sig_es).ok());
  json with_d = jwks;  // a private JWK published by mistake is refused
  with_d["keys"][0]["d"] = "AAAA";
  EXPECT_EQ(VerifyJwsWithJwks(token, with_d).code(), JoseErrc::kMalformed);
  for (const json& bad : {json::array(), json::object(), json{{"keys", json::object()}}, json(nullptr)}) {
    EXPECT_EQ(VerifyJwsWithJwks(token, bad).code(), JoseErrc::kMalformed) << bad.dump();
  }
  EXPECT_EQ(VerifyJwsWithJwks(token, json{{"keys", json::array()}}).code(), JoseErrc::kUnknownKey);
}

// ---------------------------------------------------------------------------
// JWT
// ---------------------------------------------------------------------------

class JwtTest : public ::testing::Test {
 protected:
  static constexpr int64_t kNow = 1700000000;
  JwtTest() : key_(NewKey()), jwks_({{"keys", {PublicJwk(key_.public_key(), "issuer-key")}}}) {}

  std::string Sign(const json& claims) { return SignJwt(key_, "issuer-key", claims).value(); }
  JoseResult<json> Verify(const std::string& token, std::string iss = "https://issuer", seconds leeway = seconds(30)) {
    return VerifyJwt(token, jwks_, JwtCheck{system_clock::time_point(seconds(kNow)), std::move(iss), leeway});
  }

  crypto::PrivateKey key_;
  json jwks_;
};

TEST_F(JwtTest, ValidTokenReturnsClaims) {
  json claims = {{"iss", "https://issuer"}, {"sub", "node-7"}, {"iat", kNow - 10}, {"nbf", kNow - 10}, {"exp", kNow + 60}};
  std::string token = Sign(claims);
  EXPECT_EQ(HeaderOf(token), (json{{"alg", "ES256"}, {"typ", "JWT"}, {"kid", "issuer-key"}}));
  auto verified = Verify(token);
  ASSERT_TRUE(verified.ok()) << verified.detail();
  EXPECT_EQ(*verified, claims);
  EXPECT_TRUE(Verify(token, "").ok());  // issuer not checked when not expected
  // NumericDate may be fractional (RFC 7519 §2).
  EXPECT_TRUE(Verify(Sign({{"iss", "https://issuer"}, {"exp", kNow + 0.5}})).ok());
}

TEST_F(JwtTest, ExpiryHonoursLeewayExactly) {
  // Valid while now < exp + leeway (RFC 7519 §4.1.4).
  EXPECT_TRUE(Verify(Sign({{"iss", "https://issuer"}, {"exp", kNow - 29}})).ok());
  EXPECT_EQ(Verify(Sign({{"iss", "https://issuer"}, {"exp", kNow - 30}})).code(), JoseErrc::kExpired);
  EXPECT_EQ(Verify(Sign({{"iss", "https://issuer"}, {"exp", kNow - 31}})).code(), JoseErrc::kExpired);
  EXPECT_TRUE(Verify(Sign({{"iss", "https://issuer"}, {"exp", kNow + 1}}), "https://issuer", seconds(0)).ok());
  EXPECT_EQ(Verify(Sign({{"iss", "https://issuer"}, {"exp", kNow}}), "https://issuer", seconds(0)).code(),
            JoseErrc::kExpired);
  // A negative leeway counts as none.
  EXPECT_TRUE(Verify(Sign({{"iss", "https://issuer"}, {"exp", kNow + 1}}), "https://issuer", seconds(-100)).ok());
}

TEST_F(JwtTest, NotYetValid) {
  EXPECT_EQ(Verify(Sign({{"iss", "https://issuer"}, {"nbf", kNow + 31}, {"exp", kNow + 600}})).code(),
            JoseErrc::kNotYetValid);
  EXPECT_TRUE(Verify(Sign({{"iss", "https://issuer"}, {"nbf", kNow + 30}, {"exp", kNow + 600}})).ok());
  EXPECT_EQ(Verify(Sign({{"iss", "https://issuer"}, {"iat", kNow + 3600}, {"exp", kNow + 7200}})).code(),
            JoseErrc::kNotYetValid);
}

TEST_F(JwtTest, ClaimMismatchAndMalformedClaims) {
  EXPECT_EQ(Verify(Sign({{"iss", "https://evil"}, {"exp", kNow + 60}})).code(), JoseErrc::kClaimMismatch);
  EXPECT_EQ(Verify(Sign({{"exp", kNow + 60}})).code(), JoseErrc::kClaimMismatch);  // no iss
  EXPECT_EQ(Verify(Sign({{"iss", 5}, {"exp", kNow + 60}})).code(), JoseErrc::kMalformed);
  EXPECT_EQ(Verify(Sign({{"iss", "https://issuer"}})).code(), JoseErrc::kClaimMismatch);  // no exp
  EXPECT_EQ(Verify(Sign({{"iss", "https://issuer"}, {"exp", "tomorrow"}})).code(), JoseErrc::kMalformed);
  EXPECT_EQ(Verify(Sign({{"iss", "https://issuer"}, {"exp", kNow + 60}, {"nbf", nullptr}})).code(), JoseErrc::kMalformed);
  // A JWS that is not a JWT: another typ, or a payload that is not an object.
  json claims = {{"iss", "https://issuer"}, {"exp", kNow + 60}};
  EXPECT_EQ(Verify(SignJws(key_, {{"kid", "issuer-key"}, {"typ", "cllm+evidence"}}, claims.dump()).value()).code(),
            JoseErrc::kClaimMismatch);
  EXPECT_TRUE(Verify(SignJws(key_, {{"kid", "issuer-key"}, {"typ", "jwt"}}, claims.dump()).value()).ok());
  EXPECT_TRUE(Verify(SignJws(key_, {{"kid", "issuer-key"}}, claims.dump()).value()).ok());
  EXPECT_EQ(Verify(SignJws(key_, {{"kid", "issuer-key"}, {"cty", "JWT"}}, claims.dump()).value()).code(),
            JoseErrc::kUnsupported);
  EXPECT_EQ(Verify(SignJws(key_, {{"kid", "issuer-key"}}, "[1,2]").value()).code(), JoseErrc::kMalformed);
  EXPECT_EQ(Verify(SignJws(key_, {{"kid", "issuer-key"}}, R"({"exp":1,"exp":9999999999})").value()).code(),
            JoseErrc::kMalformed);
  EXPECT_EQ(SignJwt(key_, "k", json::array()).code(), JoseErrc::kMalformed);
  EXPECT_EQ(SignJwt(key_, "k", json{{"bad", "\xff"}}).code(), JoseErrc::kMalformed);  // invalid UTF-8
  // The signature is checked before any claim.
  std::string token = Sign({{"iss", "https://evil"}, {"exp", kNow - 1000}});
  EXPECT_EQ(Verify(FlipChar(token, 2)).code(), JoseErrc::kBadSignature);
}

// ---------------------------------------------------------------------------
// JWE
// ---------------------------------------------------------------------------

class JweTest : public ::testing::Test {
 protected:
  JweTest() : recipient_(NewKey()), jwk_(PublicJwk(recipient_.public_key(), "node-7")) {
    for (size_t i = 0; i < secret_.size(); ++i) secret_[i] = static_cast<uint8_t>(i * 7 + 1);
  }
  std::string Encrypt() { return EncryptToJwk(secret_, jwk_, {{"kid", "node-7"}}).value(); }

  crypto::PrivateKey recipient_;
  json jwk_;
  Bytes secret_ = Bytes(32);  // a model key
};

TEST_F(JweTest, RoundTrip) {
  auto jwe = EncryptToJwk(secret_, jwk_, {{"kid", "node-7"}, {"cty", "cllm-model-key"}});
  ASSERT_TRUE(jwe.ok()) << jwe.detail();
  auto parts = Split(*jwe);
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_EQ(parts[1], "");  // direct key agreement: no encrypted key
  json header = HeaderOf(*jwe);
  EXPECT_EQ(header["alg"], "ECDH-ES");
  EXPECT_EQ(header["enc"], "A256GCM");
  EXPECT_EQ(header["kid"], "node-7");
  EXPECT_EQ(header["cty"], "cllm-model-key");
  EXPECT_TRUE(PublicKeyFromJwk(header["epk"]).ok());
  auto plain = DecryptJwe(*jwe, recipient_);
  ASSERT_TRUE(plain.ok()) << plain.detail();
  EXPECT_EQ(Bytes(plain->span().begin(), plain->span().end()), secret_);
  // A fresh ephemeral key and IV every time.
  EXPECT_NE(Split(Encrypt())[0], Split(Encrypt())[0]);
  // Larger plaintexts too; one byte.
  Bytes big(40000, 0x5a);
  EXPECT_EQ(DecryptJwe(EncryptToJwk(big, jwk_).value(), recipient_)->size(), big.size());
  EXPECT_EQ(DecryptJwe(EncryptToJwk(Bytes{1}, jwk_).value(), recipient_)->size(), 1u);
}

TEST_F(JweTest, WrongKeyFails) {
  EXPECT_EQ(DecryptJwe(Encrypt(), NewKey()).code(), JoseErrc::kCrypto);
  auto p384 = crypto::PrivateKey::Generate(crypto::KeyType::kEcP384).value();
  EXPECT_EQ(DecryptJwe(Encrypt(), p384).code(), JoseErrc::kUnsupported);
}

TEST_F(JweTest, TamperingFails) {
  std::string jwe = Encrypt();
  ASSERT_TRUE(DecryptJwe(jwe, recipient_).ok());
  EXPECT_EQ(DecryptJwe(FlipChar(jwe, 3), recipient_).code(), JoseErrc::kCrypto);  // ciphertext
  EXPECT_EQ(DecryptJwe(FlipChar(jwe, 4), recipient_).code(), JoseErrc::kCrypto);  // tag
  EXPECT_EQ(DecryptJwe(FlipChar(jwe, 2), recipient_).code(), JoseErrc::kCrypto);  // iv
  // The header is the AAD: an added member, or another kid, breaks the tag.
  json header = HeaderOf(jwe);
  header["kid"] = "node-8";
  EXPECT_EQ(DecryptJwe(WithHeader(jwe, header), recipient_).code(), JoseErrc::kCrypto);
  // Same header, different serialisation: still different AAD bytes.
  auto reformatted = Split(jwe);
  reformatted[0] = B64(HeaderOf(jwe).dump(1));
  EXPECT_EQ(DecryptJwe(Join(reformatted), recipient_).code(), JoseErrc::kCrypto);
  // Swapping in another valid ephemeral key changes the derived key.
  json other_epk = HeaderOf(jwe);
  other_epk["epk"] = PublicJwk(NewKey().public_key());
  EXPECT_EQ(DecryptJwe(WithHeader(jwe, other_epk), recipient_).code(), JoseErrc::kCrypto);
  // Truncated ciphertext.
  auto parts = Split(jwe);
  parts[3] = parts[3].substr(0, 20);
  EXPECT_EQ(DecryptJwe(Join(parts), recipient_).code(), JoseErrc::kCrypto);
}

TEST_F(JweTest, RefusesOtherAlgorithmsAndFeatures) {
  std::string jwe = Encrypt();
  json header = HeaderOf(jwe);
  auto with = [&](const char* name, const json& value) {
    json h = header;
    h[name] = value;
    return DecryptJwe(WithHeader(jwe, h), recipient_).code();
  };
  EXPECT_EQ(with("alg", "RSA-OAEP"), JoseErrc::kUnsupported);
  EXPECT_EQ(with("alg", "ECDH-ES+A256KW"), JoseErrc::kUnsupported);
  EXPECT_EQ(with("alg", "dir"), JoseErrc::kUnsupported);
  EXPECT_EQ(with("enc", "A128CBC-HS256"), JoseErrc::kUnsupported);
  EXPECT_EQ(with("enc", "A128GCM"), JoseErrc::kUnsupported);
  EXPECT_EQ(with("zip", "DEF"), JoseErrc::kUnsupported);
  EXPECT_EQ(with("crit", json::array({"exp"})), JoseErrc::kUnsupported);
  EXPECT_EQ(with("alg", 1), JoseErrc::kMalformed);
  json no_alg = header;
  no_alg.erase("alg");
  EXPECT_EQ(DecryptJwe(WithHeader(jwe, no_alg), recipient_).code(), JoseErrc::kMalformed);
  // The ephemeral key: off the curve, private, missing.
  json off_curve = header["epk"];
  Bytes y = Base64UrlDecode(off_curve["y"].get<std::string>()).value();
  y[31] ^= 1;
  off_curve["y"] = Base64UrlEncode(y);
  EXPECT_EQ(with("epk", off_curve), JoseErrc::kMalformed);
  json epk_d = header["epk"];
  epk_d["d"] = "AAAA";
  EXPECT_EQ(with("epk", epk_d), JoseErrc::kMalformed);
  json p384_epk = PublicJwk(recipient_.public_key());
  p384_epk["crv"] = "P-384";
  EXPECT_EQ(with("epk", p384_epk), JoseErrc::kMalformed);
  json no_epk = header;
  no_epk.erase("epk");
  EXPECT_EQ(DecryptJwe(WithHeader(jwe, no_epk), recipient_).code(), JoseErrc::kMalformed);
  // Encrypting refuses the same.
  EXPECT_EQ(EncryptToJwk(secret_, jwk_, {{"alg", "RSA-OAEP"}}).code(), JoseErrc::kUnsupported);
  EXPECT_EQ(EncryptToJwk(secret_, jwk_, {{"enc", "A128CBC-HS256"}}).code(), JoseErrc::kUnsupported);
  EXPECT_EQ(EncryptToJwk(secret_, jwk_, {{"zip", "DEF"}}).code(), JoseErrc::kUnsupported);
  EXPECT_EQ(EncryptToJwk(secret_, jwk_, {{"epk", jwk_}}).code(), JoseErrc::kUnsupported);
  EXPECT_TRUE(EncryptToJwk(secret_, jwk_, {{"alg", "ECDH-ES"}, {"enc", "A256GCM"}}).ok());
}

TEST_F(JweTest, RefusesBadRecipientsAndMalformedTokens) {
  json with_d = jwk_;
  with_d["d"] = Base64UrlEncode(recipient_.PrivateScalar().value().span());
  EXPECT_EQ(EncryptToJwk(secret_, with_d).code(), JoseErrc::kMalformed);
  EXPECT_EQ(EncryptToJwk(secret_, json::object()).code(), JoseErrc::kMalformed);
  EXPECT_EQ(EncryptToJwk(Bytes{}, jwk_).code(), JoseErrc::kMalformed);
  EXPECT_EQ(EncryptToJwk(Bytes(kMaxCompactLen), jwk_).code(), JoseErrc::kMalformed);
  EXPECT_EQ(EncryptToJwk(secret_, jwk_, json::array()).code(), JoseErrc::kMalformed);

  std::string jwe = Encrypt();
  auto parts = Split(jwe);
  auto with_part = [&](size_t i, const std::string& value) {
    auto p = parts;
    p[i] = value;
    return Join(p);
  };
  std::vector<std::string> bad = {
      "", "....", ".....", jwe + ".", parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[3],
      with_part(1, "AAAA"),                                    // a wrapped key where none belongs
      with_part(2, Base64UrlEncode(Bytes(16))),                // 16-byte iv
      with_part(4, Base64UrlEncode(Bytes(12))),                // short tag
      with_part(3, parts[3] + "="), with_part(0, "!!"), with_part(0, B64("[]")),
      std::string(kMaxCompactLen + 1, 'A'),
  };
  for (const auto& token : bad) {
    EXPECT_EQ(DecryptJwe(token, recipient_).code(), JoseErrc::kMalformed) << token.substr(0, 80);
  }
}

// An independent implementation (Python `cryptography`, testdata/make_vectors.py)
// made this JWE to the RFC 6979 key: ECDH-ES Concat KDF + AES-256-GCM.
TEST(JweInteropTest, DecryptsJweMadeByPython) {
  constexpr std::string_view kJwe =
      "eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTI1NkdDTSIsImtpZCI6InB5IiwiZXBrIjp7Imt0eSI6IkVDIiwiY3J2IjoiUC0yNTYiLCJ4Ijoi"
      "UEhTdjRiLVBGS2Y3R1ZWTFBkZncyZjZvX1BCaGwwcHNmMWNpMXdESmh6USIsInkiOiIteGJLOFZfZmx4dGZmYjVzTWlRRC1sYm9jdVJVNGZM"
      "dktRenQ4cmVidWt3In19"
      "..peby5ph9S4LtdgSb.LYRrP2upKqdKv2ao3LNvZjLdvkxf32AD9ues8su6vXajEVl-rX8G.7ohX41oHSkMy34wDyvw23Q";
  auto key = crypto::PrivateKey::FromPem(kRfc6979P256Pem).value();
  auto plain = DecryptJwe(kJwe, key);
  ASSERT_TRUE(plain.ok()) << plain.detail();
  EXPECT_EQ(AsChars(plain->span()), "model key from python: 0123456789abcdef");
}

// libjose's own CLI (Debian package `jose`), run only where it is installed:
// it makes a JWE and a key for us, and checks a JWE and a JWS we made.
class JoseCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v jose >/dev/null 2>&1") != 0) GTEST_SKIP() << "jose CLI not installed";
    dir_ = std::filesystem::temp_directory_path() / ("cllm_jose_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string Path(const char* name) const { return (dir_ / name).string(); }
  void Write(const char* name, std::string_view text) const { std::ofstream(dir_ / name) << text; }
  std::string Read(const char* name) const {
    std::ifstream in(dir_ / name);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  static bool Run(const std::string& cmd) { return std::system((cmd + " 2>/dev/null").c_str()) == 0; }

  std::filesystem::path dir_;
};

TEST_F(JoseCliTest, WeDecryptItsJwe) {
  auto key = NewKey();
  Write("rcp.jwk", PublicJwk(key.public_key()).dump());
  Write("tmpl.json", R"({"protected":{"alg":"ECDH-ES","enc":"A256GCM","kid":"cli"}})");
  Write("pt", "secret from the jose CLI");
  ASSERT_TRUE(Run("jose jwe enc -i " + Path("tmpl.json") + " -k " + Path("rcp.jwk") + " -I " + Path("pt") +
                  " -c -o " + Path("out.jwe")));
  std::string jwe = Read("out.jwe");
  while (!jwe.empty() && jwe.back() == '\n') jwe.pop_back();
  auto plain = DecryptJwe(jwe, key);
  ASSERT_TRUE(plain.ok()) << plain.detail() << " for " << jwe;
  EXPECT_EQ(AsChars(plain->span()), "secret from the jose CLI");
}

TEST_F(JoseCliTest, ItDecryptsOurJweAndVerifiesOurJws) {
  // A recipient key made by the CLI: its public JWK goes through our parser.
  ASSERT_TRUE(Run("jose jwk gen -i '{\"kty\":\"EC\",\"crv\":\"P-256\"}' -o " + Path("priv.jwk")));
  ASSERT_TRUE(Run("jose jwk pub -i " + Path("priv.jwk") + " -o " + Path("pub.jwk")));
  Bytes secret(32, 0x42);
  auto jwe = EncryptToJwk(secret, json::parse(Read("pub.jwk")), {{"kid", "cli"}});
  ASSERT_TRUE(jwe.ok()) << jwe.detail();
  Write("ours.jwe", *jwe);
  ASSERT_TRUE(Run("jose jwe dec -i " + Path("ours.jwe") + " -k " + Path("priv.jwk") + " -O " + Path("ours.pt")));
  EXPECT_EQ(Read("ours.pt"), std::string(32, 0x42));

  auto key = NewKey();
  Write("sig.jwk", PublicJwk(key.public_key()).dump());
  Write("ours.jws", SignJws(key, {{"kid", "k"}}, "signed by cllm").value());
  ASSERT_TRUE(Run("jose jws ver -i " + Path("ours.jws") + " -k " + Path("sig.jwk") + " -O " + Path("ours.payload")));
  EXPECT_EQ(Read("ours.payload"), "signed by cllm");
  // And the CLI refuses it under another key.
  Write("other.jwk", PublicJwk(NewKey().public_key()).dump());
  EXPECT_FALSE(Run("jose jws ver -i " + Path("ours.jws") + " -k " + Path("other.jwk")));
}

// The service calls these from many request threads at once: libjose and
// jansson must keep no unsynchronised shared state on our paths (run under
// the ASan build too). Fixed work, not timed.
TEST(JoseThreadsTest, ConcurrentSignVerifyEncryptDecrypt) {
  auto key = NewKey();
  json jwks = {{"keys", {PublicJwk(key.public_key(), "k")}}};
  json jwk = PublicJwk(key.public_key());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string payload = "thread " + std::to_string(t) + " item " + std::to_string(i);
        auto jws = SignJws(key, {{"kid", "k"}}, payload);
        auto verified = jws.ok() ? VerifyJwsWithJwks(*jws, jwks) : JoseResult<VerifiedJws>(jws.error());
        if (!verified.ok() || verified->payload != payload) ++failures;
        auto jwe = EncryptToJwk(AsBytes(payload), jwk);
        auto plain = jwe.ok() ? DecryptJwe(*jwe, key) : JoseResult<SecretBytes>(jwe.error());
        if (!plain.ok() || AsChars(plain->span()) != payload) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(JoseErrcTest, Names) {
  EXPECT_STREQ(JoseErrcName(JoseErrc::kMalformed), "malformed");
  EXPECT_STREQ(JoseErrcName(JoseErrc::kBadSignature), "bad_signature");
  EXPECT_STREQ(JoseErrcName(JoseErrc::kUnsupported), "unsupported");
}

}  // namespace
}  // namespace cllm::trust
