#include "server/observed_writer.h"

#include <algorithm>

#include "server/e2e_writer.h"

namespace cllm::server {
namespace {

double Ms(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A route in the log is at most this long: a client's path is its own text.
constexpr size_t kMaxRouteBytes = 128;

}  // namespace

ObservedWriter* ObservedWriter::Of(const std::shared_ptr<net::ResponseWriter>& w) {
  if (auto* sealed = dynamic_cast<E2eWriter*>(w.get())) return Of(sealed->outer());
  return dynamic_cast<ObservedWriter*>(w.get());
}

ObservedWriter::ObservedWriter(std::shared_ptr<net::ResponseWriter> inner, const net::Request& req, AccessLog* log,
                               LatencyMetrics* metrics)
    : inner_(std::move(inner)), log_(log), metrics_(metrics), start_(Clock::now()) {
  record_.time = std::chrono::system_clock::now();
  record_.method = req.method.substr(0, 16);
  record_.route = req.Path().substr(0, kMaxRouteBytes);
  record_.client = inner_->connection().peer;
  record_.bytes_in = req.body.size();
}

ObservedWriter::~ObservedWriter() {
  // Nobody else holds this writer now: no lock needed.
  const Clock::time_point end = end_ == Clock::time_point{} ? Clock::now() : end_;
  metrics_->request_duration.Observe(end - start_);
  if (log_ == nullptr) return;
  record_.duration_ms = Ms(end - start_);
  record_.client_gone = inner_->client_gone();
  if (first_token_ != Clock::time_point{}) record_.ttft_ms = Ms(first_token_ - start_);
  log_->Write(record_);
}

void ObservedWriter::SetUser(const std::string& user) {
  std::lock_guard<std::mutex> lock(mu_);
  record_.user = user;
}

void ObservedWriter::SetRequestId(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  record_.request_id = id;
}

void ObservedWriter::Track(engine::SequenceRequest& sr) {
  auto self = shared_from_this();
  // Each sequence has its own previous-token time; its callbacks all run on
  // the scheduler's worker, one at a time.
  auto last = std::make_shared<Clock::time_point>();
  sr.on_token = [self, last, inner = std::move(sr.on_token)](engine::TokenId id, std::string_view text) {
    if (id >= 0) self->OnToken(*last);  // id -1: the held-back UTF-8 tail at the end, not a token
    return inner ? inner(id, text) : true;
  };
  sr.on_done = [self, inner = std::move(sr.on_done)](const engine::SequenceOutcome& o) {
    self->OnDone(o);
    if (inner) inner(o);
  };
}

void ObservedWriter::OnToken(Clock::time_point& last) {
  const Clock::time_point now = Clock::now();
  if (last == Clock::time_point{}) {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_token_ == Clock::time_point{}) {
      first_token_ = now;
      metrics_->time_to_first_token.Observe(now - start_);
    }
  } else {
    metrics_->inter_token.Observe(now - last);
  }
  last = now;
}

void ObservedWriter::OnDone(const engine::SequenceOutcome& o) {
  if (o.admission >= 0) metrics_->queue_wait.Observe(o.queue_wait);
  std::lock_guard<std::mutex> lock(mu_);
  // With several sequences per request (n > 1) the prompt is the same and
  // the completions add up.
  record_.prompt_tokens = o.prompt_tokens;
  record_.cached_tokens = o.cached_tokens;
  record_.completion_tokens = record_.completion_tokens.value_or(0) + o.completion_tokens;
  record_.finish = engine::FinishKindName(o.finish);
  if (o.admission >= 0) {
    const double wait = Ms(o.queue_wait);
    record_.queue_wait_ms = std::max(record_.queue_wait_ms.value_or(0), wait);
  }
}

void ObservedWriter::Send(int status, std::string_view content_type, std::string_view body) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    record_.status = status;
    record_.bytes_out += body.size();
    end_ = Clock::now();
  }
  inner_->Send(status, content_type, body);
}

bool ObservedWriter::BeginStream(int status, std::string_view content_type) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    record_.status = status;
  }
  return inner_->BeginStream(status, content_type);
}

bool ObservedWriter::Write(std::string_view chunk) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    record_.bytes_out += chunk.size();
  }
  return inner_->Write(chunk);
}

void ObservedWriter::EndStream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    end_ = Clock::now();
  }
  inner_->EndStream();
}

}  // namespace cllm::server
