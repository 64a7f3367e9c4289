// server_impl.h — the inside of net::Server (not part of the interface):
// the shared core every connection reports to, the per-connection state
// machine, and the ResponseWriter that talks to it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "net/server.h"
#include "net/stream.h"

namespace cllm::net::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
// A connection's strand, as the executor its socket and timers run on.
using Strand = asio::any_io_executor;

class Connection;

// Life guards posting to the io_context: writers may outlive the server
// (a scheduler still holds them), so they post only while it is open.
struct Life {
  std::mutex mu;
  bool open = true;
};

// Core is what connections share: options, handler, threads, registry.
struct Core {
  ServerOptions options;
  Handler handler;
  std::shared_ptr<TlsStreamContext> tls;
  // Reserved by bodies being received or waiting for their handler
  // (max_pending_body_bytes). Before `io` and `handlers`: connections and
  // HeldBody in operations still queued there give their share back when
  // those are destroyed.
  std::atomic<size_t> pending_body_bytes{0};
  asio::io_context io;
  std::optional<asio::thread_pool> handlers;  // handler_threads
  std::shared_ptr<Life> life = std::make_shared<Life>();

  // The registry: every open connection, and the idle ones by the time
  // they became idle (oldest first: the first to shed).
  std::mutex mu;
  std::map<uint64_t, std::weak_ptr<Connection>> open;
  std::map<std::pair<Clock::time_point, uint64_t>, std::weak_ptr<Connection>> idle;
  // Connections still in their TLS handshake, by id (oldest first: the
  // first to shed when none is idle). A plain connection goes idle at once.
  std::map<uint64_t, std::weak_ptr<Connection>> handshaking;
  // Connections reading a request (head or body), oldest first: shed at
  // max_connections after the idle and the handshaking ones.
  std::map<uint64_t, std::weak_ptr<Connection>> reading;
  // Open connections by client address (AddressKey), oldest first: for
  // max_connections_per_address.
  std::map<std::string, std::set<uint64_t>> by_address;
  // Connections asked to close for a newcomer whose strand has not yet
  // closed them: they count against no limit, and are not picked again.
  std::set<uint64_t> shedding;
  std::unordered_map<uint64_t, std::string> address_of;

  std::atomic<uint64_t> next_id{1};
  std::atomic<uint64_t> accepted{0}, shed_idle{0}, shed_handshaking{0}, refused{0}, timed_out{0}, handshake_failed{0}, requests{0};
  std::atomic<uint64_t> body_budget_refused{0};
  std::atomic<uint64_t> shed_reading{0}, shed_same_address{0}, refused_same_address{0};
  std::atomic<bool> cutting_off{false};  // Drain's deadline passed: count what Close cuts off
  std::atomic<int> cut_off{0};           // responses in progress closed after Drain's deadline

  void Unregister(uint64_t id);
  void HandshakeDone(uint64_t id);
  void SetIdle(const std::shared_ptr<Connection>& c, uint64_t id, std::optional<Clock::time_point> was,
               std::optional<Clock::time_point> now);
  void SetReading(const std::shared_ptr<Connection>& c, uint64_t id);  // null: no longer reading
  void ShedDeclined(uint64_t id);  // a connection asked to close started a request instead
};

// HeldBody is a received body's share of Core::pending_body_bytes, carried
// with the request to its handler and given back when that has run (or the
// request is dropped unrun).
class HeldBody {
 public:
  HeldBody(Core& core, size_t bytes) : core_(&core), bytes_(bytes) {}
  HeldBody(HeldBody&& o) noexcept;
  HeldBody& operator=(HeldBody&&) = delete;
  ~HeldBody() { Release(); }
  void Release();

 private:
  Core* core_;
  size_t bytes_;
};

// One queued transport write: over TLS one record per 16 KiB.
struct Outgoing {
  std::string bytes;
  bool last = false;        // the response's final write
  bool keep_alive = true;   // with `last`: keep the connection open after it
  bool cut_off = false;     // with `last`: close without completing (a dropped stream)
  // When it was queued: it must be written within write_timeout of it
  // (Connection::WriteNext), however the writes before it went.
  std::chrono::steady_clock::time_point queued_at = std::chrono::steady_clock::now();
};

class ConnWriter;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Core& core, uint64_t id, std::unique_ptr<Stream> stream, Strand strand, std::string peer);
  ~Connection();
  void Start();
  // Shed closes the connection if it is still idle or in its handshake (on
  // its strand); with `reading_too`, also while it reads a request's head
  // or body. A connection handling a request is never shed.
  void Shed(bool reading_too = false);
  // Sheddable is Shed(true)'s test, read off the strand (Shed checks again).
  bool Sheddable() const { return sheddable_.load(std::memory_order_relaxed); }
  uint64_t id() const { return id_; }
  // Close ends the connection now; a response in progress is cut off and
  // its client counts as gone.
  void Close(const char* why);
  // BeginDrain closes an idle connection and makes a busy one close after
  // its response.
  void BeginDrain();
  bool busy() const { return phase_ == Phase::kHandling; }

  // Called by ConnWriter through the strand, `seq` naming the response.
  void Enqueue(uint64_t seq, Outgoing out);
  void WriterDropped(uint64_t seq, bool streaming);
  void RunAfter(uint64_t seq, std::chrono::milliseconds delay, std::function<void()> f);

  Strand& strand() { return strand_; }

 private:
  enum class Phase { kHandshake, kIdle, kHead, kBody, kHandling, kClosing, kClosed };

  void StartIdle();
  void ReadMore();
  void OnRead(beast::error_code ec, size_t n);
  void Parse();
  void Dispatch();
  void RespondError(int status, const char* message,
                    const std::vector<std::pair<std::string, std::string>>& headers = {});
  void RefuseBusy();  // 503 for the shared body budget (max_pending_body_bytes)
  void WriteNext();
  void OnWritten(beast::error_code ec);
  void ResponseDone(bool keep_alive);
  void ClientGone(const char* why);
  void GracefulClose();
  void MaybeShutdown();
  void OnHandshake(NetStatus status);
  void ArmDeadline(std::chrono::milliseconds d);
  void CancelDeadline();
  void OnDeadline();
  void SetPhase(Phase p);

  Core& core_;
  const uint64_t id_;
  std::unique_ptr<Stream> stream_;
  Strand strand_;
  std::shared_ptr<ConnectionInfo> info_;
  Phase phase_ = Phase::kHandshake;
  std::atomic<bool> sheddable_{true};  // phase_ is kHandshake, kIdle, kHead or kBody
  std::optional<Clock::time_point> idle_since_;  // set while registered as idle
  bool draining_ = false;

  // Reading: bytes not yet parsed stay here (pipelined requests too).
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::vector<char> read_buf_;  // what one read fills: kReadChunk or kWatchChunk bytes
  size_t header_fields_ = 0;    // fields of the request's head (more at its end are trailer fields)
  size_t body_limit_ = 0;       // this request's (ServerOptions::body_limit), checked as the body arrives
  size_t body_reserved_ = 0;    // of core_.pending_body_bytes, until the body goes to its handler (HeldBody)
  // ReserveBody takes `total` bytes of the shared budget for this body (false:
  // over it); ReleaseBody gives them back.
  bool ReserveBody(size_t total);
  void ReleaseBody();
  bool read_pending_ = false;
  asio::steady_timer deadline_;
  uint64_t deadline_gen_ = 0;

  // Responding: one response at a time, `seq_` names it.
  uint64_t seq_ = 0;
  std::shared_ptr<Connection> hold_;  // keeps us alive while a handler holds the writer
  std::weak_ptr<ConnWriter> writer_;
  bool response_complete_ = true;     // the last write of the current response is queued
  bool keep_alive_ = true;            // of the current request
  bool head_only_ = false;            // the current request is HEAD: its response has no body
  bool shutting_down_ = false;
  std::deque<Outgoing> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  asio::steady_timer write_timer_;
  uint64_t write_gen_ = 0;
};

// ConnWriter is the ResponseWriter of one request; its calls serialize on
// the caller's thread and post the bytes to the connection's strand.
class ConnWriter : public ResponseWriter, public std::enable_shared_from_this<ConnWriter> {
 public:
  // `head_only`: the request was HEAD, so the response goes out without a
  // body (a stream: its head only, no chunks).
  ConnWriter(std::shared_ptr<Life> life, std::weak_ptr<Connection> conn, uint64_t seq,
             std::shared_ptr<const ConnectionInfo> info, bool keep_alive, bool head_only);
  ~ConnWriter() override;

  const ConnectionInfo& connection() const override { return *info_; }
  void AddHeader(std::string_view name, std::string_view value) override;
  void Send(int status, std::string_view content_type, std::string_view body) override;
  bool BeginStream(int status, std::string_view content_type) override;
  bool Write(std::string_view chunk) override;
  void EndStream() override;
  bool client_gone() const override { return gone_.load(); }
  void OnClientGone(std::function<void()> f) override;
  void After(std::chrono::milliseconds delay, std::function<void()> f) override;

  // MarkGone (on the strand) records that the client went away before the
  // response completed and runs the OnClientGone callbacks.
  void MarkGone();
  // Complete (on the strand) records that the response completed: gone
  // callbacks are dropped, never run.
  void Complete();
  bool done() const;

 private:
  enum class State { kNone, kStreaming, kDone };
  // PostToConnection runs `f(connection)` on the connection's strand if the
  // server and the connection are still alive.
  bool PostToConnection(std::function<void(Connection&)> f);
  bool Queue(std::string bytes, bool last);

  // No executor is kept here: a writer may outlive the io_context, so it
  // reaches the strand through the live connection only (under life_->mu).
  std::shared_ptr<Life> life_;
  std::weak_ptr<Connection> conn_;
  const uint64_t seq_;
  std::shared_ptr<const ConnectionInfo> info_;
  const bool keep_alive_;
  const bool head_only_;
  std::atomic<bool> gone_{false};
  mutable std::mutex mu_;
  State state_ = State::kNone;
  bool completed_ = false;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<std::function<void()>> on_gone_;
};

// The serialized forms of a response (Beast's serializer and chunk framing).
// With `head_only` (the answer to a HEAD request) the head, Content-Length
// included, goes out without the body (RFC 9110 9.3.2).
std::string SerializeWhole(int status, std::string_view content_type, std::string_view body,
                           const std::vector<std::pair<std::string, std::string>>& headers, bool keep_alive,
                           bool head_only = false);
std::string SerializeStreamHead(int status, std::string_view content_type,
                                const std::vector<std::pair<std::string, std::string>>& headers, bool keep_alive);
std::string SerializeChunk(std::string_view chunk);
std::string SerializeLastChunk();
std::string ErrorJson(const char* message);

}  // namespace cllm::net::detail
