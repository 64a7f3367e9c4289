// The HTTP transport over real loopback sockets.
#include "server/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>

#include <chrono>
#include <thread>

namespace cllm::server {
namespace {

using boost::asio::ip::tcp;

// Raw exchange: send `request` bytes, read until the server closes or `until` appears.
std::string Exchange(uint16_t port, const std::string& request, int pause_ms = 0) {
  boost::asio::io_context io;
  tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::asio::write(s, boost::asio::buffer(request));
  if (pause_ms) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  for (;;) {
    size_t n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
    if (out.find("\r\n0\r\n\r\n") != std::string::npos) break;
  }
  return out;
}

HttpHandler Echo() {
  return [](const HttpRequest& r, ResponseWriter& w) {
    if (r.target == "/stream") {
      w.BeginStream(200, "text/event-stream");
      for (int i = 0; i < 3; ++i) w.Write("data: " + std::to_string(i) + "\n\n");
      w.EndStream();
      return;
    }
    w.Send(200, "text/plain", r.method + " " + r.target + " " + r.Header("authorization") + " " + r.body);
  };
}

TEST(HttpServerTest, ServesRequestsAndStreams) {
  auto server = HttpServer::Start("127.0.0.1", 0, Echo());
  ASSERT_TRUE(server.ok()) << server.detail();
  uint16_t port = (*server)->port();
  std::string r = Exchange(port, "POST /v1/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer k\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
  EXPECT_NE(r.find("HTTP/1.1 200"), std::string::npos) << r;
  EXPECT_NE(r.find("POST /v1/x Bearer k hi"), std::string::npos) << r;
  r = Exchange(port, "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("Transfer-Encoding: chunked"), std::string::npos) << r;
  EXPECT_NE(r.find("data: 2"), std::string::npos) << r;
}

TEST(HttpServerTest, HandlerSeesThePeerAddressAndCanAddHeaders) {
  // What rate limits key on, and how a 429 says when to come back.
  auto server = HttpServer::Start("127.0.0.1", 0, [](const HttpRequest& r, ResponseWriter& w) {
    w.AddHeader("Retry-After", "3");
    w.Send(429, "text/plain", "peer=" + r.peer);
  });
  ASSERT_TRUE(server.ok()) << server.detail();
  std::string r = Exchange((*server)->port(), "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 429"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\nRetry-After: 3\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("peer=127.0.0.1"), std::string::npos) << r;
}

TEST(HttpServerTest, OversizedBodyGets413WithoutReadingIt) {
  HttpLimits limits;
  limits.max_body_bytes = 10;
  auto server = HttpServer::Start("127.0.0.1", 0, Echo(), limits).value();
  std::string r = Exchange(server->port(), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nxxxx");
  EXPECT_NE(r.find("413"), std::string::npos) << r;
}

TEST(HttpServerTest, MalformedRequestGets400) {
  auto server = HttpServer::Start("127.0.0.1", 0, Echo()).value();
  std::string r = Exchange(server->port(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_NE(r.find("400"), std::string::npos) << r;
}

TEST(HttpServerTest, SlowClientTimesOutWhileOthersAreServed) {
  HttpLimits limits;
  limits.read_timeout_ms = 300;
  auto server = HttpServer::Start("127.0.0.1", 0, Echo(), limits).value();
  uint16_t port = server->port();
  std::thread slow([&] {
    std::string r = Exchange(port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\npartial", 0);
    EXPECT_NE(r.find("408"), std::string::npos) << r;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string r = Exchange(port, "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("GET /ok"), std::string::npos) << r;
  slow.join();
}

TEST(HttpServerTest, ClientDisconnectStopsAStream) {
  std::atomic<int> written{0};
  std::atomic<bool> saw_failure{false};
  auto server = HttpServer::Start("127.0.0.1", 0, [&](const HttpRequest&, ResponseWriter& w) {
    w.BeginStream(200, "text/event-stream");
    for (int i = 0; i < 2000; ++i) {
      if (!w.Write(std::string(1024, 'x'))) {
        saw_failure = true;
        return;
      }
      ++written;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    w.EndStream();
  }).value();
  {
    boost::asio::io_context io;
    tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), server->port()});
    std::string req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    boost::asio::write(s, boost::asio::buffer(req));
    char buf[1024];
    s.read_some(boost::asio::buffer(buf));
  }  // client goes away
  for (int i = 0; i < 500 && !saw_failure; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(saw_failure.load());
  EXPECT_LT(written.load(), 2000);
}

TEST(HttpServerTest, StopDoesNotWaitForIdleKeepAliveClients) {
  HttpLimits limits;
  limits.read_timeout_ms = 60000;
  auto server = HttpServer::Start("127.0.0.1", 0, Echo(), limits).value();
  boost::asio::io_context io;
  tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), server->port()});
  for (int i = 0; i < 100 && server->active_connections() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(server->active_connections(), 1);
  auto t0 = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(server->active_connections(), 0);
}

TEST(HttpServerTest, StartFailsCleanlyOnBadAddress) {
  EXPECT_EQ(HttpServer::Start("not-an-ip", 0, Echo()).code(), Errc::kInvalidArgument);
  auto a = HttpServer::Start("127.0.0.1", 0, Echo()).value();
  EXPECT_EQ(HttpServer::Start("127.0.0.1", a->port(), Echo()).code(), Errc::kIo);
}

}  // namespace
}  // namespace cllm::server
