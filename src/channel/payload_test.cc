#include "channel/payload.h"

#include <gtest/gtest.h>

#include "base/encoding.h"

namespace cllm::channel {
namespace {

AttestationPayload Sample() {
  AttestationPayload p;
  p.platform = "sim";
  p.evidence = Bytes(100, 0xab);
  p.binary_digest.fill(1);
  p.model_digest.fill(2);
  p.model_name = "qwen3";
  p.freshness = ToBytes("nonce-123");
  return p;
}

TEST(PayloadTest, RoundTripWithAndWithoutOptionalFields) {
  AttestationPayload p = Sample();
  auto back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->platform, "sim");
  EXPECT_EQ(back->evidence, p.evidence);
  EXPECT_EQ(back->binary_digest, p.binary_digest);
  EXPECT_EQ(back->model_digest, p.model_digest);
  EXPECT_EQ(back->model_name, "qwen3");
  EXPECT_EQ(back->freshness, p.freshness);
  EXPECT_FALSE(back->token.has_value());
  p.token = "header.claims.sig";
  p.endorsements = Bytes{1, 2, 3};
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->token, p.token);
  EXPECT_EQ(back->endorsements, p.endorsements);
}

TEST(PayloadTest, RejectsMalformedInput) {
  Bytes good = EncodePayload(Sample());
  // Every truncation is an error, never a crash.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_EQ(DecodePayload(ByteSpan(good).first(n)).code(), PayloadErrc::kMalformed) << n;
  }
  Bytes bad = good;
  bad[0] = 'X';
  EXPECT_EQ(DecodePayload(bad).code(), PayloadErrc::kMalformed);
  bad = good;
  bad[9] = 2;  // version
  EXPECT_EQ(DecodePayload(bad).code(), PayloadErrc::kUnsupportedVersion);
  bad = good;
  bad.push_back(0);
  EXPECT_EQ(DecodePayload(bad).code(), PayloadErrc::kMalformed);  // trailing byte
  bad = good;
  bad[11] = 9;  // first field's tag → unknown
  EXPECT_EQ(DecodePayload(bad).code(), PayloadErrc::kMalformed);
  bad = good;
  bad[10] = 5;  // count: one field fewer → freshness missing
  bad.resize(bad.size() - (1 + 4 + 9));
  EXPECT_EQ(DecodePayload(bad).code(), PayloadErrc::kMalformed);
}

TEST(PayloadTest, OversizedFieldIsTooLarge) {
  Bytes good = EncodePayload(Sample());
  // First field (platform, tag 1) claims 4 GiB.
  Bytes bad = good;
  bad[12] = bad[13] = bad[14] = bad[15] = 0xff;
  EXPECT_EQ(DecodePayload(bad).code(), PayloadErrc::kTooLarge);
}

TEST(PayloadTest, DuplicateFieldRejected) {
  Bytes good = EncodePayload(Sample());
  Bytes bad(good.begin(), good.begin() + 10);
  bad.push_back(7);
  Bytes fields(good.begin() + 11, good.end());
  bad.insert(bad.end(), fields.begin(), fields.end());
  // Duplicate the platform field (tag 1, length 3, "sim").
  bad.insert(bad.end(), {1, 0, 0, 0, 3, 's', 'i', 'm'});
  EXPECT_EQ(DecodePayload(bad).code(), PayloadErrc::kMalformed);
}

// The binding recomputed independently (Python hashlib) for this input.
TEST(PayloadTest, ReportDataKnownAnswer) {
  Bytes spki = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto rd = ComputeReportData(spki, Sample());
  EXPECT_EQ(HexEncode(rd),
            "6424c88b166fcbee2b1602d514fda47ac05916712fe43fafeb42c40b868a9e2e"
            "11dea68c31c44eb0b29e3745387708f06d5bcdd0985b1adb70623a7cc2142adf");
}

// The e2e key digests extend the hashed input (python3: hashlib.sha512 of the
// same bytes as above followed by b"e2e" + bytes([2]) + bytes([7]*32) + bytes([8]*32)).
TEST(PayloadTest, ReportDataKnownAnswerWithE2eKeys) {
  Bytes spki = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  AttestationPayload p = Sample();
  p.e2e_key_digests.resize(2);
  p.e2e_key_digests[0].fill(7);
  p.e2e_key_digests[1].fill(8);
  EXPECT_EQ(HexEncode(ComputeReportData(spki, p)),
            "0c86dbdd2110ee17beae703e6d40dad5869d2795b97bc48eeda8b33a5ba78f6f"
            "4bb4b67cf0716505386e20754d51e9fa64ebdda7550718ae6318c5d616b5724d");
}

TEST(PayloadTest, E2eKeyDigestsRoundTripAndAreChecked) {
  AttestationPayload p = Sample();
  p.e2e_key_digests.resize(3);
  p.e2e_key_digests[2].fill(9);
  auto back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->e2e_key_digests, p.e2e_key_digests);
  // A field whose length is not a multiple of 32, or empty, is malformed.
  Bytes enc = EncodePayload(Sample());
  enc[10] += 1;  // the field count (after the 9-byte magic and the version)
  for (uint32_t len : {31u, 0u}) {
    Bytes bad = enc;
    bad.push_back(9);
    for (int i = 3; i >= 0; --i) bad.push_back(static_cast<uint8_t>(len >> (8 * i)));
    bad.insert(bad.end(), len, 0x55);
    auto r = DecodePayload(bad);
    EXPECT_FALSE(r.ok()) << len;
    EXPECT_EQ(r.code(), PayloadErrc::kMalformed) << len;
  }
  Bytes over = enc;
  over.push_back(9);
  const uint32_t too_many = (kMaxE2eKeys + 1) * kDigestSize;
  for (int i = 3; i >= 0; --i) over.push_back(static_cast<uint8_t>(too_many >> (8 * i)));
  over.insert(over.end(), too_many, 0x55);
  auto r = DecodePayload(over);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), PayloadErrc::kTooLarge);
}

// Serving claims sit between the freshness and the e2e part (python3:
// hashlib.sha512 of the known-answer input followed by b"serving" +
// bytes([3]) + bytes([5]*32) + b"e2e" + bytes([1]) + bytes([7]*32); and by
// b"serving" + bytes([2]) alone, b"serving" + bytes([48, 2]) + bytes([3]*32) +
// bytes([9]*32) alone).
TEST(PayloadTest, ReportDataKnownAnswerWithServingClaims) {
  Bytes spki = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  AttestationPayload p = Sample();
  p.serving.chat_template_digest.emplace().fill(5);
  p.serving.model_from_untrusted_disk = true;
  p.e2e_key_digests.resize(1);
  p.e2e_key_digests[0].fill(7);
  EXPECT_EQ(HexEncode(ComputeReportData(spki, p)),
            "bcec2d39da32f9ca70bf3fd77e1a3e13057b77b365e87f4eb73350fc2a45cfa1"
            "be219b6825f7ebbd56e6c3afc1a109dc859288805eebf34c42b80bd1a5c48e37");
  p = Sample();  // padding off: b"serving" + bytes([8]) + bytes([0, 0])
  p.serving.stream_pad = 0;
  EXPECT_EQ(HexEncode(ComputeReportData(spki, p)),
            "81986bbd23ad07e3e0a2c0a957e57c36d933c68fa0418c09102671b0ac3225fc"
            "6ce7e588ca6ec1c92e1307c98c54e45fbfcbe826462379649e26f76e6f5a5423");
  p = Sample();  // every flag: b"serving" + bytes([7]) + bytes([5]*32)
  p.serving.chat_template_digest.emplace().fill(5);
  p.serving.model_from_untrusted_disk = true;
  p.serving.memory_unlocked = true;
  EXPECT_EQ(HexEncode(ComputeReportData(spki, p)),
            "fd1f0de0497f5ab8aa70c51e50e2209a38fdf8bfc76820ff828df8dc68c68341"
            "2ccc54ba2c58ea1a2e3db1be862d4a590b05df38fd3a87a335b0c4f6efcb1561");
  p = Sample();
  p.serving.model_from_untrusted_disk = true;
  EXPECT_EQ(HexEncode(ComputeReportData(spki, p)),
            "71e4bb42f6a1632fc8e696029e59a593bdfd269a3046e3b6efc15f1890e5fd15"
            "f1c2cc64cbbe238032227bdfcecff54ac86d533ba8719a7372e9038283d33fe0");
  p = Sample();  // a debug listener (no value) and two metrics readers (a count, then their digests)
  p.serving.debug_listener = true;
  p.serving.metrics_readers.resize(2);
  p.serving.metrics_readers[0].fill(3);
  p.serving.metrics_readers[1].fill(9);
  EXPECT_EQ(HexEncode(ComputeReportData(spki, p)),
            "478c942eeaec551e8e555cde25dfe56d6122753bc7da12afa9120f0190667d17"
            "2b97c053947b3ab3742c0fc715d6794a28f4794e4417687eda43d5127465bdac");
}

// Default serving is encoded as no field (old payloads and report data are
// unchanged); each claim round-trips; a value the decoder does not fully
// understand is malformed, never dropped.
TEST(PayloadTest, ServingClaimsRoundTripAndAreChecked) {
  const Bytes plain = EncodePayload(Sample());
  AttestationPayload p = Sample();
  p.serving.model_from_untrusted_disk = false;
  EXPECT_EQ(EncodePayload(p), plain);
  p.serving.chat_template_digest.emplace().fill(0xc4);
  auto back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving, p.serving);
  p.serving.model_from_untrusted_disk = true;
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving, p.serving);
  p.serving.chat_template_digest.reset();
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving, p.serving);
  p.serving.memory_unlocked = true;
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving, p.serving);
  p.serving.debug_listener = true;
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving, p.serving);
  p.serving.metrics_readers.resize(1);
  p.serving.metrics_readers[0].fill(0xee);
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving, p.serving);
  p.serving.stream_pad = 64;  // every part at once: template, pad, readers in their order
  p.serving.chat_template_digest.emplace().fill(0x51);
  p.serving.metrics_readers.resize(kMaxMetricsReaders);
  for (size_t i = 0; i < kMaxMetricsReaders; ++i) p.serving.metrics_readers[i].fill(static_cast<uint8_t>(i));
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving, p.serving);
  p.serving.stream_coalesce_ms = kMaxStreamCoalesceMs;  // and coalescing, last
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving, p.serving);
  p.serving.chat_template_digest.reset();
  p.serving.stream_pad = kDefaultStreamPad;
  p.serving.debug_listener = false;
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving, p.serving);

  Bytes enc = plain;
  enc[10] += 1;  // one more field
  auto with = [&](Bytes value) {
    Bytes bad = enc;
    bad.push_back(10);
    const uint32_t len = static_cast<uint32_t>(value.size());
    for (int i = 3; i >= 0; --i) bad.push_back(static_cast<uint8_t>(len >> (8 * i)));
    bad.insert(bad.end(), value.begin(), value.end());
    return DecodePayload(bad);
  };
  ASSERT_TRUE(with(Bytes{2}).ok());
  EXPECT_TRUE(with(Bytes{2})->serving.model_from_untrusted_disk);
  Bytes templ(33, 0x11);
  templ[0] = 1;
  ASSERT_TRUE(with(templ).ok());
  ASSERT_TRUE(with(Bytes{4}).ok());
  EXPECT_TRUE(with(Bytes{4})->serving.memory_unlocked);
  EXPECT_FALSE(with(Bytes{4})->serving.model_from_untrusted_disk);
  ASSERT_TRUE(with(Bytes{16}).ok());
  EXPECT_TRUE(with(Bytes{16})->serving.debug_listener);
  EXPECT_TRUE(with(Bytes{16})->serving.metrics_readers.empty());
  // Metrics readers (flag 32): a count from 1 to 16, then that many digests
  // in ascending order without repeats, after the stream pad.
  auto readers = [](std::initializer_list<uint8_t> fills, Bytes head = Bytes{32}) {
    head.push_back(static_cast<uint8_t>(fills.size()));
    for (uint8_t f : fills) head.insert(head.end(), kDigestSize, f);
    return head;
  };
  ASSERT_TRUE(with(readers({1, 2})).ok()) << with(readers({1, 2})).detail();
  EXPECT_EQ(with(readers({1, 2}))->serving.metrics_readers.size(), 2u);
  EXPECT_EQ(with(readers({1, 2}))->serving.metrics_readers[1][0], 2);
  EXPECT_FALSE(with(readers({1, 2}))->serving.debug_listener);
  ASSERT_TRUE(with(readers({7}, Bytes{40, 1, 0})).ok());
  EXPECT_EQ(with(readers({7}, Bytes{40, 1, 0}))->serving.stream_pad, 256u);
  Bytes too_many = readers({});
  too_many[1] = static_cast<uint8_t>(kMaxMetricsReaders + 1);
  for (size_t i = 0; i <= kMaxMetricsReaders; ++i) {
    too_many.insert(too_many.end(), kDigestSize, static_cast<uint8_t>(i));
  }
  for (const Bytes& bad : {readers({}), readers({2, 1}), readers({4, 4}), Bytes{32}, Bytes(33, 32), too_many}) {
    auto r = with(bad);
    ASSERT_FALSE(r.ok()) << HexEncode(bad);
    EXPECT_TRUE(r.code() == PayloadErrc::kMalformed || r.code() == PayloadErrc::kTooLarge) << HexEncode(bad);
  }
  Bytes short_reader = readers({5});
  short_reader.pop_back();
  EXPECT_EQ(with(short_reader).code(), PayloadErrc::kMalformed);
  Bytes count_lies = readers({5, 6});
  count_lies[1] = 1;  // a whole reader past the claims
  EXPECT_EQ(with(count_lies).code(), PayloadErrc::kMalformed);
  for (const Bytes& bad : {Bytes{}, Bytes{0}, Bytes{8}, Bytes{0x82}, Bytes{0x40}, Bytes{1}, Bytes(33, 0x02), Bytes{2, 0},
                           Bytes{16, 0}, Bytes{48, 0, 0}, Bytes{32, 0}}) {
    auto r = with(bad);
    ASSERT_FALSE(r.ok()) << HexEncode(bad);
    EXPECT_TRUE(r.code() == PayloadErrc::kMalformed || r.code() == PayloadErrc::kTooLarge) << HexEncode(bad);
  }
  Bytes big(36 + 1 + kMaxMetricsReaders * kDigestSize + 2, 0x01);
  EXPECT_EQ(with(big).code(), PayloadErrc::kTooLarge);
  // The stream pad (flag 8): two bytes after the template digest; the
  // default 512 and values over 16384 are not encodings of anything.
  ASSERT_TRUE(with(Bytes{8, 0, 0}).ok());
  EXPECT_EQ(with(Bytes{8, 0, 0})->serving.stream_pad, 0u);
  Bytes both(36, 0x11);
  both[0] = 9;
  both[33] = 0x01, both[34] = 0x00;  // 256
  both.pop_back();
  ASSERT_TRUE(with(both).ok()) << with(both).detail();
  EXPECT_EQ(with(both)->serving.stream_pad, 256u);
  // Coalescing alone (flag 64): 1 to 10000 ms, two bytes after everything else.
  ASSERT_TRUE(with(Bytes{64, 0x01, 0xf4}).ok());
  EXPECT_EQ(with(Bytes{64, 0x01, 0xf4})->serving.stream_coalesce_ms, 500u);
  EXPECT_EQ(with(Bytes{72, 0x01, 0x00, 0x00, 0x32})->serving.stream_coalesce_ms, 50u);
  EXPECT_EQ(with(Bytes{72, 0x01, 0x00, 0x00, 0x32})->serving.stream_pad, 256u);
  for (const Bytes& bad : {Bytes{64, 0, 0}, Bytes{64, 0x27, 0x11}, Bytes{64, 1}, Bytes{64, 0, 1, 0}}) {
    EXPECT_EQ(with(bad).code(), PayloadErrc::kMalformed) << HexEncode(bad);
  }
  EXPECT_TRUE(with(both)->serving.chat_template_digest.has_value());
  for (const Bytes& bad : {Bytes{8, 2, 0}, Bytes{8, 0x40, 1}, Bytes{8, 0}, Bytes{8}, Bytes{8, 0, 31}, Bytes{8, 0, 1}}) {
    EXPECT_EQ(with(bad).code(), PayloadErrc::kMalformed) << HexEncode(bad);
  }
  p = Sample();
  p.serving.stream_pad = 0;
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving.stream_pad, 0u);
  p.serving.stream_pad = kMaxStreamPad;
  back = DecodePayload(EncodePayload(p));
  ASSERT_TRUE(back.ok()) << back.detail();
  EXPECT_EQ(back->serving.stream_pad, kMaxStreamPad);
}

TEST(PayloadTest, EveryBoundFieldChangesReportData) {
  Bytes spki = {0, 1, 2};
  auto base = ComputeReportData(spki, Sample());
  EXPECT_NE(ComputeReportData(Bytes{0, 1, 3}, Sample()), base);
  AttestationPayload p = Sample();
  p.binary_digest[31] ^= 1;
  EXPECT_NE(ComputeReportData(spki, p), base);
  p = Sample();
  p.model_digest[0] ^= 1;
  EXPECT_NE(ComputeReportData(spki, p), base);
  p = Sample();
  p.model_name = "qwen2";
  EXPECT_NE(ComputeReportData(spki, p), base);
  p = Sample();
  p.freshness.push_back(0);
  EXPECT_NE(ComputeReportData(spki, p), base);
  p = Sample();
  p.e2e_key_digests.resize(1);
  const auto one = ComputeReportData(spki, p);
  EXPECT_NE(one, base);
  p.e2e_key_digests[0][5] ^= 1;
  EXPECT_NE(ComputeReportData(spki, p), one);
  p = Sample();
  p.serving.model_from_untrusted_disk = true;
  const auto disk = ComputeReportData(spki, p);
  EXPECT_NE(disk, base);
  p.serving.memory_unlocked = true;
  const auto unlocked = ComputeReportData(spki, p);
  EXPECT_NE(unlocked, disk);
  p.serving.stream_pad = 256;
  const auto padded = ComputeReportData(spki, p);
  EXPECT_NE(padded, unlocked);
  p.serving.stream_pad = 1024;
  EXPECT_NE(ComputeReportData(spki, p), padded);
  p.serving.stream_pad = kDefaultStreamPad;
  p.serving.debug_listener = true;
  const auto debug = ComputeReportData(spki, p);
  EXPECT_NE(debug, unlocked);
  p.serving.metrics_readers.resize(1);
  const auto reader = ComputeReportData(spki, p);
  EXPECT_NE(reader, debug);
  p.serving.metrics_readers[0][31] ^= 1;  // another reader
  EXPECT_NE(ComputeReportData(spki, p), reader);
  p.serving.debug_listener = false;
  EXPECT_NE(ComputeReportData(spki, p), unlocked);
  p.serving.metrics_readers.clear();
  p.serving.chat_template_digest.emplace().fill(0);
  const auto templ = ComputeReportData(spki, p);
  EXPECT_NE(templ, unlocked);
  EXPECT_NE(templ, disk);
  (*p.serving.chat_template_digest)[31] ^= 1;
  EXPECT_NE(ComputeReportData(spki, p), templ);
  // Moving a byte between name and freshness must not collide.
  AttestationPayload a = Sample(), b = Sample();
  a.model_name = "ab";
  a.freshness = ToBytes("c");
  b.model_name = "a";
  b.freshness = ToBytes("bc");
  EXPECT_NE(ComputeReportData(spki, a), ComputeReportData(spki, b));
}

}  // namespace
}  // namespace cllm::channel
