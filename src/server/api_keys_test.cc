#include "server/api_keys.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "base/encoding.h"

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
  EXPECT_EQ(keys->Authenticate("Bearer sk-alice")->id, "alice");
  EXPECT_EQ(keys->Authenticate("Bearer sk-bob")->id, "bob");
  // A file without limits stays valid: every limit is the server's default.
  EXPECT_FALSE(keys->Authenticate("Bearer sk-alice")->limits.max_active.has_value());
  EXPECT_FALSE(keys->Authenticate("Bearer sk-alice")->limits.tokens_per_minute.has_value());
  EXPECT_EQ(keys->Authenticate("Bearer sk-eve").code(), ApiErrc::kUnauthorized);
  EXPECT_EQ(keys->Authenticate("").code(), ApiErrc::kUnauthorized);
  EXPECT_EQ(keys->Authenticate("Basic abc").code(), ApiErrc::kUnauthorized);
  EXPECT_EQ(keys->Authenticate("Bearer ").code(), ApiErrc::kUnauthorized);
}

// Digests is what a server names as its /metrics readers: every key's
// SHA-256, in ascending order whatever the file's order.
TEST(ApiKeysTest, DigestsAreEveryKeysSha256InAscendingOrder) {
  auto keys = ApiKeys::Parse(KeysFile());
  ASSERT_TRUE(keys.ok()) << keys.detail();
  std::vector<std::string> want = {ApiKeys::DigestHex("sk-alice"), ApiKeys::DigestHex("sk-bob")};
  std::sort(want.begin(), want.end());
  const auto digests = keys->Digests();
  ASSERT_EQ(digests.size(), 2u);
  EXPECT_EQ(HexEncode(digests[0]), want[0]);
  EXPECT_EQ(HexEncode(digests[1]), want[1]);
}

TEST(ApiKeysTest, ReadsPerKeyLimits) {
  auto keys = ApiKeys::Parse(R"({"keys": [{"user": "batch", "sha256": ")" + ApiKeys::DigestHex("sk-batch") +
                             R"(", "limits": {"max_active": 2, "max_queued": 0, "tokens_per_minute": 60000}},
                                {"user": "chat", "sha256": ")" + ApiKeys::DigestHex("sk-chat") +
                             R"(", "limits": {"max_queued": 8}}]})");
  ASSERT_TRUE(keys.ok()) << keys.detail();
  auto batch = keys->Authenticate("Bearer sk-batch");
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->id, "batch");
  EXPECT_EQ(batch->limits.max_active, 2);
  EXPECT_EQ(batch->limits.max_queued, 0);
  EXPECT_EQ(batch->limits.tokens_per_minute, 60000);
  auto chat = keys->Authenticate("Bearer sk-chat");
  ASSERT_TRUE(chat.ok());
  EXPECT_FALSE(chat->limits.max_active.has_value());
  EXPECT_EQ(chat->limits.max_queued, 8);
  EXPECT_FALSE(chat->limits.tokens_per_minute.has_value());
}

TEST(ApiKeysTest, RejectsMalformedLimits) {
  const std::string entry = R"({"keys": [{"user": "a", "sha256": ")" + ApiKeys::DigestHex("k") + R"(", "limits": )";
  for (const std::string limits :
       {"1", "[]", R"({"max_active": 0})", R"({"max_active": -1})", R"({"max_active": 4097})",
        R"({"max_active": 1.5})", R"({"max_active": "2"})", R"({"max_queued": -1})",
        R"({"tokens_per_minute": 18446744073709551615})", R"({"tokens_per_minute": -5})", R"({"burst": 3})"}) {
    auto parsed = ApiKeys::Parse(entry + limits + "}]}");
    EXPECT_EQ(parsed.code(), ApiErrc::kBadRequest) << limits;
  }
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
