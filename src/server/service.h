// service.h — the OpenAI-compatible service over the engine's scheduler.
//
// Routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions
// (n choices: one sequence each, joined by choice_fanout.h), POST
// /v1/embeddings, /tokenize, /detokenize (extra_routes.cc), GET /health, GET
// /ready (200 only with a valid attested identity: the readiness probe), GET
// /metrics (Prometheus text: counters and latency histograms; their deltas
// reveal other users' token counts, so only the debug listener or a holder
// of a metrics key reads them), GET /.well-known/cllm-attestation?nonce=HEX
// (evidence binding the TLS key the connection asked on was served and the
// caller's nonce; rate-limited per client address, since anyone may call it).
//
// Every completion request is authenticated to a user (API keys file) and
// becomes one scheduler sequence of its own: no conversation state is kept
// between requests and nothing is shared between users (no cross-user prefix
// reuse; KV blocks are zeroed on release). Without API keys (anonymous,
// development) every caller is one user, so nothing is kept across requests
// at all: no prompt cache, no compiled grammars. The scheduler is fair between
// users and holds each to its limits (running and waiting requests); the
// service adds a tokens-per-minute budget per user. Over any of them the
// answer is 429 with Retry-After, at once. Completions are asynchronous: the
// handler submits the sequence and returns, and the scheduler's worker
// writes tokens to the response writer (completion.h); a client that goes
// away cancels its sequence, streaming or not. Prompt and completion text
// are never logged; the access log (access_log.h) has one line per request
// with sizes, counts and timings only.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "channel/e2e.h"
#include "channel/server_channel.h"
#include "engine/model/model.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/serve/scheduler.h"
#include "net/server.h"
#include "server/access_log.h"
#include "server/api_keys.h"
#include "server/chat_output_plan.h"
#include "server/metrics.h"
#include "server/observed_writer.h"
#include "server/openai_api.h"
#include "server/prompt_embeds.h"
#include "server/rate_limit.h"
#include "server/structured_output.h"
#include "server/token_budget.h"
#include "server/work_gate.h"

namespace cllm::server {

struct ServiceOptions {
  std::string model_name;
  // nullopt: anonymous access (development only; the service then turns the
  // prompt cache off, whatever scheduler.prompt_cache_bytes says).
  std::optional<ApiKeys> api_keys;
  ApiLimits limits;
  // Its user_limits are every key's defaults (a key's "limits" override them).
  engine::SchedulerOptions scheduler;
  int64_t user_tokens_per_minute = 0;  // default budget per user; 0: unlimited
  // Keys that may read /metrics on the attested listener (their own file,
  // apart from API keys: a user's key must not read other users' counts).
  // Without them /metrics is served on the plain debug listener only.
  std::optional<ApiKeys> metrics_keys;
  RateLimitOptions attestation_rate;  // the well-known evidence endpoint
  // Streamed text is held back for this long and sent as one event, so the
  // number and timing of records no longer follow tokens one to one. 0:
  // every token is sent as soon as it is ready.
  std::chrono::milliseconds stream_coalesce{0};
  // The chat template every chat request renders through (cllm-server builds
  // it at start, --chat-template FILE overriding the model's, and refuses to
  // start when it is broken). Null: built from the model here.
  std::shared_ptr<const engine::ChatTemplate> chat_template;
  // One JSON line per request (access_log.h); null: no access log.
  std::shared_ptr<AccessLog> access_log;
  // Who may send prompts as embedding rows (prompt_embeds.h); off: 403.
  PromptEmbedsPolicy prompt_embeds = PromptEmbedsPolicy::kOff;
};

class Service {
 public:
  Service(const engine::Model& model, ServiceOptions options);
  ~Service();

  // Handle is the net::Handler of both listeners. It never waits for
  // generation: a completion is answered later, from the scheduler.
  void Handle(const net::Request& req, std::shared_ptr<net::ResponseWriter> w);
  net::Handler Handler() {
    return [this](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) { Handle(r, std::move(w)); };
  }
  // BodyLimit is net::ServerOptions::body_limit for the listeners: with
  // --prompt-embeds, limits.max_embeds_body_bytes only for a completion
  // request that may carry them (an encrypted one, whose key is inside it, or
  // one whose API key may send them), limits.max_body_bytes for every other.
  size_t BodyLimit(const net::Request& head) const;

  // SetAttestation gives the well-known endpoint the server's attested
  // identity. Its evidence binds the key the connection asked on was served
  // (net::ConnectionInfo::served_spki): after a rotation a keep-alive
  // connection still gets evidence for its own key. Without it, or on a
  // plain connection, the endpoint answers 404.
  void SetAttestation(std::shared_ptr<channel::ServerChannel> identity);

  // SetE2eKeys installs the key ring that opens encrypted bodies
  // (Content-Type application/cllm-e2e-request on a POST API route, on any
  // listener: a TLS-terminating proxy forwards to the plain one). Null: every
  // encrypted request is 421 e2e_key_unknown. A rotation installs a new ring;
  // requests in progress keep the one they were opened with.
  void SetE2eKeys(std::shared_ptr<const channel::e2e::KeyRing> keys);
  // SetE2eClientVerifier enables mutual mode (HPKE auth mode): `verifier`
  // checks the client token and key statement before decryption; with
  // `require`, base-mode requests are refused (401 e2e_client_token).
  void SetE2eClientVerifier(channel::e2e::ClientKeyVerifier verifier, bool require);

  // StopAdmitting answers new completions 503 and /health "shutting_down";
  // running and queued ones go on (the first step of a drain).
  void StopAdmitting();
  // Shutdown stops admitting requests (503) and cancels running ones.
  void Shutdown();
  engine::Scheduler& scheduler() { return *scheduler_; }
  WorkGate& preparing() { return preparing_; }  // tests: hold a key's place

 private:
  // Route answers a request (an opened encrypted one too) by its path;
  // `e2e_mutual`: it was opened in mutual mode (its client attested).
  void Route(const net::Request& req, const std::shared_ptr<net::ResponseWriter>& w, ObservedWriter* observed,
             bool e2e_mutual = false);
  // Encrypted opens an encrypted request and routes its inner request with
  // a writer that seals the answer (service_e2e.cc).
  static bool IsE2eRequest(const net::Request& req);  // by its Content-Type
  void Encrypted(const net::Request& req, const std::shared_ptr<ObservedWriter>& observed);
  void Completions(const net::Request& req, const std::shared_ptr<net::ResponseWriter>& w, bool chat,
                   const ApiUser& user, bool e2e_mutual);
  // CheckEmbedsAllowed: 403 prompt_embeds_not_allowed when the request
  // carries rows and --prompt-embeds does not admit this caller.
  ApiResult<Ok> CheckEmbedsAllowed(const CompletionRequest& cr, const ApiUser& user, bool e2e_mutual) const;
  // extra_routes.cc: POST /tokenize, /detokenize (llama-server's shapes) and
  // /v1/embeddings, authenticated like completions.
  static bool IsExtraRoute(const std::string& path);
  void ExtraRoute(const std::string& path, const net::Request& req, const std::shared_ptr<net::ResponseWriter>& w,
                  const ApiUser& user);
  // Tokenize and Detokenize answer and return how many tokens they produced
  // or read (0 on an error).
  int64_t Tokenize(const net::Request& req, net::ResponseWriter& w);
  int64_t Detokenize(const net::Request& req, net::ResponseWriter& w);
  int64_t Fail(net::ResponseWriter& w, const ApiError& e) {
    SendError(w, e);
    return 0;
  }
  void Embeddings(const net::Request& req, const std::shared_ptr<net::ResponseWriter>& w, const ApiUser& user);
  // ContextExceeded is OpenAI's 400 context_length_exceeded for a prompt of
  // `prompt` tokens asking `completion` more; `param` names the input field.
  static ApiError ContextExceeded(int context, int prompt, int completion, const char* param);
  void Attestation(const net::Request& req, net::ResponseWriter& w);
  // Ready: GET /ready, 200 only with a valid attested identity (service.cc).
  void Ready(net::ResponseWriter& w);
  void Metrics(const net::Request& req, net::ResponseWriter& w);
  void SendError(net::ResponseWriter& w, const ApiError& e);
  // RateLimited answers 429 with Retry-After: `retry_after_s`.
  void RateLimited(net::ResponseWriter& w, int retry_after_s, const std::string& detail);

  const engine::Model& model_;
  ServiceOptions options_;
  std::shared_ptr<const engine::ChatTemplate> chat_template_;  // null: chat_template_error_ says why
  std::string chat_template_error_;
  ChatOutputPlanner output_planner_;  // how chat replies are parsed (tools, reasoning), from the template
  // Before scheduler_: a sequence's callbacks (holding an ObservedWriter
  // that points here) may be released as late as the scheduler's end.
  LatencyMetrics latency_;
  std::unique_ptr<engine::Scheduler> scheduler_;
  std::atomic<bool> shutting_down_{false};
  RateLimiter attest_limiter_;
  TokenBudget budget_;
  WorkGate preparing_;  // one large request per user prepared at a time (work_gate.h)
  StructuredOutput structured_;  // response_format constraints
  std::mutex attest_mu_;  // guards identity_ (never held while the TEE works)
  std::shared_ptr<channel::ServerChannel> identity_;
  std::mutex e2e_mu_;  // guards the three below
  std::shared_ptr<const channel::e2e::KeyRing> e2e_keys_;
  channel::e2e::ClientKeyVerifier e2e_client_verifier_;
  bool e2e_require_client_ = false;
  std::atomic<uint64_t> requests_total_{0};
  std::atomic<uint64_t> requests_failed_{0};
  std::atomic<uint64_t> requests_unauthorized_{0};
  std::atomic<uint64_t> requests_rate_limited_{0};
  std::atomic<uint64_t> streams_cancelled_{0};
  int64_t created_;
};

}  // namespace cllm::server
