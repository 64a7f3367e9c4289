// openai_api.h — the OpenAI-compatible request and response shapes.
//
// Requests are untrusted JSON: parsing validates every field's type and
// range, rejects unknown fields (a typo must not silently change behaviour),
// accepts OpenAI fields we do not implement only at their default values, and
// returns an ApiError whose HTTP status and JSON body follow OpenAI's error
// shape. Responses and server-sent-event chunks are produced here too, so the
// HTTP layer only moves bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace cllm::server {

enum class ApiErrc {
  kBadRequest = 1,    // 400: malformed JSON, wrong types, out-of-range values, unknown fields
  kUnauthorized,      // 401: missing or unknown API key
  kNotFound,          // 404: unknown route or model
  kMethodNotAllowed,  // 405
  kTooLarge,          // 413: body or prompt over the limits
  kQueueFull,         // 429: the scheduler's queue is full, or a per-user limit
  kInternal,          // 500
  kNotReady,          // 503: model not loaded yet, or shutting down
};

// An API error: the code picks the HTTP status; the detail is the message
// shown to the client (it names the field, never echoes prompt text).
using ApiError = Error<ApiErrc>;
template <typename T>
using ApiResult = Result<T, ApiErrc>;

int HttpStatus(ApiErrc code);
// ErrorBody renders OpenAI's {"error": {"message", "type", "param", "code"}}.
std::string ErrorBody(const ApiError& e);

struct ApiLimits {
  size_t max_body_bytes = 1 << 20;
  size_t max_messages = 256;
  int max_tokens_cap = 4096;   // upper bound on max_tokens
  size_t max_stop_sequences = 4;
  size_t max_stop_length = 64;
};

struct ChatMessage {
  std::string role;     // "system", "user", "assistant"
  std::string content;
};

struct SamplingRequest {
  int max_tokens = 256;
  float temperature = 1.0f;      // 0 → greedy
  float top_p = 1.0f;
  int top_k = 0;                 // 0 → off (extension)
  float min_p = 0.0f;            // extension
  float repetition_penalty = 1.0f;  // extension
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
};

struct CompletionRequest {
  bool chat = true;                    // /v1/chat/completions vs /v1/completions
  std::string model;
  std::vector<ChatMessage> messages;   // chat
  std::string prompt;                  // completions
  SamplingRequest sampling;
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
};

// ParseCompletionRequest validates a request body for the chat (`chat` true)
// or legacy completions endpoint: kBadRequest or kTooLarge on failure.
ApiResult<CompletionRequest> ParseCompletionRequest(std::string_view body, bool chat,
                                                    const ApiLimits& limits);

// --- responses -------------------------------------------------------------

enum class FinishReason { kStop, kLength };
const char* FinishReasonName(FinishReason r);

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

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
inline constexpr std::string_view kStreamDone = "data: [DONE]\n\n";

// ModelsBody renders GET /v1/models for one served model.
std::string ModelsBody(const std::string& model, int64_t created);

}  // namespace cllm::server
