// http_server.h — the HTTP/1.1 transport under the OpenAI API (Boost.Beast).
//
// One thread per connection, up to `max_connections`; every read has a
// deadline, so a slow or silent client holds only its own thread and gets a
// clean 408 (or is dropped), while other users keep being served. Bodies over
// `max_body_bytes` get 413 without being read. Responses are either whole or
// streamed (server-sent events, chunked transfer encoding); a stream write
// fails as soon as the client disconnects, which is how generation learns to
// cancel. The transport is plain TCP, or TLS 1.3 when a crypto::TlsContext is
// given (the RA-TLS listener: channel/ratls.h makes its context). Beast does
// the HTTP parsing; the byte transport is ours so both share one code path.
// Send, BeginStream, each Write and EndStream are one transport write each:
// over TLS one record (up to 16 KiB), so record padding set on the context
// (crypto::TlsContext::SetRecordPadding) hides each streamed event's length.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "crypto/tls.h"

namespace cllm::server {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // path and query, e.g. "/v1/models"
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool tls = false;  // arrived over the (RA-)TLS listener
  std::string peer;  // the client's IP address ("127.0.0.1", "::1"); what rate limits key on
  std::string Header(const std::string& lower_name) const;
  // Path is the target without its query; Query returns the raw (undecoded)
  // value of `key` in the query string, "" when absent.
  std::string Path() const;
  std::string Query(const std::string& key) const;
};

// ResponseWriter sends exactly one response: either Send, or BeginStream +
// Write… + EndStream.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // AddHeader adds a header (e.g. Retry-After) to the response that Send or
  // BeginStream starts next. Name and value are the server's own text, never
  // a client's (a CR or LF in them is a bug and aborts). Writers that only
  // record a response (test fakes) may ignore headers.
  virtual void AddHeader(std::string_view name, std::string_view value) {
    (void)name;
    (void)value;
  }
  virtual void Send(int status, std::string_view content_type, std::string_view body) = 0;
  // BeginStream starts a chunked response; Write returns false once the
  // client is gone (stop producing).
  virtual bool BeginStream(int status, std::string_view content_type) = 0;
  virtual bool Write(std::string_view chunk) = 0;
  virtual void EndStream() = 0;
};

using HttpHandler = std::function<void(const HttpRequest&, ResponseWriter&)>;

struct HttpLimits {
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  int read_timeout_ms = 10000;   // for the whole request head + body (and the TLS handshake)
  int write_timeout_ms = 30000;  // a client that stops reading is dropped after this
  int max_connections = 256;
};

class HttpServer {
 public:
  // Start listens on host:port (port 0 picks a free one) and serves in
  // background threads. Errors: kIo with the reason (address in use, ...).
  // With `tls`, every connection starts with a TLS 1.3 handshake.
  static Result<std::unique_ptr<HttpServer>> Start(const std::string& host, uint16_t port, HttpHandler handler,
                                                   HttpLimits limits = {},
                                                   std::shared_ptr<crypto::TlsContext> tls = nullptr);
  ~HttpServer();
  // Stop closes the listener and waits for in-flight connections to finish.
  void Stop();
  uint16_t port() const;
  int active_connections() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cllm::server
