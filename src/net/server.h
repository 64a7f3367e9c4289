// server.h — the one HTTP/1.1 server of every cllm service (Boost.Asio/Beast).
//
// Asynchronous: a few I/O threads serve every connection (no thread per
// connection), over one stream type that is plain TCP or TLS 1.3 (the RA-TLS
// listener: channel/ratls.h makes its crypto::TlsContext). Every phase has a
// deadline — TLS handshake, request head, request body, idle keep-alive,
// each response write — so a slow or silent client costs a socket and a few
// KiB, never a thread, and is closed when its deadline passes (408 when it
// had started a request). At `max_connections` a new connection first sheds
// the oldest idle keep-alive connection (or one that never sent a byte);
// with none idle, the oldest still in its TLS handshake; then the oldest
// still reading its request (head or body: a slow sender's); with none of
// these it is refused. With `max_connections_per_address`, one client
// address (an IPv6 /64) past it sheds its own oldest such connection, or is
// refused: it cannot take the table from everyone else.
// Beast parses requests and serializes responses (whole bodies, or chunked
// transfer encoding for server-sent events).
//
// Handlers run on a small pool of handler threads (they may do short
// blocking work: a signature, a database row) and answer through a
// ResponseWriter they may keep after returning: a completion hands it to the
// engine's scheduler and streams tokens from there. Writer calls never block;
// they queue bytes the connection writes in order. Each Send, BeginStream,
// Write and EndStream is one transport write, over TLS one record (up to
// 16 KiB), so record padding set on the context hides each event's length.
// A client that disconnects before its response is complete (or reads so
// slowly that more than `max_buffered_response_bytes` wait) is "gone": Write
// returns false and OnClientGone callbacks run, which is how generation is
// cancelled whether or not the response streams.
//
// Each connection keeps what it was accepted with (ConnectionInfo): the
// SPKI of the certificate its own handshake presented — certificate rotation
// changes new handshakes only — and, in mutual mode, the client's verified
// certificate chain. Handlers see it through the writer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/tls.h"
#include "crypto/x509.h"
#include "net/errors.h"

namespace cllm::net {

// NetErrc, NetResult: net/errors.h (shared with the client).

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // path and query, e.g. "/v1/models"
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string Header(const std::string& lower_name) const;  // "" when absent
  // Path is the target without its query; Query returns the raw (undecoded)
  // value of `key` in the query string, "" when absent.
  std::string Path() const;
  std::string Query(const std::string& key) const;
};

// ConnectionInfo is fixed when the connection is accepted (after the TLS
// handshake) and stays the same for every request on it.
struct ConnectionInfo {
  uint64_t id = 0;                              // unique within the process
  bool tls = false;                             // arrived over the (RA-)TLS listener
  std::string peer;                             // client IP ("127.0.0.1", "::1"); what rate limits key on
  Bytes served_spki;                            // TLS: SPKI DER of the certificate this connection was served
  std::vector<crypto::Certificate> peer_chain;  // mutual TLS: the client's verified chain, leaf first
};

// ResponseWriter sends exactly one response: Send, or BeginStream + Write… +
// EndStream. Thread-safe; no call blocks. Abstract so that tests can record
// responses without a network.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  virtual const ConnectionInfo& connection() const = 0;
  // AddHeader adds a header (e.g. Retry-After) to the response that Send or
  // BeginStream starts next. Name and value are the server's own text, never
  // a client's (a CR or LF in them is a bug and aborts).
  virtual void AddHeader(std::string_view name, std::string_view value) = 0;
  virtual void Send(int status, std::string_view content_type, std::string_view body) = 0;
  // BeginStream starts a chunked response; it and Write return false once
  // the client is gone (stop producing).
  virtual bool BeginStream(int status, std::string_view content_type) = 0;
  virtual bool Write(std::string_view chunk) = 0;
  virtual void EndStream() = 0;
  virtual bool client_gone() const = 0;
  // OnClientGone runs `f` once, on a server thread, when the client goes
  // away before the response is complete (at once if it already has). Never
  // called after a response completed normally.
  virtual void OnClientGone(std::function<void()> f) = 0;
  // After runs `f` on a server thread once `delay` has passed, unless the
  // client is gone by then (e.g. to flush coalesced stream text).
  // net::Server runs both on the connection's I/O thread (an OnClientGone
  // registered after the client left runs on the caller's): keep them short
  // and never block in them.
  virtual void After(std::chrono::milliseconds delay, std::function<void()> f) = 0;
};

// A Handler answers one request. It may return before answering: the writer
// stays valid while anyone holds it. A writer dropped without a response
// sends 500 (and a stream dropped before EndStream is cut off, so the
// client sees a truncated chunked body, never a complete-looking one).
using Handler = std::function<void(const Request& request, std::shared_ptr<ResponseWriter> writer)>;

struct ServerOptions {
  size_t max_body_bytes = 1 << 20;     // larger: 413 without reading it
  // body_limit, when set, decides one request's body limit from its head
  // (method, target, headers; the body is empty), at most max_body_bytes:
  // e.g. a larger limit only for the route and the callers that need it.
  // It runs on the connection's I/O thread: keep it short, never block.
  std::function<size_t(const Request& head)> body_limit;
  // Bodies being received, over all connections: a request whose body would
  // take the total past this is answered 503 (Retry-After: 1) instead of
  // read, so many slow uploads cannot hold max_connections × max_body_bytes.
  size_t max_pending_body_bytes = 256 << 20;
  size_t max_header_bytes = 16 << 10;  // larger: 431
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds head_timeout{10000};  // from the first byte of a request to its last header
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};  // keep-alive, between requests
  std::chrono::milliseconds write_timeout{30000};  // from a piece's queuing to its write; a slow reader is dropped
  size_t max_buffered_response_bytes = 4 << 20;   // queued but unwritten; beyond it the client is gone
  int max_connections = 16384;
  // Connections from one client address (IPv4 address, IPv6 /64); 0: no
  // limit. Behind a TCP relay or a NAT every client has the relay's
  // address, so this is for servers clients reach directly.
  int max_connections_per_address = 0;
  int io_threads = 1;
  int handler_threads = 2;
};

struct ServerStats {
  int open_connections = 0;
  int idle_connections = 0;      // keep-alive, waiting for a request
  uint64_t accepted = 0;
  uint64_t shed_idle = 0;        // idle connections closed to admit new ones
  uint64_t shed_handshaking = 0;  // with none idle: connections still in their TLS handshake, closed to admit new ones
  uint64_t shed_reading = 0;     // with none of those: connections still reading their request, closed
  uint64_t refused = 0;          // at the limit with none idle, handshaking or reading
  uint64_t shed_same_address = 0;     // max_connections_per_address: that address's own oldest, closed
  uint64_t refused_same_address = 0;  // max_connections_per_address: none of its own to shed (also in `refused`)
  uint64_t timed_out = 0;        // closed by a deadline
  uint64_t handshake_failed = 0;
  uint64_t requests = 0;
  uint64_t body_budget_refused = 0;  // 503: bodies in progress over max_pending_body_bytes
};

class Server {
 public:
  // Start listens on host:port (0 picks a free port) and serves until Stop.
  // With `tls`, every connection starts with a TLS 1.3 handshake.
  static NetResult<std::unique_ptr<Server>> Start(const std::string& host, uint16_t port, Handler handler,
                                                  ServerOptions options = {},
                                                  std::shared_ptr<crypto::TlsContext> tls = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Drain closes the listener and idle connections, lets requests in
  // progress finish (a keep-alive connection closes after its response)
  // until `deadline` has passed, then closes what is left. Returns how many
  // responses were cut off by the deadline.
  int Drain(std::chrono::milliseconds deadline);
  // Stop closes everything now and joins the threads.
  void Stop();
  uint16_t port() const;
  ServerStats Stats() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cllm::net
