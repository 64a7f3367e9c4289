#include "crypto/self_test.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cllm::crypto {
namespace {

TEST(SelfTest, EveryKnownAnswerTestPasses) {
  auto results = RunSelfTests();
  ASSERT_GE(results.size(), 9u);
  for (const auto& r : results) EXPECT_TRUE(r.ok) << r.name;
}

// `cllm selfcheck` covers the GM/T suite of encrypted bodies: SM3, SM4,
// HMAC-SM3 and the SM4-CTR-HMAC-SM3 AEAD.
TEST(SelfTest, CoversTheGmtSuite) {
  std::vector<std::string> names;
  for (const auto& r : RunSelfTests()) names.push_back(r.name);
  for (const char* prefix : {"SM3 ", "SM4 ", "HMAC-SM3 ", "SM4-CTR-HMAC-SM3 AEAD"}) {
    bool found = false;
    for (const auto& n : names) found = found || n.rfind(prefix, 0) == 0;
    EXPECT_TRUE(found) << prefix;
  }
}

}  // namespace
}  // namespace cllm::crypto
