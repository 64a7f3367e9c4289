#include "server/service.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>

#include "base/encoding.h"
#include "base/log.h"
#include "crypto/digest.h"
#include "crypto/random.h"
#include "engine/tokenizer/chat.h"
#include "server/stop_matcher.h"

namespace cllm::server {
namespace {

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using SteadyClock = std::chrono::steady_clock;

// TokenQueue carries one sequence's output from the scheduler thread to the
// HTTP thread that serves the request.
struct TokenQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> pieces;
  std::optional<engine::SequenceOutcome> outcome;
  std::atomic<bool> cancelled{false};

  enum class Take { kPiece, kTimeout, kDone };
  // Next waits until `deadline` (time_point::max(): forever) for the next
  // piece; kDone once the sequence has finished and everything was taken.
  Take Next(SteadyClock::time_point deadline, std::string* out_piece) {
    std::unique_lock<std::mutex> lock(mu);
    auto ready = [&] { return !pieces.empty() || outcome.has_value(); };
    if (deadline == SteadyClock::time_point::max()) {
      cv.wait(lock, ready);
    } else if (!cv.wait_until(lock, deadline, ready)) {
      return Take::kTimeout;
    }
    if (pieces.empty()) return Take::kDone;
    *out_piece = std::move(pieces.front());
    pieces.pop_front();
    return Take::kPiece;
  }
};

std::string Path(const std::string& target) { return target.substr(0, target.find('?')); }

}  // namespace

Service::Service(const engine::Model& model, ServiceOptions options)
    : model_(model),
      options_(std::move(options)),
      scheduler_(std::make_unique<engine::Scheduler>(model, options_.scheduler)),
      attest_limiter_(options_.attestation_rate),
      created_(UnixNow()) {}

Service::~Service() { Shutdown(); }

void Service::Shutdown() {
  shutting_down_ = true;
  scheduler_->Stop();
}

void Service::SetAttestation(std::shared_ptr<channel::RaTlsIssuer> issuer) {
  std::lock_guard<std::mutex> lock(attest_mu_);
  issuer_ = std::move(issuer);
}

void Service::SetServedSpki(Bytes spki_der) {
  std::lock_guard<std::mutex> lock(attest_mu_);
  served_spki_ = std::move(spki_der);
}

void Service::SendError(ResponseWriter& w, const ApiError& e) {
  ++requests_failed_;
  w.Send(HttpStatus(e.code), "application/json", ErrorBody(e));
}

void Service::Handle(const HttpRequest& req, ResponseWriter& w) {
  ++requests_total_;
  const std::string path = Path(req.target);
  if (path == "/health") {
    bool ready = !shutting_down_;
    w.Send(ready ? 200 : 503, "application/json", ready ? R"({"status":"ok"})" : R"({"status":"shutting_down"})");
    return;
  }
  if (path == "/metrics" && req.method == "GET") return Metrics(req, w);
  if (path == "/.well-known/cllm-attestation" && req.method == "GET") return Attestation(req, w);
  if (path == "/v1/models" || path == "/v1/chat/completions" || path == "/v1/completions") {
    if (options_.api_keys) {
      auto user = options_.api_keys->Authenticate(req.Header("authorization"));
      if (!user.ok()) {
        ++requests_unauthorized_;
        return SendError(w, user.error());
      }
    }
    if (path == "/v1/models") {
      if (req.method != "GET") return SendError(w, MakeError(ApiErrc::kMethodNotAllowed, "use GET"));
      w.Send(200, "application/json", ModelsBody(options_.model_name, created_));
      return;
    }
    if (req.method != "POST") return SendError(w, MakeError(ApiErrc::kMethodNotAllowed, "use POST"));
    return Completions(req, w, path == "/v1/chat/completions");
  }
  SendError(w, MakeError(ApiErrc::kNotFound, "no route " + req.method + " " + path));
}

void Service::Completions(const HttpRequest& req, ResponseWriter& w, bool chat) {
  if (shutting_down_) return SendError(w, MakeError(ApiErrc::kNotReady, "the server is shutting down"));
  auto parsed = ParseCompletionRequest(req.body, chat, options_.limits);
  if (!parsed.ok()) return SendError(w, parsed.error());
  const CompletionRequest& cr = *parsed;
  if (!cr.model.empty() && cr.model != options_.model_name) {
    return SendError(w, MakeError(ApiErrc::kNotFound, "model \"" + cr.model.substr(0, 64) +
                                                          "\" is not served here; this server serves \"" +
                                                          options_.model_name + "\""));
  }

  // --- prompt --------------------------------------------------------------
  // Only the chat template's markers become control tokens; what clients
  // send (messages, a raw prompt) is always tokenized as text.
  engine::SequenceRequest sr;
  if (chat) {
    std::vector<engine::ChatTurn> turns;
    for (const auto& m : cr.messages) turns.push_back({m.role, m.content});
    auto rendered = engine::RenderChat(model_.file(), turns, /*add_generation_prompt=*/true);
    if (!rendered.ok()) return SendError(w, MakeError(ApiErrc::kInternal, "chat template: " + rendered.detail()));
    sr.prompt = engine::TokenizeChat(model_.tokenizer(), *rendered);
  } else {
    sr.prompt = model_.tokenizer().Encode(cr.prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  sr.max_tokens = cr.sampling.max_tokens;
  sr.sampling.temperature = cr.sampling.temperature;
  sr.sampling.top_p = cr.sampling.top_p;
  sr.sampling.top_k = cr.sampling.top_k;
  sr.sampling.min_p = cr.sampling.min_p;
  sr.sampling.repeat_penalty = cr.sampling.repetition_penalty;
  if (cr.sampling.seed) {
    sr.sampling.seed = *cr.sampling.seed;
  } else {
    Bytes r = crypto::RandomBytes(8);
    for (uint8_t b : r) sr.sampling.seed = (sr.sampling.seed << 8) | b;
  }
  auto q = std::make_shared<TokenQueue>();
  sr.on_token = [q](engine::TokenId, std::string_view piece) {
    if (q->cancelled) return false;
    if (!piece.empty()) {
      std::lock_guard<std::mutex> lock(q->mu);
      q->pieces.emplace_back(piece);
      q->cv.notify_one();
    }
    return true;
  };
  sr.on_done = [q](const engine::SequenceOutcome& o) {
    std::lock_guard<std::mutex> lock(q->mu);
    q->outcome = o;
    q->cv.notify_one();
  };
  auto submitted = scheduler_->Submit(std::move(sr));
  if (!submitted.ok()) {
    switch (submitted.code()) {
      case engine::SubmitErrc::kQueueFull: return SendError(w, MakeError(ApiErrc::kQueueFull, submitted.detail()));
      case engine::SubmitErrc::kTooLong: return SendError(w, MakeError(ApiErrc::kTooLarge, submitted.detail()));
      case engine::SubmitErrc::kStopped: return SendError(w, MakeError(ApiErrc::kNotReady, submitted.detail()));
      case engine::SubmitErrc::kInvalid: return SendError(w, MakeError(ApiErrc::kBadRequest, submitted.detail()));
    }
  }

  // --- output --------------------------------------------------------------
  ResponseMeta meta;
  meta.chat = chat;
  meta.model = options_.model_name;
  meta.created = UnixNow();
  meta.id = std::string(chat ? "chatcmpl-" : "cmpl-") + HexEncode(crypto::RandomBytes(12));
  StopMatcher stops(cr.sampling.stop);
  std::string full;
  bool client_gone = false;
  if (cr.stream) {
    client_gone = !w.BeginStream(200, "text/event-stream");
    if (chat && !client_gone) client_gone = !w.Write(StreamRoleEvent(meta));
  }
  // Streamed text waits in `held` until the coalescing interval that its
  // first byte opened has passed (at once without coalescing). Each event is
  // one write, so one TLS record, padded by the listener's TLS context.
  std::string held;
  auto flush_at = SteadyClock::time_point::max();
  auto send_held = [&] {
    if (!held.empty() && !client_gone) client_gone = !w.Write(StreamTextEvent(meta, held));
    held.clear();
    flush_at = SteadyClock::time_point::max();
  };
  auto emit = [&](const std::string& ready) {
    if (ready.empty() || client_gone) return;
    if (!cr.stream) {
      full += ready;
      return;
    }
    held += ready;
    const auto now = SteadyClock::now();
    if (flush_at == SteadyClock::time_point::max()) flush_at = now + options_.stream_coalesce;
    if (now >= flush_at) send_held();
  };
  for (std::string piece;;) {
    const auto take = q->Next(flush_at, &piece);
    if (take == TokenQueue::Take::kDone) break;
    if (take == TokenQueue::Take::kTimeout) {
      send_held();
      continue;
    }
    if (stops.stopped() || client_gone) continue;  // drain until the scheduler confirms
    emit(stops.Feed(piece));
    if (stops.stopped() || client_gone) q->cancelled = true;
  }
  if (!stops.stopped()) emit(stops.Flush());
  send_held();
  engine::SequenceOutcome outcome;
  {
    std::lock_guard<std::mutex> lock(q->mu);
    outcome = *q->outcome;
  }
  if (client_gone) {
    ++streams_cancelled_;
    return;  // nothing more can be sent; the writer reports the failure
  }
  if (outcome.finish == engine::FinishKind::kError) {
    ApiError e = MakeError(ApiErrc::kInternal, "generation failed");
    if (cr.stream) {
      w.Write(StreamErrorEvent(e));
      w.EndStream();
      return;
    }
    return SendError(w, e);
  }
  FinishReason finish = outcome.finish == engine::FinishKind::kLength && !stops.stopped() ? FinishReason::kLength
                                                                                         : FinishReason::kStop;
  Usage usage{outcome.prompt_tokens, outcome.completion_tokens};
  if (cr.stream) {
    w.Write(StreamFinishEvent(meta, finish));
    if (cr.include_usage) w.Write(StreamUsageEvent(meta, usage));
    w.Write(kStreamDone);
    w.EndStream();
  } else {
    w.Send(200, "application/json", CompletionBody(meta, full, finish, usage));
  }
}

void Service::Attestation(const HttpRequest& req, ResponseWriter& w) {
  std::shared_ptr<channel::RaTlsIssuer> issuer;
  Bytes spki;
  {
    std::lock_guard<std::mutex> lock(attest_mu_);
    issuer = issuer_;
    spki = served_spki_;
  }
  if (!issuer || spki.empty()) {
    return SendError(w, MakeError(ApiErrc::kNotFound, "this listener is not attested"));
  }
  auto nonce = HexDecode(req.Query("nonce"));
  if (!nonce.ok() || nonce->empty() || nonce->size() > channel::kMaxFreshnessSize) {
    return SendError(w, MakeError(ApiErrc::kBadRequest, "nonce must be 1 to 64 bytes of hex"));
  }
  // Anyone may ask, and the TEE answers one request at a time: admit only
  // within the caller's and the global budget, and never queue a caller
  // behind the TEE (the ticket is the in-flight slot, held until we reply).
  auto admitted = attest_limiter_.Admit(req.peer);
  if (!admitted.admitted()) {
    w.AddHeader("Retry-After", std::to_string(admitted.retry_after_s));
    return SendError(w, MakeError(ApiErrc::kQueueFull, "too many attestation requests; retry after " +
                                                           std::to_string(admitted.retry_after_s) + " s"));
  }
  auto payload = issuer->PayloadFor(spki, *nonce);
  if (!payload.ok()) {
    log::error("attestation endpoint: {}", payload.detail());
    return SendError(w, MakeError(ApiErrc::kInternal, "the TEE did not produce evidence"));
  }
  nlohmann::json j = {{"platform", payload->platform},
                      {"payload", Base64Encode(channel::EncodePayload(*payload))},
                      {"spki_sha256", HexEncode(crypto::Sha256(spki))}};
  w.Send(200, "application/json", j.dump());
}

void Service::Metrics(const HttpRequest& req, ResponseWriter& w) {
  // The counters are global, but polling them around a user's request shows
  // that user's prompt and answer lengths: not for API users.
  if (options_.metrics_keys) {
    auto reader = options_.metrics_keys->Authenticate(req.Header("authorization"));
    if (!reader.ok()) {
      ++requests_unauthorized_;
      return SendError(w, MakeError(ApiErrc::kUnauthorized, "/metrics needs a metrics key (--metrics-keys)"));
    }
  } else if (req.tls) {
    return SendError(w, MakeError(ApiErrc::kNotFound,
                                  "/metrics is served on the debug listener, or here with a metrics key "
                                  "(--metrics-keys)"));
  }
  auto s = scheduler_->Stats();
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(v) + "\n";
  };
  metric("cllm_http_requests_total", "counter", "HTTP requests received", requests_total_);
  metric("cllm_http_requests_failed_total", "counter", "HTTP requests answered with an error", requests_failed_);
  metric("cllm_http_requests_unauthorized_total", "counter", "requests with a missing or unknown API key",
         requests_unauthorized_);
  metric("cllm_streams_cancelled_total", "counter", "completions whose client went away", streams_cancelled_);
  metric("cllm_sequences_active", "gauge", "sequences being generated", static_cast<uint64_t>(s.active));
  metric("cllm_sequences_queued", "gauge", "sequences waiting for a slot", static_cast<uint64_t>(s.queued));
  metric("cllm_sequences_completed_total", "counter", "sequences finished", s.completed);
  metric("cllm_sequences_rejected_total", "counter", "sequences refused (queue full)", s.rejected);
  metric("cllm_engine_steps_total", "counter", "forward steps", s.steps);
  metric("cllm_prompt_tokens_total", "counter", "prompt tokens processed", s.prompt_tokens);
  metric("cllm_generated_tokens_total", "counter", "tokens generated", s.generated_tokens);
  w.Send(200, "text/plain; version=0.0.4", out);
}

}  // namespace cllm::server
