#include "server/api_keys.h"

#include <gtest/gtest.h>

namespace cllm::server {
namespace {

std::string KeysFile() {
  return R"({"keys": [{"user": "alice", "sha256": ")" + ApiKeys::DigestHex("sk-alice") +
         R"("}, {"user": "bob", "sha256": ")" + ApiKeys::DigestHex("sk-bob") + R"("}]})";
}

TEST(ApiKeysTest, AuthenticatesBearerKeys) {
  auto keys = ApiKeys::Parse(KeysFile());
  ASSERT_TRUE(keys.ok()) << keys.detail();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_EQ(*keys->Authenticate("Bearer sk-alice"), "alice");
  EXPECT_EQ(*keys->Authenticate("Bearer sk-bob"), "bob");
  EXPECT_EQ(keys->Authenticate("Bearer sk-eve").code(), ApiErrc::kUnauthorized);
  EXPECT_EQ(keys->Authenticate("").code(), ApiErrc::kUnauthorized);
  EXPECT_EQ(keys->Authenticate("Basic abc").code(), ApiErrc::kUnauthorized);
  EXPECT_EQ(keys->Authenticate("Bearer ").code(), ApiErrc::kUnauthorized);
}

TEST(ApiKeysTest, RejectsMalformedFiles) {
  const std::string good = ApiKeys::DigestHex("k");
  const std::vector<std::string> cases = {std::string("[]"), std::string("{\"keys\": 1}"), std::string("{\"other\": []}"),
                          std::string(R"({"keys": [{"user": "a"}]})"), std::string(R"({"keys": [{"user": "a", "sha256": "zz"}]})"),
                          R"({"keys": [{"user": "a b", "sha256": ")" + good + "\"}]}",
                          R"({"keys": [{"user": "a", "sha256": ")" + good + "\", \"extra\": \"x\"}]}",
                          R"({"keys": [{"user": "a", "sha256": ")" + good + R"("}, {"user": "a", "sha256": ")" +
                              ApiKeys::DigestHex("j") + "\"}]}",
                          R"({"keys": [{"user": "a", "sha256": ")" + good + R"("}, {"user": "b", "sha256": ")" +
                              good + "\"}]}"};
  for (const auto& bad : cases) {
    EXPECT_EQ(ApiKeys::Parse(bad).code(), ApiErrc::kBadRequest) << bad;
  }
}

}  // namespace
}  // namespace cllm::server
