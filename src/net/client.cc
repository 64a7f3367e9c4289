#include "net/client.h"

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>

#include <limits>
#include <optional>

#include "net/async_client.h"

namespace cllm::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::string ClientResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

namespace {

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

// The peer hung up: end of stream (TCP FIN or a TLS stream cut without
// close_notify), reset, or a write into a closed connection.
bool IsHangUp(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::ssl::error::stream_truncated;
}

// ReadError types a failed response read. `got_bytes`: some of the
// response had arrived (then a hang-up is a truncated response, never a
// connection that can be retried).
Error<NetErrc> ReadError(const error_code& ec, const char* phase, std::chrono::milliseconds timeout, bool got_bytes) {
  if (ec == beast::error::timeout) {
    return MakeError(NetErrc::kTimeout, std::string(phase) + ": nothing within " + Seconds(timeout));
  }
  if (ec == http::error::header_limit || ec == http::error::body_limit || ec == http::error::buffer_overflow) {
    return MakeError(NetErrc::kTooLarge, std::string(phase) + ": " + ec.message());
  }
  if (IsHangUp(ec)) {
    if (!got_bytes) return MakeError(NetErrc::kClosed, "the server closed the connection without answering");
    return MakeError(NetErrc::kProtocol, std::string("the connection closed during the ") + phase);
  }
  if (ec.category() == http::make_error_code(http::error::end_of_stream).category()) {  // Beast's parser errors
    return MakeError(NetErrc::kProtocol, std::string("malformed HTTP response (") + phase + "): " + ec.message());
  }
  return MakeError(got_bytes ? NetErrc::kProtocol : NetErrc::kClosed, std::string(phase) + ": " + ec.message());
}

// A header name or value from the caller (a proxy forwards its client's)
// must not be able to split the request.
bool SafeHeaderText(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Handshake adapts Stream::AsyncHandshake (a callback) to a coroutine.
asio::awaitable<NetStatus> Handshake(Stream& stream, std::chrono::milliseconds timeout, const std::string& sni) {
  std::optional<NetStatus> result;
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(error_code)>(
      [&](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        stream.AsyncHandshake(Role::kClient, timeout, sni, [h, &result](NetStatus st) {
          result.emplace(std::move(st));
          (*h)(error_code{});
        });
      },
      asio::use_awaitable);
  co_return std::move(*result);
}

}  // namespace

// ---------------------------------------------------------------------------
// ClientConnection
// ---------------------------------------------------------------------------

ClientConnection::~ClientConnection() = default;

void ClientConnection::Close() {
  if (open_) stream_->Close();
  open_ = false;
}

std::string ClientConnection::TlsDescription() const {
  SSL* ssl = stream_->native_ssl();
  if (ssl == nullptr) return "plain HTTP (not encrypted, not attested)";
  return std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl);
}

asio::awaitable<NetResult<std::unique_ptr<ClientConnection>>> ClientConnection::Connect(
    std::string host, uint16_t port, std::shared_ptr<TlsStreamContext> tls, ClientOptions options) {
  auto ex = co_await asio::this_coro::executor;
  const std::string where = host + ":" + std::to_string(port);
  const auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;

  // --- DNS: the resolver has no deadline of its own; a timer cancels it.
  // Shared with the timer's handler, which may run after we returned.
  auto resolver = std::make_shared<tcp::resolver>(ex);
  auto dns_timer = std::make_shared<asio::steady_timer>(ex, deadline);
  dns_timer->async_wait([resolver](error_code ec) {
    if (!ec) resolver->cancel();
  });
  error_code ec;
  const std::string service = std::to_string(port);  // named: no temporaries inside co_await (GCC 12)
  auto endpoints = co_await resolver->async_resolve(host, service, asio::redirect_error(asio::use_awaitable, ec));
  dns_timer->cancel();
  if (ec == asio::error::operation_aborted) {
    co_return MakeError(NetErrc::kTimeout, "connect to " + where + ": DNS lookup took over " + Seconds(options.connect_timeout));
  }
  if (ec) co_return MakeError(NetErrc::kConnect, host + ": " + ec.message());

  // --- TCP, within what is left of the connect deadline.
  std::unique_ptr<Stream> stream;
  if (tls) {
    auto s = Stream::Tls(tcp::socket(ex), tls);
    if (!s.ok()) co_return s.error();
    stream = std::move(s).value();
  } else {
    stream = Stream::Plain(tcp::socket(ex));
  }
  stream->tcp().expires_at(deadline);
  co_await stream->tcp().async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  stream->expires_never();
  if (ec == beast::error::timeout) {
    co_return MakeError(NetErrc::kTimeout, "connect to " + where + ": no TCP connection within " +
                                               Seconds(options.connect_timeout));
  }
  if (ec) co_return MakeError(NetErrc::kConnect, where + ": " + ec.message());
  // Requests are written in one piece, but a stream's small events must not
  // wait for Nagle's algorithm either.
  stream->tcp().socket().set_option(tcp::no_delay(true), ec);

  // --- TLS: the peer verifier decides inside the handshake.
  if (tls) {
    NetStatus st = co_await Handshake(*stream, options.handshake_timeout, host);
    if (!st.ok()) {
      std::string detail = st.detail();
      if (st.code() == NetErrc::kTimeout) detail = "TLS handshake with " + where + ": no answer within " + Seconds(options.handshake_timeout);
      co_return MakeError(st.code(), detail);
    }
  }
  co_return std::unique_ptr<ClientConnection>(new ClientConnection(std::move(stream), host, options));
}

asio::awaitable<NetResult<ClientResponse>> ClientConnection::Request(ClientRequest r, BodySink on_body,
                                                                     HeadSink on_head) {
  if (!open_) co_return MakeError(NetErrc::kClosed, "the connection is closed");
  if (!SafeHeaderText(r.method) || !SafeHeaderText(r.target) || r.method.empty() || r.target.empty()) {
    co_return MakeError(NetErrc::kInvalidArgument, "bad request line");
  }
  http::request<http::string_body> req;
  req.method_string(r.method);
  req.target(r.target);
  req.version(11);
  req.set(http::field::host, host_);
  for (const auto& [name, value] : r.headers) {
    if (name.empty() || !SafeHeaderText(name) || !SafeHeaderText(value) || name.find(':') != std::string::npos) {
      co_return MakeError(NetErrc::kInvalidArgument, "header \"" + name.substr(0, 64) + "\" has a forbidden character");
    }
    req.set(name, value);
  }
  if ((!r.body.empty() || r.method == "POST") && req.find(http::field::content_type) == req.end()) {
    req.set(http::field::content_type, "application/json");
  }
  req.body() = std::move(r.body);
  req.prepare_payload();

  // --- the request. A server may answer before reading a large body (413)
  // and close; its answer is still readable, so a failed write only fails
  // the request when no response follows.
  error_code ec;
  stream_->expires_after(options_.write_timeout);
  co_await http::async_write(*stream_, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == beast::error::timeout) {
    Close();
    co_return MakeError(NetErrc::kTimeout, "sending the request: not accepted within " + Seconds(options_.write_timeout));
  }
  const bool write_failed = static_cast<bool>(ec);

  // --- the head.
  auto parser = std::make_unique<http::response_parser<http::string_body>>();
  parser->header_limit(static_cast<std::uint32_t>(std::min<size_t>(options_.max_header_bytes, UINT32_MAX)));
  parser->body_limit(options_.max_body_bytes);
  if (r.method == "HEAD") parser->skip(true);
  stream_->expires_after(options_.head_timeout);
  co_await http::async_read_header(*stream_, buffer_, *parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    Close();
    const bool got = parser->got_some() || buffer_.size() > 0;
    if (write_failed && !got) co_return MakeError(NetErrc::kClosed, "the server closed the connection while we were sending");
    co_return ReadError(ec, "response head", options_.head_timeout, got);
  }
  ClientResponse out;
  out.status = static_cast<int>(parser->get().result_int());
  out.chunked = parser->chunked();
  for (const auto& field : parser->get()) {
    std::string name(field.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers[name] = std::string(field.value());
  }
  if (on_head) on_head(out);

  // --- the body: chunks to the sink as they are parsed, or kept whole.
  bool stopped = false;
  // The parser keeps a reference to the callback: it lives in this frame.
  auto chunk_sink = [&](std::uint64_t, beast::string_view data, error_code&) -> std::size_t {
    if (!stopped && !on_body(std::string_view(data.data(), data.size()))) stopped = true;
    return data.size();
  };
  if (on_body && parser->chunked()) {
    parser->on_chunk_body(chunk_sink);
    // Chunks are handed over, not kept: no limit on their sum. (Not
    // boost::none: Beast 1.74 compares a Content-Length against an empty
    // limit as "over".)
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
  }
  // (At most a century: a caller's "no limit" must not overflow the clock.)
  const auto body_deadline = std::chrono::steady_clock::now() +
                             std::min<std::chrono::milliseconds>(options_.body_timeout, std::chrono::hours(24 * 36525));
  while (!parser->is_done() && !stopped) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(body_deadline - std::chrono::steady_clock::now());
    const bool overall = left < options_.chunk_timeout;  // the body's deadline comes first
    stream_->expires_after(std::max(overall ? left : options_.chunk_timeout, std::chrono::milliseconds(0)));
    co_await http::async_read_some(*stream_, buffer_, *parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      Close();
      if (ec == beast::error::timeout && overall) {
        co_return MakeError(NetErrc::kTimeout, "response body: not complete within " + Seconds(options_.body_timeout));
      }
      co_return ReadError(ec, "response body", options_.chunk_timeout, true);
    }
  }
  stream_->expires_never();
  ++requests_;
  // Bytes past the response were never asked for (a body sent with the
  // answer to a HEAD, say): the stream is out of step, so it is not kept.
  const bool keep =
      !stopped && parser->is_done() && parser->get().keep_alive() && !write_failed && buffer_.size() == 0;
  out.body = std::move(parser->get().body());
  if (!keep) Close();
  // A body that was not chunked was not streamed: hand it over whole.
  if (on_body && !out.chunked && !out.body.empty()) on_body(out.body);
  co_return out;
}

// ---------------------------------------------------------------------------
// Client: the blocking form, on a private io_context
// ---------------------------------------------------------------------------

struct Client::Impl {
  asio::io_context ioc{1};
  std::unique_ptr<ClientConnection> conn;
  ClientOptions options;

  // Run runs `body` to completion on this thread; an exception thrown by a
  // caller's callback comes out here.
  template <typename F>
  void Run(F body) {
    ioc.restart();
    asio::co_spawn(ioc, std::move(body), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    ioc.run();
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

NetResult<std::unique_ptr<Client>> Client::Connect(const std::string& host, uint16_t port,
                                                   std::shared_ptr<crypto::TlsContext> tls, ClientOptions options) {
  std::shared_ptr<TlsStreamContext> stream_ctx;
  if (tls) {
    auto s = TlsStreamContext::Make(std::move(tls));
    if (!s.ok()) return s.error();
    stream_ctx = std::move(s).value();
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::optional<NetResult<std::unique_ptr<ClientConnection>>> result;
  impl->Run([&]() -> asio::awaitable<void> {
    result.emplace(co_await ClientConnection::Connect(host, port, stream_ctx, options));
  });
  if (!result) return MakeError(NetErrc::kConnect, "connect did not complete");
  if (!result->ok()) return result->error();
  impl->conn = std::move(*result).value();
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

NetResult<ClientResponse> Client::Request(const ClientRequest& request, const BodySink& on_body,
                                          const HeadSink& on_head) {
  std::optional<NetResult<ClientResponse>> result;
  impl_->Run([&]() -> asio::awaitable<void> {
    result.emplace(co_await impl_->conn->Request(request, on_body, on_head));
  });
  if (!result) return MakeError(NetErrc::kProtocol, "request did not complete");
  return std::move(*result);
}

const std::vector<crypto::Certificate>& Client::PeerChain() const { return impl_->conn->PeerChain(); }
bool Client::is_tls() const { return impl_->conn->is_tls(); }
bool Client::is_open() const { return impl_->conn->is_open(); }
std::string Client::TlsDescription() const { return impl_->conn->TlsDescription(); }
const ClientOptions& Client::options() const { return impl_->options; }

}  // namespace cllm::net
