#include "server/openai_api.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "base/json_guard.h"
#include "server/prompt_embeds.h"
#include "server/tools_request.h"
#include "server/response_format.h"

namespace cllm::server {
namespace {

constexpr int64_t kMaxTopK = 1000;

using nlohmann::json;

ApiError Bad(std::string message) { return BadField(std::move(message)); }

const char* ErrorType(ApiErrc code) {
  switch (code) {
    case ApiErrc::kBadRequest: return "invalid_request_error";
    case ApiErrc::kUnauthorized: return "authentication_error";
    case ApiErrc::kNotFound: return "not_found_error";
    case ApiErrc::kMethodNotAllowed: return "invalid_request_error";
    case ApiErrc::kTooLarge: return "invalid_request_error";
    case ApiErrc::kQueueFull: return "rate_limit_error";
    case ApiErrc::kInternal: return "server_error";
    case ApiErrc::kNotReady: return "server_error";
    case ApiErrc::kContextLength: return "invalid_request_error";
    case ApiErrc::kPromptEmbedsInvalid: return "invalid_request_error";
    case ApiErrc::kPromptEmbedsTooLong: return "invalid_request_error";
    case ApiErrc::kPromptEmbedsNotAllowed: return "permission_error";
  }
  return "server_error";
}

const char* ErrorCodeName(ApiErrc code) {
  switch (code) {
    case ApiErrc::kBadRequest: return "bad_request";
    case ApiErrc::kUnauthorized: return "invalid_api_key";
    case ApiErrc::kNotFound: return "not_found";
    case ApiErrc::kMethodNotAllowed: return "method_not_allowed";
    case ApiErrc::kTooLarge: return "request_too_large";
    case ApiErrc::kQueueFull: return "rate_limit_exceeded";
    case ApiErrc::kInternal: return "internal_error";
    case ApiErrc::kNotReady: return "not_ready";
    case ApiErrc::kContextLength: return "context_length_exceeded";
    case ApiErrc::kPromptEmbedsInvalid: return "prompt_embeds_invalid";
    case ApiErrc::kPromptEmbedsTooLong: return "prompt_embeds_too_long";
    case ApiErrc::kPromptEmbedsNotAllowed: return "prompt_embeds_not_allowed";
  }
  return "internal_error";
}

// Fields of OpenAI's API that we accept only at their default (no-op) value.
bool IsDefaultOnly(const std::string& key, const json& v) {
  if (key == "echo") return v.is_boolean() && !v.get<bool>();
  if (key == "functions") return v.is_array() && v.empty();
  if (key == "function_call") return v.is_string() && v.get<std::string>() == "none";
  if (key == "store") return v.is_boolean();
  return false;
}

// Number reads a JSON number field within [lo, hi].
ApiResult<double> Number(const json& v, const char* name, double lo, double hi) {
  if (!v.is_number()) return Bad(std::string("'") + name + "' must be a number");
  double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    return Bad(std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump());
  }
  return d;
}

ApiResult<int64_t> Integer(const json& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) return Bad(std::string("'") + name + "' must be an integer");
  int64_t i = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                  ? INT64_MAX
                  : v.get<int64_t>();
  if (i < lo || i > hi) {
    return Bad(std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  return i;
}

ApiResult<std::vector<std::string>> Stops(const json& v, const ApiLimits& limits) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const auto& s : v) {
      if (!s.is_string()) return Bad("'stop' must be a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    return Bad("'stop' must be a string or an array of strings");
  }
  if (out.size() > limits.max_stop_sequences) {
    return Bad("at most " + std::to_string(limits.max_stop_sequences) + " stop sequences");
  }
  for (const auto& s : out) {
    if (s.empty() || s.size() > limits.max_stop_length) {
      return Bad("stop sequences must be 1 to " + std::to_string(limits.max_stop_length) + " bytes");
    }
  }
  return out;
}

}  // namespace

int HttpStatus(ApiErrc code) {
  switch (code) {
    case ApiErrc::kBadRequest: return 400;
    case ApiErrc::kUnauthorized: return 401;
    case ApiErrc::kNotFound: return 404;
    case ApiErrc::kMethodNotAllowed: return 405;
    case ApiErrc::kTooLarge: return 413;
    case ApiErrc::kQueueFull: return 429;
    case ApiErrc::kInternal: return 500;
    case ApiErrc::kNotReady: return 503;
    case ApiErrc::kContextLength: return 400;
    case ApiErrc::kPromptEmbedsInvalid: return 400;
    case ApiErrc::kPromptEmbedsTooLong: return 400;
    case ApiErrc::kPromptEmbedsNotAllowed: return 403;
  }
  return 500;
}

std::string ErrorBody(const ApiError& e) {
  json j = {{"error",
             {{"message", e.detail}, {"type", ErrorType(e.code)}, {"param", e.param.empty() ? json(nullptr) : json(e.param)}, {"code", ErrorCodeName(e.code)}}}};
  // A detail may quote client bytes (a path, a model name cut at 64 bytes)
  // that are not UTF-8: replaced, never a throw (which would be a 500).
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

ApiResult<CompletionRequest> ParseCompletionRequest(std::string_view body, bool chat,
                                                    const ApiLimits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return MakeError(ApiErrc::kTooLarge, "request body over " + std::to_string(limits.max_body_bytes) + " bytes");
  }
  // Depth-checked first (nlohmann recurses), then parsed without exceptions.
  if (!JsonDepthWithin(body)) return Bad("request body nests deeper than " + std::to_string(kMaxJsonDepth));
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("request body is not valid JSON");
  if (!j.is_object()) return Bad("request body must be a JSON object");

  CompletionRequest req;
  req.chat = chat;
  bool have_input = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "model") {
      if (!v.is_string()) return Bad("'model' must be a string");
      req.model = v.get<std::string>();
    } else if (chat && key == "messages") {
      ChatEmbeds embeds;
      CLLM_ASSIGN_OR_RETURN(req.messages, ParseChatMessages(v, limits, &req.messages_json, &embeds));
      req.embeds_parts = std::move(embeds.parts);
      req.embeds_placeholders = std::move(embeds.placeholders);
      have_input = true;
    } else if (chat && key == "chat_template_kwargs") {
      CLLM_ASSIGN_OR_RETURN(req.chat_template_kwargs, ParseChatTemplateKwargs(v));
    } else if (!chat && key == "prompt") {
      if (v.is_string()) {
        req.prompt = v.get<std::string>();
      } else if (v.is_array() && v.size() == 1 && v[0].is_string()) {
        req.prompt = v[0].get<std::string>();
      } else {
        return Bad("'prompt' must be a string");
      }
      have_input = true;
    } else if (!chat && key == "prompt_embeds") {
      if (!v.is_string()) return EmbedsInvalid("'prompt_embeds' must be a string (base64)", "prompt_embeds");
      // Moved out of the parsed JSON only below, once the dtype is known.
      req.prompt_embeds.emplace();
    } else if (!chat && key == "prompt_embeds_dtype") {
      continue;  // read with prompt_embeds, below
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      CLLM_ASSIGN_OR_RETURN(int64_t n, Integer(v, key.c_str(), 1, limits.max_tokens_cap));
      req.sampling.max_tokens = static_cast<int>(n);
    } else if (key == "temperature") {
      CLLM_ASSIGN_OR_RETURN(double t, Number(v, "temperature", 0.0, 2.0));
      req.sampling.temperature = static_cast<float>(t);
    } else if (key == "top_p") {
      CLLM_ASSIGN_OR_RETURN(double p, Number(v, "top_p", 0.0, 1.0));
      req.sampling.top_p = static_cast<float>(p);
    } else if (key == "top_k") {
      // Above 1000 the cut needs a sort of most of the vocabulary per token
      // in the shared step: refused (0 turns it off).
      CLLM_ASSIGN_OR_RETURN(int64_t k, Integer(v, "top_k", 0, kMaxTopK));
      req.sampling.top_k = static_cast<int>(k);
    } else if (key == "min_p") {
      CLLM_ASSIGN_OR_RETURN(double p, Number(v, "min_p", 0.0, 1.0));
      req.sampling.min_p = static_cast<float>(p);
    } else if (key == "repetition_penalty") {
      CLLM_ASSIGN_OR_RETURN(double r, Number(v, "repetition_penalty", 0.01, 10.0));
      req.sampling.repetition_penalty = static_cast<float>(r);
    } else if (key == "seed") {
      if (!v.is_null()) {
        CLLM_ASSIGN_OR_RETURN(int64_t s, Integer(v, "seed", INT64_MIN, INT64_MAX));
        req.sampling.seed = static_cast<uint64_t>(s);
      }
    } else if (key == "stop") {
      CLLM_ASSIGN_OR_RETURN(req.sampling.stop, Stops(v, limits));
    } else if (key == "stream") {
      if (!v.is_boolean()) return Bad("'stream' must be a boolean");
      req.stream = v.get<bool>();
    } else if (key == "stream_options") {
      if (!v.is_null()) {
        if (!v.is_object()) return Bad("'stream_options' must be an object");
        for (const auto& [k2, v2] : v.items()) {
          if (k2 != "include_usage" || !v2.is_boolean()) return Bad("'stream_options' supports only include_usage");
          req.include_usage = v2.get<bool>();
        }
      }
    } else if (key == "tools" || key == "tool_choice" || key == "parallel_tool_calls") {
      CLLM_RETURN_IF_ERROR(ParseToolsField(key, v, req));
    } else if (key == "response_format") {
      CLLM_RETURN_IF_ERROR(ParseResponseFormat(v, body, &req));
    } else if (key == "user") {
      if (!v.is_string()) return Bad("'user' must be a string");  // identity comes from the API key
    } else if (IsSamplingField(key)) {
      continue;  // ParseSamplingFields, below
    } else if (IsDefaultOnly(key, v)) {
      continue;
    } else {
      return Bad("unknown or unsupported field '" + key + "'");
    }
  }
  if (!chat && (req.prompt_embeds || j.contains("prompt_embeds_dtype"))) {
    if (have_input) return EmbedsInvalid("send 'prompt' or 'prompt_embeds', not both", "prompt_embeds");
    if (!req.prompt_embeds) return EmbedsInvalid("'prompt_embeds_dtype' needs 'prompt_embeds'", "prompt_embeds_dtype");
    CLLM_ASSIGN_OR_RETURN(req.prompt_embeds->dtype, ParseEmbedsDtype(j, "prompt_embeds_dtype"));
    req.prompt_embeds->base64 = std::move(j["prompt_embeds"].get_ref<std::string&>());
    have_input = true;
  }
  if (!have_input) return Bad(chat ? "'messages' is required" : "'prompt' is required");
  CLLM_RETURN_IF_ERROR(ParseSamplingFields(j, chat, limits, &req));
  if (req.include_usage && !req.stream) return Bad("'stream_options' requires 'stream': true");
  CLLM_RETURN_IF_ERROR(CheckToolChoice(req));
  return req;
}

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kToolCalls: return "tool_calls";
  }
  return "stop";
}

namespace {

json Envelope(const ResponseMeta& meta, bool chunk) {
  const char* object = meta.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return json{{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

std::string Event(const json& j) { return "data: " + j.dump() + "\n\n"; }

}  // namespace

json UsageJson(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

Usage UsageOf(const json& body) {
  Usage u;
  const auto it = body.find("usage");
  if (it == body.end() || !it->is_object()) return u;
  u.prompt_tokens = it->value("prompt_tokens", 0);
  u.completion_tokens = it->value("completion_tokens", 0);
  const auto d = it->find("prompt_tokens_details");
  if (d != it->end() && d->is_object()) u.cached_tokens = d->value("cached_tokens", 0);
  return u;
}

std::string CompletionBody(const ResponseMeta& meta, std::string_view text, FinishReason finish,
                           const Usage& usage) {
  json j = Envelope(meta, false);
  json choice = {{"index", 0}, {"finish_reason", FinishReasonName(finish)}};
  if (meta.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", std::string(text)}};
  } else {
    choice["text"] = std::string(text);
    choice["logprobs"] = nullptr;
  }
  j["choices"] = json::array({choice});
  j["usage"] = UsageJson(usage);
  // dump with replacement: the model may emit invalid UTF-8 mid-character.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string StreamRoleEvent(const ResponseMeta& meta) {
  json j = Envelope(meta, true);
  j["choices"] = json::array({{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}}});
  return Event(j);
}

std::string StreamTextEvent(const ResponseMeta& meta, std::string_view text) {
  json j = Envelope(meta, true);
  json choice = {{"index", 0}, {"finish_reason", nullptr}};
  if (meta.chat) {
    choice["delta"] = {{"content", std::string(text)}};
  } else {
    choice["text"] = std::string(text);
    choice["logprobs"] = nullptr;
  }
  j["choices"] = json::array({choice});
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string StreamFinishEvent(const ResponseMeta& meta, FinishReason finish) {
  json j = Envelope(meta, true);
  json choice = {{"index", 0}, {"finish_reason", FinishReasonName(finish)}};
  if (meta.chat) {
    choice["delta"] = json::object();
  } else {
    choice["text"] = "";
  }
  j["choices"] = json::array({choice});
  return Event(j);
}

std::string StreamUsageEvent(const ResponseMeta& meta, const Usage& usage) {
  json j = Envelope(meta, true);
  j["choices"] = json::array();
  j["usage"] = UsageJson(usage);
  return Event(j);
}

std::string StreamErrorEvent(const ApiError& e) { return "data: " + ErrorBody(e) + "\n\n"; }

std::string ModelsBody(const std::string& model, int64_t created) {
  json j = {{"object", "list"},
            {"data", json::array({{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "cllm"}}})}};
  return j.dump();
}

}  // namespace cllm::server
