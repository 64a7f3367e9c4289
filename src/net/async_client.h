// async_client.h — the coroutine form of the HTTP/1.1 client (client.h).
//
// ClientConnection runs on the executor of the coroutine that calls
// Connect: with an io_context run by several threads, spawn each user of a
// connection on its own strand (asio::make_strand) so its operations never
// run at once. Deadlines, errors and body delivery are those of client.h.
//
//   asio::co_spawn(asio::make_strand(ioc), [&]() -> asio::awaitable<void> {
//     auto c = co_await ClientConnection::Connect("127.0.0.1", port, tls, {});
//     if (c.ok()) auto r = co_await (*c)->Request({"GET", "/health"});
//   }, asio::detached);
//
// (asio 1.74's co_spawn needs a default-constructible result, so spawned
// coroutines return void and leave their results where the caller reads
// them.)
#pragma once

#include <utility>  // before Asio: 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <memory>
#include <string>
#include <vector>

#include "net/client.h"
#include "net/stream.h"

namespace cllm::net {

class ClientConnection {
 public:
  // Connect resolves host, connects and, with `tls`, runs the client
  // handshake (SNI = host) with the context's peer verifier; see client.h.
  static boost::asio::awaitable<NetResult<std::unique_ptr<ClientConnection>>> Connect(
      std::string host, uint16_t port, std::shared_ptr<TlsStreamContext> tls, ClientOptions options = {});
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Request sends one request and reads its response. Errors: kTimeout
  // (detail: the phase), kClosed when the peer closed or reset the
  // connection before any byte of the response (the request may then be
  // resent on a fresh connection; nothing else is safe to resend),
  // kProtocol (malformed or truncated response), kTooLarge, and
  // kInvalidArgument for a header with CR, LF or NUL. Any error closes the
  // connection; so does a response without keep-alive or a BodySink that
  // returned false.
  boost::asio::awaitable<NetResult<ClientResponse>> Request(ClientRequest request, BodySink on_body = nullptr,
                                                            HeadSink on_head = nullptr);

  const std::vector<crypto::Certificate>& PeerChain() const { return stream_->peer_chain(); }
  bool is_tls() const { return stream_->is_tls(); }
  bool is_open() const { return open_; }
  // requests is how many responses this connection completed: a
  // connection with requests() > 0 is a reused keep-alive connection.
  int requests() const { return requests_; }
  const std::string& host() const { return host_; }
  const ClientOptions& options() const { return options_; }
  std::string TlsDescription() const;
  // Close closes the socket now.
  void Close();

 private:
  ClientConnection(std::unique_ptr<Stream> stream, std::string host, ClientOptions options)
      : stream_(std::move(stream)), host_(std::move(host)), options_(options),
        // Unparsed bytes: a head (bounded by max_header_bytes), or a chunk-size
        // line, its extensions or a trailer section, which Beast does not
        // bound; past this a read fails (kTooLarge) instead of growing it.
        buffer_(options_.max_header_bytes + (64 << 10)) {}

  std::unique_ptr<Stream> stream_;
  std::string host_;
  ClientOptions options_;
  boost::beast::flat_buffer buffer_;  // bytes read but not parsed yet (capped: see the constructor)
  bool open_ = true;
  int requests_ = 0;
};

}  // namespace cllm::net
