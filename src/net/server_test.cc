// net::Server over real loopback sockets: requests, responses, streams,
// the writer's contract (500 when dropped, client-gone, After).
#include "net/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>

#include "net/client.h"
#include "net/server_test_util.h"

namespace cllm::net {
namespace {

using namespace net::testing;

// Exchange sends `request` and reads until the server closes or a chunked
// body ends.
std::string Exchange(uint16_t port, const std::string& request) {
  RawClient c(port);
  c.Send(request);
  return c.ReadUntil("\r\n0\r\n\r\n");
}

Handler Echo() {
  return [](const Request& r, std::shared_ptr<ResponseWriter> w) {
    if (r.target == "/stream") {
      w->BeginStream(200, "text/event-stream");
      for (int i = 0; i < 3; ++i) w->Write("data: " + std::to_string(i) + "\n\n");
      w->EndStream();
      return;
    }
    w->Send(200, "text/plain", r.method + " " + r.target + " " + r.Header("authorization") + " " + r.body);
  };
}

TEST(NetServerTest, ServesRequestsAndStreams) {
  auto server = Server::Start("127.0.0.1", 0, Echo());
  ASSERT_TRUE(server.ok()) << server.detail();
  uint16_t port = (*server)->port();
  std::string r = Exchange(port, "POST /v1/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer k\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
  EXPECT_NE(r.find("HTTP/1.1 200"), std::string::npos) << r;
  EXPECT_NE(r.find("POST /v1/x Bearer k hi"), std::string::npos) << r;
  EXPECT_NE(r.find("Server: cllm\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Cache-Control: no-store\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
  r = Exchange(port, "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("Transfer-Encoding: chunked"), std::string::npos) << r;
  EXPECT_NE(r.find("data: 2"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\n0\r\n\r\n"), std::string::npos) << r;
}

TEST(NetServerTest, KeepAliveAndPipelinedRequestsAreAnsweredInOrder) {
  auto server = Server::Start("127.0.0.1", 0, Echo()).value();
  RawClient c(server->port());
  c.Send("GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string first = c.ReadResponse();
  std::string second = c.ReadResponse();
  EXPECT_NE(first.find("GET /one"), std::string::npos) << first;
  EXPECT_NE(first.find("Connection: keep-alive"), std::string::npos) << first;
  EXPECT_NE(second.find("GET /two"), std::string::npos) << second;
  c.Send("GET /three HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_NE(c.ReadResponse().find("GET /three"), std::string::npos);
  EXPECT_EQ(server->Stats().requests, 3u);
}

TEST(NetServerTest, HeadIsAnsweredWithoutABodyAndTheConnectionStaysInStep) {
  auto server = Server::Start("127.0.0.1", 0, Echo()).value();
  // Raw bytes: the answer to HEAD is its head alone (with the Content-Length
  // a GET would get); the next response follows it directly.
  RawClient c(server->port());
  c.Send("HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string got = c.ReadUntil("GET /y");
  const size_t head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << got;
  EXPECT_NE(got.substr(0, head_end).find("Content-Length: 9\r\n"), std::string::npos) << got;  // "HEAD /x  "
  EXPECT_EQ(got.substr(head_end + 4, 9), "HTTP/1.1 ") << got;
  EXPECT_NE(got.find("GET /y"), std::string::npos) << got;

  // net::Client over one keep-alive connection: HEAD of a whole response,
  // HEAD of a stream (head only, no chunks), and GETs after each.
  auto client = Client::Connect("127.0.0.1", server->port(), nullptr).value();
  ClientRequest head;
  head.method = "HEAD";
  head.target = "/x";
  auto r = client->Request(head);
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-length"), "9");
  EXPECT_TRUE(r->body.empty());
  ClientRequest get;
  get.target = "/y";
  r = client->Request(get);
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->body, "GET /y  ");
  head.target = "/stream";
  r = client->Request(head);
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_TRUE(r->chunked);
  EXPECT_TRUE(r->body.empty());
  get.target = "/z";
  r = client->Request(get);
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->body, "GET /z  ");
  EXPECT_TRUE(client->is_open());
  EXPECT_EQ(server->Stats().requests, 6u);
  EXPECT_EQ(server->Stats().accepted, 2u);
}

TEST(NetServerTest, ExpectContinueGets100BeforeTheBody) {
  auto server = Server::Start("127.0.0.1", 0, Echo()).value();
  RawClient c(server->port());
  c.Send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(c.ReadUntil("\r\n\r\n", 3000ms), "HTTP/1.1 100 Continue\r\n\r\n");
  c.ReadResponse();  // takes the 100 off
  c.Send("body");
  EXPECT_NE(c.ReadResponse().find("POST /up  body"), std::string::npos);
}

TEST(NetServerTest, HandlerSeesThePeerAddressAndCanAddHeaders) {
  // What rate limits key on, and how a 429 says when to come back.
  auto server = Server::Start("127.0.0.1", 0, [](const Request&, std::shared_ptr<ResponseWriter> w) {
    w->AddHeader("Retry-After", "3");
    w->Send(429, "text/plain", "peer=" + w->connection().peer + " tls=" + std::to_string(w->connection().tls));
  });
  ASSERT_TRUE(server.ok()) << server.detail();
  std::string r = Exchange((*server)->port(), "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 429"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\nRetry-After: 3\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("peer=127.0.0.1 tls=0"), std::string::npos) << r;
}

TEST(NetServerTest, OversizedBodyGets413WithoutReadingIt) {
  ServerOptions options;
  options.max_body_bytes = 10;
  auto server = Server::Start("127.0.0.1", 0, Echo(), options).value();
  std::string r = Exchange(server->port(), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nxxxx");
  EXPECT_NE(r.find("HTTP/1.1 413"), std::string::npos) << r;
}

// body_limit gives one route (or caller) a larger limit than the rest: the
// others are held to theirs, by Content-Length before any body byte and, for
// a chunked body, as it arrives.
TEST(NetServerTest, APerRequestBodyLimitHoldsEveryOtherRequestToItsOwn) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  std::atomic<int> asked{0};
  options.body_limit = [&](const Request& head) -> size_t {
    ++asked;
    EXPECT_TRUE(head.body.empty());
    return head.Path() == "/big" && head.Header("x-key") == "yes" ? 100000 : 10;
  };
  std::atomic<int> handled{0};
  auto server = Server::Start("127.0.0.1", 0, [&](const Request& r, std::shared_ptr<ResponseWriter> w) {
    ++handled;
    w->Send(200, "text/plain", std::to_string(r.body.size()));
  }, options).value();
  auto post = [&](const std::string& target, const std::string& headers, const std::string& body) {
    return Exchange(server->port(), "POST " + target + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + headers +
                                        "\r\n" + body);
  };
  const std::string b11(11, 'x'), b500(500, 'x');
  EXPECT_NE(post("/small", "Content-Length: 10\r\n", std::string(10, 'x')).find("HTTP/1.1 200"), std::string::npos);
  EXPECT_NE(post("/small", "Content-Length: 11\r\n", b11).find("HTTP/1.1 413"), std::string::npos);
  EXPECT_NE(post("/big", "Content-Length: 500\r\n", b500).find("HTTP/1.1 413"), std::string::npos);  // no key
  std::string r = post("/big", "X-Key: yes\r\nContent-Length: 500\r\n", b500);
  EXPECT_NE(r.find("HTTP/1.1 200"), std::string::npos) << r;
  // Still never above max_body_bytes.
  EXPECT_NE(post("/big", "X-Key: yes\r\nContent-Length: 1001\r\n", std::string(1001, 'x')).find("HTTP/1.1 413"),
            std::string::npos);
  // Chunked: no length up front; refused once the body passes its limit.
  r = post("/small", "Transfer-Encoding: chunked\r\n", "6\r\nxxxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 413"), std::string::npos) << r;
  r = post("/big", "X-Key: yes\r\nTransfer-Encoding: chunked\r\n", "6\r\nxxxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 200"), std::string::npos) << r;
  EXPECT_EQ(handled.load(), 3);
  EXPECT_EQ(asked.load(), 6);  // not for the 1001 bytes: over max_body_bytes, refused by its head alone
}

TEST(NetServerTest, OversizedHeadGets431) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  auto server = Server::Start("127.0.0.1", 0, Echo(), options).value();
  std::string r = Exchange(server->port(), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(4096, 'b') + "\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 431"), std::string::npos) << r;
}

TEST(NetServerTest, MalformedRequestGets400) {
  auto server = Server::Start("127.0.0.1", 0, Echo()).value();
  std::string r = Exchange(server->port(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r;
  // Garbage bytes of every kind are answered, never fatal.
  std::string junk;
  for (int i = 0; i < 512; ++i) junk.push_back(static_cast<char>(i * 37 + 11));
  r = Exchange(server->port(), junk + "\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r;
  EXPECT_NE(Exchange(server->port(), "GET /after HTTP/1.1\r\nConnection: close\r\n\r\n").find("GET /after"),
            std::string::npos);
}

// Beast bounds a head (header_limit) and a body (body_limit) but not a
// chunk-size line, its extensions or a trailer section: a peer sending one
// without its CRLF grew the server's buffer without end. Now it is refused
// once it passes the head limit.
TEST(NetServerTest, AChunkHeaderOrTrailerThatNeverEndsIsRefusedNotBuffered) {
  ServerOptions options;
  options.max_header_bytes = 4096;
  std::atomic<int> handled{0};
  auto server = Server::Start("127.0.0.1", 0, [&](const Request&, std::shared_ptr<ResponseWriter> w) {
    ++handled;
    w->Send(200, "text/plain", "handled");
  }, options).value();
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const std::string& start : {head + "1;", head + "1\r\nx\r\n0\r\nX-Trailer: "}) {
    RawClient c(server->port());
    c.Send(start);
    size_t sent = start.size();
    const std::string piece(8192, 'a');
    while (sent < (1u << 20)) {
      boost::system::error_code ec;
      boost::asio::write(c.socket(), boost::asio::buffer(piece), ec);
      if (ec) break;
      sent += piece.size();
      c.ReadUntil("\r\n\r\n", 20ms);
      if (c.closed() || c.ReadUntil("", 0ms).find("\r\n\r\n") != std::string::npos) break;
    }
    const std::string r = c.ReadUntil("\r\n\r\n", 2000ms);
    EXPECT_LE(sent, 64u << 10) << "the server kept reading the unfinished line";
    EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r.substr(0, 200);
  }
  EXPECT_EQ(handled.load(), 0);
}

// A Transfer-Encoding that is not chunked (last) made Beast read no body,
// so the body was parsed as a second request: smuggling past a front end
// that reads it differently. RFC 9112 §6.3: 400 and close.
TEST(NetServerTest, ATransferEncodingOtherThanChunkedIs400AndNothingIsSmuggled) {
  std::atomic<int> handled{0};
  auto server = Server::Start("127.0.0.1", 0, [&](const Request&, std::shared_ptr<ResponseWriter> w) {
    ++handled;
    w->Send(200, "text/plain", "handled");
  }).value();
  for (const char* te : {"gzip", "identity", "chunked, gzip"}) {
    RawClient c(server->port());
    c.Send(std::string("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + te +
           "\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string r = c.ReadUntil("never", 1500ms);
    EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << te << ": " << r;
    EXPECT_EQ(r.find("handled"), std::string::npos) << te << ": " << r;
    EXPECT_TRUE(c.closed()) << te;
  }
  EXPECT_EQ(handled.load(), 0);
  EXPECT_NE(Exchange(server->port(), "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                     "2\r\n{}\r\n0\r\n\r\n").find("handled"),
            std::string::npos) << "a chunked body is still read";
}

// Beast puts a chunked body's trailer fields among the head's, where one
// replaced a header (Authorization: what a front end checked is not what
// the handler saw). Trailer fields are refused.
TEST(NetServerTest, TrailerFieldsAreRefusedAndNeverReplaceAHeader) {
  auto server = Server::Start("127.0.0.1", 0, Echo()).value();
  std::string r = Exchange(server->port(),
                           "POST /a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer orig\r\nTransfer-Encoding: chunked\r\n"
                           "\r\n2\r\n{}\r\n0\r\nAuthorization: Bearer fromtrailer\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r;
  EXPECT_EQ(r.find("fromtrailer"), std::string::npos) << r;
  r = Exchange(server->port(),
               "POST /b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer orig\r\nTransfer-Encoding: chunked\r\n"
               "Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
  EXPECT_NE(r.find("POST /b Bearer orig {}"), std::string::npos) << r;
}

TEST(NetServerTest, ClientDisconnectStopsAStream) {
  std::atomic<int> written{0};
  std::atomic<bool> saw_failure{false};
  auto server = Server::Start("127.0.0.1", 0, [&](const Request&, std::shared_ptr<ResponseWriter> w) {
    w->BeginStream(200, "text/event-stream");
    for (int i = 0; i < 2000; ++i) {
      if (!w->Write(std::string(1024, 'x'))) {
        saw_failure = true;
        return;
      }
      ++written;
      std::this_thread::sleep_for(1ms);
    }
    w->EndStream();
  }).value();
  {
    RawClient c(server->port());
    c.Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    c.ReadUntil("xxxx");
  }  // client goes away
  EXPECT_TRUE(WaitFor([&] { return saw_failure.load(); }));
  EXPECT_LT(written.load(), 2000);
}

// A client that reads each piece within the write timeout but falls ever
// further behind is dropped once a queued piece has waited the timeout
// (found by review: the timer restarted with every piece, so a trickling
// reader held its connection and queued answer for hours).
TEST(NetServerTest, AReaderFallingBehindIsDroppedOnceAQueuedPieceWaitedTheWriteTimeout) {
  ServerOptions o;
  o.write_timeout = 1500ms;
  o.max_buffered_response_bytes = 64 << 20;  // not the cap: the timeout
  constexpr size_t kPiece = 4 << 20, kPieces = 8;
  auto server = Server::Start("127.0.0.1", 0, [&](const Request&, std::shared_ptr<ResponseWriter> w) {
    w->BeginStream(200, "application/octet-stream");
    for (size_t i = 0; i < kPieces; ++i) {
      if (!w->Write(std::string(kPiece, 'x'))) return;
    }
    w->EndStream();
  }, o).value();
  RawClient c(server->port());
  c.socket().set_option(boost::asio::socket_base::receive_buffer_size(64 << 10));
  c.Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  // About 6.4 MB/s: each 4 MiB piece drains in well under 1.5 s, the 32 MiB
  // in about 5 s, so the later pieces wait longer than the timeout.
  size_t received = 0;
  bool closed = false;
  const auto start = std::chrono::steady_clock::now();
  std::vector<char> buf(64 << 10);
  while (std::chrono::steady_clock::now() - start < 15s) {
    boost::system::error_code ec;
    const size_t n = c.socket().read_some(boost::asio::buffer(buf), ec);
    if (ec) {
      closed = true;
      break;
    }
    received += n;
    if (received >= kPiece * kPieces) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(closed) << "received " << received << " bytes";
  EXPECT_LT(received, kPiece * kPieces);
}

TEST(NetServerTest, ClientDisconnectDuringAWholeResponseFiresOnClientGone) {
  // A non-streamed completion: nothing is written until the answer is
  // ready, so only the pending read can tell that the client left.
  std::promise<void> gone;
  std::shared_ptr<ResponseWriter> kept;
  std::mutex mu;
  auto server = Server::Start("127.0.0.1", 0, [&](const Request&, std::shared_ptr<ResponseWriter> w) {
    w->OnClientGone([&] { gone.set_value(); });
    std::lock_guard<std::mutex> lock(mu);
    kept = w;  // answered later, like a scheduler would
  }).value();
  {
    RawClient c(server->port());
    c.Send("POST /v1/chat HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}");
    ASSERT_TRUE(WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu);
      return kept != nullptr;
    }));
  }
  ASSERT_EQ(gone.get_future().wait_for(5s), std::future_status::ready);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(kept->client_gone());
  EXPECT_FALSE(kept->BeginStream(200, "text/event-stream"));
  kept->Send(200, "text/plain", "too late");  // harmless
}

// Past 64 KiB of pipelined bytes the server used to stop reading while the
// handler ran, so it never saw the client leave and a generation ran on for
// nobody. Such a client is now gone at once.
TEST(NetServerTest, TooManyPipelinedBytesDuringAResponseMeanTheClientIsGone) {
  std::promise<void> gone;
  std::shared_ptr<ResponseWriter> kept;
  std::mutex mu;
  auto server = Server::Start("127.0.0.1", 0, [&](const Request&, std::shared_ptr<ResponseWriter> w) {
    w->OnClientGone([&] { gone.set_value(); });
    std::lock_guard<std::mutex> lock(mu);
    kept = w;
  }).value();
  {
    RawClient c(server->port());
    c.Send("POST /v1/chat HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}");
    ASSERT_TRUE(WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu);
      return kept != nullptr;
    }));
    boost::system::error_code ec;
    boost::asio::write(c.socket(), boost::asio::buffer(std::string(70000, 'j')), ec);
    // and stays connected: the server must not wait for the close
    ASSERT_EQ(gone.get_future().wait_for(5s), std::future_status::ready);
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(kept->client_gone());
}

TEST(NetServerTest, OnClientGoneNeverRunsAfterACompleteResponse) {
  std::atomic<int> calls{0};
  auto server = Server::Start("127.0.0.1", 0, [&](const Request&, std::shared_ptr<ResponseWriter> w) {
    w->OnClientGone([&] { ++calls; });
    w->Send(200, "text/plain", "ok");
  }).value();
  {
    RawClient c(server->port());
    c.Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_NE(c.ReadResponse().find("200"), std::string::npos);
  }
  ASSERT_TRUE(WaitFor([&] { return server->Stats().open_connections == 0; }));
  EXPECT_EQ(calls.load(), 0);
}

TEST(NetServerTest, WriterDroppedWithoutResponseSends500) {
  auto server = Server::Start("127.0.0.1", 0, [](const Request& r, std::shared_ptr<ResponseWriter> w) {
    if (r.target == "/throw") throw std::runtime_error("user text must not be logged");
    if (r.target == "/cut") {
      w->BeginStream(200, "text/event-stream");
      w->Write("data: first\n\n");
    }
  }).value();
  RawClient c(server->port());
  c.Send("GET /silent HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_NE(c.ReadResponse().find("HTTP/1.1 500"), std::string::npos);
  c.Send("GET /throw HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_NE(c.ReadResponse().find("HTTP/1.1 500"), std::string::npos) << "the connection survives a 500";
  c.Send("GET /cut HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string r = c.ReadUntil("never", 3000ms);
  EXPECT_NE(r.find("data: first"), std::string::npos) << r;
  EXPECT_EQ(r.find("\r\n0\r\n\r\n"), std::string::npos) << "a dropped stream must look truncated: " << r;
  EXPECT_TRUE(c.closed());
}

TEST(NetServerTest, AfterRunsLaterOnAServerThread) {
  auto server = Server::Start("127.0.0.1", 0, [](const Request&, std::shared_ptr<ResponseWriter> w) {
    w->BeginStream(200, "text/event-stream");
    w->After(50ms, [w] {
      w->Write("data: later\n\n");
      w->EndStream();
    });
  }).value();
  std::string r = Exchange(server->port(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_NE(r.find("data: later"), std::string::npos) << r;
}

TEST(NetServerTest, AClientThatDoesNotReadIsGoneAtTheBufferCap) {
  ServerOptions options;
  options.max_buffered_response_bytes = 256 << 10;
  std::promise<int> result;
  auto server = Server::Start("127.0.0.1", 0, [&](const Request&, std::shared_ptr<ResponseWriter> w) {
    w->BeginStream(200, "text/event-stream");
    const std::string chunk(16 << 10, 'x');
    for (int i = 0; i < 20000; ++i) {  // 320 MiB: far past any socket buffer
      if (!w->Write(chunk)) return result.set_value(i);
      if (i % 64 == 0) std::this_thread::sleep_for(1ms);
    }
    result.set_value(-1);
  }, options).value();
  RawClient c(server->port());
  c.Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");  // and never read
  auto f = result.get_future();
  ASSERT_EQ(f.wait_for(15s), std::future_status::ready);
  EXPECT_GE(f.get(), 0) << "Write kept accepting bytes for a client that reads nothing";
}

TEST(NetServerTest, StopDoesNotWaitForIdleKeepAliveClients) {
  ServerOptions options;
  options.idle_timeout = 60s;
  auto server = Server::Start("127.0.0.1", 0, Echo(), options).value();
  RawClient c(server->port());
  ASSERT_TRUE(WaitFor([&] { return server->Stats().open_connections == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(server->Stats().open_connections, 0);
}

TEST(NetServerTest, StartFailsCleanlyOnBadAddressOrOptions) {
  EXPECT_EQ(Server::Start("not-an-ip", 0, Echo()).code(), NetErrc::kInvalidArgument);
  auto a = Server::Start("127.0.0.1", 0, Echo()).value();
  EXPECT_EQ(Server::Start("127.0.0.1", a->port(), Echo()).code(), NetErrc::kListen);
  ServerOptions bad;
  bad.io_threads = 0;
  EXPECT_EQ(Server::Start("127.0.0.1", 0, Echo(), bad).code(), NetErrc::kInvalidArgument);
}

}  // namespace
}  // namespace cllm::net
