// One connection of net::Server: an asynchronous state machine on its strand.
//
//   handshake ─► idle ─► head ─► body ─► handling ─► (keep-alive) idle …
//        deadlines: handshake_timeout, idle_timeout, head_timeout,
//        body_timeout; each queued write: write_timeout.
//
// While a handler runs, one read stays pending: end of stream or an error
// means the client is gone (OnClientGone callbacks run, Write returns
// false); bytes that arrive meanwhile stay buffered for the next request.
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>

#include <cctype>
#include <cstring>
#include <typeinfo>
#include <utility>

#include "base/log.h"
#include "net/server_impl.h"

namespace cllm::net::detail {

namespace {

constexpr size_t kReadChunk = 8192;  // while a request arrives
constexpr size_t kWatchChunk = 512;  // while idle or answering: usually nothing comes
// Pipelined bytes buffered while a response is in progress; past this the
// client is treated as gone (OnRead).
constexpr size_t kMaxPipelined = 64 << 10;
constexpr auto kShutdownTimeout = std::chrono::milliseconds(500);

// HeadOf is the Request of a parsed head (header names in lower case),
// without its body.
template <typename Fields>
Request HeadOf(const http::request<http::string_body, Fields>& msg) {
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  for (const auto& field : msg) {
    std::string name(field.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    req.headers[name] = std::string(field.value());
  }
  return req;
}

}  // namespace

Connection::Connection(Core& core, uint64_t id, std::unique_ptr<Stream> stream, Strand strand, std::string peer)
    : core_(core),
      id_(id),
      stream_(std::move(stream)),
      strand_(std::move(strand)),
      deadline_(strand_),
      write_timer_(strand_) {
  auto info = std::make_shared<ConnectionInfo>();
  info->id = id;
  info->tls = stream_->is_tls();
  info->peer = std::move(peer);
  info_ = std::move(info);
}

Connection::~Connection() { ReleaseBody(); }

HeldBody::HeldBody(HeldBody&& o) noexcept : core_(o.core_), bytes_(std::exchange(o.bytes_, 0)) {}

void HeldBody::Release() {
  if (bytes_ != 0) core_->pending_body_bytes -= std::exchange(bytes_, 0);
}

bool Connection::ReserveBody(size_t total) {
  if (total <= body_reserved_) return true;
  const size_t more = total - body_reserved_;
  size_t now = core_.pending_body_bytes.load();
  do {
    if (now + more > core_.options.max_pending_body_bytes) return false;
  } while (!core_.pending_body_bytes.compare_exchange_weak(now, now + more));
  body_reserved_ = total;
  return true;
}

void Connection::ReleaseBody() {
  if (body_reserved_ == 0) return;
  core_.pending_body_bytes -= body_reserved_;
  body_reserved_ = 0;
}

// ---------------------------------------------------------------------------
// Phases and deadlines
// ---------------------------------------------------------------------------

void Connection::SetPhase(Phase p) {
  if (p == phase_) return;
  const bool was_idle = phase_ == Phase::kIdle;
  const bool was_reading = phase_ == Phase::kHead || phase_ == Phase::kBody;
  const bool reading = p == Phase::kHead || p == Phase::kBody;
  phase_ = p;
  sheddable_.store(p == Phase::kHandshake || p == Phase::kIdle || reading, std::memory_order_relaxed);
  if (reading != was_reading) core_.SetReading(reading ? shared_from_this() : nullptr, id_);
  if (was_idle && idle_since_) {
    core_.SetIdle(nullptr, id_, idle_since_, std::nullopt);
    idle_since_.reset();
  } else if (p == Phase::kIdle) {
    idle_since_ = Clock::now();
    core_.SetIdle(shared_from_this(), id_, std::nullopt, idle_since_);
  }
}

void Connection::ArmDeadline(std::chrono::milliseconds d) {
  const uint64_t gen = ++deadline_gen_;
  deadline_.expires_after(d);
  deadline_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
    if (ec || gen != self->deadline_gen_) return;
    self->OnDeadline();
  });
}

void Connection::CancelDeadline() {
  ++deadline_gen_;
  deadline_.cancel();
}

void Connection::OnDeadline() {
  switch (phase_) {
    case Phase::kIdle:
      ++core_.timed_out;
      Close("idle");
      break;
    case Phase::kHead:
    case Phase::kBody:
      // A started request learns why; an idle connection just closes.
      ++core_.timed_out;
      RespondError(408, "request not received in time");
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------
// Handshake and reading
// ---------------------------------------------------------------------------

void Connection::Start() {
  stream_->AsyncHandshake(Role::kServer, core_.options.handshake_timeout, "",
                          [self = shared_from_this()](NetStatus status) { self->OnHandshake(std::move(status)); });
}

void Connection::OnHandshake(NetStatus status) {
  if (phase_ == Phase::kClosed) return;
  core_.HandshakeDone(id_);
  if (!status.ok()) {
    ++core_.handshake_failed;
    if (status.code() == NetErrc::kTimeout) ++core_.timed_out;
    log::debug("connection {}: TLS handshake failed: {}", id_, status.detail());
    Close("handshake failed");
    return;
  }
  if (stream_->is_tls()) {
    auto info = std::make_shared<ConnectionInfo>(*info_);
    info->served_spki = stream_->served_spki();
    info->peer_chain = stream_->peer_chain();
    info_ = std::move(info);
  }
  StartIdle();
}

void Connection::StartIdle() {
  if (draining_ && buffer_.size() == 0) {
    Close("draining");
    return;
  }
  parser_.emplace();
  parser_->eager(false);  // stop after the head: its fields are counted before any trailer's (Parse)
  parser_->header_limit(static_cast<std::uint32_t>(std::min<size_t>(core_.options.max_header_bytes, UINT32_MAX)));
  parser_->body_limit(core_.options.max_body_bytes);
  SetPhase(Phase::kIdle);
  ArmDeadline(core_.options.idle_timeout);
  if (buffer_.size() > 0) {
    Parse();  // a pipelined request is already here
  } else {
    buffer_.shrink_to_fit();  // an idle connection keeps no buffer
    ReadMore();
  }
}

void Connection::ReadMore() {
  if (read_pending_ || phase_ == Phase::kClosing || phase_ == Phase::kClosed) return;
  // A small buffer while nothing is expected keeps idle connections cheap;
  // over TLS, bytes past it wait inside OpenSSL for the next read.
  const size_t want = phase_ == Phase::kHead || phase_ == Phase::kBody ? kReadChunk : kWatchChunk;
  if (read_buf_.size() != want) std::vector<char>(want).swap(read_buf_);
  read_pending_ = true;
  stream_->async_read_some(asio::buffer(read_buf_), [self = shared_from_this()](beast::error_code ec, size_t n) {
    self->OnRead(ec, n);
  });
}

void Connection::OnRead(beast::error_code ec, size_t n) {
  read_pending_ = false;
  if (phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kClosing) {
    MaybeShutdown();
    return;
  }
  if (ec) {
    if (phase_ == Phase::kHandling && !response_complete_) {
      ClientGone("client closed the connection");
    } else {
      Close("client closed the connection");
    }
    return;
  }
  auto dst = buffer_.prepare(n);
  std::memcpy(dst.data(), read_buf_.data(), n);
  buffer_.commit(n);
  if (phase_ == Phase::kHandling) {
    // Pipelined bytes wait for the next request, up to a cap. Past it the
    // client is not waiting for this answer, and to stop reading would also
    // stop noticing that it left (a generation would run on for nobody).
    if (buffer_.size() > kMaxPipelined) return ClientGone("too many pipelined bytes");
    ReadMore();  // keep watching for the client going away
    return;
  }
  Parse();
}

void Connection::Parse() {
  if (phase_ == Phase::kIdle && buffer_.size() > 0) {
    SetPhase(Phase::kHead);
    ArmDeadline(core_.options.head_timeout);  // from the request's first byte
  }
  while (buffer_.size() > 0) {
    beast::error_code ec;
    const size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == http::error::need_more) {
      ec = {};
    } else if (ec == http::error::body_limit) {
      return RespondError(413, "request body too large");
    } else if (ec == http::error::header_limit) {
      return RespondError(431, "request header fields too large");
    } else if (ec) {
      return RespondError(400, "malformed HTTP request");
    }
    if (phase_ == Phase::kHead && parser_->is_header_done()) {
      // A Transfer-Encoding other than chunked last would make Beast read
      // no body, and what follows a second request (RFC 9112 §6.3: 400).
      const auto& head = parser_->get();
      if (head.find(http::field::transfer_encoding) != head.end() && !parser_->chunked()) {
        return RespondError(400, "unsupported Transfer-Encoding (only chunked)");
      }
      header_fields_ = static_cast<size_t>(std::distance(head.begin(), head.end()));
      body_limit_ = core_.options.max_body_bytes;
      if (core_.options.body_limit) {
        body_limit_ = std::min(body_limit_, core_.options.body_limit(HeadOf(head)));
        if (parser_->content_length() && *parser_->content_length() > body_limit_) {
          return RespondError(413, "request body too large");
        }
      }
      if (parser_->content_length() && !ReserveBody(static_cast<size_t>(*parser_->content_length()))) {
        return RefuseBusy();
      }
      parser_->eager(true);  // the body: as much as has arrived, per put
      SetPhase(Phase::kBody);
      ArmDeadline(core_.options.body_timeout);
      // curl and others wait for this before sending a larger body.
      if (!parser_->is_done() && beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
        queue_.push_back(Outgoing{"HTTP/1.1 100 Continue\r\n\r\n", false, true});
        queued_bytes_ += queue_.back().bytes.size();
        WriteNext();
      }
    }
    // Beast held the body to max_body_bytes; a smaller limit for this
    // request is checked here (a chunked body has no length up front).
    if (phase_ == Phase::kBody && parser_->get().body().size() > body_limit_) {
      return RespondError(413, "request body too large");
    }
    // A chunked body reserves as it grows, 64 KiB at a time.
    if (phase_ == Phase::kBody && parser_->get().body().size() > body_reserved_ &&
        !ReserveBody(parser_->get().body().size() + (64 << 10))) {
      return RefuseBusy();
    }
    if (parser_->is_done()) {
      // Beast adds a chunked body's trailer fields to the head's: they could
      // replace a header a front end checked. None are accepted.
      const auto& msg = parser_->get();
      if (static_cast<size_t>(std::distance(msg.begin(), msg.end())) != header_fields_) {
        return RespondError(400, "trailer fields are not accepted");
      }
      return Dispatch();
    }
    if (used == 0) break;
  }
  // What the parser left is one unfinished element: a head (Beast bounds it
  // by header_limit), or a chunk-size line, its extensions or the trailer
  // section, which Beast does not bound: cap them here, or a peer grows the
  // buffer without end.
  if (buffer_.size() > core_.options.max_header_bytes + kReadChunk) {
    return RespondError(phase_ == Phase::kHead ? 431 : 400,
                        phase_ == Phase::kHead ? "request header fields too large"
                                               : "chunk header or trailer section too large");
  }
  ReadMore();
}

// ---------------------------------------------------------------------------
// Dispatching a request
// ---------------------------------------------------------------------------

void Connection::Dispatch() {
  CancelDeadline();
  SetPhase(Phase::kHandling);
  ++core_.requests;
  auto& msg = parser_->get();
  auto req = std::make_shared<Request>(HeadOf(msg));
  req->body = std::move(msg.body());
  // The body stays in the shared budget until its handler has run: while
  // the handler threads are busy, queued bodies are still held bytes.
  HeldBody held(core_, std::exchange(body_reserved_, 0));
  keep_alive_ = msg.keep_alive() && !draining_;
  head_only_ = msg.method() == http::verb::head;
  parser_.reset();

  ++seq_;
  response_complete_ = false;
  hold_ = shared_from_this();  // until the response is done, whoever holds the writer
  auto writer = std::make_shared<ConnWriter>(core_.life, weak_from_this(), seq_, info_, keep_alive_, head_only_);
  writer_ = writer;
  ReadMore();  // notices the client going away while the handler runs
  asio::post(*core_.handlers, [&core = core_, req = std::move(req), writer = std::move(writer),
                               held = std::move(held)]() mutable {
    try {
      core.handler(*req, writer);
    } catch (const std::exception& e) {
      // The exception's text may quote the request: log its type only.
      log::error("HTTP handler threw {}; answered 500", typeid(e).name());
      writer->Send(500, "application/json", ErrorJson("internal error"));
    } catch (...) {
      log::error("HTTP handler threw; answered 500");
      writer->Send(500, "application/json", ErrorJson("internal error"));
    }
    req.reset();
    held.Release();
    // Dropping our reference: a writer nobody kept answers 500 (ConnWriter's destructor).
  });
}

void Connection::RefuseBusy() {
  ++core_.body_budget_refused;
  RespondError(503, "the server is receiving too many request bodies; retry", {{"Retry-After", "1"}});
}

void Connection::RespondError(int status, const char* message,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
  CancelDeadline();
  ReleaseBody();
  SetPhase(Phase::kClosing);
  Outgoing out{SerializeWhole(status, "application/json", ErrorJson(message), headers, false), true, false};
  queued_bytes_ += out.bytes.size();
  queue_.push_back(std::move(out));
  WriteNext();
}

// ---------------------------------------------------------------------------
// Writing a response
// ---------------------------------------------------------------------------

void Connection::Enqueue(uint64_t seq, Outgoing out) {
  if (seq != seq_ || phase_ != Phase::kHandling || response_complete_) return;
  if (out.last) {
    response_complete_ = true;
    if (auto w = writer_.lock()) w->Complete();
  }
  // A client that reads too slowly is gone once more than the cap waits
  // (one piece alone is always taken: a large whole body is not a symptom).
  if (queued_bytes_ > 0 && queued_bytes_ + out.bytes.size() > core_.options.max_buffered_response_bytes) {
    ClientGone("client reads too slowly");
    return;
  }
  queued_bytes_ += out.bytes.size();
  queue_.push_back(std::move(out));
  WriteNext();
}

void Connection::WriterDropped(uint64_t seq, bool streaming) {
  if (seq != seq_ || phase_ != Phase::kHandling || response_complete_) return;
  if (streaming) {
    // Cut off: what was queued goes out, the chunked body never ends.
    Enqueue(seq, Outgoing{std::string(), true, false, true});
    return;
  }
  Enqueue(seq, Outgoing{SerializeWhole(500, "application/json", ErrorJson("no response"), {}, keep_alive_, head_only_),
                        true, keep_alive_});
}

void Connection::RunAfter(uint64_t seq, std::chrono::milliseconds delay, std::function<void()> f) {
  if (seq != seq_ || phase_ != Phase::kHandling) return;
  auto timer = std::make_shared<asio::steady_timer>(strand_, delay);
  timer->async_wait([self = shared_from_this(), timer, seq, f = std::move(f)](beast::error_code ec) {
    if (ec || seq != self->seq_ || self->phase_ != Phase::kHandling) return;
    if (auto w = self->writer_.lock(); w && w->client_gone()) return;
    try {
      f();
    } catch (const std::exception& e) {
      log::error("an After callback threw {}", typeid(e).name());
    }
  });
}

void Connection::WriteNext() {
  if (writing_ || queue_.empty() || phase_ == Phase::kClosed) return;
  writing_ = true;
  const uint64_t gen = ++write_gen_;
  // From when the piece was queued, not from when its write starts: a client
  // reading just enough to finish each small write in time (a byte every
  // few seconds) would otherwise hold its connection, and the answer queued
  // for it, for hours (found by review).
  write_timer_.expires_at(queue_.front().queued_at + core_.options.write_timeout);
  write_timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
    if (ec || gen != self->write_gen_) return;
    ++self->core_.timed_out;
    self->ClientGone("write timed out");
  });
  // One queued piece, one transport write: over TLS one record per 16 KiB.
  asio::async_write(*stream_, asio::buffer(queue_.front().bytes),
                    [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWritten(ec); });
}

void Connection::OnWritten(beast::error_code ec) {
  writing_ = false;
  ++write_gen_;
  write_timer_.cancel();
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    ClientGone("write failed");
    return;
  }
  Outgoing done = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= done.bytes.size();
  if (done.last) {
    if (done.cut_off) return Close("stream dropped before its end");
    return ResponseDone(done.keep_alive);
  }
  WriteNext();
}

void Connection::ResponseDone(bool keep_alive) {
  auto self = shared_from_this();
  writer_.reset();
  hold_.reset();
  if (!keep_alive || draining_ || phase_ == Phase::kClosing) {
    GracefulClose();
    return;
  }
  StartIdle();
}

// ---------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------

void Connection::ClientGone(const char* why) {
  if (phase_ == Phase::kHandling && !response_complete_) {
    if (auto w = writer_.lock()) w->MarkGone();
  }
  Close(why);
}

void Connection::GracefulClose() {
  CancelDeadline();
  SetPhase(Phase::kClosing);
  // The pending read (if any) ends first; then TLS close_notify.
  beast::error_code ec;
  stream_->tcp().socket().cancel(ec);
  MaybeShutdown();
}

void Connection::MaybeShutdown() {
  if (phase_ != Phase::kClosing || read_pending_ || writing_ || shutting_down_) return;
  shutting_down_ = true;
  stream_->AsyncShutdown(kShutdownTimeout, [self = shared_from_this()] { self->Close("closed"); });
}

void Connection::Close(const char* why) {
  if (phase_ == Phase::kClosed) return;
  auto self = shared_from_this();
  if (phase_ == Phase::kHandling) {
    if (!response_complete_) {
      if (auto w = writer_.lock()) w->MarkGone();
    }
    if (core_.cutting_off) ++core_.cut_off;
  }
  log::trace("connection {} closed: {}", id_, why);
  SetPhase(Phase::kClosed);
  CancelDeadline();
  ++write_gen_;
  write_timer_.cancel();
  stream_->Close();
  core_.Unregister(id_);
  // A write in flight still reads queue_.front(): it stays until OnWritten
  // (which returns at once: the connection is closed).
  queue_.erase(writing_ && !queue_.empty() ? queue_.begin() + 1 : queue_.begin(), queue_.end());
  writer_.reset();
  hold_.reset();
}

void Connection::Shed(bool reading_too) {
  if (phase_ == Phase::kHandshake) return Close("shed in its handshake for a new connection");
  if (reading_too && (phase_ == Phase::kHead || phase_ == Phase::kBody))
    return Close("shed while reading its request for a new connection");
  if (phase_ == Phase::kIdle && buffer_.size() == 0) return Close("shed for a new connection");
  core_.ShedDeclined(id_);  // it started a request meanwhile: it counts again
}

void Connection::BeginDrain() {
  draining_ = true;
  if (phase_ == Phase::kIdle && buffer_.size() == 0) Close("draining");
}

}  // namespace cllm::net::detail
