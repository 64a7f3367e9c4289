// observed_writer.h — what the access log and the latency histograms learn
// about one request.
//
// ObservedWriter wraps the listener's response writer for the whole life of
// a request: it counts the bytes and notes the status of what the service
// sends, and Track hooks a scheduler sequence's callbacks for its timings
// (first token, gaps between tokens, queue wait, token counts). The last
// reference going away — right after a synchronous answer, or when the
// sequence's callbacks are released after it ended — records the request:
// the duration histogram and one access-log line. Nothing it keeps is text
// of a prompt or an answer.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "engine/serve/scheduler.h"
#include "net/server.h"
#include "server/access_log.h"
#include "server/metrics.h"

namespace cllm::server {

class ObservedWriter : public net::ResponseWriter, public std::enable_shared_from_this<ObservedWriter> {
 public:
  using Clock = std::chrono::steady_clock;

  // `log` (null: no access log) and `metrics` must outlive the writer.
  ObservedWriter(std::shared_ptr<net::ResponseWriter> inner, const net::Request& req, AccessLog* log,
                 LatencyMetrics* metrics);
  ~ObservedWriter() override;

  // Of is the ObservedWriter behind `w` (itself, or under the sealing
  // writer of an encrypted request), or null when `w` is another writer.
  static ObservedWriter* Of(const std::shared_ptr<net::ResponseWriter>& w);

  void SetUser(const std::string& user);
  void SetRequestId(const std::string& id);
  // Track wraps `sr`'s on_token and on_done (set them first) to time the
  // sequence; call once per sequence of this request, before Submit.
  void Track(engine::SequenceRequest& sr);

  // --- net::ResponseWriter, forwarded ---------------------------------------------
  const net::ConnectionInfo& connection() const override { return inner_->connection(); }
  void AddHeader(std::string_view name, std::string_view value) override { inner_->AddHeader(name, value); }
  void Send(int status, std::string_view content_type, std::string_view body) override;
  bool BeginStream(int status, std::string_view content_type) override;
  bool Write(std::string_view chunk) override;
  void EndStream() override;
  bool client_gone() const override { return inner_->client_gone(); }
  void OnClientGone(std::function<void()> f) override { inner_->OnClientGone(std::move(f)); }
  void After(std::chrono::milliseconds delay, std::function<void()> f) override {
    inner_->After(delay, std::move(f));
  }

 private:
  void OnToken(Clock::time_point& last);  // `last`: this sequence's previous token, or epoch
  void OnDone(const engine::SequenceOutcome& o);

  const std::shared_ptr<net::ResponseWriter> inner_;
  AccessLog* const log_;
  LatencyMetrics* const metrics_;
  const Clock::time_point start_;
  std::mutex mu_;
  AccessRecord record_;
  Clock::time_point end_{};          // the response completed (Send or EndStream)
  Clock::time_point first_token_{};  // of any of its sequences
};

}  // namespace cllm::server
