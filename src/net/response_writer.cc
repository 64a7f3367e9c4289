// The ResponseWriter of net::Server: serialization with Beast, and the
// thread-safe hand-off of each write to the connection's strand.
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/serializer.hpp>

#include "base/check.h"
#include "base/log.h"
#include "net/server_impl.h"

namespace cllm::net::detail {

// ---------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------

namespace {

template <typename Body>
void SetCommonFields(http::response<Body>& res, std::string_view content_type) {
  res.set(http::field::server, "cllm");
  res.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  res.set(http::field::cache_control, "no-store");
}

template <typename Body>
void SetTrailingFields(http::response<Body>& res, const std::vector<std::pair<std::string, std::string>>& headers,
                       bool keep_alive) {
  for (const auto& [name, value] : headers) res.insert(beast::string_view(name), beast::string_view(value));
  res.set(http::field::connection, keep_alive ? "keep-alive" : "close");
}

// Drain runs Beast's serializer and collects its output in one string, so
// the whole piece goes out as one transport write.
template <typename Serializer>
std::string Drain(Serializer& sr, bool header_only) {
  std::string out;
  beast::error_code ec;
  while (!(header_only ? sr.is_header_done() : sr.is_done())) {
    sr.next(ec, [&](beast::error_code&, const auto& buffers) {
      out += beast::buffers_to_string(buffers);
      sr.consume(beast::buffer_bytes(buffers));
    });
    CLLM_CHECK_MSG(!ec, "serializing a response of our own failed");
  }
  return out;
}

}  // namespace

std::string SerializeWhole(int status, std::string_view content_type, std::string_view body,
                           const std::vector<std::pair<std::string, std::string>>& headers, bool keep_alive,
                           bool head_only) {
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  SetCommonFields(res, content_type);
  res.content_length(body.size());
  SetTrailingFields(res, headers, keep_alive);
  if (!head_only) res.body() = std::string(body);
  http::response_serializer<http::string_body> sr(res);
  sr.split(true);
  return Drain(sr, head_only);
}

std::string SerializeStreamHead(int status, std::string_view content_type,
                                const std::vector<std::pair<std::string, std::string>>& headers, bool keep_alive) {
  http::response<http::empty_body> res{static_cast<http::status>(status), 11};
  SetCommonFields(res, content_type);
  res.chunked(true);
  SetTrailingFields(res, headers, keep_alive);
  http::response_serializer<http::empty_body> sr(res);
  sr.split(true);
  return Drain(sr, true);
}

std::string SerializeChunk(std::string_view chunk) {
  return beast::buffers_to_string(http::make_chunk(asio::const_buffer(chunk.data(), chunk.size())));
}

std::string SerializeLastChunk() { return beast::buffers_to_string(http::make_chunk_last()); }

std::string ErrorJson(const char* message) {
  return std::string(R"({"error":{"message":")") + message + R"(","type":"invalid_request_error"}})";
}

// ---------------------------------------------------------------------------
// ConnWriter
// ---------------------------------------------------------------------------

ConnWriter::ConnWriter(std::shared_ptr<Life> life, std::weak_ptr<Connection> conn, uint64_t seq,
                       std::shared_ptr<const ConnectionInfo> info, bool keep_alive, bool head_only)
    : life_(std::move(life)),
      conn_(std::move(conn)),
      seq_(seq),
      info_(std::move(info)),
      keep_alive_(keep_alive),
      head_only_(head_only) {}

ConnWriter::~ConnWriter() {
  State state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state = state_;
  }
  if (state == State::kDone) return;
  // Dropped without a (complete) response: 500, or a cut-off stream.
  PostToConnection([seq = seq_, streaming = state == State::kStreaming](Connection& c) {
    c.WriterDropped(seq, streaming);
  });
}

bool ConnWriter::PostToConnection(std::function<void(Connection&)> f) {
  std::lock_guard<std::mutex> lock(life_->mu);
  if (!life_->open) return false;
  std::shared_ptr<Connection> c = conn_.lock();
  if (!c) return false;
  asio::post(c->strand(), [weak = conn_, f = std::move(f)] {
    if (auto live = weak.lock()) f(*live);
  });
  return true;
}

void ConnWriter::AddHeader(std::string_view name, std::string_view value) {
  CLLM_CHECK(!name.empty() && name.find_first_of("\r\n:") == std::string_view::npos);
  CLLM_CHECK(value.find_first_of("\r\n") == std::string_view::npos);
  std::lock_guard<std::mutex> lock(mu_);
  headers_.emplace_back(name, value);
}

// Each call posts its bytes while still holding mu_, so the order in which
// writers' calls take mu_ is the order their bytes reach the strand: a Write
// on another thread cannot overtake the head of BeginStream, nor a chunk
// follow EndStream's last chunk. (Lock order mu_ -> life_->mu; nothing takes
// them the other way.)
void ConnWriter::Send(int status, std::string_view content_type, std::string_view body) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNone) return;  // one response per request
  state_ = State::kDone;
  Queue(SerializeWhole(status, content_type, body, headers_, keep_alive_, head_only_), true);
}

bool ConnWriter::BeginStream(int status, std::string_view content_type) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNone) return false;
  state_ = State::kStreaming;
  if (gone_) return false;
  return Queue(SerializeStreamHead(status, content_type, headers_, keep_alive_), false);
}

bool ConnWriter::Write(std::string_view chunk) {
  if (gone_) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kStreaming) return false;
  if (chunk.empty()) return true;  // an empty chunk would end the body
  if (head_only_) return !gone_;    // HEAD: the head only, no chunks
  return Queue(SerializeChunk(chunk), false);
}

void ConnWriter::EndStream() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kStreaming) return;
  state_ = State::kDone;
  // HEAD: nothing more to send; the empty last piece completes the response.
  Queue(head_only_ ? std::string() : SerializeLastChunk(), true);
}

// Queue runs under mu_ (see above).
bool ConnWriter::Queue(std::string bytes, bool last) {
  bool posted = PostToConnection([seq = seq_, out = Outgoing{std::move(bytes), last, keep_alive_}](Connection& c) mutable {
    c.Enqueue(seq, std::move(out));
  });
  return posted && !gone_;
}

void ConnWriter::OnClientGone(std::function<void()> f) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (completed_) return;
    if (!gone_) {
      on_gone_.push_back(std::move(f));
      return;
    }
  }
  // Already gone: run it now.
  f();
}

void ConnWriter::After(std::chrono::milliseconds delay, std::function<void()> f) {
  if (gone_) return;
  PostToConnection([seq = seq_, delay, f = std::move(f)](Connection& c) mutable { c.RunAfter(seq, delay, std::move(f)); });
}

void ConnWriter::MarkGone() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (completed_ || gone_) return;
    gone_ = true;
    callbacks.swap(on_gone_);
  }
  // On the strand already: OnClientGone callbacks are short by contract.
  for (auto& f : callbacks) {
    try {
      f();
    } catch (const std::exception&) {
      log::error("an OnClientGone callback threw");
    }
  }
}

void ConnWriter::Complete() {
  std::lock_guard<std::mutex> lock(mu_);
  completed_ = true;
  on_gone_.clear();
}

bool ConnWriter::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_ == State::kDone;
}

}  // namespace cllm::net::detail
