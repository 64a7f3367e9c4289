#include "server/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "base/check.h"
#include "base/log.h"

namespace cllm::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string HttpRequest::Path() const { return target.substr(0, target.find('?')); }

std::string HttpRequest::Query(const std::string& key) const {
  auto q = target.find('?');
  if (q == std::string::npos) return "";
  const std::string rest = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t amp = rest.find('&', pos);
    std::string kv = rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (kv.rfind(key + "=", 0) == 0) return kv.substr(key.size() + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return "";
}

std::string HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

namespace {

void SetTimeout(int fd, int option, std::chrono::milliseconds ms) {
  if (ms.count() < 1) ms = std::chrono::milliseconds(1);  // 0 would mean "forever"
  struct timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

// Conn is the byte transport of one connection: plain TCP or TLS over the
// same socket. Reads honour SO_RCVTIMEO (set per read from the request's
// deadline); ReadSome returns 0 at end of stream and -1 on error or timeout.
class Conn {
 public:
  explicit Conn(int fd) : fd_(fd) {}
  virtual ~Conn() = default;
  virtual long ReadSome(char* buf, size_t max) {
    for (;;) {
      ssize_t n = ::recv(fd_, buf, max, 0);
      if (n < 0 && errno == EINTR) continue;
      return n < 0 ? -1 : static_cast<long>(n);
    }
  }
  virtual bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  virtual void Close() {}
  int fd() const { return fd_; }

 protected:
  int fd_;
};

class TlsConn : public Conn {
 public:
  TlsConn(int fd, std::unique_ptr<crypto::TlsSession> s) : Conn(fd), session_(std::move(s)) {}
  long ReadSome(char* buf, size_t max) override {
    auto r = session_->Read(max);
    if (!r.ok()) return -1;
    if (r->empty()) return 0;  // close_notify
    std::memcpy(buf, r->data(), r->size());
    return static_cast<long>(r->size());
  }
  bool WriteAll(std::string_view data) override { return session_->Write(AsBytes(data)).ok(); }
  void Close() override { session_->Shutdown(); }

 private:
  std::unique_ptr<crypto::TlsSession> session_;
};

std::string StatusLine(int status) {
  return "HTTP/1.1 " + std::to_string(status) + " " +
         std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\r\n";
}

// ConnWriter sends the response; any failed write marks the client gone.
class ConnWriter : public ResponseWriter {
 public:
  ConnWriter(Conn& c, bool keep_alive) : c_(c), keep_alive_(keep_alive) {}

  void AddHeader(std::string_view name, std::string_view value) override {
    CLLM_CHECK(name.find_first_of("\r\n:") == std::string_view::npos);
    CLLM_CHECK(value.find_first_of("\r\n") == std::string_view::npos);
    extra_headers_ += std::string(name) + ": " + std::string(value) + "\r\n";
  }

  // Send writes head and body with one write: over TLS that is one record
  // (or 16 KiB records and a last one), padded as the context says.
  void Send(int status, std::string_view content_type, std::string_view body) override {
    std::string out = StatusLine(status) + "Server: cllm\r\nContent-Type: " + std::string(content_type) +
                      "\r\nCache-Control: no-store\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n" + extra_headers_ + "Connection: " + (keep_alive_ ? "keep-alive" : "close") +
                      "\r\n\r\n";
    out.append(body);
    Raw(out);
    done_ = true;
  }

  bool BeginStream(int status, std::string_view content_type) override {
    return Raw(StatusLine(status) + "Server: cllm\r\nContent-Type: " + std::string(content_type) +
               "\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n" + extra_headers_ +
               "Connection: " + (keep_alive_ ? "keep-alive" : "close") + "\r\n\r\n");
  }

  // Write sends one chunk with one write, so each streamed event is one TLS
  // record whose padded length does not depend on the text.
  bool Write(std::string_view chunk) override {
    if (chunk.empty()) return ok_;
    char size[24];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    return Raw(std::string(size) + std::string(chunk) + "\r\n");
  }

  void EndStream() override {
    Raw("0\r\n\r\n");
    done_ = true;
  }

  bool ok() const { return ok_; }
  bool done() const { return done_; }

 private:
  bool Raw(const std::string& bytes) {
    if (!ok_) return false;
    ok_ = c_.WriteAll(bytes);
    return ok_;
  }

  Conn& c_;
  bool keep_alive_;
  std::string extra_headers_;  // "Name: value\r\n" lines from AddHeader
  bool ok_ = true;
  bool done_ = false;
};

// PeerAddress is the client's IP address as text, "" when unknown.
std::string PeerAddress(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {};
  const void* raw = nullptr;
  if (addr.ss_family == AF_INET) {
    raw = &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr;
  } else if (addr.ss_family == AF_INET6) {
    raw = &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr;
  } else {
    return "";
  }
  return ::inet_ntop(addr.ss_family, raw, text, sizeof text) ? std::string(text) : "";
}

void SendError(Conn& c, int status, const char* message) {
  ConnWriter w(c, /*keep_alive=*/false);
  w.Send(status, "application/json",
         std::string(R"({"error":{"message":")") + message + R"(","type":"invalid_request_error"}})");
}

enum class ReadOutcome { kOk, kClosed, kTimeout, kTooLarge, kBad };

// ReadRequest feeds bytes into Beast's parser until one request is complete.
// `pending` carries bytes read past the end of the previous request.
ReadOutcome ReadRequest(Conn& c, std::string& pending, http::request_parser<http::string_body>& parser,
                        std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  parser.eager(true);
  char buf[16384];
  for (;;) {
    if (!pending.empty()) {
      beast::error_code ec;
      size_t used = parser.put(asio::buffer(pending.data(), pending.size()), ec);
      pending.erase(0, used);
      if (ec == http::error::need_more) {
        ec = {};
      } else if (ec == http::error::body_limit) {
        return ReadOutcome::kTooLarge;
      } else if (ec == http::error::header_limit) {
        return ReadOutcome::kTooLarge;
      } else if (ec) {
        return ReadOutcome::kBad;
      }
      if (parser.is_done()) return ReadOutcome::kOk;
      if (used > 0 && !pending.empty()) continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return ReadOutcome::kTimeout;
    SetTimeout(c.fd(), SO_RCVTIMEO, left);
    long n = c.ReadSome(buf, sizeof buf);
    if (n == 0) {
      if (!parser.got_some() && pending.empty()) return ReadOutcome::kClosed;
      beast::error_code ec;
      parser.put_eof(ec);
      if (!ec && parser.is_done()) return ReadOutcome::kOk;
      return ReadOutcome::kBad;
    }
    if (n < 0) {
      if (Clock::now() >= deadline) return ReadOutcome::kTimeout;
      return ReadOutcome::kClosed;  // reset, TLS error
    }
    pending.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

struct HttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  HttpHandler handler;
  HttpLimits limits;
  std::shared_ptr<crypto::TlsContext> tls;
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::atomic<int> active{0};
  std::mutex mu;
  std::condition_variable idle;
  std::set<int> open_fds;  // live connections, shut down by Stop()

  void AcceptLoop() {
    while (!stopping) {
      beast::error_code ec;
      tcp::socket socket(io);
      acceptor.accept(socket, ec);
      if (ec) {
        if (stopping) break;
        continue;
      }
      int fd = socket.release(ec);
      if (ec) continue;
      std::unique_lock<std::mutex> lock(mu);
      if (active.load() >= limits.max_connections) {
        lock.unlock();
        Conn c(fd);
        SetTimeout(fd, SO_SNDTIMEO, std::chrono::milliseconds(1000));
        SendError(c, 503, "too many connections");
        ::close(fd);
        continue;
      }
      ++active;
      open_fds.insert(fd);
      lock.unlock();
      std::thread([this, fd] {
        Serve(fd);
        std::lock_guard<std::mutex> guard(mu);
        open_fds.erase(fd);
        ::close(fd);
        if (--active == 0) idle.notify_all();
      }).detach();
    }
  }

  void Serve(int fd) {
    // Streamed tokens are small writes: without TCP_NODELAY, Nagle's
    // algorithm holds them back for the peer's delayed ACK (~40 ms).
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const std::chrono::milliseconds read_timeout(limits.read_timeout_ms);
    SetTimeout(fd, SO_SNDTIMEO, std::chrono::milliseconds(limits.write_timeout_ms));
    std::unique_ptr<Conn> conn;
    if (tls) {
      SetTimeout(fd, SO_RCVTIMEO, read_timeout);
      auto session = crypto::TlsSession::Handshake(tls, fd);
      if (!session.ok()) {
        log::debug("TLS handshake from a client failed: {}", session.detail());
        return;
      }
      conn = std::make_unique<TlsConn>(fd, std::move(session).value());
    } else {
      conn = std::make_unique<Conn>(fd);
    }
    const std::string peer = PeerAddress(fd);
    std::string pending;
    while (!stopping) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
      parser.body_limit(limits.max_body_bytes);
      switch (ReadRequest(*conn, pending, parser, read_timeout)) {
        case ReadOutcome::kOk: break;
        case ReadOutcome::kClosed: return;
        case ReadOutcome::kTooLarge: return SendError(*conn, 413, "request too large");
        case ReadOutcome::kBad: return SendError(*conn, 400, "malformed HTTP request");
        case ReadOutcome::kTimeout:
          // An idle keep-alive connection just closes; a half-sent request
          // learns why.
          if (parser.got_some() || !pending.empty()) SendError(*conn, 408, "request not received in time");
          return;
      }
      auto& req = parser.get();
      HttpRequest r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      r.tls = tls != nullptr;
      r.peer = peer;
      for (const auto& field : req) {
        std::string name(field.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        r.headers[name] = std::string(field.value());
      }
      r.body = std::move(req.body());
      bool keep_alive = req.keep_alive();
      ConnWriter writer(*conn, keep_alive);
      try {
        handler(r, writer);
      } catch (const std::exception& e) {
        // Handlers should not throw; if one does, the client gets a 500 and
        // the server keeps running. The message may not contain user text.
        log::error("http handler threw: {}", e.what());
        if (!writer.done()) writer.Send(500, "application/json", R"({"error":{"message":"internal error"}})");
      }
      if (!writer.done()) writer.Send(500, "application/json", R"({"error":{"message":"no response"}})");
      if (!writer.ok()) return;
      if (!keep_alive) {
        conn->Close();
        return;
      }
    }
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host, uint16_t port, HttpHandler handler,
                                                      HttpLimits limits, std::shared_ptr<crypto::TlsContext> tls) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->limits = limits;
  impl->tls = std::move(tls);
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return MakeError(Errc::kInvalidArgument, "bad listen address '" + host + "': " + ec.message());
  tcp::endpoint ep(addr, port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return MakeError(Errc::kIo, "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  Impl* raw = impl.get();
  impl->accept_thread = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  // shutdown() wakes a thread blocked in accept(); close only after it left.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  beast::error_code ec;
  impl_->acceptor.close(ec);
  // Wake every connection: a pending read ends, a stream write fails (so
  // generation stops). Connection threads use Impl, so wait for all of them.
  std::unique_lock<std::mutex> lock(impl_->mu);
  for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
  impl_->idle.wait(lock, [this] { return impl_->active.load() == 0; });
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

int HttpServer::active_connections() const { return impl_->active.load(); }

}  // namespace cllm::server
