// Encrypted bodies (e2e.h, e2e_response.h): round trips for both suites,
// every part of a request altered, every way a response stream can be
// altered, padding and limits. No vectors: the HPKE underneath has its own
// RFC 9180 Appendix A tests (crypto/hpke_test.cc).
#include "channel/e2e.h"

#include <gtest/gtest.h>

#include "base/byte_reader.h"
#include "channel/e2e_response.h"

namespace cllm::channel::e2e {
namespace {

OpenOptions Opts(const KeyRing* ring) {
  OpenOptions o;
  o.keys = ring;
  return o;
}

struct Server {
  KeyConfig config;
  Bytes config_bytes;
  KeyRing ring;
};

Server MakeServer(hpke::Suite suite, uint8_t key_id = 7) {
  auto kp = hpke::GenerateKeyPair(suite.kem).value();
  Server s;
  s.config = KeyConfig{key_id, suite, kp.pk};
  s.config_bytes = EncodeKeyConfig(s.config);
  EXPECT_TRUE(s.ring.Add(s.config_bytes, kp.sk.span()).ok());
  return s;
}

// The views point into `r` and the arguments: keep them alive while `in` is used.
EncryptedRequest AsReceived(const SealedRequest& r, std::string_view path, std::string_view stream,
                            std::string_view size) {
  EncryptedRequest in;
  in.path = path;
  in.model_header = r.fields.model;
  in.stream_header = stream;
  in.size_header = size;
  in.body = r.body;
  return in;
}

class E2eSuiteTest : public ::testing::TestWithParam<hpke::Suite> {};

TEST_P(E2eSuiteTest, RequestRoundTrip) {
  Server srv = MakeServer(GetParam());
  const std::string json = R"({"model":"m","messages":[{"role":"user","content":"hello"}]})";
  auto sealed = SealRequest(srv.config, "/v1/chat/completions", "m", true, "Bearer sk-1", json);
  ASSERT_TRUE(sealed.ok()) << sealed.detail();
  EXPECT_EQ(sealed->fields.size, 1024u);
  const std::string stream = "1", size = std::to_string(sealed->fields.size);
  auto opened = OpenRequest(AsReceived(*sealed, "/v1/chat/completions", stream, size), Opts(&srv.ring));
  ASSERT_TRUE(opened.ok()) << opened.detail();
  EXPECT_EQ(opened->json, json);
  EXPECT_EQ(opened->authorization, "Bearer sk-1");
  EXPECT_TRUE(opened->fields.stream);
  EXPECT_EQ(opened->fields.model, "m");
  EXPECT_EQ(opened->response.secret.size(), sealed->response.secret.size());
  EXPECT_EQ(Bytes(opened->response.secret.span().begin(), opened->response.secret.span().end()),
            Bytes(sealed->response.secret.span().begin(), sealed->response.secret.span().end()));
  // The body hides the prompt.
  const std::string body(sealed->body.begin(), sealed->body.end());
  EXPECT_EQ(body.find("hello"), std::string::npos);
  EXPECT_EQ(body.find("sk-1"), std::string::npos);
}

TEST_P(E2eSuiteTest, ResponseStreamRoundTrip) {
  Server srv = MakeServer(GetParam());
  auto sealed = SealRequest(srv.config, "/v1/completions", "m", true, "", "{}").value();
  auto opened =
      OpenRequest(AsReceived(sealed, "/v1/completions", "1", std::to_string(sealed.fields.size)), Opts(&srv.ring)).value();
  auto sealer = ResponseSealer::Create(opened.response).value();
  Bytes wire;
  for (const std::string& part : {std::string(R"({"status":200,"content_type":"text/event-stream"})"),
                                  std::string("data: a\n\n"), std::string("data: [DONE]\n\n"), std::string()}) {
    auto f = sealer.Seal(AsBytes(part), part.empty());
    ASSERT_TRUE(f.ok());
    wire.insert(wire.end(), f->begin(), f->end());
  }
  // Fed a byte at a time: frames come out as they complete.
  auto opener = ResponseOpener::Create(sealed.response).value();
  std::vector<std::string> got;
  for (uint8_t b : wire) {
    auto frames = opener.Feed(ByteSpan(&b, 1));
    ASSERT_TRUE(frames.ok()) << frames.detail();
    for (auto& f : *frames) got.emplace_back(AsChars(f.plaintext.span()));
  }
  ASSERT_TRUE(opener.Finish().ok());
  ASSERT_EQ(got.size(), 4u);
  auto head = ParseResponseHead(got[0]);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->content_type, "text/event-stream");
  EXPECT_EQ(got[1], "data: a\n\n");
  EXPECT_EQ(got[3], "");
}

INSTANTIATE_TEST_SUITE_P(Suites, E2eSuiteTest, ::testing::Values(hpke::kSuiteX25519, hpke::kSuiteGmt),
                         [](const auto& p) { return std::string(hpke::SuiteName(p.param)); });

// ---------------------------------------------------------------------------
// Key configs and the ring
// ---------------------------------------------------------------------------

TEST(E2eKeyConfigTest, RoundTripAndStrictParse) {
  Server srv = MakeServer(hpke::kSuiteX25519, 3);
  EXPECT_EQ(srv.config_bytes.size(), 1u + 2 + 32 + 2 + 4);
  auto parsed = ParseKeyConfig(srv.config_bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->key_id, 3);
  EXPECT_EQ(parsed->public_key, srv.config.public_key);
  for (size_t n = 0; n < srv.config_bytes.size(); ++n) {
    EXPECT_EQ(ParseKeyConfig(ByteSpan(srv.config_bytes).first(n)).code(), E2eErrc::kMalformed) << n;
  }
  Bytes trailing = srv.config_bytes;
  trailing.push_back(0);
  EXPECT_EQ(ParseKeyConfig(trailing).code(), E2eErrc::kMalformed);
  Bytes two_suites = srv.config_bytes;
  two_suites[35] = 8;  // suites length
  EXPECT_EQ(ParseKeyConfig(two_suites).code(), E2eErrc::kMalformed);
  Bytes other_aead = srv.config_bytes;
  other_aead.back() = 0x01;  // AES-128-GCM: not a cllm-e2e suite
  EXPECT_EQ(ParseKeyConfig(other_aead).code(), E2eErrc::kUnsupported);
  Bytes other_kem = srv.config_bytes;
  other_kem[2] = 0x99;
  EXPECT_EQ(ParseKeyConfig(other_kem).code(), E2eErrc::kUnsupported);
}

TEST(E2eKeyConfigTest, RingRefusesMismatchedKeyAndDuplicates) {
  auto a = hpke::GenerateKeyPair(hpke::Kem::kX25519HkdfSha256).value();
  auto b = hpke::GenerateKeyPair(hpke::Kem::kX25519HkdfSha256).value();
  const Bytes config = EncodeKeyConfig({1, hpke::kSuiteX25519, a.pk});
  KeyRing ring;
  EXPECT_EQ(ring.Add(config, b.sk.span()).code(), E2eErrc::kMalformed);
  EXPECT_TRUE(ring.Add(config, a.sk.span()).ok());
  EXPECT_EQ(ring.Add(config, a.sk.span()).code(), E2eErrc::kMalformed);
  EXPECT_EQ(ring.Find(2).code(), E2eErrc::kKeyUnknown);
}

// ---------------------------------------------------------------------------
// Requests: anything altered is refused
// ---------------------------------------------------------------------------

class E2eRequestTamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    srv_ = MakeServer(hpke::kSuiteX25519, 7);
    sealed_ = SealRequest(srv_.config, "/v1/chat/completions", "m", false, "Bearer k", R"({"x":1})").value();
    size_ = std::to_string(sealed_.fields.size);
  }
  E2eErrc Open(const EncryptedRequest& in) {
    auto r = OpenRequest(in, Opts(&srv_.ring));
    return r.ok() ? E2eErrc{} : r.code();
  }
  EncryptedRequest In() { return AsReceived(sealed_, "/v1/chat/completions", "0", size_); }

  Server srv_;
  SealedRequest sealed_;
  std::string size_;
};

TEST_F(E2eRequestTamperTest, UntouchedOpens) { EXPECT_EQ(Open(In()), E2eErrc{}); }

TEST_F(E2eRequestTamperTest, EveryByteOfTheBodyMatters) {
  // hdr: key_id → unknown key; suite ids → unknown key; mode → malformed;
  // enc and ct → decrypt failure.
  for (size_t i = 0; i < sealed_.body.size(); i += (i < 64 ? 1 : 97)) {
    Bytes body = sealed_.body;
    body[i] ^= 0x01;
    EncryptedRequest in = In();
    in.body = body;
    const E2eErrc got = Open(in);
    if (i == 0 || (i >= 1 && i < 7)) {
      EXPECT_EQ(got, E2eErrc::kKeyUnknown) << i;
    } else if (i == 7) {
      EXPECT_EQ(got, E2eErrc::kMalformed) << i;
    } else {
      EXPECT_EQ(got, E2eErrc::kDecryptFailed) << i;
    }
  }
}

TEST_F(E2eRequestTamperTest, ClearFieldsAreBound) {
  EncryptedRequest in = In();
  in.path = "/v1/completions";
  EXPECT_EQ(Open(in), E2eErrc::kDecryptFailed);
  in = In();
  in.model_header = "other";
  EXPECT_EQ(Open(in), E2eErrc::kDecryptFailed);
  in = In();
  in.stream_header = "1";
  EXPECT_EQ(Open(in), E2eErrc::kDecryptFailed);
  in = In();
  in.stream_header = "yes";
  EXPECT_EQ(Open(in), E2eErrc::kMalformed);
  in = In();
  in.size_header = "2048";  // body length no longer matches
  EXPECT_EQ(Open(in), E2eErrc::kMalformed);
  in = In();
  in.size_header = "1000";
  EXPECT_EQ(Open(in), E2eErrc::kMalformed);
  in = In();
  in.size_header = "8388608";
  EXPECT_EQ(Open(in), E2eErrc::kOversized);
  // The same number spelled otherwise is another header: one spelling only
  // (what is bound is the number; a path must not rewrite the text unseen).
  for (const std::string& respelled : {"0" + size_, "00" + size_, "+" + size_, " " + size_, std::string("0")}) {
    in = In();
    in.size_header = respelled;
    EXPECT_EQ(Open(in), E2eErrc::kMalformed) << respelled;
  }
}

TEST_F(E2eRequestTamperTest, TruncatedOrExtendedBody) {
  EncryptedRequest in = In();
  Bytes shorter(sealed_.body.begin(), sealed_.body.end() - 1);
  in.body = shorter;
  EXPECT_EQ(Open(in), E2eErrc::kMalformed);
  Bytes longer = sealed_.body;
  longer.push_back(0);
  in.body = longer;
  EXPECT_EQ(Open(in), E2eErrc::kMalformed);
  in.body = ByteSpan(sealed_.body).first(3);
  EXPECT_EQ(Open(in), E2eErrc::kMalformed);
}

TEST_F(E2eRequestTamperTest, AnotherServersKeyIsUnknownOrFails) {
  Server other = MakeServer(hpke::kSuiteX25519, 7);  // same key_id, another key
  auto r = OpenRequest(In(), Opts(&other.ring));
  EXPECT_EQ(r.code(), E2eErrc::kDecryptFailed);
  Server gmt = MakeServer(hpke::kSuiteGmt, 7);  // same key_id, another suite: stale config
  EXPECT_EQ(OpenRequest(In(), Opts(&gmt.ring)).code(), E2eErrc::kKeyUnknown);
  EXPECT_EQ(OpenRequest(In(), Opts(nullptr)).code(), E2eErrc::kKeyUnknown);
}

TEST_F(E2eRequestTamperTest, ServerRequiringTokensRefusesBaseMode) {
  OpenOptions o = Opts(&srv_.ring);
  o.require_client_token = true;
  EXPECT_EQ(OpenRequest(In(), o).code(), E2eErrc::kClientToken);
}

// ---------------------------------------------------------------------------
// Padding and limits
// ---------------------------------------------------------------------------

TEST(E2ePaddingTest, BucketsArePowersOfTwo) {
  EXPECT_EQ(BucketFor(0).value(), 1024u);
  EXPECT_EQ(BucketFor(1024).value(), 1024u);
  EXPECT_EQ(BucketFor(1025).value(), 2048u);
  EXPECT_EQ(BucketFor(4u << 20).value(), 4u << 20);
  EXPECT_EQ(BucketFor((4u << 20) + 1).code(), E2eErrc::kOversized);
}

TEST(E2ePaddingTest, SizeFollowsTheBucketNotTheLength) {
  Server srv = MakeServer(hpke::kSuiteX25519);
  auto a = SealRequest(srv.config, "/v1/completions", "m", false, "", std::string(10, 'a')).value();
  auto b = SealRequest(srv.config, "/v1/completions", "m", false, "", std::string(1000, 'a')).value();
  EXPECT_EQ(a.body.size(), b.body.size());
  auto c = SealRequest(srv.config, "/v1/completions", "m", false, "", std::string(1019, 'a')).value();
  EXPECT_EQ(c.fields.size, 2048u);  // 2 + 4 + 1019 > 1024
  auto big = SealRequest(srv.config, "/v1/completions", "m", false, "", std::string(4u << 20, 'a'));
  EXPECT_EQ(big.code(), E2eErrc::kOversized);
  auto long_auth = SealRequest(srv.config, "/v1/completions", "m", false, std::string(5000, 'k'), "{}");
  EXPECT_EQ(long_auth.code(), E2eErrc::kOversized);
}

// A plaintext with non-zero padding, or padded past the smallest bucket, is
// refused even though it decrypts: a sender cannot smuggle bytes in padding.
TEST(E2ePaddingTest, PaddingIsChecked) {
  Server srv = MakeServer(hpke::kSuiteX25519, 7);
  auto seal_raw = [&](const Bytes& pt, size_t size) {
    RouterFields f{"m", false, size};
    Bytes hdr = {7, 0x00, 0x20, 0x00, 0x01, 0x00, 0x02, 0x00};
    Bytes info = ToBytes(kRequestInfoLabel);
    info.push_back(0);
    info.insert(info.end(), hdr.begin(), hdr.end());
    for (const std::string& s : {std::string("/v1/completions"), f.model, std::string("0"), std::to_string(size)}) {
      info.push_back(static_cast<uint8_t>(s.size() >> 8));
      info.push_back(static_cast<uint8_t>(s.size()));
      info.insert(info.end(), s.begin(), s.end());
    }
    auto setup = hpke::SetupBaseS(srv.config.suite, srv.config.public_key, info).value();
    Bytes body = hdr;
    body.insert(body.end(), setup.enc.begin(), setup.enc.end());
    Bytes ct = setup.ctx.Seal({}, pt).value();
    body.insert(body.end(), ct.begin(), ct.end());
    return body;
  };
  auto open = [&](const Bytes& body, size_t size) {
    EncryptedRequest in;
    in.path = "/v1/completions";
    in.model_header = "m";
    in.stream_header = "0";
    const std::string s = std::to_string(size);
    in.size_header = s;
    in.body = body;
    auto r = OpenRequest(in, Opts(&srv.ring));
    return r.ok() ? E2eErrc{} : r.code();
  };
  Bytes pt(1024, 0);
  pt[5] = 2;  // json length 2
  pt[6] = '{';
  pt[7] = '}';
  EXPECT_EQ(open(seal_raw(pt, 1024), 1024), E2eErrc{});
  Bytes dirty = pt;
  dirty[1000] = 1;
  EXPECT_EQ(open(seal_raw(dirty, 1024), 1024), E2eErrc::kMalformed);
  Bytes overlong = pt;
  overlong[3] = 0xff;  // json length past the end
  EXPECT_EQ(open(seal_raw(overlong, 1024), 1024), E2eErrc::kMalformed);
  Bytes too_padded(2048, 0);
  std::copy(pt.begin(), pt.begin() + 8, too_padded.begin());
  EXPECT_EQ(open(seal_raw(too_padded, 2048), 2048), E2eErrc::kMalformed);
}

// ---------------------------------------------------------------------------
// Responses: every alteration of the stream is refused with its code
// ---------------------------------------------------------------------------

class E2eResponseTest : public ::testing::TestWithParam<hpke::Suite> {
 protected:
  void SetUp() override {
    srv_ = MakeServer(GetParam());
    sealed_ = SealRequest(srv_.config, "/v1/completions", "m", true, "", "{}").value();
    auto opened =
        OpenRequest(AsReceived(sealed_, "/v1/completions", "1", std::to_string(sealed_.fields.size)), Opts(&srv_.ring));
    ASSERT_TRUE(opened.ok());
    auto sealer = ResponseSealer::Create(opened->response).value();
    const char* parts[] = {R"({"status":200,"content_type":"text/event-stream"})", "data: 1\n\n", "data: 2\n\n",
                           "data: 3\n\n"};
    for (size_t i = 0; i < 4; ++i) {
      Bytes f = sealer.Seal(AsBytes(parts[i]), i == 3).value();
      if (i == 0) {
        nonce_.assign(f.begin(), f.begin() + kResponseNonceSize);
        f.erase(f.begin(), f.begin() + kResponseNonceSize);
      }
      frames_.push_back(f);
    }
    EXPECT_EQ(sealer.Seal({}, true).code(), E2eErrc::kMalformed);  // nothing after the final frame
  }
  Bytes Wire(const std::vector<size_t>& order) const {
    Bytes w = nonce_;
    for (size_t i : order) w.insert(w.end(), frames_[i].begin(), frames_[i].end());
    return w;
  }
  // Open feeds `wire` and ends the input; the first error's code, or none.
  E2eErrc Open(const Bytes& wire) const {
    auto o = ResponseOpener::Create(sealed_.response).value();
    auto f = o.Feed(wire);
    if (!f.ok()) return f.code();
    auto done = o.Finish();
    return done.ok() ? E2eErrc{} : done.code();
  }

  Server srv_;
  SealedRequest sealed_;
  Bytes nonce_;
  std::vector<Bytes> frames_;
};

TEST_P(E2eResponseTest, InOrderOpens) { EXPECT_EQ(Open(Wire({0, 1, 2, 3})), E2eErrc{}); }
TEST_P(E2eResponseTest, ReorderedIsRefused) { EXPECT_EQ(Open(Wire({0, 2, 1, 3})), E2eErrc::kDecryptFailed); }
TEST_P(E2eResponseTest, DroppedIsRefused) { EXPECT_EQ(Open(Wire({0, 2, 3})), E2eErrc::kDecryptFailed); }
TEST_P(E2eResponseTest, DuplicatedIsRefused) { EXPECT_EQ(Open(Wire({0, 1, 1, 2, 3})), E2eErrc::kDecryptFailed); }
TEST_P(E2eResponseTest, TruncatedIsRefused) {
  EXPECT_EQ(Open(Wire({0, 1, 2})), E2eErrc::kTruncated);
  Bytes partial = Wire({0, 1, 2, 3});
  partial.pop_back();
  EXPECT_EQ(Open(partial), E2eErrc::kTruncated);
  EXPECT_EQ(Open(nonce_), E2eErrc::kTruncated);
  EXPECT_EQ(Open({}), E2eErrc::kTruncated);
}
TEST_P(E2eResponseTest, FlippedBitIsRefused) {
  for (size_t frame = 0; frame < 4; ++frame) {
    for (size_t at : {size_t{4}, frames_[frame].size() / 2, frames_[frame].size() - 1}) {
      auto saved = frames_[frame];
      frames_[frame][at] ^= 0x80;
      EXPECT_EQ(Open(Wire({0, 1, 2, 3})), E2eErrc::kDecryptFailed) << frame << " " << at;
      frames_[frame] = saved;
    }
  }
  Bytes bad_nonce = Wire({0, 1, 2, 3});
  bad_nonce[3] ^= 1;
  EXPECT_EQ(Open(bad_nonce), E2eErrc::kDecryptFailed);
}
TEST_P(E2eResponseTest, FinalFlagCannotBeMoved) {
  // Marking frame 2 final (and dropping 3) fails: the flag is in the aad.
  frames_[2][0] |= 0x80;
  EXPECT_EQ(Open(Wire({0, 1, 2})), E2eErrc::kDecryptFailed);
}
TEST_P(E2eResponseTest, AppendedAfterFinalIsRefused) {
  EXPECT_EQ(Open(Wire({0, 1, 2, 3, 1})), E2eErrc::kMalformed);
  Bytes one_more = Wire({0, 1, 2, 3});
  one_more.push_back(0);
  EXPECT_EQ(Open(one_more), E2eErrc::kMalformed);
  // Also when the extra bytes arrive in a later Feed.
  auto o = ResponseOpener::Create(sealed_.response).value();
  ASSERT_TRUE(o.Feed(Wire({0, 1, 2, 3})).ok());
  EXPECT_EQ(o.Feed(frames_[1]).code(), E2eErrc::kMalformed);
  EXPECT_EQ(o.Finish().code(), E2eErrc::kMalformed);  // sticky
}
TEST_P(E2eResponseTest, OversizedFrameLengthIsRefused) {
  Bytes w = nonce_;
  PutU32Be(w, (2u << 20));
  EXPECT_EQ(Open(w), E2eErrc::kOversized);
}
TEST_P(E2eResponseTest, AnotherRequestsKeyCannotOpen) {
  auto other = SealRequest(srv_.config, "/v1/completions", "m", true, "", "{}").value();
  auto o = ResponseOpener::Create(other.response).value();
  EXPECT_EQ(o.Feed(Wire({0, 1, 2, 3})).code(), E2eErrc::kDecryptFailed);
}

INSTANTIATE_TEST_SUITE_P(Suites, E2eResponseTest, ::testing::Values(hpke::kSuiteX25519, hpke::kSuiteGmt),
                         [](const auto& p) { return std::string(hpke::SuiteName(p.param)); });

TEST(E2eResponseHeadTest, StrictHead) {
  EXPECT_TRUE(ParseResponseHead(R"({"status":429,"content_type":"application/json","headers":{"retry-after":"1"}})")
                  .ok());
  EXPECT_EQ(ParseResponseHead("nope").code(), E2eErrc::kMalformed);
  EXPECT_EQ(ParseResponseHead(R"({"status":"200","content_type":"x"})").code(), E2eErrc::kMalformed);
  EXPECT_EQ(ParseResponseHead(R"({"status":99,"content_type":"x"})").code(), E2eErrc::kMalformed);
  EXPECT_EQ(ParseResponseHead(R"({"status":200})").code(), E2eErrc::kMalformed);
  EXPECT_EQ(ParseResponseHead(R"({"status":200,"content_type":"x","headers":{"a":1}})").code(), E2eErrc::kMalformed);
}

// ---------------------------------------------------------------------------
// Mutual mode (auth mode), with a stand-in verifier (the cllm-trust one is
// tested in trust/e2e_client_test.cc)
// ---------------------------------------------------------------------------

TEST(E2eMutualTest, AuthModeRoundTripAndRefusals) {
  Server srv = MakeServer(hpke::kSuiteX25519);
  auto client_kp = hpke::GenerateKeyPair(hpke::Kem::kX25519HkdfSha256).value();
  ClientIdentity id{"token-abc", "jws-def", client_kp.sk.Clone()};
  auto sealed = SealRequest(srv.config, "/v1/completions", "m", false, "", "{}", &id).value();
  EXPECT_EQ(sealed.body[7], 2);  // mode byte
  const std::string size = std::to_string(sealed.fields.size);
  EncryptedRequest in = AsReceived(sealed, "/v1/completions", "0", size);
  in.client_token = id.token;
  in.client_key = id.key_jws;
  Bytes pk_s = client_kp.pk;
  OpenOptions o = Opts(&srv.ring);
  int verifier_calls = 0;
  o.client_verifier = [&](std::string_view token, std::string_view jws, hpke::Suite) -> E2eResult<Bytes> {
    ++verifier_calls;
    if (token != "token-abc" || jws != "jws-def") return MakeError(E2eErrc::kClientToken, "bad");
    return pk_s;
  };
  o.require_client_token = true;
  auto opened = OpenRequest(in, o);
  ASSERT_TRUE(opened.ok()) << opened.detail();
  EXPECT_EQ(opened->mode, hpke::Mode::kAuth);

  // Without a verifier, the server takes no auth mode.
  EXPECT_EQ(OpenRequest(in, Opts(&srv.ring)).code(), E2eErrc::kClientToken);
  // Without the headers.
  EncryptedRequest no_token = in;
  no_token.client_token = "";
  EXPECT_EQ(OpenRequest(no_token, o).code(), E2eErrc::kClientToken);
  // A token the verifier refuses: refused before decryption.
  EncryptedRequest other_token = in;
  other_token.client_token = "token-xyz";
  EXPECT_EQ(OpenRequest(other_token, o).code(), E2eErrc::kClientToken);
  // The verifier vouches for another pkS: the request does not decrypt.
  pk_s = hpke::GenerateKeyPair(hpke::Kem::kX25519HkdfSha256).value().pk;
  EXPECT_EQ(OpenRequest(in, o).code(), E2eErrc::kDecryptFailed);
  pk_s = client_kp.pk;
  // The token and statement are bound into info: a proxy cannot swap them
  // for others the verifier also accepts.
  auto lenient = o;
  lenient.client_verifier = [&](std::string_view, std::string_view, hpke::Suite) -> E2eResult<Bytes> { return pk_s; };
  EncryptedRequest swapped = in;
  swapped.client_key = "jws-other";
  EXPECT_EQ(OpenRequest(swapped, lenient).code(), E2eErrc::kDecryptFailed);
  EXPECT_GT(verifier_calls, 0);
}

}  // namespace
}  // namespace cllm::channel::e2e
