// service.h — the OpenAI-compatible service over the engine's scheduler.
//
// Routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions,
// GET /health, GET /metrics (Prometheus text, counters only; their deltas
// reveal other users' token counts, so only the debug listener or a holder
// of a metrics key reads them), GET /.well-known/cllm-attestation?nonce=HEX
// (evidence binding the served TLS key and the caller's nonce; rate-limited
// per client address, since anyone may call it).
//
// Every completion request is authenticated to a user id (API keys file) and
// becomes one scheduler sequence of its own: no conversation state is kept
// between requests and nothing is shared between users (no cross-user prefix
// reuse; KV blocks are zeroed on release). Tokens travel from the scheduler
// thread to the HTTP thread through a per-request queue; a client that goes
// away cancels its sequence. Prompt and completion text are never logged.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "channel/ratls.h"
#include "engine/model/model.h"
#include "engine/serve/scheduler.h"
#include "server/api_keys.h"
#include "server/http_server.h"
#include "server/openai_api.h"
#include "server/rate_limit.h"

namespace cllm::server {

struct ServiceOptions {
  std::string model_name;
  std::optional<ApiKeys> api_keys;  // nullopt: anonymous access (development only)
  ApiLimits limits;
  engine::SchedulerOptions scheduler;
  // Keys that may read /metrics on the attested listener (their own file,
  // apart from API keys: a user's key must not read other users' counts).
  // Without them /metrics is served on the plain debug listener only.
  std::optional<ApiKeys> metrics_keys;
  RateLimitOptions attestation_rate;  // the well-known evidence endpoint
  // Streamed text is held back for this long and sent as one event, so the
  // number and timing of records no longer follow tokens one to one. 0:
  // every token is sent as soon as it is ready.
  std::chrono::milliseconds stream_coalesce{0};
};

class Service {
 public:
  Service(const engine::Model& model, ServiceOptions options);
  ~Service();

  // Handle is the HttpHandler of both listeners.
  void Handle(const HttpRequest& req, ResponseWriter& w);
  HttpHandler Handler() {
    return [this](const HttpRequest& r, ResponseWriter& w) { Handle(r, w); };
  }

  // Attestation: the issuer and the SPKI of the key currently served over
  // TLS, for the well-known endpoint. Optional (plain debug servers).
  void SetAttestation(std::shared_ptr<channel::RaTlsIssuer> issuer);
  void SetServedSpki(Bytes spki_der);

  // Shutdown stops admitting requests (503) and cancels running ones.
  void Shutdown();
  engine::Scheduler& scheduler() { return *scheduler_; }

 private:
  void Completions(const HttpRequest& req, ResponseWriter& w, bool chat);
  void Attestation(const HttpRequest& req, ResponseWriter& w);
  void Metrics(const HttpRequest& req, ResponseWriter& w);
  void SendError(ResponseWriter& w, const ApiError& e);

  const engine::Model& model_;
  ServiceOptions options_;
  std::unique_ptr<engine::Scheduler> scheduler_;
  std::atomic<bool> shutting_down_{false};
  RateLimiter attest_limiter_;
  std::mutex attest_mu_;  // guards issuer_ and served_spki_ (never held while the TEE works)
  std::shared_ptr<channel::RaTlsIssuer> issuer_;
  Bytes served_spki_;
  std::atomic<uint64_t> requests_total_{0};
  std::atomic<uint64_t> requests_failed_{0};
  std::atomic<uint64_t> requests_unauthorized_{0};
  std::atomic<uint64_t> streams_cancelled_{0};
  int64_t created_;
};

}  // namespace cllm::server
