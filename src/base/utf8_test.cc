#include "base/utf8.h"

#include <gtest/gtest.h>

namespace cllm {
namespace {

TEST(Utf8Test, AcceptsWellFormed) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("hello"));
  EXPECT_TRUE(IsValidUtf8("\xe4\xbd\xa0\xe5\xa5\xbd"));      // 你好
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));              // 😀
  EXPECT_TRUE(IsValidUtf8("\xe2\x96\x81"));                  // ▁
}

TEST(Utf8Test, RejectsMalformed) {
  EXPECT_FALSE(IsValidUtf8("\x80"));                 // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));             // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));         // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));         // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));     // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe4\xbd"));             // truncated
  EXPECT_FALSE(IsValidUtf8("\xff"));
}

TEST(Utf8Test, DecodesCodePoints) {
  std::vector<uint32_t> cps;
  ASSERT_TRUE(DecodeUtf8("a\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80", &cps));
  EXPECT_EQ(cps, (std::vector<uint32_t>{'a', 0xE9, 0x4F60, 0x1F600}));
  EXPECT_FALSE(DecodeUtf8("a\xed\xa0\x80", &cps));  // a surrogate: nothing appended
  EXPECT_EQ(cps.size(), 4u);
}

// Untrusted strings in messages: terminal controls and bytes that are not
// UTF-8 (which a JSON encoder would throw on) are escaped, text is kept.
TEST(Utf8Test, EscapeForDisplayKeepsTextAndEscapesControlsAndBadBytes) {
  EXPECT_EQ(EscapeForDisplay("snp → ok\n\ttab"), "snp → ok\n\ttab");
  EXPECT_EQ(EscapeForDisplay("\x1b[2J\x7f"), "\\x1b[2J\\x7f");
  EXPECT_EQ(EscapeForDisplay("a\xff\xc3"), "a\\xff\\xc3");
  EXPECT_EQ(EscapeForDisplay(std::string("x\0y", 3)), "x\\x00y");
  EXPECT_TRUE(IsValidUtf8(EscapeForDisplay("\xed\xa0\x80 \xf4\x90\x80\x80")));  // surrogate, > U+10FFFF
}

}  // namespace
}  // namespace cllm
