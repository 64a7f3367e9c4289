#include "base/time.h"

#include <gtest/gtest.h>

namespace cllm {
namespace {

TEST(TimeTest, ParsesRfc3339WithZoneAndFraction) {
  auto z = ParseRfc3339("2025-06-01T12:30:05Z");
  ASSERT_TRUE(z.has_value());
  EXPECT_EQ(FormatUtcTime(*z), "2025-06-01T12:30:05Z");
  auto off = ParseRfc3339("2025-06-01T14:30:05.250+02:00");
  ASSERT_TRUE(off.has_value());
  EXPECT_EQ(*off, *z);
}

TEST(TimeTest, RejectsMalformedTimes) {
  for (const char* bad : {"", "2025-06-01", "2025-13-01T00:00:00Z", "2025-06-01T24:00:00Z", "2025-06-01T00:00:00",
                          "2025-06-01T00:00:00.Z", "2025-06-01T00:00:00+2:00", "x025-06-01T00:00:00Z"}) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
  EXPECT_FALSE(ParseRfc3339(std::string(100, '1')).has_value());
}

}  // namespace
}  // namespace cllm
