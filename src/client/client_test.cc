#include "client/client.h"

#include <gtest/gtest.h>

namespace cllm::client {
namespace {

TEST(ClientTest, ParsesUrls) {
  auto u = ParseUrl("https://example.org:8443/v1").value();
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.host, "example.org");
  EXPECT_EQ(u.port, 8443);
  EXPECT_EQ(u.path, "/v1");
  EXPECT_EQ(ParseUrl("https://[::1]:9000").value().host, "::1");
  EXPECT_EQ(ParseUrl("https://host").value().port, 443);
  EXPECT_FALSE(ParseUrl("http://h:1").value().tls);
  for (const char* bad : {"ftp://x", "https://", "https://h:", "https://h:99999", "https://h:0", "https://h:1x",
                          "https://[::1", "https://[::1]x"}) {
    EXPECT_EQ(ParseUrl(bad).code(), ClientErrc::kBadUrl) << bad;
  }
}

}  // namespace
}  // namespace cllm::client
