#include "base/result.h"

#include <gtest/gtest.h>

#include <memory>

namespace cllm {
namespace {

enum class DemoErrc { kBad, kWorse };

Result<int, DemoErrc> Parse(int x) {
  if (x < 0) return MakeError(DemoErrc::kBad, "negative: " + std::to_string(x));
  return x * 2;
}

Result<int, DemoErrc> ParseTwice(int x) {
  CLLM_ASSIGN_OR_RETURN(int once, Parse(x));
  CLLM_ASSIGN_OR_RETURN(int twice, Parse(once));
  return twice;
}

Status<DemoErrc> CheckPositive(int x) {
  CLLM_RETURN_IF_ERROR(Parse(x));
  return OkStatus();
}

TEST(ResultTest, CarriesValueOrError) {
  auto ok = Parse(3);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 6);
  auto bad = Parse(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), DemoErrc::kBad);
  EXPECT_EQ(bad.detail(), "negative: -1");
  EXPECT_EQ(bad.value_or(7), 7);
}

TEST(ResultTest, MacrosPropagate) {
  EXPECT_EQ(*ParseTwice(2), 8);
  EXPECT_EQ(ParseTwice(-2).code(), DemoErrc::kBad);
  EXPECT_TRUE(CheckPositive(1).ok());
  EXPECT_EQ(CheckPositive(-1).code(), DemoErrc::kBad);
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(5));
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
}

TEST(ResultDeathTest, ValueOnErrorAborts) {
  auto bad = Parse(-1);
  EXPECT_DEATH((void)bad.value(), "value\\(\\) on error result");
}

TEST(ResultTest, ErrcNamesAreStable) {
  EXPECT_STREQ(ErrcName(Errc::kOutOfRange), "out_of_range");
  EXPECT_STREQ(ErrcName(Errc::kCrypto), "crypto");
}

}  // namespace
}  // namespace cllm
