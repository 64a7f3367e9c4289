#include "base/json_guard.h"

#include <gtest/gtest.h>

#include <string>

namespace cllm {
namespace {

TEST(JsonGuardTest, CountsNestingOutsideStrings) {
  EXPECT_TRUE(JsonDepthWithin(R"({"a":[1,{"b":[]}]})", 4));  // { [ { [
  EXPECT_FALSE(JsonDepthWithin(R"({"a":[1,{"b":[]}]})", 3));
  EXPECT_TRUE(JsonDepthWithin(R"({"s":"[[[[[[\"[[["})", 1));
  EXPECT_TRUE(JsonDepthWithin("", 0));
}

TEST(JsonGuardTest, RejectsHostileDepth) {
  EXPECT_FALSE(JsonDepthWithin(std::string(1 << 20, '[')));
  EXPECT_TRUE(JsonDepthWithin(std::string(64, '[') + std::string(64, ']')));
  EXPECT_FALSE(JsonDepthWithin(std::string(65, '{')));
}

}  // namespace
}  // namespace cllm
