#include "base/encoding.h"

#include <gtest/gtest.h>

namespace cllm {
namespace {

TEST(HexTest, RoundTrip) {
  Bytes b = {0x00, 0x7f, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "007fabff");
  EXPECT_EQ(*HexDecode("007FabFF"), b);
}

TEST(HexTest, RejectsBadInput) {
  EXPECT_EQ(HexDecode("abc").code(), Errc::kParse);
  auto r = HexDecode("00zz");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.detail().find("position 2"), std::string::npos);
}

// RFC 4648 section 10 test vectors.
TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : cases) {
    EXPECT_EQ(Base64Encode(AsBytes(plain)), enc);
    auto dec = Base64Decode(enc);
    ASSERT_TRUE(dec.ok()) << enc;
    EXPECT_EQ(AsChars(*dec), plain);
  }
}

TEST(Base64Test, UrlAlphabetWithoutPadding) {
  Bytes b = {0xfb, 0xff};
  EXPECT_EQ(Base64Encode(b), "+/8=");
  EXPECT_EQ(Base64UrlEncode(b), "-_8");
  EXPECT_EQ(*Base64UrlDecode("-_8"), b);
}

TEST(Base64Test, SkipsPemWhitespaceAndRejectsGarbage) {
  EXPECT_EQ(AsChars(*Base64Decode("Zm9v\nYmFy\r\n")), "foobar");
  EXPECT_EQ(Base64Decode("Zm9v!").code(), Errc::kParse);
  EXPECT_EQ(Base64Decode("Z").code(), Errc::kParse);
  EXPECT_EQ(Base64Decode("Zg=a").code(), Errc::kParse);
  EXPECT_EQ(Base64Decode("Zh==").code(), Errc::kParse);  // non-zero trailing bits
}

}  // namespace
}  // namespace cllm
