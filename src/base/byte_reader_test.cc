#include "base/byte_reader.h"

#include <gtest/gtest.h>

#include <limits>

namespace cllm {
namespace {

TEST(ByteReaderTest, ReadsLittleAndBigEndian) {
  const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                          0x11, 0x22, 0x33, 0x44, 0xaa, 0xbb};
  ByteReader r(data);
  EXPECT_EQ(*r.U64Le(), 0x0807060504030201ull);
  EXPECT_EQ(*r.U32Be(), 0x11223344u);
  EXPECT_EQ(*r.U16Le(), 0xbbaau);
  EXPECT_TRUE(r.empty());
}

TEST(ByteReaderTest, SignedAndFloat) {
  const uint8_t data[] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x80, 0x3f};
  ByteReader r(data);
  EXPECT_EQ(*r.I32Le(), -1);
  EXPECT_EQ(*r.F32Le(), 1.0f);
}

TEST(ByteReaderTest, ShortReadFailsWithoutConsuming) {
  const uint8_t data[] = {1, 2, 3};
  ByteReader r(data);
  auto v = r.U32Le();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), Errc::kOutOfRange);
  EXPECT_NE(v.detail().find("need 4 bytes at offset 0, 3 left"), std::string::npos) << v.detail();
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_EQ(*r.U16Le(), 0x0201u);
}

TEST(ByteReaderTest, HugeLengthsAreRejectedNotWrapped) {
  const uint8_t data[] = {1, 2, 3, 4};
  ByteReader r(data);
  EXPECT_EQ(r.Bytes(std::numeric_limits<uint64_t>::max()).code(), Errc::kOutOfRange);
  EXPECT_EQ(r.Skip(std::numeric_limits<uint64_t>::max()).code(), Errc::kOutOfRange);
  EXPECT_EQ(r.Sub(5).code(), Errc::kOutOfRange);
  EXPECT_EQ(r.String(uint64_t{1} << 63).code(), Errc::kOutOfRange);
  EXPECT_EQ(r.remaining(), 4u);
}

TEST(ByteReaderTest, SubReaderReportsAbsoluteOffsets) {
  const uint8_t data[] = {0, 0, 0, 0, 9, 9};
  ByteReader r(data);
  ASSERT_TRUE(r.Skip(4).ok());
  auto sub = r.Sub(2);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->offset(), 4u);
  EXPECT_TRUE(r.empty());
  auto bad = sub->U32Le();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.detail().find("offset 4"), std::string::npos) << bad.detail();
}

TEST(ByteReaderTest, SeekAndAlign) {
  uint8_t data[40] = {};
  ByteReader r(data);
  ASSERT_TRUE(r.Skip(3).ok());
  ASSERT_TRUE(r.AlignTo(32).ok());
  EXPECT_EQ(r.offset(), 32u);
  ASSERT_TRUE(r.AlignTo(32).ok());
  EXPECT_EQ(r.offset(), 32u);
  ASSERT_TRUE(r.Skip(1).ok());
  EXPECT_EQ(r.AlignTo(32).code(), Errc::kOutOfRange);
  EXPECT_TRUE(r.SeekTo(40).ok());
  EXPECT_EQ(r.SeekTo(41).code(), Errc::kOutOfRange);
}

TEST(ByteReaderTest, ArrayCopiesFixedFields) {
  const uint8_t data[] = {1, 2, 3};
  ByteReader r(data);
  auto a = r.Array<2>();
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)[1], 2);
  EXPECT_EQ(r.Array<2>().code(), Errc::kOutOfRange);
}

TEST(CheckedMathTest, DetectsOverflow) {
  uint64_t out = 0;
  EXPECT_TRUE(CheckedMul(1ull << 31, 1ull << 32, &out));
  EXPECT_EQ(out, 1ull << 63);
  EXPECT_FALSE(CheckedMul(1ull << 32, 1ull << 32, &out));
  EXPECT_FALSE(CheckedAdd(std::numeric_limits<uint64_t>::max(), 1, &out));
}

TEST(WritersTest, RoundTrip) {
  Bytes out;
  PutU32Le(out, 0xdeadbeef);
  PutU64Be(out, 0x0102030405060708ull);
  ByteReader r(out);
  EXPECT_EQ(*r.U32Le(), 0xdeadbeefu);
  EXPECT_EQ(*r.U64Be(), 0x0102030405060708ull);
}

}  // namespace
}  // namespace cllm
