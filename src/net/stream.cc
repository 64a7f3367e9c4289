#include "net/stream.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core/error.hpp>

#include "base/log.h"

namespace cllm::net {

namespace asio = boost::asio;
namespace beast = boost::beast;

const char* NetErrcName(NetErrc code) {
  switch (code) {
    case NetErrc::kInvalidArgument: return "invalid_argument";
    case NetErrc::kListen: return "listen";
    case NetErrc::kConnect: return "connect";
    case NetErrc::kTimeout: return "timeout";
    case NetErrc::kTls: return "tls";
    case NetErrc::kRefused: return "refused";
    case NetErrc::kProtocol: return "protocol";
    case NetErrc::kTooLarge: return "too_large";
    case NetErrc::kClosed: return "closed";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// TlsStreamContext
// ---------------------------------------------------------------------------

NetResult<std::shared_ptr<TlsStreamContext>> TlsStreamContext::Make(std::shared_ptr<crypto::TlsContext> tls) {
  if (!tls) return MakeError(NetErrc::kInvalidArgument, "no TLS context");
  // asio::ssl::context takes ownership of the handle it is given; the
  // reference taken here is the one it frees.
  SSL_CTX* raw = tls->native_handle();
  if (SSL_CTX_up_ref(raw) != 1) return MakeError(NetErrc::kTls, "SSL_CTX_up_ref failed");
  try {
    asio::ssl::context asio_ctx(raw);
    return std::shared_ptr<TlsStreamContext>(new TlsStreamContext(std::move(tls), std::move(asio_ctx)));
  } catch (const std::exception& e) {
    return MakeError(NetErrc::kTls, std::string("asio ssl context: ") + e.what());
  }
}

// ---------------------------------------------------------------------------
// Stream
// ---------------------------------------------------------------------------

Stream::Stream(asio::ip::tcp::socket socket) : s_(std::in_place_index<0>, std::move(socket)) {}

Stream::Stream(asio::ip::tcp::socket socket, asio::ssl::context& ctx)
    : s_(std::in_place_index<1>, std::move(socket), ctx) {}

Stream::~Stream() = default;

std::unique_ptr<Stream> Stream::Plain(asio::ip::tcp::socket socket) {
  return std::unique_ptr<Stream>(new Stream(std::move(socket)));
}

NetResult<std::unique_ptr<Stream>> Stream::Tls(asio::ip::tcp::socket socket, std::shared_ptr<TlsStreamContext> tls) {
  if (!tls) return MakeError(NetErrc::kInvalidArgument, "no TLS context");
  std::unique_ptr<Stream> out;
  std::string failure;
  // The SSL is made (SSL_new, inside ssl_stream's constructor) under the
  // context's identity lock, and the peer verifier attached to it.
  auto attachment = crypto::TlsAttachment::Create(tls->tls(), [&]() -> SSL* {
    try {
      out.reset(new Stream(std::move(socket), tls->asio_context()));
    } catch (const std::exception& e) {
      failure = e.what();
      return nullptr;
    }
    return std::get<1>(out->s_).native_handle();
  });
  if (!attachment.ok()) {
    return MakeError(NetErrc::kTls, failure.empty() ? attachment.detail() : "SSL_new: " + failure);
  }
  out->attachment_ = std::move(attachment).value();
  out->tls_ctx_ = std::move(tls);
  return out;
}

void Stream::AsyncHandshake(Role role, Clock::duration timeout, const std::string& sni,
                            std::function<void(NetStatus)> done) {
  if (!is_tls()) {
    asio::post(get_executor(), [done = std::move(done)] { done(OkStatus()); });
    return;
  }
  auto& ssl = std::get<1>(s_);
  if (role == Role::kClient && !sni.empty()) SSL_set_tlsext_host_name(ssl.native_handle(), sni.c_str());
  tcp().expires_after(timeout);
  auto type = role == Role::kServer ? asio::ssl::stream_base::server : asio::ssl::stream_base::client;
  ssl.async_handshake(type, [this, done = std::move(done)](beast::error_code ec) {
    tcp().expires_never();
    attachment_->Finish(!ec);
    if (!ec) return done(OkStatus());
    if (const auto& refused = attachment_->refusal()) return done(MakeError(NetErrc::kRefused, refused->detail));
    if (ec == beast::error::timeout) return done(MakeError(NetErrc::kTimeout, "TLS handshake timed out"));
    done(MakeError(NetErrc::kTls, "TLS handshake failed: " + ec.message()));
  });
}

void Stream::AsyncShutdown(Clock::duration timeout, std::function<void()> done) {
  if (!is_tls()) {
    Close();
    asio::post(get_executor(), std::move(done));
    return;
  }
  tcp().expires_after(timeout);
  std::get<1>(s_).async_shutdown([this, done = std::move(done)](beast::error_code) {
    Close();
    done();
  });
}

void Stream::Close() {
  beast::error_code ec;
  tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  tcp().close();
}

const std::vector<crypto::Certificate>& Stream::peer_chain() const {
  static const std::vector<crypto::Certificate> kNone;
  return attachment_ ? attachment_->peer_chain() : kNone;
}

const Bytes& Stream::served_spki() const {
  static const Bytes kNone;
  return attachment_ ? attachment_->served_spki() : kNone;
}

const std::optional<Error<crypto::CryptoErrc>>& Stream::refusal() const {
  static const std::optional<Error<crypto::CryptoErrc>> kNone;
  return attachment_ ? attachment_->refusal() : kNone;
}

}  // namespace cllm::net
