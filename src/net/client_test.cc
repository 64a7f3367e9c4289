// net::Client and net::ClientConnection against scripted loopback servers:
// keep-alive reuse, chunked bodies streamed piece by piece, a typed error
// for every way a server can fail, and many connections on two threads.
#include "net/client.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <thread>

#include "crypto/cert_builder.h"
#include "net/async_client.h"
#include "net/server_test_util.h"
#include "support/script_server.h"

namespace cllm::net {
namespace {

using cllm::testing::ScriptServer;
using namespace std::chrono_literals;

constexpr char kChunkedHead[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

NetResult<std::unique_ptr<Client>> ConnectTo(const ScriptServer& s, ClientOptions o = {}) {
  return Client::Connect("127.0.0.1", s.port(), nullptr, o);
}

TEST(NetClientTest, ReusesOneKeepAliveConnection) {
  auto server = ScriptServer::Http([](int n, const std::string&) { return ScriptServer::Ok("r" + std::to_string(n)); });
  auto c = ConnectTo(*server);
  ASSERT_TRUE(c.ok()) << c.detail();
  for (int i = 0; i < 3; ++i) {
    auto r = (*c)->Request({"POST", "/v1/x", {{"Authorization", "Bearer k"}}, "{}"});
    ASSERT_TRUE(r.ok()) << r.detail();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "r" + std::to_string(i));
    EXPECT_EQ(r->Header("content-length"), "2");
  }
  // With a sink, a body that is not chunked still comes whole, once.
  std::vector<std::string> pieces;
  auto r = (*c)->Request({"GET", "/", {}, ""}, [&](std::string_view b) {
    pieces.emplace_back(b);
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(pieces, std::vector<std::string>{"r3"});
  EXPECT_EQ(server->connections(), 1);
  EXPECT_EQ(server->requests(), 4);
  EXPECT_TRUE((*c)->is_open());
}

TEST(NetClientTest, StreamsAChunkedBodyPieceByPiece) {
  auto server = ScriptServer::Http([](int, const std::string&) {
    return ScriptServer::Reply{{{kChunkedHead}, {"5\r\nhello\r\n", 30ms}, {"6\r\n world\r\n", 30ms}, {"0\r\n\r\n"}}};
  });
  auto c = ConnectTo(*server);
  ASSERT_TRUE(c.ok()) << c.detail();
  std::vector<std::string> pieces;
  int head_status = 0;
  auto r = (*c)->Request(
      {"GET", "/stream", {}, ""},
      [&](std::string_view b) {
        EXPECT_EQ(head_status, 200) << "the head comes before any body byte";
        pieces.emplace_back(b);
        return true;
      },
      [&](const ClientResponse& head) { head_status = head.status; });
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_TRUE(r->chunked);
  EXPECT_TRUE(r->body.empty());  // streamed, not kept
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0] + pieces[1], "hello world");
  EXPECT_TRUE((*c)->is_open());
}

TEST(NetClientTest, ASinkThatStopsClosesTheConnection) {
  auto server = ScriptServer::Http([](int, const std::string&) {
    return ScriptServer::Reply{{{kChunkedHead}, {"1\r\na\r\n", 20ms}, {"1\r\nb\r\n0\r\n\r\n"}}};
  });
  auto c = ConnectTo(*server);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Request({"GET", "/", {}, ""}, [](std::string_view) { return false; });
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*c)->is_open());
  EXPECT_EQ((*c)->Request({"GET", "/", {}, ""}).code(), NetErrc::kClosed);
}

TEST(NetClientTest, EveryServerFailureHasItsCode) {
  struct Case {
    const char* name;
    ScriptServer::Reply reply;
    NetErrc want;
  };
  ClientOptions small;
  small.max_header_bytes = 1024;
  const std::vector<Case> cases = {
      {"garbage", {{{"SMTP ready\r\n\r\n"}}}, NetErrc::kProtocol},
      {"closed without answering", {{}, true}, NetErrc::kClosed},
      {"head over the limit", {{{"HTTP/1.1 200 OK\r\nX: " + std::string(4096, 'a') + "\r\n\r\n"}}}, NetErrc::kTooLarge},
      {"cut after the head", {{{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"}}, true}, NetErrc::kProtocol},
      {"cut inside a chunk", {{{kChunkedHead}, {"a\r\nabc"}}, true}, NetErrc::kProtocol},
      // Beast does not bound these; the client's buffer does (it grew
      // without end before).
      {"a chunk-size line that never ends", {{{kChunkedHead}, {"1;" + std::string(2 << 20, 'e')}}, true},
       NetErrc::kTooLarge},
      {"a trailer section that never ends",
       {{{kChunkedHead}, {"1\r\nx\r\n0\r\nX: " + std::string(2 << 20, 't')}}, true},
       NetErrc::kTooLarge},
  };
  for (const auto& k : cases) {
    auto server = ScriptServer::Http([&](int, const std::string&) { return k.reply; });
    auto c = ConnectTo(*server, small);
    ASSERT_TRUE(c.ok()) << k.name;
    auto r = (*c)->Request({"GET", "/", {}, ""});
    ASSERT_FALSE(r.ok()) << k.name;
    EXPECT_EQ(r.code(), k.want) << k.name << ": " << r.detail();
    EXPECT_FALSE((*c)->is_open()) << k.name;
    // The same with a BodySink (which lifts the body limit: chunks are handed over).
    auto again = ConnectTo(*server, small);
    ASSERT_TRUE(again.ok()) << k.name;
    auto streamed = (*again)->Request({"GET", "/", {}, ""}, [](std::string_view) { return true; });
    ASSERT_FALSE(streamed.ok()) << k.name;
    EXPECT_EQ(streamed.code(), k.want) << k.name << " (streamed): " << streamed.detail();
  }
}

TEST(NetClientTest, AKeptAliveConnectionTheServerClosedIsKClosed) {
  // The first answer says keep-alive, then the server hangs up (its idle
  // timeout): the next request gets no response byte — safe to resend.
  auto server = ScriptServer::Http([](int, const std::string&) {
    auto r = ScriptServer::Ok("x");
    r.close = true;
    return r;
  });
  auto c = ConnectTo(*server);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Request({"GET", "/", {}, ""}).ok());
  std::this_thread::sleep_for(50ms);
  auto r = (*c)->Request({"GET", "/", {}, ""});
  EXPECT_EQ(r.code(), NetErrc::kClosed) << r.detail();
}

TEST(NetClientTest, RefusesHeaderInjectionAndUnreachablePorts) {
  auto server = ScriptServer::Http([](int, const std::string&) { return ScriptServer::Ok(""); });
  auto c = ConnectTo(*server);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Request({"GET", "/", {{"X", "a\r\nEvil: 1"}}, ""}).code(), NetErrc::kInvalidArgument);
  EXPECT_EQ(server->requests(), 0);
  const uint16_t port = server->port();
  server.reset();  // nothing listens there now
  EXPECT_EQ(Client::Connect("127.0.0.1", port, nullptr).code(), NetErrc::kConnect);
  EXPECT_EQ(Client::Connect("no-such-host.invalid", 80, nullptr).code(), NetErrc::kConnect);
}

using net::testing::MakeIdentity;

TEST(NetClientTest, TlsRunsThePeerVerifierAndKeepsItsReason) {
  auto server_ctx = crypto::TlsContext::Server(MakeIdentity("upstream")).value();
  auto server = ScriptServer::Http([](int, const std::string&) { return ScriptServer::Ok("secret"); }, server_ctx);
  auto refuse = crypto::TlsContext::Client([](const std::vector<crypto::Certificate>&) -> crypto::CryptoStatus {
                  return MakeError(crypto::CryptoErrc::kChainInvalid, "policy not satisfied: test says no");
                }).value();
  auto refused = Client::Connect("127.0.0.1", server->port(), refuse);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), NetErrc::kRefused);
  EXPECT_NE(refused.detail().find("test says no"), std::string::npos) << refused.detail();
  EXPECT_EQ(server->requests(), 0);

  auto accept = crypto::TlsContext::Client([](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
                  if (chain.empty() || chain[0].SubjectCommonName() != "upstream") {
                    return MakeError(crypto::CryptoErrc::kChainInvalid, "wrong peer");
                  }
                  return OkStatus();
                }).value();
  auto c = Client::Connect("127.0.0.1", server->port(), accept);
  ASSERT_TRUE(c.ok()) << c.detail();
  EXPECT_TRUE((*c)->is_tls());
  ASSERT_EQ((*c)->PeerChain().size(), 1u);
  EXPECT_EQ((*c)->TlsDescription().rfind("TLSv1.3 ", 0), 0u) << (*c)->TlsDescription();
  auto r = (*c)->Request({"GET", "/", {}, ""});
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->body, "secret");
}

TEST(NetClientTest, ManyConnectionsRunOnTwoThreads) {
  auto server = ScriptServer::Http([](int, const std::string& head) {
    return ScriptServer::Reply{{{kChunkedHead}, {"3\r\nabc\r\n", 5ms}, {"0\r\n\r\n"}}, head.find("/last") != std::string::npos};
  });
  boost::asio::io_context ioc;
  constexpr int kUsers = 40;
  std::atomic<int> ok{0}, bytes{0};
  for (int u = 0; u < kUsers; ++u) {
    boost::asio::co_spawn(
        boost::asio::make_strand(ioc),
        [&]() -> boost::asio::awaitable<void> {
          auto c = co_await ClientConnection::Connect("127.0.0.1", server->port(), nullptr);
          if (!c.ok()) co_return;
          for (const char* target : {"/first", "/last"}) {
            // Named, not a temporary inside the co_await: GCC 12 mishandles
            // braced temporaries in co_await expressions.
            ClientRequest request{"GET", target, {}, ""};
            BodySink sink = [&](std::string_view b) {
              bytes += static_cast<int>(b.size());
              return true;
            };
            auto r = co_await (*c)->Request(request, sink);
            if (r.ok() && r->status == 200) ++ok;
          }
        },
        boost::asio::detached);
  }
  std::thread second([&] { ioc.run(); });
  ioc.run();
  second.join();
  EXPECT_EQ(ok.load(), 2 * kUsers);
  EXPECT_EQ(bytes.load(), 2 * kUsers * 3);
  EXPECT_EQ(server->connections(), kUsers);  // one kept-alive connection per user
}

}  // namespace
}  // namespace cllm::net
