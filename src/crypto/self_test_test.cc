#include "crypto/self_test.h"

#include <gtest/gtest.h>

namespace cllm::crypto {
namespace {

TEST(SelfTest, EveryKnownAnswerTestPasses) {
  auto results = RunSelfTests();
  ASSERT_GE(results.size(), 6u);
  for (const auto& r : results) EXPECT_TRUE(r.ok) << r.name;
}

}  // namespace
}  // namespace cllm::crypto
