#include "server/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "base/log.h"

namespace cllm::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

namespace {

// Writes on a blocking socket; any failure marks the connection dead.
class SocketWriter : public ResponseWriter {
 public:
  SocketWriter(tcp::socket& s, bool keep_alive) : s_(s), keep_alive_(keep_alive) {}

  void Send(int status, std::string_view content_type, std::string_view body) override {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::server, "cllm");
    res.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(keep_alive_);
    res.body() = std::string(body);
    res.prepare_payload();
    beast::error_code ec;
    http::write(s_, res, ec);
    ok_ = !ec;
    done_ = true;
  }

  bool BeginStream(int status, std::string_view content_type) override {
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " +
                       std::string(http::obsolete_reason(static_cast<http::status>(status))) +
                       "\r\nServer: cllm\r\nContent-Type: " + std::string(content_type) +
                       "\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\nConnection: " +
                       (keep_alive_ ? "keep-alive" : "close") + "\r\n\r\n";
    streaming_ = true;
    return Raw(head);
  }

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
    beast::error_code ec;
    asio::write(s_, asio::buffer(bytes), ec);
    ok_ = !ec;
    return ok_;
  }

  tcp::socket& s_;
  bool keep_alive_;
  bool ok_ = true;
  bool done_ = false;
  bool streaming_ = false;
};

void SendError(tcp::socket& s, http::status status, const char* message) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = std::string(R"({"error":{"message":")") + message + R"(","type":"invalid_request_error"}})";
  res.prepare_payload();
  beast::error_code ec;
  http::write(s, res, ec);
}

}  // namespace

struct HttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  HttpHandler handler;
  HttpLimits limits;
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::atomic<int> active{0};
  std::mutex mu;
  std::condition_variable idle;

  std::set<int> open_fds;  // live connections, shut down by Stop()
  tcp protocol = tcp::v4();

  void AcceptLoop() {
    while (!stopping) {
      beast::error_code ec;
      tcp::socket socket(io);
      acceptor.accept(socket, ec);
      if (ec) {
        if (stopping) break;
        continue;
      }
      if (active.load() >= limits.max_connections) {
        SendError(socket, http::status::service_unavailable, "too many connections");
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        ++active;
        open_fds.insert(socket.native_handle());
      }
      std::thread([this, fd = socket.release()]() {
        Serve(fd);
        std::lock_guard<std::mutex> lock(mu);
        open_fds.erase(fd);
        ::close(fd);
        if (--active == 0) idle.notify_all();
      }).detach();
    }
  }

  // ReadRequest reads one request head + body under a deadline. Each
  // connection thread runs its own small io_context only for this read; the
  // response is written synchronously on the same socket. On expiry the read
  // is cancelled (not the socket closed), so a 408 can still be sent.
  static beast::error_code ReadRequest(asio::io_context& cio, tcp::socket& socket, beast::flat_buffer& buffer,
                                       http::request_parser<http::string_body>& parser, int timeout_ms) {
    beast::error_code result;
    bool expired = false;
    asio::steady_timer timer(cio, std::chrono::milliseconds(timeout_ms));
    timer.async_wait([&](beast::error_code ec) {
      if (ec) return;
      expired = true;
      beast::error_code ignored;
      socket.cancel(ignored);
    });
    http::async_read(socket, buffer, parser, [&](beast::error_code ec, size_t) {
      result = ec;
      timer.cancel();
    });
    cio.restart();
    cio.run();
    return expired ? beast::error_code(beast::error::timeout) : result;
  }

  void Serve(int fd) {
    asio::io_context cio;
    tcp::socket socket(cio, protocol, ::dup(fd));
    beast::flat_buffer buffer;
    while (!stopping) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
      parser.body_limit(limits.max_body_bytes);
      beast::error_code ec = ReadRequest(cio, socket, buffer, parser, limits.read_timeout_ms);
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted)
        return;
      if (ec == http::error::body_limit) {
        SendError(socket, http::status::payload_too_large, "request body too large");
        return;
      }
      if (ec == beast::error::timeout) {
        // An idle keep-alive connection just closes; a half-sent request
        // learns why.
        if (parser.got_some()) SendError(socket, http::status::request_timeout, "request not received in time");
        return;
      }
      if (ec) {
        SendError(socket, http::status::bad_request, "malformed HTTP request");
        return;
      }
      auto& req = parser.get();
      HttpRequest r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      for (const auto& field : req) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = std::string(field.value());
      }
      r.body = std::move(req.body());
      bool keep_alive = req.keep_alive();
      SocketWriter writer(socket, keep_alive);
      try {
        handler(r, writer);
      } catch (const std::exception& e) {
        // Handlers should not throw; if one does, the client gets a 500 and
        // the server keeps running. The message may not contain user text.
        log::error("http handler threw: {}", e.what());
        if (!writer.done()) writer.Send(500, "application/json", R"({"error":{"message":"internal error"}})");
      }
      if (!writer.done()) writer.Send(500, "application/json", R"({"error":{"message":"no response"}})");
      if (!writer.ok() || !keep_alive) return;
    }
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host, uint16_t port, HttpHandler handler,
                                                      HttpLimits limits) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->limits = limits;
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return MakeError(Errc::kInvalidArgument, "bad listen address '" + host + "': " + ec.message());
  tcp::endpoint ep(addr, port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  impl->protocol = ep.protocol();
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
