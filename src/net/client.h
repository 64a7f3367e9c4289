// client.h — the HTTP/1.1 client of every cllm tool (Boost.Asio/Beast).
//
// One ClientConnection is one keep-alive connection over a net::Stream
// (plain TCP, or TLS 1.3 with the TlsContext's peer verifier — the RA-TLS
// verifier for a cllm server — run inside the handshake, so no request byte
// reaches a refused peer). Every phase has its own deadline: connect (DNS +
// TCP), TLS handshake, writing the request, the response head (counted from
// the end of the request: a completion's first token may wait in the
// server's queue), and the gap between body bytes of a response. A missed
// deadline is NetErrc::kTimeout whose detail names the phase.
//
// Beast parses every response (chunked transfer encoding included). A body
// is returned whole, or, with a BodySink, each chunk of a chunked body is
// handed over as it arrives (server-sent events) and not kept.
//
// Two forms share one implementation:
//   * async_client.h: C++20 coroutines on a caller's executor, for many
//     connections on few threads (`cllm bench serve`, `cllm proxy`);
//   * Client below: blocking calls on the caller's thread (its own private
//     io_context), for the CLI and the client library.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/tls.h"
#include "crypto/x509.h"
#include "net/errors.h"

namespace cllm::net {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10000};    // DNS lookup + TCP connect
  std::chrono::milliseconds handshake_timeout{10000};  // TLS handshake, peer verification included
  std::chrono::milliseconds write_timeout{30000};      // sending one request
  std::chrono::milliseconds head_timeout{60000};       // request sent → response head complete
  std::chrono::milliseconds chunk_timeout{60000};      // between two reads of a response body
  // The whole response body, however it trickles: a server sending a byte
  // every chunk_timeout would otherwise hold the caller forever. Long
  // enough for a long generation streamed at a slow model's pace.
  std::chrono::milliseconds body_timeout{3600000};
  size_t max_header_bytes = 64 << 10;
  size_t max_body_bytes = 64 << 20;  // whole bodies; a streamed body is not kept and not limited
};

struct ClientRequest {
  std::string method = "GET";
  std::string target = "/";
  std::map<std::string, std::string> headers;  // added as given; Host and Content-Length are ours
  std::string body;
};

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // empty when streamed to a BodySink
  bool chunked = false;                        // the body came with chunked transfer encoding
  std::string Header(const std::string& lower_name) const;  // "" when absent
};

// BodySink receives the bytes of each chunk of a chunked body as they
// arrive; return false to stop reading (the connection is then closed).
using BodySink = std::function<bool(std::string_view)>;
// HeadSink receives status and headers (body empty) as soon as the head is
// parsed, before any body byte.
using HeadSink = std::function<void(const ClientResponse&)>;

class Client {
 public:
  // Connect opens host:port within the options' deadlines. With `tls`, a
  // TLS 1.3 handshake (SNI = host) runs with `tls`'s peer verifier: kRefused
  // carries the verifier's reason. Without, the connection is plain TCP.
  static NetResult<std::unique_ptr<Client>> Connect(const std::string& host, uint16_t port,
                                                    std::shared_ptr<crypto::TlsContext> tls,
                                                    ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Request sends one request and reads its response (errors as
  // ClientConnection::Request in async_client.h). Not thread-safe: one
  // request at a time. After an error, or a response without keep-alive,
  // the connection is closed and further requests fail with kClosed.
  [[nodiscard]] NetResult<ClientResponse> Request(const ClientRequest& request, const BodySink& on_body = nullptr,
                                                  const HeadSink& on_head = nullptr);
  // PeerChain is the certificate chain the TLS peer presented and the
  // verifier accepted (leaf first); empty for plain connections.
  const std::vector<crypto::Certificate>& PeerChain() const;
  bool is_tls() const;
  bool is_open() const;  // false once closed (by an error, the peer, or no keep-alive)
  std::string TlsDescription() const;  // "TLSv1.3 TLS_AES_256_GCM_SHA384"
  const ClientOptions& options() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cllm::net
