// chat_request.cc — OpenAI chat messages, validated into what the model's
// chat template sees (docs/server.md#chat-templates).
//
// Messages arrive as OpenAI clients send them; the template receives them
// as Hugging Face templates expect them:
// - content: a string, or an array of {"type":"text","text":…} parts (joined
//   into one string); null or absent only on an assistant message with
//   tool_calls (passed as null; engine::ChatTemplate gives "" to templates
//   that cannot take null);
// - role "developer" becomes "system" (templates know system);
// - assistant tool_calls: OpenAI sends each call's `arguments` as a JSON
//   string; templates (Qwen 2.5, Llama 3.1, GLM, gpt-oss: `arguments|tojson`,
//   `arguments.items()`) expect an object, as transformers documents and vLLM
//   does: a string is parsed, and must hold a JSON object;
// - tool messages: content, tool_call_id, name;
// - reasoning_content (an earlier turn's thinking) as a string or null;
// - user content may hold prompt_embeds parts (split inference,
//   prompt_embeds.h): rows the client embedded, never text.
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/json_guard.h"
#include "crypto/random.h"
#include "server/openai_api.h"
#include "server/prompt_embeds.h"

namespace cllm::server {
namespace {

using nlohmann::json;

constexpr size_t kMaxToolCalls = 128;

ApiError Bad(std::string message) { return MakeError(ApiErrc::kBadRequest, std::move(message)); }

// Content accepts a string or OpenAI's array of text parts; with `embeds`
// (a user message) also prompt_embeds parts, each replaced in the text by a
// fresh placeholder (prompt_embeds.h cuts the rendered prompt there).
ApiResult<std::string> Content(const json& c, const std::string& where, ChatEmbeds* embeds) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) return Bad("'" + where + "' must be a string or an array of text parts");
  std::string out;
  for (size_t k = 0; k < c.size(); ++k) {
    const json& part = c[k];
    if (part.is_object() && part.contains("type") && part["type"] == "prompt_embeds") {
      const std::string at = where + "[" + std::to_string(k) + "]";
      if (embeds == nullptr) return EmbedsInvalid("'" + at + "': prompt_embeds parts are for user messages only", at);
      CLLM_ASSIGN_OR_RETURN(PromptEmbedsInput in, ParseEmbedsPart(part, at));
      // Random per part: client text cannot spell one, and a template that
      // copies content elsewhere shows up as a repeated placeholder.
      std::string placeholder = "cllmembeds" + HexEncode(crypto::RandomBytes(16)) + "x";
      out += placeholder;
      embeds->parts.push_back(std::move(in));
      embeds->placeholders.push_back(std::move(placeholder));
      continue;
    }
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      return Bad("'" + where + "': only text parts are supported");
    }
    out += part["text"].get<std::string>();
  }
  return out;
}

ApiResult<json> ToolCalls(const json& v, const std::string& where) {
  if (!v.is_array()) return Bad("'" + where + "' must be an array");
  if (v.size() > kMaxToolCalls) return Bad("'" + where + "' has more than " + std::to_string(kMaxToolCalls) + " calls");
  json out = json::array();
  for (size_t k = 0; k < v.size(); ++k) {
    const json& c = v[k];
    std::string at = where + "[" + std::to_string(k) + "]";
    if (!c.is_object()) return Bad("'" + at + "' must be an object");
    for (const auto& [key, val] : c.items()) {
      if (key != "id" && key != "type" && key != "function") return Bad("unknown field '" + at + "." + key + "'");
    }
    if (c.contains("type") && c["type"] != "function") return Bad("'" + at + ".type' must be \"function\"");
    if (c.contains("id") && !c["id"].is_string()) return Bad("'" + at + ".id' must be a string");
    if (!c.contains("function") || !c["function"].is_object()) return Bad("'" + at + ".function' is required");
    const json& f = c["function"];
    for (const auto& [key, val] : f.items()) {
      if (key != "name" && key != "arguments") return Bad("unknown field '" + at + ".function." + key + "'");
    }
    if (!f.contains("name") || !f["name"].is_string()) return Bad("'" + at + ".function.name' must be a string");
    json args = json::object();
    if (f.contains("arguments")) {
      const json& a = f["arguments"];
      if (a.is_string()) {
        // A string holding JSON escapes the body's depth guard: nested
        // 100000 deep, copying the parsed value overflowed the stack.
        if (!JsonDepthWithin(a.get_ref<const std::string&>())) {
          return Bad("'" + at + ".function.arguments' nests deeper than " + std::to_string(kMaxJsonDepth));
        }
        args = json::parse(a.get<std::string>(), nullptr, /*allow_exceptions=*/false);
        if (args.is_discarded() || !args.is_object()) {
          return Bad("'" + at + ".function.arguments' must be a JSON object (or a string holding one)");
        }
      } else if (a.is_object()) {
        args = a;
      } else {
        return Bad("'" + at + ".function.arguments' must be a JSON object (or a string holding one)");
      }
    }
    json call = {{"type", "function"}, {"function", {{"name", f["name"]}, {"arguments", std::move(args)}}}};
    if (c.contains("id")) call["id"] = c["id"];
    out.push_back(std::move(call));
  }
  return out;
}

}  // namespace

ApiResult<std::vector<ChatMessage>> ParseChatMessages(const json& v, const ApiLimits& limits, json* out_json,
                                                      ChatEmbeds* embeds) {
  if (!v.is_array() || v.empty()) return Bad("'messages' must be a non-empty array");
  if (v.size() > limits.max_messages) {
    return MakeError(ApiErrc::kTooLarge, "too many messages (limit " + std::to_string(limits.max_messages) + ")");
  }
  std::vector<ChatMessage> flat;
  json out = json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    const json& m = v[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return Bad("'" + where + "' must be an object");
    for (const auto& [key, val] : m.items()) {
      if (key != "role" && key != "content" && key != "name" && key != "tool_calls" && key != "tool_call_id" &&
          key != "reasoning_content") {
        return Bad("unknown field '" + where + "." + key + "'");
      }
    }
    if (!m.contains("role") || !m["role"].is_string()) return Bad("'" + where + ".role' is required");
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      return Bad("'" + where + ".role' must be system, developer, user, assistant or tool");
    }
    json msg = {{"role", role}};
    bool has_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
    if (has_calls) {
      if (role != "assistant") return Bad("'" + where + ".tool_calls' is only for assistant messages");
      CLLM_ASSIGN_OR_RETURN(msg["tool_calls"], ToolCalls(m["tool_calls"], where + ".tool_calls"));
    }
    std::string text;
    if (!m.contains("content") || m["content"].is_null()) {
      if (!(role == "assistant" && has_calls)) return Bad("'" + where + ".content' is required");
      msg["content"] = nullptr;
    } else {
      CLLM_ASSIGN_OR_RETURN(text, Content(m["content"], where + ".content", role == "user" ? embeds : nullptr));
      msg["content"] = text;
    }
    if (m.contains("name")) {
      if (!m["name"].is_string()) return Bad("'" + where + ".name' must be a string");
      msg["name"] = m["name"];
    }
    if (m.contains("tool_call_id")) {
      if (!m["tool_call_id"].is_string()) return Bad("'" + where + ".tool_call_id' must be a string");
      if (role != "tool") return Bad("'" + where + ".tool_call_id' is only for tool messages");
      msg["tool_call_id"] = m["tool_call_id"];
    }
    if (m.contains("reasoning_content") && !m["reasoning_content"].is_null()) {
      if (!m["reasoning_content"].is_string()) return Bad("'" + where + ".reasoning_content' must be a string");
      if (role != "assistant") return Bad("'" + where + ".reasoning_content' is only for assistant messages");
      msg["reasoning_content"] = m["reasoning_content"];
    }
    flat.push_back({role, std::move(text)});
    out.push_back(std::move(msg));
  }
  *out_json = std::move(out);
  return flat;
}

ApiResult<json> ParseChatTemplateKwargs(const json& v) {
  if (v.is_null()) return json::object();
  if (!v.is_object()) return Bad("'chat_template_kwargs' must be an object");
  for (const auto& [key, val] : v.items()) {
    // The server's own variables cannot be replaced from a request.
    if (key == "messages" || key == "tools" || key == "add_generation_prompt" || key == "bos_token" ||
        key == "eos_token") {
      return Bad("'chat_template_kwargs." + key + "' is set by the server, not the request");
    }
    if (key.empty() || key.size() > 64) return Bad("'chat_template_kwargs' keys must be 1 to 64 bytes");
  }
  return v;
}

}  // namespace cllm::server
