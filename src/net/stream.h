// stream.h — the one byte stream of every cllm connection: plain TCP or
// TLS 1.3, server side or client side (Boost.Beast).
//
// A Stream is a beast::tcp_stream, or a beast::ssl_stream over one, running
// OUR crypto::TlsContext's SSL_CTX: TLS 1.3 only, record padding, and the
// RA-TLS peer verifier attached to each connection's SSL (the verifier's own
// error survives a refused handshake, so callers can say "policy not
// satisfied: …"). ssl_stream's flat_stream turns one write of a buffer
// sequence into one SSL_write, so one write is one TLS record (up to
// 16 KiB) and padding hides each write's length.
//
// Stream models Asio's AsyncReadStream and AsyncWriteStream with callback
// handlers (what Beast's http::async_read / async_write need). Not
// thread-safe: use it from one strand, at most one read and one write at a
// time.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "crypto/tls.h"
#include "net/errors.h"

namespace cllm::net {

enum class Role { kClient, kServer };

// TlsStreamContext is the Asio view of one crypto::TlsContext (its SSL_CTX,
// shared, not copied): make one per TlsContext and share it between all the
// streams of that context.
class TlsStreamContext {
 public:
  static NetResult<std::shared_ptr<TlsStreamContext>> Make(std::shared_ptr<crypto::TlsContext> tls);
  const std::shared_ptr<crypto::TlsContext>& tls() const { return tls_; }
  boost::asio::ssl::context& asio_context() { return asio_; }

 private:
  TlsStreamContext(std::shared_ptr<crypto::TlsContext> tls, boost::asio::ssl::context asio)
      : tls_(std::move(tls)), asio_(std::move(asio)) {}
  std::shared_ptr<crypto::TlsContext> tls_;
  boost::asio::ssl::context asio_;
};

class Stream {
 public:
  using Tcp = boost::beast::tcp_stream;
  using Ssl = boost::beast::ssl_stream<Tcp>;
  using executor_type = Tcp::executor_type;
  using Clock = std::chrono::steady_clock;

  // Plain wraps a TCP socket (connected, or to be connected with tcp()).
  static std::unique_ptr<Stream> Plain(boost::asio::ip::tcp::socket socket);
  // Tls wraps a socket in TLS with `tls`'s current identity (a later
  // SetIdentity does not change this stream). kTls when OpenSSL cannot make
  // the SSL.
  static NetResult<std::unique_ptr<Stream>> Tls(boost::asio::ip::tcp::socket socket,
                                                 std::shared_ptr<TlsStreamContext> tls);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  bool is_tls() const { return s_.index() == 1; }
  executor_type get_executor() { return tcp().get_executor(); }
  // tcp is the TCP layer: connect, endpoints, socket options.
  Tcp& tcp() { return is_tls() ? std::get<1>(s_).next_layer() : std::get<0>(s_); }

  // AsyncHandshake runs the TLS handshake as `role` (a plain stream
  // completes at once) within `timeout`; `sni` is the client's server name
  // ("" for none). `done(status)` runs on the stream's executor: kRefused
  // with the verifier's reason when it refused the peer, kTimeout, or kTls.
  void AsyncHandshake(Role role, Clock::duration timeout, const std::string& sni,
                      std::function<void(NetStatus)> done);
  // AsyncShutdown sends TLS close_notify (waiting at most `timeout` for the
  // peer's), then closes the socket; a plain stream just closes.
  void AsyncShutdown(Clock::duration timeout, std::function<void()> done);
  // Close closes the socket now: pending operations complete with an error.
  void Close();

  // Timeouts of the TCP layer (beast::tcp_stream semantics): the next
  // operations fail with beast::error::timeout once it passes.
  void expires_after(Clock::duration d) { tcp().expires_after(d); }
  void expires_never() { tcp().expires_never(); }

  // After a successful handshake: the verifier's accepted peer chain (leaf
  // first; empty when the peer sent none or the stream is plain) and the
  // SPKI DER of the certificate this stream presented (empty when none).
  const std::vector<crypto::Certificate>& peer_chain() const;
  const Bytes& served_spki() const;
  // Refusal is the verifier's own error after it refused the peer.
  const std::optional<Error<crypto::CryptoErrc>>& refusal() const;
  // native_ssl is the connection's SSL (protocol and cipher for display);
  // null on a plain stream.
  SSL* native_ssl() { return is_tls() ? std::get<1>(s_).native_handle() : nullptr; }

  template <typename MutableBuffers, typename Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (is_tls()) {
      std::get<1>(s_).async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<0>(s_).async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <typename ConstBuffers, typename Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (is_tls()) {
      std::get<1>(s_).async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<0>(s_).async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

 private:
  explicit Stream(boost::asio::ip::tcp::socket socket);
  Stream(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& ctx);

  // Declared before s_ so it outlives the SSL it is attached to.
  std::unique_ptr<crypto::TlsAttachment> attachment_;
  std::shared_ptr<TlsStreamContext> tls_ctx_;
  std::variant<Tcp, Ssl> s_;
};

}  // namespace cllm::net
