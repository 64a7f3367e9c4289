// openai_api.h — the OpenAI-compatible request and response shapes.
//
// Requests are untrusted JSON: parsing validates every field's type and
// range, rejects unknown fields (a typo must not silently change behaviour),
// accepts OpenAI fields we do not implement only at their default values, and
// returns an ApiError whose HTTP status and JSON body follow OpenAI's error
// shape. Responses and server-sent-event chunks are produced here too, so the
// HTTP layer only moves bytes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace cllm::server {

enum class ApiErrc {
  kBadRequest = 1,    // 400: malformed JSON, wrong types, out-of-range values, unknown fields
  kUnauthorized,      // 401: missing or unknown API key
  kNotFound,          // 404: unknown route or model
  kMethodNotAllowed,  // 405
  kTooLarge,          // 413: body or prompt over the limits
  kQueueFull,         // 429: the scheduler's queue is full, or a per-user limit (with Retry-After)
  kInternal,          // 500
  kNotReady,          // 503: model not loaded yet, or shutting down
  kContextLength,     // 400 "context_length_exceeded": prompt (+ max_tokens) over the context
  // prompt_embeds (docs/split-inference.md#server-side-the-api):
  kPromptEmbedsInvalid,     // 400: not base64, unknown dtype, not whole rows, no rows, NaN/Inf, misplaced
  kPromptEmbedsTooLong,     // 400: over the byte limit or more rows than the context allows
  kPromptEmbedsNotAllowed,  // 403: --prompt-embeds does not allow this caller
};

}  // namespace cllm::server

namespace cllm {
// An API error also names the request field at fault (OpenAI's "param":
// "messages", "logit_bias", "top_logprobs", …; empty: null).
template <>
struct Error<server::ApiErrc> {
  server::ApiErrc code;
  std::string detail;
  std::string param = {};
};
}  // namespace cllm

namespace cllm::server {

// An API error: the code picks the HTTP status; the detail is the message
// shown to the client (it names the field, never echoes prompt text).
using ApiError = Error<ApiErrc>;
template <typename T>
using ApiResult = Result<T, ApiErrc>;

int HttpStatus(ApiErrc code);
// BadField is a kBadRequest naming its field: `param` when given, else the
// first 'quoted' name in `message` (every field error quotes its field).
ApiError BadField(std::string message, std::string param = "");
// ErrorBody renders OpenAI's {"error": {"message", "type", "param", "code"}}.
std::string ErrorBody(const ApiError& e);

struct ApiLimits {
  size_t max_body_bytes = 1 << 20;
  // --prompt-embeds: a whole context of rows in base64 must fit in one body;
  // only completion requests that may carry them get this (Service::BodyLimit).
  size_t max_embeds_body_bytes = 0;
  size_t max_messages = 256;
  int max_tokens_cap = 4096;   // upper bound on max_tokens
  size_t max_stop_sequences = 4;
  size_t max_stop_length = 64;
  int max_n = 8;                    // choices per request (each one sequence against the user's limits)
  size_t max_logit_bias = 1024;     // entries of logit_bias
  size_t max_embedding_inputs = 32; // inputs of one /v1/embeddings request
  size_t max_token_list = 1 << 16;  // token ids of one /detokenize or embeddings input
};

// PromptEmbedsInput is one prompt_embeds matrix as the request carries it:
// base64 of row-major little-endian float32 or float16 rows, not yet decoded
// (its row width is the served model's; prompt_embeds.h decodes it).
enum class EmbedsDtype { kFloat32, kFloat16 };
struct PromptEmbedsInput {
  std::string base64;
  EmbedsDtype dtype = EmbedsDtype::kFloat32;
};

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool"
  std::string content;  // the text ("" for an assistant message with only tool calls)
};

struct SamplingRequest {
  std::optional<int> max_tokens;  // absent: the rest of the context (context - prompt tokens)
  float temperature = 1.0f;      // 0 → greedy
  float top_p = 1.0f;
  int top_k = 0;                 // 0 → off (extension)
  float min_p = 0.0f;            // extension
  float repetition_penalty = 1.0f;  // extension
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  // sampling_request.cc parses these:
  float presence_penalty = 0.0f;   // -2..2, over generated tokens
  float frequency_penalty = 0.0f;  // -2..2
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id (checked against the vocabulary by the service) → -100..100
  int logprobs = -1;               // alternatives per token (chat top_logprobs 0..20, completions logprobs 0..5); -1: off
  int n = 1;                       // choices, 1..ApiLimits::max_n
};

struct CompletionRequest {
  bool chat = true;                    // /v1/chat/completions vs /v1/completions
  std::string model;
  std::vector<ChatMessage> messages;   // chat: role and text of each message
  // chat: the validated messages as the chat template sees them (content a
  // string or null, tool_calls with object arguments, tool_call_id, name,
  // reasoning_content); see chat_request.cc.
  nlohmann::json messages_json = nlohmann::json::array();
  nlohmann::json chat_template_kwargs = nlohmann::json::object();  // extra template variables
  std::string prompt;                  // completions
  // completions: prompt_embeds instead of prompt (never both).
  std::optional<PromptEmbedsInput> prompt_embeds;
  // chat: the user messages' prompt_embeds parts in order; each stands in
  // its message's content as embeds_placeholders[i] (random per request, so
  // no client text can forge one) until the rendered prompt is cut there.
  std::vector<PromptEmbedsInput> embeds_parts;
  std::vector<std::string> embeds_placeholders;
  SamplingRequest sampling;
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
  // Tool calling (tools_request.cc): validated OpenAI tool objects, or null;
  // tool_choice as sent, or null (auto).
  nlohmann::json tools;
  nlohmann::json tool_choice;
  bool parallel_tool_calls = true;
  // response_format (response_format.h): the validated field, null when
  // absent or "text"; the JSON schema the output must match, null when none
  // (json_object: {"type":"object"}), its keys in the request's order.
  nlohmann::json response_format;
  nlohmann::ordered_json response_schema;
};

// ParseChatMessages validates OpenAI chat messages (chat_request.cc): roles
// system/developer/user/assistant/tool, content as a string or text parts
// (user messages also prompt_embeds parts, when `embeds` is given: each
// appended there and replaced by a placeholder in the content),
// assistant tool_calls (arguments: a JSON object, or a string holding one),
// tool_call_id, name, reasoning_content. Fills messages and messages_json.
struct ChatEmbeds {
  std::vector<PromptEmbedsInput> parts;
  std::vector<std::string> placeholders;
};
ApiResult<std::vector<ChatMessage>> ParseChatMessages(const nlohmann::json& v, const ApiLimits& limits,
                                                      nlohmann::json* out_json, ChatEmbeds* embeds = nullptr);
// ParseChatTemplateKwargs validates chat_template_kwargs: an object whose
// keys do not replace the variables the server sets (messages, tools, ...).
ApiResult<nlohmann::json> ParseChatTemplateKwargs(const nlohmann::json& v);
// IsSamplingField is true for the fields ParseSamplingFields reads (n,
// presence_penalty, frequency_penalty, logit_bias, logprobs, top_logprobs).
bool IsSamplingField(std::string_view key);
// ParseSamplingFields reads those fields from the request object `body`
// into req->sampling: kBadRequest naming the field on a wrong type or range
// (sampling_request.cc).
ApiResult<Ok> ParseSamplingFields(const nlohmann::json& body, bool chat, const ApiLimits& limits,
                                  CompletionRequest* req);

// ParseCompletionRequest validates a request body for the chat (`chat` true)
// or legacy completions endpoint: kBadRequest or kTooLarge on failure.
ApiResult<CompletionRequest> ParseCompletionRequest(std::string_view body, bool chat,
                                                    const ApiLimits& limits);

// --- responses -------------------------------------------------------------

// LogprobEntry is one generated token's log-probability and its `top`
// alternatives; token text is the raw bytes of the token's piece.
struct TopLogprob {
  std::string token;
  float logprob = 0.0f;
};
struct LogprobEntry {
  std::string token;
  float logprob = 0.0f;
  std::vector<TopLogprob> top;
  size_t text_offset = 0;  // completions: byte offset of the token in the choice's text
};

enum class FinishReason { kStop, kLength, kToolCalls };
const char* FinishReasonName(FinishReason r);

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // of prompt_tokens, from the user's prompt cache (prompt_tokens_details)
};
// UsageJson is every body's "usage" (with prompt_tokens_details); UsageOf
// reads one back from a body we rendered (zeros where absent).
nlohmann::json UsageJson(const Usage& u);
Usage UsageOf(const nlohmann::json& body);

struct ResponseMeta {
  std::string id;        // "chatcmpl-…" / "cmpl-…"
  std::string model;
  int64_t created = 0;   // unix seconds
  bool chat = true;
};

// CompletionBody renders a whole non-streaming response.
std::string CompletionBody(const ResponseMeta& meta, std::string_view text, FinishReason finish,
                           const Usage& usage);
// Streaming: each returns one complete SSE event ("data: {...}\n\n").
std::string StreamRoleEvent(const ResponseMeta& meta);  // chat only: delta {"role":"assistant"}
std::string StreamTextEvent(const ResponseMeta& meta, std::string_view text);
std::string StreamFinishEvent(const ResponseMeta& meta, FinishReason finish);
std::string StreamUsageEvent(const ResponseMeta& meta, const Usage& usage);
std::string StreamErrorEvent(const ApiError& e);
// With logprobs (logprob_render.cc): the same shapes, each choice carrying
// "logprobs" as OpenAI renders them for chat ({"content": [...]}) or
// completions ({tokens, token_logprobs, top_logprobs, text_offset}).
std::string CompletionBodyWithLogprobs(const ResponseMeta& meta, std::string_view text, FinishReason finish,
                                       const Usage& usage, const std::vector<LogprobEntry>& logprobs);
std::string StreamTextEventWithLogprobs(const ResponseMeta& meta, std::string_view text,
                                        const std::vector<LogprobEntry>& logprobs);
inline constexpr std::string_view kStreamDone = "data: [DONE]\n\n";

// ModelsBody renders GET /v1/models for one served model.
std::string ModelsBody(const std::string& model, int64_t created);

}  // namespace cllm::server
