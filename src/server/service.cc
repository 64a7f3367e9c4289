#include "server/service.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>

#include "base/encoding.h"
#include "base/log.h"
#include "crypto/digest.h"
#include "crypto/random.h"
#include "engine/tokenizer/chat.h"
#include "engine/tokenizer/chat_template.h"
#include "server/choice_fanout.h"
#include "server/completion.h"
#include "server/observed_writer.h"

namespace cllm::server {
namespace {

constexpr size_t kMinNonceSize = 16;  // the attestation endpoint's nonces (never a timestamp's 8)

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The Retry-After for a full queue or a user at its limits: a slot frees
// when any running sequence ends, which on a busy server is within seconds.
constexpr int kQueueRetryAfterS = 1;

// WithoutSharedState: an anonymous server (no API keys) has no user
// identities to keep state apart by — every caller is the one user "" — so
// it keeps none across requests: a prompt cache would tell a caller, by
// cached_tokens or by time, which prefixes other callers sent. With keys,
// each key gets an equal share of the cache (prefix_cache.h): no key's
// traffic evicts another's blocks.
ServiceOptions WithoutSharedState(ServiceOptions o) {
  if (!o.api_keys) o.scheduler.prompt_cache_bytes = 0;
  if (o.api_keys) o.scheduler.prompt_cache_users = std::max<size_t>(o.api_keys->size(), 1);
  return o;
}

}  // namespace

Service::Service(const engine::Model& model, ServiceOptions options)
    : model_(model),
      options_(WithoutSharedState(std::move(options))),
      scheduler_(std::make_unique<engine::Scheduler>(model, options_.scheduler)),
      attest_limiter_(options_.attestation_rate),
      structured_(model.tokenizer(), options_.api_keys ? options_.scheduler.prompt_cache_users : 0),
      created_(UnixNow()) {
  chat_template_ = options_.chat_template;
  if (!chat_template_) {
    auto t = engine::ChatTemplate::ForModel(model_.file(), model_.tokenizer());
    if (t.ok()) {
      chat_template_ = std::make_shared<const engine::ChatTemplate>(std::move(t).value());
    } else {
      chat_template_error_ = t.detail();
      log::error("chat completions are unavailable: {}", chat_template_error_);
    }
  }
  if (chat_template_) output_planner_ = ChatOutputPlanner(chat_template_->source(), model_.tokenizer());
}

Service::~Service() { Shutdown(); }

void Service::StopAdmitting() { shutting_down_ = true; }

void Service::Shutdown() {
  StopAdmitting();
  scheduler_->Stop();
}

void Service::SetAttestation(std::shared_ptr<channel::ServerChannel> identity) {
  std::lock_guard<std::mutex> lock(attest_mu_);
  identity_ = std::move(identity);
}

void Service::SendError(net::ResponseWriter& w, const ApiError& e) {
  ++requests_failed_;
  w.Send(HttpStatus(e.code), "application/json", ErrorBody(e));
}

void Service::RateLimited(net::ResponseWriter& w, int retry_after_s, const std::string& detail) {
  ++requests_rate_limited_;
  w.AddHeader("Retry-After", std::to_string(retry_after_s));
  SendError(w, MakeError(ApiErrc::kQueueFull, detail));
}

void Service::Handle(const net::Request& req, std::shared_ptr<net::ResponseWriter> w) {
  ++requests_total_;
  // Every request is timed and logged when its last reference goes.
  auto observed = std::make_shared<ObservedWriter>(std::move(w), req, options_.access_log.get(), &latency_);
  observed->SetRequestId("req-" + HexEncode(crypto::RandomBytes(8)));
  w = observed;
  if (req.method == "POST" && IsE2eRequest(req)) return Encrypted(req, observed);
  Route(req, w, observed.get());
}

void Service::Route(const net::Request& req, const std::shared_ptr<net::ResponseWriter>& w,
                    ObservedWriter* observed, bool e2e_mutual) {
  const std::string path = req.Path();
  if (path == "/health") {
    bool ready = !shutting_down_;
    w->Send(ready ? 200 : 503, "application/json", ready ? R"({"status":"ok"})" : R"({"status":"shutting_down"})");
    return;
  }
  if (path == "/ready" && req.method == "GET") return Ready(*w);
  if (path == "/metrics" && req.method == "GET") return Metrics(req, *w);
  if (path == "/.well-known/cllm-attestation" && req.method == "GET") return Attestation(req, *w);
  if (path == "/v1/models" || path == "/v1/chat/completions" || path == "/v1/completions" || IsExtraRoute(path)) {
    // Anonymous (--allow-anonymous, development): no identities to be fair
    // between, so one user "" bounded by the global limits only.
    ApiUser user;
    user.limits.max_active = options_.scheduler.max_active;
    user.limits.max_queued = options_.scheduler.max_queued;
    if (options_.api_keys) {
      auto found = options_.api_keys->Authenticate(req.Header("authorization"));
      if (!found.ok()) {
        ++requests_unauthorized_;
        return SendError(*w, found.error());
      }
      user = std::move(found).value();
    }
    observed->SetUser(user.id);
    if (path == "/v1/models") {
      if (req.method != "GET") return SendError(*w, MakeError(ApiErrc::kMethodNotAllowed, "use GET"));
      w->Send(200, "application/json", ModelsBody(options_.model_name, created_));
      return;
    }
    if (req.method != "POST") return SendError(*w, MakeError(ApiErrc::kMethodNotAllowed, "use POST"));
    if (IsExtraRoute(path)) return ExtraRoute(path, req, w, user);
    return Completions(req, w, path == "/v1/chat/completions", user, e2e_mutual);
  }
  SendError(*w, MakeError(ApiErrc::kNotFound, "no route " + req.method + " " + path));
}

size_t Service::BodyLimit(const net::Request& head) const {
  const ApiLimits& l = options_.limits;
  if (l.max_embeds_body_bytes <= l.max_body_bytes || options_.prompt_embeds == PromptEmbedsPolicy::kOff) {
    return l.max_body_bytes;
  }
  const std::string path = head.Path();
  if (head.method != "POST" || (path != "/v1/completions" && path != "/v1/chat/completions")) return l.max_body_bytes;
  // Sealed: its API key and client token are inside; held to the user's
  // limit once opened (Completions). No sealed body is larger than its
  // largest bucket: hdr ‖ enc (at most 133 bytes in any suite) ‖ bucket ‖ tag.
  if (IsE2eRequest(head)) {
    return std::max(l.max_body_bytes,
                    std::min(l.max_embeds_body_bytes, channel::e2e::kHdrSize + 1024 + channel::e2e::kMaxBucket));
  }
  if (!options_.api_keys) return l.max_body_bytes;
  auto user = options_.api_keys->Authenticate(head.Header("authorization"));
  const bool may = user.ok() && PromptEmbedsAllowed(options_.prompt_embeds, user->prompt_embeds, false);
  return may ? l.max_embeds_body_bytes : l.max_body_bytes;
}

ApiResult<Ok> Service::CheckEmbedsAllowed(const CompletionRequest& cr, const ApiUser& user, bool e2e_mutual) const {
  if (!cr.prompt_embeds && cr.embeds_parts.empty()) return Ok{};
  if (PromptEmbedsAllowed(options_.prompt_embeds, user.prompt_embeds, e2e_mutual)) return Ok{};
  const char* why = options_.prompt_embeds == PromptEmbedsPolicy::kOff
                        ? "this server does not accept prompt_embeds (--prompt-embeds off)"
                        : "this API key may not send prompt_embeds";
  ApiError e = MakeError(ApiErrc::kPromptEmbedsNotAllowed, why);
  e.param = cr.chat ? "messages" : "prompt_embeds";
  return e;
}

void Service::Completions(const net::Request& req, const std::shared_ptr<net::ResponseWriter>& w, bool chat,
                          const ApiUser& user, bool e2e_mutual) {
  if (shutting_down_) return SendError(*w, MakeError(ApiErrc::kNotReady, "the server is shutting down"));
  // With API keys, each user prepares one large request at a time: the work
  // below runs on a shared handler thread before any of the user's limits
  // apply (without keys every caller is one user: no gate).
  const auto preparing = preparing_.Enter(user.id, options_.api_keys ? req.body.size() : 0);
  if (!preparing) return RateLimited(*w, 1, "this key is already preparing a large request; retry after 1 s");
  // Only a caller that may send prompt_embeds gets their larger body limit
  // (an encrypted request reached here past the network's check for it).
  ApiLimits limits = options_.limits;
  if (PromptEmbedsAllowed(options_.prompt_embeds, user.prompt_embeds, e2e_mutual)) {
    limits.max_body_bytes = std::max(limits.max_body_bytes, limits.max_embeds_body_bytes);
  }
  auto parsed = ParseCompletionRequest(req.body, chat, limits);
  if (!parsed.ok()) return SendError(*w, parsed.error());
  const CompletionRequest& cr = *parsed;
  if (!cr.model.empty() && cr.model != options_.model_name) {
    return SendError(*w, MakeError(ApiErrc::kNotFound, "model \"" + cr.model.substr(0, 64) +
                                                           "\" is not served here; this server serves \"" +
                                                           options_.model_name + "\""));
  }
  if (auto allowed = CheckEmbedsAllowed(cr, user, e2e_mutual); !allowed.ok()) return SendError(*w, allowed.error());

  // A client that left while its request waited for a handler costs no
  // tokenization and no queue slot.
  if (w->client_gone()) {
    ++streams_cancelled_;
    return;
  }

  // --- prompt --------------------------------------------------------------
  // Only the chat template's markers become control tokens; what clients
  // send (messages, a raw prompt) is always tokenized as text.
  // A prompt given as rows (prompt_embeds.h) carries no ids: sr.prompt
  // stays empty and n_prompt counts rows.
  engine::SequenceRequest sr;
  std::optional<OutputParserOptions> output;
  const int context = scheduler_->context_length();
  const bool embeds = cr.prompt_embeds || !cr.embeds_parts.empty();
  if (chat) {
    if (!chat_template_) return SendError(*w, MakeError(ApiErrc::kInternal, chat_template_error_));
    engine::ChatTemplateInput in;
    in.messages = cr.messages_json;
    in.kwargs = cr.chat_template_kwargs;
    in.tools = ChatOutputPlanner::RendersTools(cr) ? cr.tools : nlohmann::json();
    // A template that refuses the conversation (raise_exception: roles out
    // of order, a system message it cannot take) refuses the request.
    auto rendered = chat_template_->Render(in);
    if (!rendered.ok()) return SendError(*w, MakeError(ApiErrc::kBadRequest, rendered.detail()));
    auto plan = output_planner_.Plan(cr, rendered->text);
    if (!plan.ok()) return SendError(*w, plan.error());
    output = std::move(plan).value();
    auto forced = output_planner_.ToolChoiceConstraint(cr, model_.tokenizer());
    if (!forced.ok()) return SendError(*w, forced.error());
    sr.constraint = std::move(forced).value();
    if (embeds) {
      auto rows = ChatPromptEmbeds(model_, context, *rendered, cr.embeds_placeholders, cr.embeds_parts);
      if (!rows.ok()) return SendError(*w, rows.error());
      sr.prompt_embeds = std::move(rows).value();
    } else {
      sr.prompt = engine::TokenizeChat(model_.tokenizer(), *rendered);
    }
  } else if (embeds) {
    const int n_embd = model_.config().n_embd;
    auto rows = std::make_shared<std::vector<float>>();
    auto decoded = DecodePromptEmbeds(*cr.prompt_embeds, n_embd, context, "prompt_embeds", rows.get());
    if (!decoded.ok()) return SendError(*w, decoded.error());
    if (rows->size() / static_cast<size_t>(n_embd) >= static_cast<size_t>(context)) {
      ApiError e = MakeError(ApiErrc::kPromptEmbedsTooLong,
                             "'prompt_embeds' has " + std::to_string(rows->size() / static_cast<size_t>(n_embd)) +
                                 " rows; the context holds " + std::to_string(context) + " (and one generated token)");
      e.param = "prompt_embeds";
      return SendError(*w, e);
    }
    sr.prompt_embeds = std::move(rows);
  } else {
    sr.prompt = model_.tokenizer().Encode(cr.prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  const int n_prompt = sr.prompt_embeds
                           ? static_cast<int>(sr.prompt_embeds->size() / static_cast<size_t>(model_.config().n_embd))
                           : static_cast<int>(sr.prompt.size());
  const char* input_field = chat ? "messages" : embeds ? "prompt_embeds" : "prompt";
  if (cr.sampling.max_tokens) {
    sr.max_tokens = *cr.sampling.max_tokens;  // more than fits: the scheduler says kTooLong
  } else if (n_prompt >= context) {
    return SendError(*w, ContextExceeded(context, n_prompt, 0, input_field));
  } else {
    sr.max_tokens = std::min(context - n_prompt, options_.limits.max_tokens_cap);  // the rest, up to the cap
  }
  sr.sampling.temperature = cr.sampling.temperature;
  sr.sampling.top_p = cr.sampling.top_p;
  sr.sampling.top_k = cr.sampling.top_k;
  sr.sampling.min_p = cr.sampling.min_p;
  sr.sampling.repeat_penalty = cr.sampling.repetition_penalty;
  sr.sampling.presence_penalty = cr.sampling.presence_penalty;
  sr.sampling.frequency_penalty = cr.sampling.frequency_penalty;
  for (const auto& [id, bias] : cr.sampling.logit_bias) {
    if (id >= model_.config().n_vocab) {
      return SendError(*w, BadField("'logit_bias' names token " + std::to_string(id) + ", outside the vocabulary of " +
                                        std::to_string(model_.config().n_vocab) + " tokens",
                                    "logit_bias"));
    }
    sr.sampling.logit_bias.emplace_back(id, bias);
  }
  sr.top_logprobs = cr.sampling.logprobs;
  if (cr.sampling.seed) {
    sr.sampling.seed = *cr.sampling.seed;
  } else {
    Bytes r = crypto::RandomBytes(8);
    for (uint8_t b : r) sr.sampling.seed = (sr.sampling.seed << 8) | b;
  }
  // response_format: sampling constrained to JSON matching the schema.
  if (!cr.response_schema.is_null()) {
    if (sr.constraint) {
      return SendError(*w, MakeError(ApiErrc::kBadRequest,
                                     "'response_format' cannot be combined with a 'tool_choice' that forces a call"));
    }
    auto constraint = structured_.ConstraintFor(user.id, cr.response_schema);
    if (!constraint.ok()) return SendError(*w, constraint.error());
    sr.constraint = std::move(constraint).value();
  }

  // --- the user's limits -------------------------------------------------------
  const engine::UserLimits& defaults = options_.scheduler.user_limits;
  sr.user = user.id;
  sr.limits = engine::UserLimits{user.limits.max_active.value_or(defaults.max_active),
                                 user.limits.max_queued.value_or(defaults.max_queued)};
  const int64_t per_minute = user.limits.tokens_per_minute.value_or(options_.user_tokens_per_minute);
  const int n = cr.sampling.n;
  // Each choice runs the prompt and may generate max_tokens: all of it is
  // reserved now, and what a choice did not generate goes back when it
  // ends. (Reserving the prompt only let a key start max_active +
  // max_queued sequences of up to max_tokens each before any was charged.)
  const int64_t reserved_completion = std::max<int64_t>(sr.max_tokens, 0);
  const int64_t reserve = (static_cast<int64_t>(n_prompt) + reserved_completion) * n;
  auto budget = budget_.Admit(user.id, per_minute, reserve);
  if (!budget.admitted) {
    return RateLimited(*w, budget.retry_after_s,
                       "over this key's budget of " + std::to_string(per_minute) + " tokens per minute; retry after " +
                           std::to_string(budget.retry_after_s) + " s");
  }

  // --- submit, and answer from the scheduler ----------------------------------
  CompletionOptions co;
  co.meta.chat = chat;
  co.meta.model = options_.model_name;
  co.meta.created = UnixNow();
  co.meta.id = std::string(chat ? "chatcmpl-" : "cmpl-") + HexEncode(crypto::RandomBytes(12));
  co.stream = cr.stream;
  co.include_usage = cr.include_usage;
  co.stop = cr.sampling.stop;
  co.coalesce = options_.stream_coalesce;
  co.output = std::move(output);
  if (co.output) co.marker_tokens = output_planner_.marker_tokens();
  co.logprobs = cr.sampling.logprobs >= 0;
  // Runs on the worker once the sequence ends; the scheduler (and so every
  // callback) is stopped before this service is destroyed.
  auto ended = [this, id = user.id, per_minute, reserved_completion](const engine::SequenceOutcome& o,
                                                                     bool client_gone) {
    budget_.Charge(id, per_minute, o.completion_tokens - reserved_completion);  // the unused reservation back
    if (client_gone) ++streams_cancelled_;
  };
  // n choices: n sequences (seeds derived from the request's; choice 0
  // keeps it), each answered by its own Completion, joined into one response.
  std::shared_ptr<ChoiceFanout> fanout = n > 1 ? ChoiceFanout::Create(w, n) : nullptr;
  auto* observed = ObservedWriter::Of(w);
  if (observed) observed->SetRequestId(co.meta.id);
  std::vector<std::shared_ptr<Completion>> completions;
  std::vector<engine::SequenceRequest> group;
  for (int i = 0; i < n; ++i) {
    engine::SequenceRequest choice = sr;
    // (a shared constraint: SubmitGroup gives each choice its own matcher)
    choice.sampling.seed = sr.sampling.seed ^ (static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull);
    completions.push_back(Completion::Create(fanout ? fanout->Choice(i) : w, co, ended));
    completions.back()->Attach(choice);
    if (observed) observed->Track(choice);  // after Attach: it wraps the callbacks
    group.push_back(std::move(choice));
  }
  auto submitted = scheduler_->SubmitGroup(std::move(group));
  if (!submitted.ok()) {
    budget_.Charge(user.id, per_minute, -reserve);  // not served: the whole reservation goes back
    switch (submitted.code()) {
      case engine::SubmitErrc::kQueueFull:
      case engine::SubmitErrc::kUserQueueFull:
      case engine::SubmitErrc::kUserActiveLimit:
        return RateLimited(*w, kQueueRetryAfterS, submitted.detail());
      case engine::SubmitErrc::kTooLong:
        return SendError(*w, ContextExceeded(context, n_prompt, sr.max_tokens, input_field));
      case engine::SubmitErrc::kStopped: return SendError(*w, MakeError(ApiErrc::kNotReady, submitted.detail()));
      case engine::SubmitErrc::kInvalid: {
        if (!embeds) return SendError(*w, MakeError(ApiErrc::kBadRequest, submitted.detail()));
        return SendError(*w, EmbedsInvalid(submitted.detail(), input_field));
      }
    }
    return SendError(*w, MakeError(ApiErrc::kInternal, "scheduler refused the request"));
  }
  for (auto& c : completions) c->Begin();  // a stream's head goes out now, before the first token
}

void Service::Attestation(const net::Request& req, net::ResponseWriter& w) {
  std::shared_ptr<channel::ServerChannel> identity;
  {
    std::lock_guard<std::mutex> lock(attest_mu_);
    identity = identity_;
  }
  // The key of the connection asked on, never the newest: after a rotation
  // a keep-alive connection still speaks with the key it was served, and
  // evidence for another key would not describe its session.
  const Bytes& spki = w.connection().served_spki;
  if (!identity || spki.empty()) {
    return SendError(w, MakeError(ApiErrc::kNotFound, "this listener is not attested"));
  }
  auto nonce = HexDecode(req.Query("nonce"));
  // Never 8 bytes: that is the form of a certificate's issue time
  // (channel::TimestampFreshness), and evidence for a nonce chosen as a
  // future time would pass as a certificate issued then.
  if (!nonce.ok() || nonce->size() < kMinNonceSize || nonce->size() > channel::kMaxFreshnessSize) {
    return SendError(w, MakeError(ApiErrc::kBadRequest, "nonce must be 16 to 64 bytes of hex"));
  }
  // Anyone may ask, and the TEE answers one request at a time: admit only
  // within the caller's and the global budget, and never queue a caller
  // behind the TEE (the ticket is the in-flight slot, held until we reply).
  auto admitted = attest_limiter_.Admit(w.connection().peer);
  if (!admitted.admitted()) {
    w.AddHeader("Retry-After", std::to_string(admitted.retry_after_s));
    return SendError(w, MakeError(ApiErrc::kQueueFull, "too many attestation requests; retry after " +
                                                           std::to_string(admitted.retry_after_s) + " s"));
  }
  auto payload = identity->PayloadFor(spki, *nonce);
  if (!payload.ok() && payload.code() == channel::ChannelErrc::kCertEvidenceMismatch) {
    // A connection older than the keys the channel remembers: its client
    // must reconnect to be attested again.
    return SendError(w, MakeError(ApiErrc::kNotFound, "this connection's certificate is no longer attested; "
                                                      "reconnect"));
  }
  if (!payload.ok()) {
    log::error("attestation endpoint: {}", payload.detail());
    return SendError(w, MakeError(ApiErrc::kInternal, "the TEE did not produce evidence"));
  }
  nlohmann::json j = {{"platform", payload->platform},
                      {"payload", Base64Encode(channel::EncodePayload(*payload))},
                      {"spki_sha256", HexEncode(crypto::Sha256(spki))}};
  w.Send(200, "application/json", j.dump());
}

// Ready answers the orchestrator's readiness probe (docs/deployment.md). It
// says 200 only while all of these hold, and 503 naming the first that fails:
//   1. the service admits requests (not draining);
//   2. an attested identity is installed: the TEE made evidence for the
//      current key and, with cllm-trust, the service verified that evidence
//      and issued the token the certificate carries;
//   3. that certificate is within its validity — a server whose renewal
//      keeps failing (cllm-trust unreachable, evidence refused) drops out of
//      the load balancer when its last certificate ends.
// Anyone may ask: the answer reveals nothing a TLS handshake does not.
void Service::Ready(net::ResponseWriter& w) {
  std::shared_ptr<channel::ServerChannel> identity;
  {
    std::lock_guard<std::mutex> lock(attest_mu_);
    identity = identity_;
  }
  const char* not_ready = nullptr;
  std::optional<channel::ServedIdentity> current;
  if (shutting_down_) {
    not_ready = "shutting_down";
  } else if (!identity) {
    not_ready = "not_attested";
  } else {
    current = identity->Current();
    if (current->cert.NotAfter() <= std::chrono::system_clock::now()) not_ready = "certificate_expired";
  }
  if (not_ready) {
    w.Send(503, "application/json", nlohmann::json{{"status", not_ready}}.dump());
    return;
  }
  const auto valid_s = std::chrono::duration_cast<std::chrono::seconds>(current->cert.NotAfter() -
                                                                        std::chrono::system_clock::now());
  nlohmann::json j = {{"status", "ready"},
                      {"generation", current->generation},
                      {"trust_token", current->has_token},
                      {"certificate_valid_s", valid_s.count()}};
  w.Send(200, "application/json", j.dump());
}

void Service::Metrics(const net::Request& req, net::ResponseWriter& w) {
  // The counters are global, but polling them around a user's request shows
  // that user's prompt and answer lengths: not for API users.
  if (options_.metrics_keys) {
    auto reader = options_.metrics_keys->Authenticate(req.Header("authorization"));
    if (!reader.ok()) {
      ++requests_unauthorized_;
      return SendError(w, MakeError(ApiErrc::kUnauthorized, "/metrics needs a metrics key (--metrics-keys)"));
    }
  } else if (w.connection().tls) {
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
  metric("cllm_http_requests_rate_limited_total", "counter",
         "completions answered 429 (queue full, a user's limits or token budget)", requests_rate_limited_);
  metric("cllm_streams_cancelled_total", "counter", "completions whose client went away", streams_cancelled_);
  metric("cllm_sequences_active", "gauge", "sequences being generated", static_cast<uint64_t>(s.active));
  metric("cllm_sequences_queued", "gauge", "sequences waiting for a slot", static_cast<uint64_t>(s.queued));
  metric("cllm_sequences_completed_total", "counter", "sequences finished", s.completed);
  metric("cllm_sequences_users", "gauge", "users with a sequence running or waiting", static_cast<uint64_t>(s.users));
  metric("cllm_sequences_rejected_total", "counter", "sequences refused (queue full or a user's limits)", s.rejected);
  metric("cllm_sequences_rejected_user_total", "counter", "sequences refused by a user's limits", s.rejected_user);
  metric("cllm_engine_steps_total", "counter", "forward steps", s.steps);
  metric("cllm_prompt_tokens_total", "counter", "prompt tokens processed", s.prompt_tokens);
  metric("cllm_generated_tokens_total", "counter", "tokens generated", s.generated_tokens);
  metric("cllm_prompt_cache_hits_total", "counter", "sequences that reused their user's cached prompt blocks",
         s.prompt_cache_hits);
  metric("cllm_prompt_cache_hit_tokens_total", "counter", "prompt tokens taken from the prompt cache",
         s.prompt_cache_hit_tokens);
  metric("cllm_prompt_cache_evictions_total", "counter", "prompt cache blocks evicted (zeroed unless in use)",
         s.prompt_cache_evictions);
  metric("cllm_prompt_cache_bytes", "gauge", "KV bytes held by the prompt cache", s.prompt_cache_bytes);
  if (options_.access_log) {
    metric("cllm_access_log_dropped_total", "counter", "access-log lines dropped (the sink fell behind)",
           options_.access_log->dropped());
  }
  latency_.Render(out);
  w.Send(200, "text/plain; version=0.0.4", out);
}

}  // namespace cllm::server
