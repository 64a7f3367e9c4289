#include "base/secure.h"

#include <gtest/gtest.h>

#include "base/bytes.h"
#include "base/log.h"

namespace cllm {
namespace {

TEST(SecureTest, SecureZeroClears) {
  uint8_t buf[16];
  for (auto& b : buf) b = 0xaa;
  SecureZero(buf, sizeof buf);
  for (auto b : buf) EXPECT_EQ(b, 0);
}

TEST(SecretBytesTest, MoveLeavesSourceEmptyAndCloneCopies) {
  const uint8_t key[] = {1, 2, 3};
  SecretBytes a{ByteSpan(key)};
  SecretBytes b = a.Clone();
  SecretBytes c = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(c.size(), 3u);
  EXPECT_TRUE(ConstantTimeEqual(b.span(), c.span()));
  c.clear();
  EXPECT_TRUE(c.empty());
}

TEST(ConstantTimeEqualTest, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abc")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abd")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("ab")));
}

TEST(LogTest, RedactedNeverShowsText) {
  EXPECT_EQ(fmt::format("{}", log::Redacted{42}), "<redacted 42 bytes>");
  EXPECT_TRUE(log::ParseLevel("warn").ok());
  EXPECT_EQ(log::ParseLevel("loud").code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace cllm
