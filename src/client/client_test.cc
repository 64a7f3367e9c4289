#include "client/client.h"

#include <gtest/gtest.h>

#include <chrono>

#include "support/script_server.h"

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

// ---------------------------------------------------------------------------
// Deadlines: a server that accepts and then says nothing costs the client at
// most the phase's timeout, and the error is kTimeout naming the phase.
// (Before net::Client these calls blocked for as long as the server wished.)
// ---------------------------------------------------------------------------

using testing::ScriptServer;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Short deadlines; the bound asserted is generous (a loaded 2-core machine).
net::ClientOptions Short() {
  net::ClientOptions o;
  o.connect_timeout = 2000ms;
  o.handshake_timeout = 300ms;
  o.head_timeout = 300ms;
  o.chunk_timeout = 300ms;
  return o;
}
constexpr auto kBound = 5s;

Url Local(bool tls, uint16_t port) { return ParseUrl((tls ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port)).value(); }

crypto::PeerVerifier AcceptAnything() {
  return [](const std::vector<crypto::Certificate>&) -> crypto::CryptoStatus { return OkStatus(); };
}

TEST(ClientDeadlineTest, ASilentServerTimesOutTheHandshake) {
  auto server = ScriptServer::Silent();
  auto t0 = Clock::now();
  auto c = ConnectWithVerifier(Local(true, server->port()), AcceptAnything(), Short());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.code(), ClientErrc::kTimeout) << c.detail();
  EXPECT_NE(c.detail().find("handshake"), std::string::npos) << c.detail();
  EXPECT_LT(Clock::now() - t0, kBound);
  // The attested path has the same deadline.
  t0 = Clock::now();
  auto attested = Connect(Local(true, server->port()), attestation::Policy::Default(), nullptr, Short());
  EXPECT_EQ(attested.code(), ClientErrc::kTimeout) << attested.detail();
  EXPECT_LT(Clock::now() - t0, kBound);
}

TEST(ClientDeadlineTest, AServerThatNeverAnswersTimesOutTheHead) {
  auto server = ScriptServer::Http([](int, const std::string&) { return ScriptServer::Reply{{}, false, true}; });
  auto c = ConnectPlain(Local(false, server->port()), Short());
  ASSERT_TRUE(c.ok()) << c.detail();
  auto t0 = Clock::now();
  auto r = (*c)->Request("POST", "/v1/chat/completions", "{}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ClientErrc::kTimeout) << r.detail();
  EXPECT_NE(r.detail().find("response head"), std::string::npos) << r.detail();
  EXPECT_LT(Clock::now() - t0, kBound);
  EXPECT_EQ(server->requests(), 1);
}

TEST(ClientDeadlineTest, AStreamThatStallsTimesOutBetweenChunks) {
  auto server = ScriptServer::Http([](int, const std::string&) {
    return ScriptServer::Reply{{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"}, {"5\r\nhello\r\n"}}, false, true};
  });
  auto c = ConnectPlain(Local(false, server->port()), Short());
  ASSERT_TRUE(c.ok()) << c.detail();
  std::string got;
  auto t0 = Clock::now();
  auto r = (*c)->Request("GET", "/stream", "", {}, [&](std::string_view b) {
    got.append(b);
    return true;
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ClientErrc::kTimeout) << r.detail();
  EXPECT_NE(r.detail().find("response body"), std::string::npos) << r.detail();
  EXPECT_EQ(got, "hello");  // what arrived before the stall was delivered
  EXPECT_LT(Clock::now() - t0, kBound);
}

// A server that sends a little just before each chunk_timeout would hold the
// client forever; the whole body has its own deadline (body_timeout).
TEST(ClientDeadlineTest, ATricklingStreamTimesOutTheWholeBody) {
  auto server = ScriptServer::Http([](int, const std::string&) {
    ScriptServer::Reply reply{{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"}}, false, false};
    for (int i = 0; i < 40; ++i) reply.steps.push_back({"1\r\nx\r\n", 150ms});  // each within chunk_timeout
    reply.steps.push_back({"0\r\n\r\n"});
    return reply;
  });
  net::ClientOptions o = Short();
  o.body_timeout = 1000ms;
  auto c = ConnectPlain(Local(false, server->port()), o);
  ASSERT_TRUE(c.ok()) << c.detail();
  std::string got;
  auto t0 = Clock::now();
  auto r = (*c)->Request("GET", "/stream", "", {}, [&](std::string_view b) {
    got.append(b);
    return true;
  });
  ASSERT_FALSE(r.ok()) << "a 6 s trickle outlived a 1 s body deadline";
  EXPECT_EQ(r.code(), ClientErrc::kTimeout) << r.detail();
  EXPECT_NE(r.detail().find("not complete within"), std::string::npos) << r.detail();
  EXPECT_FALSE(got.empty());
  EXPECT_LT(got.size(), 40u);
  EXPECT_LT(Clock::now() - t0, kBound);
}

}  // namespace
}  // namespace cllm::client
